"""Population stability index and the training-population baseline."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.errors import ModelError
from models.stability import FLOOR, Profile, StabilityBaseline, psi


def test_psi_equals_the_hand_computed_value() -> None:
    # Σ (a − e)·ln(a/e) for e = 25 % each, a = 10/20/30/40 %:
    # −0.15·ln 0.4 − 0.05·ln 0.8 + 0.05·ln 1.2 + 0.15·ln 1.6 = 0.228217
    assert psi([25, 25, 25, 25], [10, 20, 30, 40]) == pytest.approx(0.228217, abs=1e-6)
    # the textbook two-bin case: 50/50 → 60/40
    assert psi([0.5, 0.5], [0.6, 0.4]) == pytest.approx(0.1 * math.log(1.2) + 0.1 * math.log(1.25))


def test_an_empty_bin_counts_as_rare_not_as_infinite() -> None:
    expected = 0.5 * math.log(1 / 0.5) + (FLOOR - 0.5) * math.log(FLOOR / 0.5)
    assert psi([1, 1], [4, 0]) == pytest.approx(expected)


@given(
    st.lists(st.integers(1, 1_000), min_size=2, max_size=12).flatmap(
        lambda e: st.tuples(
            st.just(e), st.lists(st.integers(1, 1_000), min_size=len(e), max_size=len(e))
        )
    )
)
def test_psi_is_a_symmetric_non_negative_divergence(bins: tuple[list[int], list[int]]) -> None:
    e, a = bins
    assert psi(e, a) >= 0
    assert psi(e, a) == pytest.approx(psi(a, e))
    assert psi(e, e) == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize(
    ("expected", "actual", "rule"),
    [
        ([1, 2], [1, 2, 3], "shape"),
        ([0, 0], [1, 1], "non_negative"),
        ([-1, 2], [1, 1], "non_negative"),
    ],
)
def test_psi_refuses_bins_that_do_not_match(
    expected: list[int], actual: list[int], rule: str
) -> None:
    with pytest.raises(ModelError) as caught:
        psi(expected, actual)
    assert caught.value.rule == rule


def test_numeric_profile_bins_by_reference_deciles_with_a_missing_bin() -> None:
    reference = pd.Series([*range(100), None, None], dtype="float64")
    profile = Profile.fit("x", reference)
    assert len(profile.labels) == 11  # ten deciles and the missing bin
    assert profile.reference[-1] == pytest.approx(2 / 102)
    assert sum(profile.reference) == pytest.approx(1)
    assert profile.stability(reference) == pytest.approx(0, abs=1e-12)
    # the same values, now a third of them missing: the missing bin carries the shift
    shifted = pd.Series([*range(0, 100, 2), *([None] * 25)], dtype="float64")
    assert profile.stability(shifted) > 0.25


def test_categorical_profile_keeps_unseen_and_missing_apart() -> None:
    profile = Profile.fit("district", pd.Series(["鹿城区", "瓯海区", "鹿城区", None]))
    assert profile.labels == ("瓯海区", "鹿城区", "(other)", "(missing)")
    counts = profile.counts(pd.Series(["鹿城区", "龙港市", None, None]))
    assert counts.tolist() == [0, 1, 1, 2]


def test_few_distinct_values_give_fewer_bins() -> None:
    profile = Profile.fit("flag", pd.Series([0.0] * 80 + [1.0] * 20))
    assert profile.labels == ("≤ 0", "> 0", "(missing)")
    assert profile.reference == pytest.approx((0.8, 0.2, 0.0))


def test_baseline_round_trips_through_json_and_checks_its_input() -> None:
    rng = np.random.default_rng(0)
    matrix = pd.DataFrame({"a": rng.normal(size=500), "b": rng.choice(["x", "y"], 500)})
    pd_ = rng.uniform(0.001, 0.2, 500)
    base = StabilityBaseline.fit(matrix, pd_, as_of=[dt.date(2018, 6, 30), dt.date(2017, 12, 31)])
    assert base.as_of == (dt.date(2017, 12, 31), dt.date(2018, 6, 30))
    again = StabilityBaseline.from_dict(json.loads(json.dumps(base.to_dict())))
    assert again == base
    assert again.feature_stability(matrix) == pytest.approx({"a": 0.0, "b": 0.0}, abs=1e-12)
    with pytest.raises(ModelError, match="missing"):
        base.feature_stability(matrix[["a"]])
    with pytest.raises(ModelError) as caught:
        StabilityBaseline.from_dict({"as_of": ["2018-06-30"], "rows": 1})
    assert (caught.value.field, caught.value.rule) == ("baseline", "format")
    broken = base.to_dict()
    broken["features"][0]["reference"] = [1.0]
    with pytest.raises(ModelError, match="shares do not match bins"):
        StabilityBaseline.from_dict(broken)
