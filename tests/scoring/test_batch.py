"""Batch scoring of a whole view: one scoring function, equal on DuckDB and on Spark."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.view import feature_specs
from features.view.engine import spark_session
from models.calibration import CalibratedModel
from scoring.batch import SnapshotStore, in_good_standing, score_spark, score_view, summary
from scoring.policy import load_policy
from scoring.scale import grades
from tests.fixtures.scoring import ScoringData

POLICY = load_policy()


@pytest.fixture(scope="module")
def scored(scoring_data: ScoringData, champion: CalibratedModel) -> pa.Table:
    return score_view(scoring_data.score, champion, POLICY, reasons=True, chunk_rows=1_000)


def test_every_entity_is_scored_once_with_its_pd_grade_and_reasons(
    scored: pa.Table, scoring_data: ScoringData, champion: CalibratedModel, score_matrix: Any
) -> None:
    frame = scored.to_pandas()
    assert len(frame) == len(scoring_data.score)
    assert frame["uscc"].tolist() == scoring_data.score["uscc"].tolist()
    expected = champion.predict_proba(score_matrix)[:, 1]
    guarded = frame["registered_loan_guard"].to_numpy()
    np.testing.assert_allclose(frame["pd"][~guarded], expected[~guarded], rtol=0, atol=1e-15)
    assert (frame["pd"][guarded] < expected[guarded]).all()
    expected = frame["pd"].to_numpy()
    assert frame["grade"].astype(str).tolist() == grades(expected, POLICY).tolist()
    assert {"score", "supervision_class", "decision", "limit", "xinyipi",
            "reason_1_code"} <= set(frame.columns)  # fmt: skip
    assert set(frame["decision"].astype(str)) <= {"approve", "refer", "decline"}


def test_chunking_does_not_change_the_result(
    scored: pa.Table, scoring_data: ScoringData, champion: CalibratedModel
) -> None:
    whole = score_view(scoring_data.score, champion, POLICY, reasons=True, chunk_rows=10**9)
    assert whole.to_pandas().equals(scored.to_pandas())


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.sort_values("uscc").reset_index(drop=True)
    for column in out.columns:
        if isinstance(out[column].dtype, pd.CategoricalDtype):
            out[column] = out[column].astype(str)
        elif out[column].map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any():
            out[column] = out[column].map(lambda v: tuple(v) if v is not None else ())
    return out


def test_spark_mapinpandas_gives_the_duckdb_scores(
    scored: pa.Table, scoring_data: ScoringData, champion: CalibratedModel, tmp_path: Path
) -> None:
    source = tmp_path / "view.parquet"
    pq.write_table(pa.Table.from_pandas(scoring_data.score, preserve_index=False), source)
    session = spark_session("wzcredit-test-scoring")
    result = score_spark(session.read.parquet(str(source)), champion, POLICY, reasons=True)
    on_spark = _comparable(result.toPandas())
    local = _comparable(scored.to_pandas())
    assert list(on_spark.columns) == list(local.columns)
    np.testing.assert_allclose(on_spark["pd"], local["pd"], rtol=1e-12, atol=0)
    for column in local.columns:
        if column in ("pd", "as_of") or local[column].dtype.kind == "f":
            continue
        assert on_spark[column].tolist() == local[column].tolist(), column


def test_a_snapshot_records_its_inputs(scored: pa.Table, tmp_path: Path) -> None:
    info = SnapshotStore(tmp_path).write(
        scored, as_of=dt.date(2019, 12, 31), model_version="7", policy_version=POLICY.version,
        reasons=True, engine="duckdb",
    )  # fmt: skip
    read_info, table = SnapshotStore(tmp_path).read()
    assert read_info == info
    assert table.num_rows == scored.num_rows
    counts = summary(table)
    assert sum(counts["grade"].values()) == scored.num_rows
    assert 0 < counts["mean_pd"] < 1


def test_a_registered_loan_in_good_standing_never_raises_the_pd(
    scored: pa.Table, scoring_data: ScoringData, champion: CalibratedModel, score_matrix: Any
) -> None:
    """温州市民间融资管理条例 第十八条: the PD reported is never above the same entity's
    PD without its registered loans, for loans all in good standing."""
    frame = scored.to_pandas()
    holders = in_good_standing(scoring_data.score)
    assert holders.any()
    without = score_matrix.copy()
    for spec in feature_specs():
        if spec.source == "private_lending":
            without[spec.name] = np.nan if spec.fill is None else float(spec.fill)
    with_loan = champion.predict_proba(score_matrix)[:, 1]
    no_loan = champion.predict_proba(without)[:, 1]
    reported = frame["pd"].to_numpy()
    np.testing.assert_array_equal(reported[holders], np.minimum(with_loan, no_loan)[holders])
    np.testing.assert_array_equal(reported[~holders], with_loan[~holders])
    assert (frame["registered_loan_guard"].to_numpy() == holders & (no_loan < with_loan)).all()
