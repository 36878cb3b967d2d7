"""`score_one` (one entity, no DataFrames) gives what `score_frame` gives, row by row."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from models.calibration import CalibratedModel
from scoring.batch import score_frame
from scoring.policy import load_policy
from scoring.single import fast_path, score_one
from tests.fixtures.scoring import ScoringData


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return (a is None and b is None) or (isinstance(b, float) and math.isnan(b))
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-15) or (
            math.isnan(float(a)) and math.isnan(float(b))
        )
    if b is pd.NA or (isinstance(b, float) and math.isnan(b)):
        return a is None
    if isinstance(b, tuple | list):
        return tuple(a) == tuple(b)  # type: ignore[arg-type]
    return bool(a == b)


@pytest.mark.parametrize("model_name", ["champion", "challenger"])
def test_score_one_equals_score_frame(
    scoring_data: ScoringData, model_name: str, request: pytest.FixtureRequest
) -> None:
    model: CalibratedModel = request.getfixturevalue(model_name)
    policy = load_policy()
    frame = scoring_data.score.iloc[:400]
    reasons = model_name == "champion"  # the scorecard explains itself by points, elsewhere
    batch = score_frame(frame, model, policy, reasons=reasons)
    rows = frame.to_dict("records")
    assert (fast_path(model) is not None) == (model_name == "champion")
    guarded = 0
    for i, row in enumerate(rows):
        one = score_one(row, model, policy, reasons=reasons)
        expected = batch.iloc[i].to_dict()
        assert set(one) == set(expected)
        different = {k: (one[k], expected[k]) for k in expected if not _same(one[k], expected[k])}
        assert different == {}, f"row {i}: {different}"
        guarded += bool(one["registered_loan_guard"])
    if model_name == "champion":
        assert guarded == int(batch["registered_loan_guard"].sum())
