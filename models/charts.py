"""Charts of a training run, as PNG bytes (logged to MLflow, shown in reports).

ROC curve, the Kolmogorov–Smirnov separation, the calibration (reliability) plot and a SHAP
summary (mean absolute contribution per feature, from LightGBM's exact TreeSHAP).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: charts are files
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

Array = np.ndarray[Any, Any]


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def roc_chart(y: Array, scores: Mapping[str, Array]) -> bytes:
    """ROC curves of several models on the same labels."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, pd_ in scores.items():
        fpr, tpr, _ = roc_curve(y, pd_)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (out of time)")
    ax.legend(loc="lower right")
    return _png(fig)


def ks_chart(y: Array, pd_: Array, name: str) -> bytes:
    """Cumulative share of bads and goods by PD: the KS statistic is the widest gap."""
    order = np.argsort(-pd_)
    bad = np.cumsum(y[order]) / max(y.sum(), 1)
    good = np.cumsum(1 - y[order]) / max((1 - y).sum(), 1)
    share = np.arange(1, len(y) + 1) / len(y)
    gap = np.abs(bad - good)
    at = int(np.argmax(gap))
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(share, bad, label="bads")
    ax.plot(share, good, label="goods")
    ax.vlines(share[at], good[at], bad[at], color="red", label=f"KS = {gap[at]:.3f}")
    ax.set(xlabel="share of entities, riskiest first", ylabel="cumulative share",
           title=f"KS — {name}")  # fmt: skip
    ax.legend()
    return _png(fig)


def calibration_chart(y: Array, scores: Mapping[str, Array], n_bins: int = 10) -> bytes:
    """Mean PD against the observed default rate in quantile bins of PD."""
    fig, ax = plt.subplots(figsize=(5, 5))
    top = 0.0
    for name, pd_ in scores.items():
        bins = pd.qcut(pd_, q=n_bins, duplicates="drop")
        table = pd.DataFrame({"pd": pd_, "y": y, "bin": bins}).groupby("bin", observed=True)
        mean_pd, rate = table["pd"].mean(), table["y"].mean()
        top = max(top, float(mean_pd.max()), float(rate.max()))
        ax.plot(mean_pd, rate, marker="o", label=name)
    ax.plot([0, top], [0, top], color="grey", linestyle=":")
    ax.set(xlabel="mean predicted PD", ylabel="observed default rate",
           title="calibration (out of time)")  # fmt: skip
    ax.legend()
    return _png(fig)


def shap_summary_chart(contributions: pd.DataFrame, top: int = 20) -> bytes:
    """Mean |TreeSHAP contribution| (log-odds) of the ``top`` most important features."""
    mean_abs = contributions.drop(columns=["base_value"], errors="ignore").abs().mean()
    mean_abs = mean_abs.sort_values().tail(top)
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(mean_abs) + 1))
    ax.barh(mean_abs.index, mean_abs.to_numpy())
    ax.set(xlabel="mean |contribution| (log-odds)", title="SHAP summary — champion")
    return _png(fig)
