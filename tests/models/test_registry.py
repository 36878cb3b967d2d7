"""The model registry on throwaway sqlite stores: log, list, promote and load back.

MLflow's first use of a sqlite store runs its migrations (seconds), so one module-scoped
store is built and logged into once; tests that move aliases or log more work on their own
copy of that store's database (``sqlite:///{tmp_path}/mlflow.db``). Artifacts stay in the
module store's folder, which only the module fixture writes.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from models.errors import ModelError
from models.registry import (
    MAX_PARAM_LENGTH,
    LoggedModel,
    ModelRegistry,
    PromotionRefused,
    RegistryConfig,
    RegistryError,
)

FEATURE_METADATA = [
    {"name": "debt_ratio", "source": "pboc", "description_zh": "负债率", "monotone": 1},
    {"name": "years_registered", "source": "market", "description_zh": "成立年限", "monotone": -1},
]
POINTS = pd.DataFrame(
    {"feature": ["debt_ratio", "debt_ratio"], "bin": ["[0, 0.5)", "[0.5, 1]"], "points": [40, 12]}
)
CHART = b"\x89PNG\r\n\x1a\n fake chart bytes"
#: out-of-time AUC of each logged model; None: the run logs no oot metrics
OOT_AUC = {"first": 0.70, "better": 0.72, "worse": 0.71, "unmeasured": None}


def config(root: Path, **changes: str) -> RegistryConfig:
    return RegistryConfig(
        tracking_uri=f"sqlite:///{root}/mlflow.db",
        artifact_location=str(root / "artifacts"),
        infer_requirements=False,
        **changes,
    )


def fit(x: pd.DataFrame, y: pd.Series, c: float) -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(C=c)).fit(x, y)


@dataclass
class Store:
    root: Path
    x: pd.DataFrame
    models: dict[str, Pipeline]
    logged: dict[str, LoggedModel]
    draft: LoggedModel
    tracking_env: tuple[str | None, str | None]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    rng = np.random.default_rng(7)
    n = 300
    x = pd.DataFrame({
        "debt_ratio": rng.uniform(0, 1, n),
        "years_registered": rng.integers(0, 30, n),  # an integer column: declared double
        "overdue_months": rng.poisson(0.5, n).astype("int64"),
    })  # fmt: skip
    logit = -1.0 + 2.5 * x.debt_ratio - 0.05 * x.years_registered + 0.8 * x.overdue_months
    y = pd.Series((rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int))
    root = tmp_path_factory.mktemp("mlflow")
    registry = ModelRegistry(config(root))
    env_before = os.environ.get("MLFLOW_TRACKING_URI")
    models, logged = {}, {}
    for i, (name, auc) in enumerate(OOT_AUC.items()):
        models[name] = fit(x, y, c=0.1 * (i + 1))
        metrics = {"train": {"roc_auc": 0.9}}
        if auc is not None:
            metrics["oot"] = {"roc_auc": auc, "ks": auc - 0.3}
        logged[name] = registry.log_training(
            run_name=f"{name}-2024-12-31",
            model=models[name],
            input_example=x.head(10),
            params={
                "model": {"C": 0.1 * (i + 1), "penalty": "l2"},
                "features": list(x.columns),
                "notes": "x" * (MAX_PARAM_LENGTH + 500),
            },
            metrics=metrics,
            artifacts={
                "feature_metadata.json": FEATURE_METADATA,
                "scorecard_points.csv": POINTS,
                "charts/roc.png": CHART,
                "README": "训练说明: seeded test data",
            },
            tags={"role": name},
        )
    draft = registry.log_training(
        run_name="draft",
        model=models["first"],
        input_example=x.head(10),
        params={},
        metrics={"oot": {"roc_auc": 0.5}},
        register=False,
    )
    env_after = os.environ.get("MLFLOW_TRACKING_URI")
    return Store(root, x, models, logged, draft, (env_before, env_after))


@pytest.fixture
def registry(store: Store, tmp_path: Path) -> ModelRegistry:
    """A registry on this test's own copy of the module store (aliases start empty)."""
    shutil.copyfile(store.root / "mlflow.db", tmp_path / "mlflow.db")
    return ModelRegistry(config(tmp_path))


# ------------------------------------------------------------------------------------------
# logging and loading
# ------------------------------------------------------------------------------------------
def test_model_loaded_by_alias_predicts_exactly_as_logged(
    registry: ModelRegistry, store: Store
) -> None:
    registry.set_alias(2, "champion")

    champion = registry.load()
    by_version = registry.load(2)
    by_version_text = registry.load("2")

    assert isinstance(champion, Pipeline)
    expected = store.models["better"].predict_proba(store.x)
    for model in (champion, by_version, by_version_text):
        np.testing.assert_array_equal(model.predict_proba(store.x), expected)
    assert registry.model_uri() == "models:/wzcredit@champion"


def test_run_holds_flattened_params_metrics_tags_and_artifacts(store: Store) -> None:
    registry = ModelRegistry(config(store.root))
    run = registry.run(store.logged["first"].run_id)

    assert run.run_name == "first-2024-12-31"
    assert run.status == "FINISHED"
    assert run.params["model.C"] == "0.1"
    assert run.params["model.penalty"] == "l2"
    assert json.loads(run.params["features"]) == list(store.x.columns)
    assert len(run.params["notes"]) == MAX_PARAM_LENGTH
    assert run.params["notes"].endswith("[truncated]")
    assert run.metrics == pytest.approx({"oot.roc_auc": 0.70, "oot.ks": 0.40, "train.roc_auc": 0.9})
    assert run.tags == {"role": "first", "wzcredit.serialization": "skops"}
    assert run.artifacts == (
        "README.txt", "charts/roc.png", "feature_metadata.json", "scorecard_points.csv"
    )  # fmt: skip

    metadata = json.loads(registry.read_artifact(run.run_id, "feature_metadata.json"))
    points = pd.read_csv(io.BytesIO(registry.read_artifact(run.run_id, "scorecard_points.csv")))
    assert metadata == FEATURE_METADATA
    pd.testing.assert_frame_equal(points, POINTS, check_dtype=False)
    assert registry.read_artifact(run.run_id, "charts/roc.png") == CHART
    assert registry.read_artifact(run.run_id, "README.txt").decode() == "训练说明: seeded test data"
    with pytest.raises(RegistryError, match=r"no artifact 'model\.pkl'"):
        registry.read_artifact(run.run_id, "model.pkl")


def test_versions_increment_and_list_their_metrics_and_aliases(
    registry: ModelRegistry, store: Store
) -> None:
    registry.set_alias(1, "champion")
    registry.set_alias(3, "challenger")

    versions = registry.versions()

    assert [logged.version for logged in store.logged.values()] == [1, 2, 3, 4]
    assert store.logged["worse"].model_uri == "models:/wzcredit/3"
    assert [v.version for v in versions] == [1, 2, 3, 4]  # the unregistered draft is absent
    assert [v.metrics.get("oot.roc_auc") for v in versions] == pytest.approx(list(OOT_AUC.values()))
    assert [v.tags["role"] for v in versions] == list(OOT_AUC)
    assert [v.run_id for v in versions] == [logged.run_id for logged in store.logged.values()]
    assert versions[0].aliases == ("champion",)
    assert versions[2].aliases == ("challenger",)
    assert all(v.created.tzinfo is not None for v in versions)
    assert [v.created for v in versions] == sorted(v.created for v in versions)
    assert registry.aliases() == {"challenger": 3, "champion": 1}


def test_unregistered_run_has_no_version(store: Store) -> None:
    assert store.draft.version is None
    assert store.draft.model_uri.startswith("models:/m-")
    registry = ModelRegistry(config(store.root))
    assert registry.run(store.draft.run_id).metrics == {"oot.roc_auc": 0.5}


def test_logging_leaves_mlflow_tracking_variable_as_it_was(store: Store) -> None:
    before, after = store.tracking_env
    assert before == after


def test_model_skops_cannot_save_is_pickled_and_loads_back(
    registry: ModelRegistry, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a lambda, like optbinning's Cython objects, is beyond skops; cloudpickle takes it
    elsewhere = f"sqlite:///{store.root}/elsewhere.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", elsewhere)
    model = make_pipeline(FunctionTransformer(lambda frame: frame * 2), LogisticRegression())
    model.fit(store.x, store.models["first"].predict(store.x))

    logged = registry.log_training(
        run_name="pickled",
        model=model,
        input_example=store.x.head(5),
        params={},
        metrics={"oot": {"roc_auc": 0.8}},
    )

    assert logged.version == 5
    assert registry.run(logged.run_id).tags["wzcredit.serialization"] == "cloudpickle"
    loaded = registry.load(5)
    np.testing.assert_array_equal(loaded.predict_proba(store.x), model.predict_proba(store.x))
    assert os.environ["MLFLOW_TRACKING_URI"] == elsewhere
    assert not (store.root / "elsewhere.db").exists()


# ------------------------------------------------------------------------------------------
# promotion
# ------------------------------------------------------------------------------------------
def test_better_version_is_promoted_and_old_champion_kept_as_previous(
    registry: ModelRegistry,
) -> None:
    registry.set_alias(1, "champion")

    result = registry.promote(2)

    assert registry.aliases() == {"champion": 2, "previous_champion": 1}
    assert (result.old_version, result.new_version) == (1, 2)
    assert (result.old_value, result.new_value) == pytest.approx((0.70, 0.72))
    assert result.changed
    assert not result.forced


def test_a_promoted_candidate_no_longer_waits(registry: ModelRegistry) -> None:
    registry.set_alias(1, "champion")
    registry.set_alias(2, "candidate")

    registry.promote(2)

    assert registry.aliases() == {"champion": 2, "previous_champion": 1}
    registry.promote(1, force=True)  # the rollback gives no candidate back
    assert registry.aliases() == {"champion": 1, "previous_champion": 2}


def test_first_promotion_needs_no_previous_champion(registry: ModelRegistry) -> None:
    result = registry.promote(1)

    assert registry.aliases() == {"champion": 1}
    assert result.old_version is None
    assert result.old_value is None


def test_worse_version_is_refused_naming_both_values(registry: ModelRegistry) -> None:
    registry.set_alias(2, "champion")

    with pytest.raises(PromotionRefused) as refused:
        registry.promote(3)

    assert refused.value.field == "oot.roc_auc"
    assert refused.value.rule == "not_worse"
    assert "version 3 has oot.roc_auc 0.710" in refused.value.message
    assert "current champion version 2's 0.720" in refused.value.message
    assert "force" in refused.value.message
    assert isinstance(refused.value, ValueError)
    assert registry.aliases() == {"champion": 2}


def test_force_promotes_a_worse_version(registry: ModelRegistry) -> None:
    registry.set_alias(2, "champion")

    result = registry.promote(3, force=True)

    assert registry.aliases() == {"champion": 3, "previous_champion": 2}
    assert result.forced
    assert registry.load().get_params()["logisticregression__C"] == pytest.approx(0.3)


def test_version_without_the_metric_is_refused_unless_forced(registry: ModelRegistry) -> None:
    registry.set_alias(1, "champion")

    with pytest.raises(PromotionRefused, match=r"version 4 has no oot\.roc_auc") as refused:
        registry.promote(4)
    assert refused.value.rule == "metric_present"
    assert registry.aliases() == {"champion": 1}

    forced = registry.promote(4, force=True)
    assert registry.aliases() == {"champion": 4, "previous_champion": 1}
    assert forced.forced
    assert forced.old_value == pytest.approx(0.70)
    assert forced.new_value is None


def test_promotion_on_another_metric_and_alias(registry: ModelRegistry) -> None:
    registry.set_alias(2, "challenger")

    with pytest.raises(PromotionRefused, match=r"oot\.ks 0\.410, below .* 0\.420"):
        registry.promote(3, alias="challenger", metric="oot.ks")
    unchanged = registry.promote(2, alias="challenger")  # already the holder

    assert not unchanged.changed
    assert registry.aliases() == {"challenger": 2}


def test_promoting_an_unknown_version_is_a_registry_error(registry: ModelRegistry) -> None:
    with pytest.raises(RegistryError, match="has no version 99") as missing:
        registry.promote(99)
    assert missing.value.field == "version"
    assert isinstance(missing.value, LookupError)


# ------------------------------------------------------------------------------------------
# lookups that fail
# ------------------------------------------------------------------------------------------
def test_loading_an_unassigned_alias_or_unknown_version_is_a_registry_error(
    registry: ModelRegistry,
) -> None:
    with pytest.raises(RegistryError, match="alias 'champion'") as missing:
        registry.load()
    assert (missing.value.field, missing.value.rule) == ("alias", "alias_assigned")
    with pytest.raises(RegistryError, match="no version 42"):
        registry.load(42)
    with pytest.raises(RegistryError, match="version 7"):
        registry.set_alias(7, "champion")


def test_alias_names_that_mlflow_reserves_are_refused(registry: ModelRegistry) -> None:
    for alias in ("latest", "v2", "12", "冠军", ""):
        with pytest.raises(ModelError) as refused:
            registry.set_alias(1, alias)
        assert refused.value.field == "alias"


def test_model_never_registered_has_no_versions_or_aliases(store: Store) -> None:
    registry = ModelRegistry(config(store.root, model_name="never-registered"))

    assert registry.versions() == []
    assert registry.aliases() == {}
    with pytest.raises(RegistryError, match="alias 'champion'"):
        registry.load()


def test_bad_inputs_are_refused_before_anything_is_logged(
    registry: ModelRegistry, store: Store
) -> None:
    base: dict[str, Any] = {
        "run_name": "bad",
        "model": store.models["first"],
        "input_example": store.x.head(5),
        "params": {},
        "metrics": {"oot": {"roc_auc": 0.7}},
    }
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"metrics": {"oot": {"curve": [0.1, 0.2]}}}, "metrics.oot.curve", "number"),
        ({"artifacts": {"../escape.json": {}}}, "artifacts.../escape.json", "relative_name"),
        ({"artifacts": {"x.bin": 3.5}}, "artifacts.x.bin", "artifact_type"),
        ({"model": object()}, "model", "predict_proba"),
        ({"input_example": store.x.head(0)}, "input_example", "rows"),
    ]
    for change, field, rule in cases:
        with pytest.raises(ModelError) as refused:
            registry.log_training(**{**base, **change})
        assert (refused.value.field, refused.value.rule) == (field, rule)

    assert [v.version for v in registry.versions()] == [1, 2, 3, 4]


def test_relative_store_paths_resolve_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    registry = ModelRegistry(RegistryConfig())

    assert registry.tracking_uri == f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    assert registry.artifact_location == (tmp_path / "mlruns" / "artifacts").as_uri()
    assert not (tmp_path / "mlruns").exists()  # nothing is touched until first use
