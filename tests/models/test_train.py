"""Training end to end: snapshots → champion and challenger → MLflow, and the generic CV."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from features.ingest import ingest_delivery
from features.synthetic import GeneratorConfig, generate
from features.view.engine import duckdb_tables
from models.datasets import SnapshotPlan
from models.registry import ModelRegistry, RegistryConfig
from models.stability import StabilityBaseline
from models.train import BASELINE_ARTIFACT, read_table, register, train_main, train_table
from wzcredit.cli import app

DATA = Path(__file__).resolve().parents[1] / "data"
PLAN = SnapshotPlan(
    train=(dt.date(2017, 6, 30), dt.date(2017, 12, 31)),
    validation=(dt.date(2018, 6, 30),),
    test=(dt.date(2018, 12, 31),),
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("train")
    result = generate(GeneratorConfig(entities=4_000, seed=5), root / "delivery")
    warehouse = root / "warehouse.duckdb"
    ingest_delivery(result.out, warehouse)
    with duckdb_tables(warehouse) as (_, tables):
        return train_main(tables, PLAN, truth=result.out / "truth"), root


def test_both_models_are_judged_out_of_time(trained: Any) -> None:
    result, _ = trained
    assert result.rows["test"] > 1_000
    for name in ("champion", "challenger"):
        metrics = result.metrics[name]
        assert 0.55 < metrics["roc_auc"] < result.oracle_auc
        assert metrics["calibration_error"] < 0.05
        assert result.calibration[name] in {"isotonic", "platt"}
        assert set(result.segments[name]) >= {"entity_type", "pboc_has_file"}
    assert 0.7 < result.oracle_auc < 1.0
    shape = result.to_dict()
    assert shape["champion"]["roc_auc"] == result.metrics["champion"]["roc_auc"]
    assert shape["oracle_auc"] == result.oracle_auc


def test_registered_models_load_back_by_alias_with_identical_predictions(trained: Any) -> None:
    result, root = trained
    registry = ModelRegistry(
        RegistryConfig(
            tracking_uri=f"sqlite:///{root}/mlflow.db",
            artifact_location=str(root / "artifacts"),
            infer_requirements=False,
        )
    )
    register(result, registry)
    assert registry.aliases() == {
        "champion": result.versions["champion"],
        "challenger": result.versions["challenger"],
    }
    x = result.test_matrix.head(200)
    for alias in ("champion", "challenger"):
        loaded = registry.load(alias)
        np.testing.assert_array_equal(
            loaded.predict_proba(x), result.models[alias].predict_proba(x)
        )
        # the training population's profile is logged beside each model: the reference
        # of `wzcredit monitor`, which finds no drift on the training rows themselves
        baseline = StabilityBaseline.from_dict(
            json.loads(registry.version_artifact(alias, BASELINE_ARTIFACT))
        )
        assert baseline == result.baselines[alias]
        assert baseline.as_of == PLAN.train
        assert baseline.rows == result.rows["train"]
    register(result, registry)  # a second training waits for promotion
    assert registry.aliases()["champion"] == result.versions["champion"] - 2
    assert registry.aliases()["candidate"] == result.versions["champion"]
    run = registry.versions()[0]
    assert "oot.roc_auc" in run.metrics


def test_generic_training_on_german_credit() -> None:
    frame = read_table(DATA / "german_credit.csv")
    result = train_table(frame, "creditability", "bad", n_splits=5, n_repeats=1)
    for name in ("champion", "challenger"):
        assert result[name]["roc_auc"]["mean"] > 0.74
        assert result[name]["roc_auc"]["std"] < 0.06


def test_train_cli_json_for_a_table(tmp_path: Path) -> None:
    small = tmp_path / "german.csv"
    read_table(DATA / "german_credit.csv").to_csv(small, index=False)
    result = CliRunner().invoke(
        app, ["train", "--table", str(small), "--target", "creditability", "--bad", "bad",
              "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(payload["champion"]["roc_auc"]) == {"mean", "std"}
    assert set(payload["challenger"]) >= {"roc_auc", "ks", "brier"}


def test_train_cli_names_a_wrong_bad_value(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["train", "--table", str(DATA / "german_credit.csv"), "--target",
              "creditability", "--bad", "terrible"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "bad: value" in result.output
