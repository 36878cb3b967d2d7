"""How good is a PD model? Discrimination and calibration on an out-of-time test set.

Credit risk judges a model on two separate questions:

- **discrimination** — does it rank bads above goods? ROC AUC, the Gini coefficient
  (``2·AUC − 1``, the accuracy ratio of the CAP curve) and the Kolmogorov–Smirnov statistic
  (KS: the largest gap between the cumulative shares of bads and goods below a cut-off);
- **calibration** — does a PD of 3 % mean that 3 in 100 such entities default? The Brier
  score (mean squared error of the PD), the log-loss and the expected calibration error
  over quantile bins of the PD.

Every function takes ``y`` (1 = default, 0 = good) and ``pd`` (the predicted probability of
default) and refuses inconsistent input with a `models.errors.ModelError` naming the field.
The name ``pd`` is the domain's; pandas is imported here under its full name.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas
from sklearn.metrics import log_loss, roc_auc_score, roc_curve

from models.errors import ModelError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def check_probabilities(pd: Any, field: str = "pd") -> FloatArray:
    """PDs as a non-empty 1-D float array of finite values in [0, 1].

    Raises
    ------
    ModelError
        Naming ``field``: not 1-D, empty, not numbers, or outside [0, 1].
    """
    values = np.asarray(pd)
    if values.ndim != 1:
        raise ModelError(field, "one_dimensional", f"expected a 1-D array, got {values.shape}")
    if values.size == 0:
        raise ModelError(field, "non_empty", "no values")
    try:
        probs = values.astype(np.float64)
    except (TypeError, ValueError) as error:
        raise ModelError(field, "probability", "PDs must be numbers") from error
    if not (np.isfinite(probs).all() and (probs >= 0).all() and (probs <= 1).all()):
        raise ModelError(field, "probability", "PDs must be finite and lie in [0, 1]")
    return probs


def check_outcomes(
    y: Any, pd: Any, *, y_field: str = "y", pd_field: str = "pd"
) -> tuple[IntArray, FloatArray]:
    """Outcomes as 0/1 ints and PDs as floats in [0, 1], of the same non-zero length.

    Raises
    ------
    ModelError
        Naming ``y_field`` or ``pd_field``: not 1-D, empty, labels outside {0, 1}, PDs
        outside [0, 1] or not finite, or different lengths.
    """
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise ModelError(y_field, "one_dimensional", f"expected a 1-D array, got {labels.shape}")
    probs = check_probabilities(pd, pd_field)
    if len(labels) != len(probs):
        raise ModelError(
            pd_field, "same_length", f"{len(probs)} PDs for {len(labels)} outcomes in {y_field}"
        )
    try:
        numeric = labels.astype(np.float64)
    except (TypeError, ValueError) as error:
        raise ModelError(y_field, "binary", "outcomes must be 0 (good) or 1 (default)") from error
    if not np.isin(numeric, (0.0, 1.0)).all():
        raise ModelError(y_field, "binary", "outcomes must be 0 (good) or 1 (default)")
    return numeric.astype(np.int64), probs


def _both_classes(y: IntArray, field: str = "y") -> None:
    if y.min() == y.max():
        raise ModelError(field, "both_classes", "needs both defaults and goods to rank them")


def roc_auc(y: Any, pd: Any) -> float:
    """Probability that a random bad gets a higher PD than a random good (ties count half).

    Examples
    --------
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    labels, probs = check_outcomes(y, pd)
    _both_classes(labels)
    return float(roc_auc_score(labels, probs))


def gini(y: Any, pd: Any) -> float:
    """Gini coefficient (accuracy ratio): ``2 · AUC − 1``, 0 for random, 1 for perfect."""
    return 2.0 * roc_auc(y, pd) - 1.0


def ks(y: Any, pd: Any) -> float:
    """Kolmogorov–Smirnov statistic: the largest |TPR − FPR| over all PD cut-offs.

    TPR is the share of bads at or above the cut-off, FPR the share of goods.

    Examples
    --------
    >>> ks([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.5
    """
    labels, probs = check_outcomes(y, pd)
    _both_classes(labels)
    fpr, tpr, _ = roc_curve(labels, probs, drop_intermediate=False)
    return float(np.max(np.abs(tpr - fpr)))


def brier(y: Any, pd: Any) -> float:
    """Brier score: mean of ``(pd − y)²``; lower is better, 0.25 for a constant PD of 1/2.

    Examples
    --------
    >>> round(brier([0, 1], [0.2, 0.6]), 10)  # (0.04 + 0.16) / 2
    0.1
    """
    labels, probs = check_outcomes(y, pd)
    return float(np.mean((probs - labels) ** 2))


def _quantile_bins(probs: FloatArray, n_bins: int) -> IntArray:
    """Bin index of every PD: bins cut at the PD quantiles; equal PDs share a bin."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ModelError("n_bins", "integer", f"must be an integer >= 1; got {n_bins!r}")
    edges = np.unique(np.quantile(probs, np.linspace(0.0, 1.0, n_bins + 1)))
    return np.searchsorted(edges[1:-1], probs, side="left").astype(np.int64)


def calibration_table(y: Any, pd: Any, n_bins: int = 10) -> pandas.DataFrame:
    """Mean PD against the observed default rate in quantile bins of the PD.

    Bins are cut at the quantiles of the PD, so each holds about ``len(pd) / n_bins``
    entities; entities with equal PDs always share a bin, so there may be fewer bins.

    Returns
    -------
    pandas.DataFrame
        One row per bin, lowest PDs first: ``bin, n, min_pd, max_pd, mean_pd,
        default_rate``.
    """
    labels, probs = check_outcomes(y, pd)
    frame = pandas.DataFrame({"bin": _quantile_bins(probs, n_bins), "pd": probs, "y": labels})
    table = frame.groupby("bin").agg(
        n=("y", "size"),
        min_pd=("pd", "min"),
        max_pd=("pd", "max"),
        mean_pd=("pd", "mean"),
        default_rate=("y", "mean"),
    )
    return table.reset_index()


def calibration_error(y: Any, pd: Any, n_bins: int = 10) -> float:
    """Expected calibration error: bin-size-weighted mean of |mean PD − default rate|.

    Computed over the quantile bins of `calibration_table`.

    Examples
    --------
    >>> round(calibration_error([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], n_bins=2), 10)
    0.4
    """
    table = calibration_table(y, pd, n_bins)
    gap = (table["mean_pd"] - table["default_rate"]).abs()
    return float(np.average(gap, weights=table["n"]))


def ks_table(y: Any, pd: Any, n_bins: int = 10) -> pandas.DataFrame:
    """Gains table: quantile bins of the PD, riskiest first, with cumulative shares.

    Returns
    -------
    pandas.DataFrame
        ``bin, n, bads, goods, min_pd, max_pd, bad_rate, cum_bad_share, cum_good_share,
        ks`` where ``ks = cum_bad_share − cum_good_share``; its maximum approaches `ks` as
        the bins get finer.
    """
    labels, probs = check_outcomes(y, pd)
    _both_classes(labels)
    frame = pandas.DataFrame({"bin": _quantile_bins(probs, n_bins), "pd": probs, "y": labels})
    table = frame.groupby("bin").agg(
        n=("y", "size"), bads=("y", "sum"), min_pd=("pd", "min"), max_pd=("pd", "max")
    )
    table = table.sort_index(ascending=False).reset_index()
    table["goods"] = table["n"] - table["bads"]
    table["bad_rate"] = table["bads"] / table["n"]
    table["cum_bad_share"] = table["bads"].cumsum() / labels.sum()
    table["cum_good_share"] = table["goods"].cumsum() / (len(labels) - labels.sum())
    table["ks"] = table["cum_bad_share"] - table["cum_good_share"]
    columns = ["bin", "n", "bads", "goods", "min_pd", "max_pd", "bad_rate"]
    return table[[*columns, "cum_bad_share", "cum_good_share", "ks"]]


def evaluate(y: Any, pd: Any, n_bins: int = 10) -> dict[str, float]:
    """Every headline metric of a PD model on one sample.

    Returns
    -------
    dict
        ``roc_auc, gini, ks, brier, calibration_error, log_loss, bad_rate, mean_pd, n``
        (``n`` as a float, so that the dict is one type and logs as MLflow metrics).

    Examples
    --------
    >>> result = evaluate([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> result["roc_auc"], result["gini"], result["ks"], result["n"]
    (0.75, 0.5, 0.5, 4.0)
    """
    labels, probs = check_outcomes(y, pd)
    auc = roc_auc(labels, probs)
    return {
        "roc_auc": auc,
        "gini": 2.0 * auc - 1.0,
        "ks": ks(labels, probs),
        "brier": brier(labels, probs),
        "calibration_error": calibration_error(labels, probs, n_bins),
        "log_loss": float(log_loss(labels, probs, labels=[0, 1])),
        "bad_rate": float(labels.mean()),
        "mean_pd": float(probs.mean()),
        "n": float(len(labels)),
    }


def segment_auc(y: Any, pd: Any, segments: pandas.Series) -> dict[str, float]:
    """ROC AUC within each segment (region, industry, size class …).

    Segments holding only goods or only bads have no AUC and are left out, not errors;
    missing segment values form a segment called ``"missing"``.

    Examples
    --------
    >>> import pandas
    >>> segment_auc([0, 1, 0, 1, 0], [0.1, 0.9, 0.8, 0.2, 0.5],
    ...             pandas.Series(["a", "a", "b", "b", "c"]))
    {'a': 1.0, 'b': 0.0}
    """
    labels, probs = check_outcomes(y, pd)
    groups = np.asarray(pandas.Series(segments), dtype=object)
    if groups.ndim != 1 or len(groups) != len(labels):
        raise ModelError("segments", "same_length", f"{len(groups)} segments for {len(labels)} y")
    names = np.array(["missing" if pandas.isna(g) else str(g) for g in groups], dtype=object)
    out: dict[str, float] = {}
    for name in sorted(set(names)):
        mask = names == name
        if labels[mask].min() != labels[mask].max():
            out[str(name)] = float(roc_auc_score(labels[mask], probs[mask]))
    return out
