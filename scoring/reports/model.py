"""The model validation report (模型验证报告): what a bank's validator or a regulator asks for.

`model_report` gathers the numbers of every section from the registry and the warehouse;
`render_model` lays them out as one HTML page (`scoring.reports.render`). The champion and
challenger are the registry's aliased versions; the champion run's ``plan.json`` names the
out-of-time test date, and the test snapshot is rebuilt from the warehouse
(`models.datasets.snapshots`), so every figure can be checked against the data:

======================  ===================================================================
section                 numbers and where they come from
======================  ===================================================================
data                    rows per split of the plan (the run's ``rows.json``); rows and bad
                        rate of the rebuilt test snapshot, per test date
features                features by source and the feature metadata table (the run's
                        ``feature_metadata.json``), with the challenger's information value
performance             `models.metrics.evaluate` of both models on the rebuilt test set,
                        next to the values logged at training; oracle AUC from the truth
calibration             decile table (`models.metrics.calibration_table`), the calibrator
stability               the ``monitoring`` dict (`scoring.monitoring`), when given
segments                AUC within each value of `models.datasets.SEGMENTS`, both models
fairness                `scoring.fairness.fairness` on the test set scored by
                        `scoring.batch.score_frame` (champion, policy)
grades                  entities, mean PD and realised default rate per grade
scorecard               the challenger's ``points_table()``
reasons                 frequency of each reason code among the top reasons of a sample
======================  ===================================================================

Served PDs (grades, fairness, reasons) go through `scoring.batch.score_frame`, which applies
the registered-loan guard; performance and calibration judge the models as trained
(``predict_proba``), as the training run did.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import numpy as np
import pandas as pd
from markupsafe import Markup

from features.view import feature_specs
from models.charts import calibration_chart, ks_chart, roc_chart
from models.datasets import SEGMENTS, TARGET, Design, snapshots
from models.evaluation import load_truth, oracle_auc
from models.metrics import calibration_table, evaluate, segment_auc
from models.registry import ModelRegistry
from scoring.batch import score_frame
from scoring.errors import ScoringError
from scoring.fairness import AttributeFairness, FairnessResult, fairness, warehouse_groups
from scoring.policy import ScoringPolicy, load_policy
from scoring.reasons import default_reason_codes
from scoring.reports.render import chart, figure, png, render

logger = logging.getLogger(__name__)

MODELS = ("champion", "challenger")
#: sections in report order: key, English heading, Chinese heading
SECTIONS = (
    ("data", "Data", "数据"),
    ("features", "Features", "特征"),
    ("performance", "Performance out of time", "样本外表现"),
    ("calibration", "Calibration", "校准"),
    ("stability", "Stability", "稳定性"),
    ("segments", "Segments", "细分群体"),
    ("fairness", "Fairness", "公平性"),
    ("grades", "Grades", "信用等级"),
    ("scorecard", "Scorecard", "评分卡"),
    ("reasons", "Top reasons", "主要原因"),
)
#: entities whose reasons are computed (TreeSHAP of a sample of the test set)
REASON_SAMPLE = 2_000
#: a recomputed metric differing from the logged one by more than this is flagged (the
#: warehouse changed since training)
LOGGED_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ModelReport:
    """The numbers of every section, and the charts (``<img>`` markup) by name."""

    meta: dict[str, Any]
    data: dict[str, Any]
    features: dict[str, Any]
    performance: dict[str, Any]
    calibration: dict[str, Any]
    stability: dict[str, Any] | None
    segments: list[dict[str, Any]]
    fairness: FairnessResult
    grades: list[dict[str, Any]]
    scorecard: list[dict[str, Any]]
    reasons: dict[str, Any]
    charts: dict[str, Markup] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Every number of the report (no charts), JSON-ready."""
        out = {
            "meta": self.meta,
            "data": self.data,
            "features": self.features,
            "performance": self.performance,
            "calibration": self.calibration,
            "stability": self.stability,
            "segments": self.segments,
            "fairness": self.fairness.to_dict(),
            "grades": self.grades,
            "scorecard": self.scorecard,
            "reasons": self.reasons,
        }
        result: dict[str, Any] = json.loads(json.dumps(out, default=_json, allow_nan=True))
        return result


def _json(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values, NaN as None."""
    clean = frame.astype(object).where(frame.notna(), None)
    return [{k: _json(v) if isinstance(v, np.generic) else v for k, v in row.items()}
            for row in clean.to_dict("records")]  # fmt: skip


def _artifact(registry: ModelRegistry, run_id: str, name: str) -> Any:
    return json.loads(registry.read_artifact(run_id, name).decode("utf-8"))


def model_report(
    tables: Mapping[str, ir.Table],
    registry: ModelRegistry,
    *,
    truth: Path | None = None,
    monitoring: dict[str, Any] | None = None,
    policy: ScoringPolicy | None = None,
    sample: int = REASON_SAMPLE,
) -> ModelReport:
    """Gather the validation report of the registry's champion and challenger.

    Parameters
    ----------
    tables
        The warehouse tables (``features.view.engine.duckdb_tables``).
    registry
        The model registry; its ``champion`` and ``challenger`` aliases are reported.
    truth
        The generator's truth folder (synthetic data only): the oracle AUC, and the true PD
        for the fairness check instead of the realised default.
    monitoring
        ``scoring.monitoring.MonitoringResult.to_dict()``; without it the stability section
        says it was not computed.
    policy
        The scoring policy (default: the packaged one).
    sample
        Entities of the test set whose reasons are counted.

    Raises
    ------
    ScoringError
        The registry lacks the champion or the challenger alias, or ``sample`` < 1.
    """
    if sample < 1:
        raise ScoringError("sample", "positive", f"at least one entity, got {sample}")
    policy = policy or load_policy()
    aliases = registry.aliases()
    missing = [name for name in MODELS if name not in aliases]
    if missing:
        raise ScoringError("registry", "aliases", f"no version has alias {missing}")
    by_version = {v.version: v for v in registry.versions()}
    versions = {name: by_version[aliases[name]] for name in MODELS}
    run_id = versions["champion"].run_id
    if run_id is None:
        raise ScoringError("registry", "run", "the champion has no training run")
    plan = _artifact(registry, run_id, "plan.json")
    models = {name: registry.load(name) for name in MODELS}
    test_dates = [dt.date.fromisoformat(day) for day in plan["test"]]
    test = snapshots(tables, test_dates)
    x = Design.from_specs().matrix(test)
    y = test[TARGET].to_numpy(dtype=np.int64)
    pds = {name: model.predict_proba(x)[:, 1] for name, model in models.items()}
    truth_table = load_truth(truth) if truth is not None else None
    charts: dict[str, Markup] = {}

    latest = test[test["as_of"] == test["as_of"].max()].reset_index(drop=True)
    scored = score_frame(latest, models["champion"], policy, reasons=False)
    fair = _fairness(tables, latest, scored, truth_table, policy)
    for table in fair.attributes:
        charts[f"fairness_{table.attribute}"] = _fairness_chart(table)
    grades = _grades(scored, latest[TARGET].to_numpy(), policy)
    charts["grades"] = _grades_chart(grades)
    performance = _performance(y, pds, versions, models, test, truth_table, registry, run_id)
    charts["roc"] = png(roc_chart(y, pds))
    for name in MODELS:
        charts[f"ks_{name}"] = png(ks_chart(y, pds[name], name))
    charts["calibration"] = png(calibration_chart(y, pds))
    calibration = {
        name: {
            "method": str(models[name].calibrator.method_),
            "table": _records(calibration_table(y, pds[name])),
        }
        for name in MODELS
    }
    meta = {
        "versions": {name: versions[name].version for name in MODELS},
        "runs": {name: versions[name].run_name for name in MODELS},
        "plan": plan,
        "policy_version": policy.version,
        "true_risk": "generator truth" if truth_table is not None else "realised default",
        "reason_sample": min(sample, len(latest)),
    }
    return ModelReport(
        meta=meta,
        data=_data(registry, run_id, test),
        features=_features(registry, run_id, models["challenger"]),
        performance=performance,
        calibration=calibration,
        stability=monitoring,
        segments=_segments(y, pds, test),
        fairness=fair,
        grades=grades,
        scorecard=_records(models["challenger"].base_model.points_table()),
        reasons=_reasons(latest, models["champion"], policy, sample),
        charts=charts,
    )


def _data(registry: ModelRegistry, run_id: str, test: pd.DataFrame) -> dict[str, Any]:
    rows = _artifact(registry, run_id, "rows.json")
    per_date = test.groupby("as_of")[TARGET].agg(["size", "mean"])
    return {
        "splits": [{"split": split, "rows": int(rows[split])} for split in rows],
        "test": [
            {"as_of": pd.Timestamp(day).date().isoformat(), "rows": int(n), "bad_rate": float(r)}
            for day, (n, r) in per_date.iterrows()
        ],
        "test_rows": len(test),
        "test_bad_rate": float(test[TARGET].mean()),
        "test_rows_logged": int(rows.get("test", -1)),
        "test_rows_match": int(rows.get("test", -1)) == len(test),
    }


def _features(registry: ModelRegistry, run_id: str, challenger: Any) -> dict[str, Any]:
    metadata = pd.DataFrame(_artifact(registry, run_id, "feature_metadata.json"))
    iv = challenger.base_model.iv_table().set_index("variable")
    metadata["iv"] = metadata["name"].map(iv["iv"])
    metadata["in_scorecard"] = metadata["name"].map(iv["selected"]).fillna(False).astype(bool)
    counts = metadata.groupby("source", sort=False)["name"].size()
    columns = ["name", "source", "zh", "en", "unit", "direction", "kind", "iv", "in_scorecard"]
    return {
        "count": len(metadata),
        "by_source": [{"source": str(s), "features": int(n)} for s, n in counts.items()],
        "table": _records(metadata[[c for c in columns if c in metadata.columns]]),
    }


def _performance(
    y: np.ndarray[Any, Any],
    pds: dict[str, np.ndarray[Any, Any]],
    versions: Mapping[str, Any],
    models: Mapping[str, Any],
    test: pd.DataFrame,
    truth: pd.DataFrame | None,
    registry: ModelRegistry,
    run_id: str,
) -> dict[str, Any]:
    out: dict[str, Any] = {"models": {}, "rows": len(y)}
    for name in MODELS:
        metrics = evaluate(y, pds[name])
        logged = versions[name].metrics.get("oot.roc_auc")
        out["models"][name] = metrics | {
            "version": versions[name].version,
            "calibration": str(models[name].calibrator.method_),
            "logged_roc_auc": logged,
            "logged_match": logged is not None
            and abs(logged - metrics["roc_auc"]) <= LOGGED_TOLERANCE,
        }
    if truth is not None:
        out["oracle_auc"] = oracle_auc(truth, test)
    elif "oracle.json" in registry.run(run_id).artifacts:
        out["oracle_auc"] = float(_artifact(registry, run_id, "oracle.json")["oracle_auc"])
    else:
        out["oracle_auc"] = None
    return out


def _segments(
    y: np.ndarray[Any, Any], pds: dict[str, np.ndarray[Any, Any]], test: pd.DataFrame
) -> list[dict[str, Any]]:
    rows = []
    for segment in SEGMENTS:
        values = test[segment].astype("string").fillna("missing")
        aucs = {name: segment_auc(y, pds[name], values) for name in MODELS}
        for value in sorted(values.unique()):
            mask = (values == value).to_numpy()
            rows.append({
                "segment": segment, "value": str(value), "entities": int(mask.sum()),
                "bad_rate": float(y[mask].mean()),
                **{f"{name}_auc": aucs[name].get(str(value)) for name in MODELS},
            })  # fmt: skip
    return rows


def _fairness(
    tables: Mapping[str, ir.Table],
    latest: pd.DataFrame,
    scored: pd.DataFrame,
    truth: pd.DataFrame | None,
    policy: ScoringPolicy,
) -> FairnessResult:
    if truth is None:
        risk = pd.Series(latest[TARGET].to_numpy(dtype=np.float64), index=latest["uscc"])
        return fairness(scored, warehouse_groups(tables), risk, policy, kind="label")
    month = pd.Timestamp(latest["as_of"].iloc[0]).strftime("%Y-%m")
    at = truth[truth["month"] == month].drop_duplicates("uscc")
    risk = pd.Series(at["default_probability"].to_numpy(), index=at["uscc"].astype("string"))
    return fairness(scored, warehouse_groups(tables), risk, policy, kind="probability")


def _grades(
    scored: pd.DataFrame, y: np.ndarray[Any, Any], policy: ScoringPolicy
) -> list[dict[str, Any]]:
    grade = scored["grade"].astype("string").to_numpy()
    pd_ = scored["pd"].to_numpy(dtype=np.float64)
    rows, lower = [], 0.0
    for band in policy.grades:
        mask = grade == band.grade
        n = int(mask.sum())
        rows.append({
            "grade": band.grade, "zh": band.zh, "pd_min": lower, "pd_max": band.pd_max,
            "entities": n, "share": n / len(grade),
            "mean_pd": float(pd_[mask].mean()) if n else None,
            "realised_rate": float(y[mask].mean()) if n else None,
            "defaults": int(y[mask].sum()),
        })  # fmt: skip
        lower = band.pd_max
    return rows


def _reasons(
    latest: pd.DataFrame, champion: Any, policy: ScoringPolicy, sample: int
) -> dict[str, Any]:
    rows = np.random.default_rng(0).choice(len(latest), size=min(sample, len(latest)),
                                           replace=False)  # fmt: skip
    scored = score_frame(latest.iloc[np.sort(rows)].reset_index(drop=True), champion, policy)
    columns = [f"reason_{k}_code" for k in range(1, policy.reasons.top + 1)]
    codes = scored[columns]
    table = default_reason_codes()
    feature_of = {entry.code: entry.feature for entry in table.codes}
    specs = {spec.name: spec for spec in feature_specs()}
    anywhere = pd.Series(codes.to_numpy().ravel()).dropna().value_counts()
    first = codes[columns[0]].dropna().value_counts()
    out = []
    for code, n in anywhere.items():
        spec = specs.get(feature_of.get(str(code), ""))
        out.append({
            "code": str(code), "feature": feature_of.get(str(code)),
            "zh": spec.zh if spec else None, "en": spec.en if spec else None,
            "entities": int(n), "share": int(n) / len(scored),
            "first": int(first.get(code, 0)),
        })  # fmt: skip
    return {
        "sample": len(scored),
        "top": policy.reasons.top,
        "without_reason": int(codes[columns[0]].isna().sum()),
        "codes_version": table.version,
        "table": out,
    }


# ---------------------------------------------------------------------------------- charts
def _fairness_chart(table: AttributeFairness) -> Markup:
    """Approval rate against the justified approval rate, group by group, of one attribute."""
    fig, ax = figure(width=5.2, height=0.34 * len(table.groups) + 1.0)
    names = [g.group for g in table.groups]
    at = np.arange(len(names))
    ax.barh(at - 0.2, [g.approval_rate for g in table.groups], height=0.4,
            label="approval 通过率", color="#1f5fa6")  # fmt: skip
    ax.barh(at + 0.2, [g.justified_approval_rate for g in table.groups], height=0.4,
            label="justified 应得通过率", color="#9bb7d9")  # fmt: skip
    for i, group in enumerate(table.groups):
        if group.flagged:
            ax.text(group.approval_rate, i - 0.2, " !", color="#a31515", va="center",
                    fontweight="bold")  # fmt: skip
    ax.set_yticks(at, names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_title(table.attribute, fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return chart(fig)


def _grades_chart(grades: list[dict[str, Any]]) -> Markup:
    """Entities per grade (bars) and mean PD against the realised rate (lines)."""
    fig, ax = figure(width=7.0, height=3.2)
    names = [g["grade"] for g in grades]
    ax.bar(names, [g["entities"] for g in grades], color="#c9d6e5")
    ax.set_ylabel("entities 主体数")
    right = ax.twinx()
    right.plot(names, [g["mean_pd"] for g in grades], marker="o", label="mean PD 平均PD")
    right.plot(names, [g["realised_rate"] for g in grades], marker="s",
               label="realised 实际违约率")  # fmt: skip
    right.set_ylabel("rate")
    right.legend(fontsize=7, loc="upper left")
    return chart(fig)


# --------------------------------------------------------------------------------- render
def render_model(report: ModelReport) -> str:
    """The report as one self-contained HTML page (``templates/model.html.j2``)."""
    return render(
        "model.html.j2",
        report=report,
        sections=SECTIONS,
        fairness=report.fairness,
        charts=report.charts,
        models=MODELS,
    )


__all__ = ["MODELS", "SECTIONS", "ModelReport", "model_report", "render_model"]
