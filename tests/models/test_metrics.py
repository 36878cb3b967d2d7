"""Metrics against values computed by hand on tiny samples, and input validation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.errors import ModelError
from models.metrics import (
    brier,
    calibration_error,
    calibration_table,
    evaluate,
    gini,
    ks,
    ks_table,
    roc_auc,
    segment_auc,
)

# bads at 0.35 and 0.8, goods at 0.1 and 0.4
Y = [0, 0, 1, 1]
PD = [0.1, 0.4, 0.35, 0.8]


def test_auc_counts_correctly_ordered_pairs() -> None:
    # pairs (bad, good): (0.35, 0.1) ok, (0.35, 0.4) wrong, (0.8, 0.1) ok, (0.8, 0.4) ok
    assert roc_auc(Y, PD) == pytest.approx(3 / 4)
    assert gini(Y, PD) == pytest.approx(0.5)


def test_auc_counts_ties_as_half() -> None:
    assert roc_auc([0, 1], [0.3, 0.3]) == pytest.approx(0.5)
    assert roc_auc([0, 0, 1], [0.2, 0.5, 0.5]) == pytest.approx(0.75)


def test_ks_is_the_largest_gap_between_bad_and_good_shares() -> None:
    # cut-off 0.8: 1/2 of bads, 0 goods -> 0.5; 0.4: 1/2, 1/2 -> 0; 0.35: 1, 1/2 -> 0.5
    assert ks(Y, PD) == pytest.approx(0.5)
    assert ks([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == pytest.approx(1.0)


def test_brier_is_the_mean_squared_error() -> None:
    # (0.1² + 0.4² + 0.65² + 0.2²) / 4
    assert brier(Y, PD) == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    assert brier([0, 1], [0.0, 1.0]) == 0.0


def test_calibration_error_weights_bins_by_size() -> None:
    # two quantile bins {0.1, 0.2} and {0.3, 0.4}: |0.15 − 0| and |0.35 − 1|, half weight each
    assert calibration_error([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], n_bins=2) == pytest.approx(0.4)
    # one bin: |mean PD − default rate| = |0.25 − 0.5|
    assert calibration_error([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], n_bins=1) == pytest.approx(0.25)
    # perfectly calibrated in every bin
    assert calibration_error([0, 1, 0, 0, 1, 1], [0.5] * 6, n_bins=3) == 0.0


def test_calibration_table_keeps_equal_pds_together() -> None:
    table = calibration_table([0, 1, 0, 1, 1, 0], [0.1, 0.1, 0.1, 0.1, 0.9, 0.2], n_bins=3)
    assert table["n"].sum() == 6
    assert table.loc[0, "n"] == 4  # the four PDs of 0.1 share a bin
    assert list(table.columns) == ["bin", "n", "min_pd", "max_pd", "mean_pd", "default_rate"]
    assert table["mean_pd"].is_monotonic_increasing


def test_ks_table_is_riskiest_first_and_reaches_ks() -> None:
    table = ks_table([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], n_bins=4)
    assert list(table["min_pd"]) == [0.4, 0.3, 0.2, 0.1]
    assert list(table["cum_bad_share"]) == [0.5, 1.0, 1.0, 1.0]
    assert table["ks"].max() == pytest.approx(1.0)
    assert table["cum_good_share"].iloc[-1] == pytest.approx(1.0)


def test_evaluate_reports_every_metric() -> None:
    result = evaluate(Y, PD)
    assert set(result) == {
        "roc_auc", "gini", "ks", "brier", "calibration_error",
        "log_loss", "bad_rate", "mean_pd", "n",
    }  # fmt: skip
    assert result["roc_auc"] == pytest.approx(0.75)
    assert result["bad_rate"] == 0.5
    assert result["mean_pd"] == pytest.approx(0.4125)
    assert result["n"] == 4.0
    expected = -np.mean(np.log([0.9, 0.6, 0.35, 0.8]))
    assert result["log_loss"] == pytest.approx(expected)
    assert all(isinstance(v, float) for v in result.values())


def test_segment_auc_skips_single_class_segments() -> None:
    segments = pd.Series(["a", "a", "b", "b", "c", None])
    result = segment_auc([0, 1, 0, 1, 0, 0], [0.1, 0.9, 0.8, 0.2, 0.5, 0.3], segments)
    assert result == {"a": 1.0, "b": 0.0}


@pytest.mark.parametrize(
    ("y", "pd_", "field", "rule"),
    [
        ([0, 1, 2], [0.1, 0.2, 0.3], "y", "binary"),
        (["good", "bad"], [0.1, 0.2], "y", "binary"),
        ([0, 1], [0.1, 1.2], "pd", "probability"),
        ([0, 1], [0.1, np.nan], "pd", "probability"),
        ([0, 1], [-0.1, 0.5], "pd", "probability"),
        ([0, 1, 1], [0.1, 0.2], "pd", "same_length"),
        ([], [], "pd", "non_empty"),
        ([[0, 1]], [0.1, 0.2], "y", "one_dimensional"),
        ([0, 0], [0.1, 0.2], "y", "both_classes"),
    ],
)
def test_invalid_input_names_the_field(y: Any, pd_: Any, field: str, rule: str) -> None:
    with pytest.raises(ModelError) as caught:
        evaluate(y, pd_)
    assert (caught.value.field, caught.value.rule) == (field, rule)
    assert isinstance(caught.value, ValueError)


def test_segments_must_match_the_outcomes() -> None:
    with pytest.raises(ModelError) as caught:
        segment_auc(Y, PD, pd.Series(["a", "b"]))
    assert caught.value.field == "segments"


def test_n_bins_is_checked() -> None:
    with pytest.raises(ModelError) as caught:
        calibration_error(Y, PD, n_bins=0)
    assert caught.value.field == "n_bins"
