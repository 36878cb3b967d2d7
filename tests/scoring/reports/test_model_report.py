"""The model validation report on the small synthetic warehouse, checked against the data.

A real champion and challenger are trained on the `scoring_data` warehouse (3,000 entities)
with a short out-of-time plan and registered in a throwaway sqlite MLflow store; the report
is built once for the module, and each test checks one section against numbers recomputed
here from the warehouse and the registry.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pytest

from features.identifiers import parse_resident_id
from features.view.engine import duckdb_tables
from models.datasets import TARGET, Design, SnapshotPlan, snapshots
from models.metrics import evaluate
from models.registry import ModelRegistry, RegistryConfig
from models.train import register, train_main
from scoring.errors import ScoringError
from scoring.reports.model import SECTIONS, ModelReport, model_report, render_model
from scoring.reports.render import ReportFiles, write_report
from tests.fixtures.scoring import ScoringData

PLAN = SnapshotPlan(
    train=(dt.date(2017, 6, 30), dt.date(2017, 12, 31)),
    validation=(dt.date(2018, 6, 30),),
    test=(dt.date(2018, 12, 31),),
)
SAMPLE = 400
#: training, registering and the report with its PDF take about 35 s on 2 cores
pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Built:
    report: ModelReport
    html: str
    files: ReportFiles
    registry: ModelRegistry
    tables: Mapping[str, ir.Table]
    test: pd.DataFrame


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, scoring_data: ScoringData) -> Iterator[Built]:
    root = tmp_path_factory.mktemp("model_report")
    truth = scoring_data.warehouse.parent / "delivery" / "truth"
    assert truth.is_dir()
    registry = ModelRegistry(
        RegistryConfig(
            tracking_uri=f"sqlite:///{root}/mlflow.db",
            artifact_location=str(root / "artifacts"),
            infer_requirements=False,
        )
    )
    with duckdb_tables(scoring_data.warehouse) as (_, tables):
        register(train_main(tables, PLAN, truth=truth), registry, sample=500)
        report = model_report(tables, registry, truth=truth, sample=SAMPLE)
        html = render_model(report)
        files = write_report(html, root / "out" / "model.html", pdf=True)
        test = snapshots(tables, PLAN.test)
        yield Built(report, html, files, registry, tables, test)


def _text(html: str) -> str:
    """The page's text without tags and embedded images, whitespace-normalised."""
    text = re.sub(r"<img[^>]*>", " ", html)
    return " ".join(re.sub(r"<[^>]+>", " ", text).split())


def test_html_and_pdf_are_written_with_every_section(built: Built) -> None:
    assert built.files.html.read_text(encoding="utf-8") == built.html
    assert built.files.pdf is not None
    assert built.files.pdf.read_bytes().startswith(b"%PDF")
    text = _text(built.html)
    for number, (key, en, zh) in enumerate(SECTIONS, start=1):
        assert f'<section id="{key}">' in built.html
        assert f"{number}. {en}（{zh}）" in text
    assert built.html.count('<img class="chart"') >= 8  # ROC, 2 KS, calibration, 3 fairness, grades


def test_data_section_rows_agree_with_the_rebuilt_test_set(built: Built) -> None:
    data = built.report.data
    assert data["test_rows"] == len(built.test)
    assert data["test_rows_match"]
    assert {row["split"]: row["rows"] for row in data["splits"]}["test"] == len(built.test)
    assert data["test_bad_rate"] == pytest.approx(built.test[TARGET].mean())
    assert f"{len(built.test):,}" in _text(built.html)
    assert f"{built.test[TARGET].mean():.2%}" in _text(built.html)


def test_auc_equals_evaluate_on_the_rebuilt_test_set(built: Built) -> None:
    x = Design.from_specs().matrix(built.test)
    y = built.test[TARGET].to_numpy()
    text = _text(built.html)
    for name in ("champion", "challenger"):
        expected = evaluate(y, built.registry.load(name).predict_proba(x)[:, 1])
        shown = built.report.performance["models"][name]
        assert shown["roc_auc"] == expected["roc_auc"]
        assert shown["ks"] == expected["ks"]
        assert shown["logged_match"]
        assert f"{expected['roc_auc']:.4f}" in text
    assert 0.5 < built.report.performance["oracle_auc"] < 1.0


def test_calibration_deciles_cover_the_test_set(built: Built) -> None:
    y = built.test[TARGET].to_numpy()
    for name in ("champion", "challenger"):
        table = built.report.calibration[name]["table"]
        assert sum(row["n"] for row in table) == len(y)
        defaults = sum(row["default_rate"] * row["n"] for row in table)
        assert defaults == pytest.approx(y.sum())
        assert built.report.calibration[name]["method"] in {"isotonic", "platt"}


def test_segments_count_every_test_entity(built: Built) -> None:
    by_segment: Counter[str] = Counter()
    for row in built.report.segments:
        by_segment[row["segment"]] += row["entities"]
    assert set(by_segment.values()) == {len(built.test)}
    small = [r for r in built.report.segments if r["segment"] == "entity_type"]
    counts = built.test["entity_type"].value_counts()
    assert {r["value"]: r["entities"] for r in small} == counts.to_dict()


def test_fairness_groups_add_up_and_gender_matches_the_warehouse(built: Built) -> None:
    fairness = built.report.fairness
    assert fairness.true_risk_kind == "probability"
    for table in fairness.attributes:
        assert sum(g.entities for g in table.groups) == len(built.test)
    entities = built.tables["entities"].select("uscc", "legal_rep_id").to_pandas()
    ids = dict(zip(entities["uscc"], entities["legal_rep_id"], strict=True))
    direct = Counter(parse_resident_id(ids[uscc]).gender for uscc in built.test["uscc"])
    shown = {g.group: g.entities for g in fairness.attribute("gender").groups}
    assert shown == dict(direct)
    types = {g.group: g.entities for g in fairness.attribute("entity_type").groups}
    assert types == built.test["entity_type"].value_counts().to_dict()


def test_no_personal_data_in_the_report(built: Built) -> None:
    entities = built.tables["entities"].select("uscc", "name", "legal_rep_id").to_pandas()
    for uscc, name, legal_rep_id in entities.itertuples(index=False):
        assert uscc not in built.html
        assert legal_rep_id not in built.html
        assert len(name) < 4 or name not in built.html


def test_grades_count_every_entity_and_every_default(built: Built) -> None:
    grades = built.report.grades
    assert sum(g["entities"] for g in grades) == len(built.test)
    assert sum(g["defaults"] for g in grades) == int(built.test[TARGET].sum())
    for g in grades:
        if g["entities"]:
            assert g["pd_min"] <= g["mean_pd"] <= g["pd_max"]
            assert g["realised_rate"] == pytest.approx(g["defaults"] / g["entities"])


def test_scorecard_table_is_the_challengers_points_table(built: Built) -> None:
    points = built.registry.load("challenger").base_model.points_table()
    shown = pd.DataFrame(built.report.scorecard)
    assert len(shown) == len(points)
    assert shown["variable"].tolist() == points["variable"].tolist()
    assert shown["bin"].tolist() == points["bin"].astype(str).tolist()
    np.testing.assert_allclose(shown["points"].to_numpy(float), points["points"].to_numpy())


def test_reason_counts_cover_the_sample(built: Built) -> None:
    reasons = built.report.reasons
    assert reasons["sample"] == SAMPLE
    firsts = sum(r["first"] for r in reasons["table"])
    assert firsts + reasons["without_reason"] == SAMPLE
    assert all(r["entities"] <= SAMPLE for r in reasons["table"])
    assert all(r["zh"] and r["en"] for r in reasons["table"])
    top = reasons["table"][0]
    assert top["entities"] == max(r["entities"] for r in reasons["table"])
    assert top["zh"] in built.html


def test_stability_says_not_computed_or_shows_the_monitoring(built: Built) -> None:
    assert built.report.stability is None
    assert "Stability was not computed" in built.html
    monitoring = {
        "as_of": "2019-12-31", "baseline_as_of": ["2018-12-31"], "rows": 2_345,
        "score_psi": 0.1234,
        "features": [{"feature": "inq_preloan_6m", "source": "pboc", "psi": 0.3012,
                      "level": "alert"}],
        "migration": {"from_as_of": "2019-06-30", "to_as_of": "2019-12-31",
                      "grades": ["A", "B"], "shares": [[0.9, 0.1], [0.25, 0.75]]},
        "realised": [{"grade": "A", "entities": 10, "predicted_pd": 0.01,
                      "realised_rate": 0.05, "level": "alert"}],
        "alerts": [{"check": "feature_psi", "subject": "inq_preloan_6m", "value": 0.3012,
                    "threshold": 0.25, "level": "alert", "message": "distribution shifted"}],
    }  # fmt: skip
    text = _text(render_model(dataclasses.replace(built.report, stability=monitoring)))
    assert "Stability was not computed" not in text
    for shown in ("0.123", "2,345", "0.301", "distribution shifted", "75%", "5.00%"):
        assert shown in text


def test_to_dict_is_json(built: Built) -> None:
    payload = json.loads(json.dumps(built.report.to_dict()))
    assert payload["performance"]["models"]["champion"]["roc_auc"] == pytest.approx(
        built.report.performance["models"]["champion"]["roc_auc"]
    )
    assert payload["fairness"]["entities"] == len(built.test)
    assert "charts" not in payload


def test_a_registry_without_the_aliases_is_refused(built: Built, tmp_path: Path) -> None:
    empty = ModelRegistry(
        RegistryConfig(
            tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
            artifact_location=str(tmp_path / "artifacts"),
        )
    )
    with pytest.raises(ScoringError, match="registry: aliases"):
        model_report(built.tables, empty)
