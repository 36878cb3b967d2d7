"""Monitoring (分析预警): drift against the training population, migration, realised defaults.

The drift tests generate two more small worlds like the one the shared champion was trained
on: one with another seed only (the same population: no alert may fire) and one whose
entities are all riskier (`GeneratorConfig.distress_shift`): the score's PSI must alert.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.ingest import ingest_delivery
from features.synthetic import GeneratorConfig, generate
from features.view import build_view
from features.view.engine import duckdb_tables
from models.calibration import CalibratedModel
from models.datasets import TARGET
from models.stability import StabilityBaseline
from scoring.errors import ScoringError
from scoring.monitoring import migration, monitor, realised_by_grade
from scoring.policy import Threshold, load_policy
from tests.fixtures.scoring import ENTITIES, SEED, TRAIN_AS_OF, ScoringData

POLICY = load_policy()


def _world(root: Path, *, seed: int, shift: float) -> pd.DataFrame:
    """The view of a freshly generated world at the training dates, stacked."""
    config = GeneratorConfig(entities=ENTITIES, seed=seed, distress_shift=shift)
    delivery = generate(config, root / "delivery").out
    ingest_delivery(delivery, root / "warehouse.duckdb")
    with duckdb_tables(root / "warehouse.duckdb") as (_, tables):
        frames = [build_view(tables, day).table.to_pandas() for day in TRAIN_AS_OF]
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def baseline(scoring_data: ScoringData, champion: CalibratedModel) -> StabilityBaseline:
    x = scoring_data.design.matrix(scoring_data.train)
    return StabilityBaseline.fit(x, champion.predict_proba(x)[:, 1], as_of=TRAIN_AS_OF)


@pytest.fixture(scope="module")
def same_population(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return _world(tmp_path_factory.mktemp("same"), seed=SEED + 1, shift=0.0)


@pytest.fixture(scope="module")
def riskier_population(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return _world(tmp_path_factory.mktemp("riskier"), seed=SEED + 1, shift=1.5)


def _one_date(frame: pd.DataFrame) -> pd.DataFrame:
    """Monitoring looks at one date: relabel the stacked training dates as one."""
    return frame.assign(as_of=TRAIN_AS_OF[-1])


@pytest.mark.slow
def test_an_unchanged_population_raises_no_alert(
    same_population: pd.DataFrame, champion: CalibratedModel, baseline: StabilityBaseline
) -> None:
    result = monitor(_one_date(same_population), champion, baseline, POLICY)
    assert result.score_psi < POLICY.monitoring.score_psi.warning
    assert result.features["psi"].max() < POLICY.monitoring.feature_psi.warning
    assert result.alerts == ()
    assert result.rows == len(same_population)


@pytest.mark.slow
def test_an_injected_drift_raises_the_score_alert(
    riskier_population: pd.DataFrame, champion: CalibratedModel, baseline: StabilityBaseline
) -> None:
    result = monitor(_one_date(riskier_population), champion, baseline, POLICY)
    assert result.score_level == "alert"
    assert result.score_psi >= POLICY.monitoring.score_psi.alert
    alerts = {(a.check, a.subject) for a in result.alerts}
    assert ("score_psi", "score") in alerts
    # the features that carry the distress moved too, and are named
    moved = set(result.features.loc[result.features["level"] != "ok", "feature"])
    assert moved, "no feature's CSI crossed a threshold"
    assert {s for c, s in alerts if c == "feature_psi"} == moved
    data = result.to_dict()
    assert data["score_level"] == "alert"
    assert len(data["features"]) == len(baseline.features)


def test_monitor_with_a_labelled_earlier_snapshot_gives_migration_and_realised_rates(
    scoring_data: ScoringData, champion: CalibratedModel, baseline: StabilityBaseline
) -> None:
    earlier = scoring_data.validation  # labelled: its 12-month window has closed
    result = monitor(scoring_data.score, champion, baseline, POLICY, previous=earlier)
    assert result.migration is not None
    assert result.realised is not None
    both = set(earlier["uscc"]) & set(scoring_data.score["uscc"])
    assert int(result.migration.counts.sum()) == len(both)
    assert result.realised["entities"].sum() == len(earlier)
    assert result.realised["defaults"].sum() == earlier[TARGET].sum()
    assert result.realised_as_of == result.migration.from_as_of


def test_migration_counts_and_far_moves_by_hand() -> None:
    day0, day1 = dt.date(2019, 12, 31), dt.date(2020, 12, 31)
    # PDs in grades AAA, AA, BBB, C (indices 0, 1, 3, 8) then AAA, BBB, BBB, AAA
    earlier = pd.DataFrame({"uscc": list("abcd"), "as_of": day0,
                            "pd": [0.001, 0.003, 0.01, 0.3]})  # fmt: skip
    later = pd.DataFrame({"uscc": list("abcde"), "as_of": day1,
                          "pd": [0.001, 0.01, 0.012, 0.0015, 0.5]})  # fmt: skip
    moved = migration(earlier, later, POLICY)
    names = list(POLICY.grade_names)
    assert moved.counts.sum() == 4  # "e" is new: not in the matrix
    assert moved.counts[names.index("AAA"), names.index("AAA")] == 1
    assert moved.counts[names.index("AA"), names.index("BBB")] == 1
    assert moved.counts[names.index("C"), names.index("AAA")] == 1
    assert moved.far_share == pytest.approx(2 / 4)  # AA→BBB and C→AAA move by two or more
    assert moved.shares[names.index("AA")].sum() == pytest.approx(1)
    with pytest.raises(ScoringError, match="columns"):
        migration(earlier.drop(columns="pd"), later, POLICY)


def test_realised_rate_far_from_the_pd_alerts_and_a_close_one_does_not() -> None:
    def grade_bbb(defaults: int) -> str:
        frame = pd.DataFrame(
            {"pd": np.full(1_000, 0.01), TARGET: [1] * defaults + [0] * (1_000 - defaults)}
        )
        table = realised_by_grade(frame, POLICY)
        assert table["grade"].tolist() == ["BBB"]
        return str(table["level"].iloc[0])

    assert grade_bbb(10) == "ok"  # 1.0 % realised at a 1 % PD
    assert grade_bbb(40) == "alert"  # 4.0 %: p ≈ 1e-10
    few = realised_by_grade(pd.DataFrame({"pd": [0.01] * 5, TARGET: [1] * 5}), POLICY)
    assert few["level"].tolist() == ["ok"]
    assert np.isnan(few["p_value"].iloc[0])


def test_thresholds_order_and_levels() -> None:
    psi = Threshold(warning=0.1, alert=0.25)
    assert [psi.level(v) for v in (0.05, 0.1, 0.2, 0.25, 3.0)] == [
        "ok", "warning", "warning", "alert", "alert"]  # fmt: skip
    p_value = Threshold(warning=0.05, alert=0.01, bad_when="below")
    assert [p_value.level(v) for v in (0.5, 0.05, 0.02, 0.001)] == [
        "ok", "warning", "warning", "alert"]  # fmt: skip
    with pytest.raises(ValueError, match="beyond warning"):
        Threshold(warning=0.25, alert=0.1)
