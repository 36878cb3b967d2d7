"""Train the champion (LightGBM) and the challenger (WOE scorecard), calibrate, judge, register.

Main pipeline: labelled snapshots of the three-in-one view, split out of time
(`models.datasets.SnapshotPlan`): fit on the training snapshots, stop early and calibrate on
the validation snapshot, judge on the test snapshot. Both models are wrapped with their
calibrator into one object — the object logged to MLflow is the object served.

Generic pipeline (`train_table`): the same two models on any tabular credit dataset with
repeated stratified 5-fold cross-validation, for analysts checking the method on real data.
The tables are of any size (a thousand rows to hundreds of thousands): the champion is
sized for the data (`table_champion_params`) and cross-fitted, both models are calibrated
on out-of-part scores of every training row, and the scorecard leaves out the features that
carry no significant information.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedKFold

from features.view import feature_specs
from models.calibration import CalibratedModel, Calibrator
from models.champion import LightGBMChampion
from models.charts import calibration_chart, ks_chart, roc_chart, shap_summary_chart
from models.crossfit import CrossFittedChampion
from models.datasets import SEGMENTS, TARGET, Design, SnapshotPlan, snapshots
from models.errors import ModelError
from models.evaluation import load_truth, oracle_auc
from models.metrics import evaluate, segment_auc
from models.registry import CANDIDATE, ModelRegistry
from models.scorecard import WOEScorecard
from models.stability import StabilityBaseline

logger = logging.getLogger(__name__)
Progress = Callable[[str], None]
MODELS = ("champion", "challenger")
#: the artifact holding a model's `StabilityBaseline` (read by `wzcredit monitor`)
BASELINE_ARTIFACT = "monitoring_baseline.json"


def _fit_pair(
    x_fit: pd.DataFrame,
    y_fit: np.ndarray[Any, Any],
    x_val: pd.DataFrame,
    y_val: np.ndarray[Any, Any],
    *,
    monotone: Mapping[str, int],
    categorical: Sequence[str],
    special_codes: Sequence[float] | None = None,
    progress: Progress | None = None,
) -> dict[str, CalibratedModel]:
    """Fit both models on ``fit``, early-stop and calibrate on ``val``."""
    champion = LightGBMChampion(monotone=dict(monotone), categorical=list(categorical))
    champion.fit(x_fit, y_fit, eval_set=(x_val, y_val))
    if progress is not None:
        progress(f"champion fitted: {champion.best_iteration_} trees; fitting the challenger")
    challenger = WOEScorecard(
        monotone=dict(monotone), categorical=list(categorical), special_codes=special_codes
    )
    # the scorecard needs no early stopping: it sees the validation rows too, and its
    # calibrator is fitted on out-of-fold scores of the same kind of scorecard
    challenger.fit(pd.concat([x_fit, x_val]), np.concatenate([y_fit, y_val]))
    held_out = clone(challenger).fit(x_fit, y_fit).predict_proba(x_val)[:, 1]
    out = {
        "champion": CalibratedModel(
            champion, Calibrator().fit(champion.predict_proba(x_val)[:, 1], y_val)
        ),
        "challenger": CalibratedModel(challenger, Calibrator().fit(held_out, y_val)),
    }
    return out


@dataclass
class TrainingResult:
    """Metrics of both models on the out-of-time test snapshot, and what was registered."""

    plan: SnapshotPlan
    rows: dict[str, int]
    metrics: dict[str, dict[str, float]]
    segments: dict[str, dict[str, dict[str, float]]]
    calibration: dict[str, str]
    oracle_auc: float | None = None
    versions: dict[str, int | None] = field(default_factory=dict)
    models: dict[str, CalibratedModel] = field(default_factory=dict, repr=False)
    test_labels: np.ndarray[Any, Any] | None = field(default=None, repr=False)
    test_pd: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict, repr=False)
    test_matrix: pd.DataFrame | None = field(default=None, repr=False)
    #: the entity of each test row (the keys of ``test_pd``)
    test_uscc: np.ndarray[Any, Any] | None = field(default=None, repr=False)
    #: per model: bins and shares of its training population, the reference of monitoring
    baselines: dict[str, StabilityBaseline] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The ``wzcredit train --json`` output."""
        out: dict[str, Any] = {
            name: dict(self.metrics[name]) | {"calibration": self.calibration[name]}
            for name in MODELS
        }
        out["segments"] = self.segments
        out["rows"] = self.rows
        out["plan"] = {k: [d.isoformat() for d in getattr(self.plan, k)]
                       for k in ("train", "validation", "test")}  # fmt: skip
        out["versions"] = self.versions
        if self.oracle_auc is not None:
            out["oracle_auc"] = self.oracle_auc
        return out


def train_main(
    tables: Mapping[str, ir.Table],
    plan: SnapshotPlan,
    *,
    truth: Path | None = None,
    progress: Progress | None = None,
) -> TrainingResult:
    """Fit, calibrate and judge both models on snapshots of the view (nothing registered)."""
    say = progress or (lambda message: None)
    design = Design.from_specs()
    say("building the training snapshots")
    frames = {
        "train": snapshots(tables, plan.train),
        "validation": snapshots(tables, plan.validation),
        "test": snapshots(tables, plan.test),
    }
    x = {k: design.matrix(v) for k, v in frames.items()}
    y = {k: v[TARGET].to_numpy() for k, v in frames.items()}
    say("fitting the champion (LightGBM) and the challenger (scorecard)")
    models = _fit_pair(
        x["train"], y["train"], x["validation"], y["validation"],
        monotone=design.monotone, categorical=design.categorical, progress=say,
    )  # fmt: skip
    test = frames["test"]
    metrics, segments, calibration = {}, {}, {}
    for name, model in models.items():
        pd_test = model.predict_proba(x["test"])[:, 1]
        metrics[name] = evaluate(y["test"], pd_test)
        segments[name] = {
            seg: segment_auc(y["test"], pd_test, test[seg].astype("string")) for seg in SEGMENTS
        }
        calibration[name] = str(model.calibrator.method_)
    oracle = oracle_auc(load_truth(truth), test) if truth is not None else None
    say("profiling the training population (the reference of `wzcredit monitor`)")
    baselines = {
        name: StabilityBaseline.fit(
            x["train"], model.predict_proba(x["train"])[:, 1], as_of=plan.train
        )
        for name, model in models.items()
    }
    return TrainingResult(
        plan=plan,
        rows={k: len(v) for k, v in frames.items()},
        metrics=metrics,
        segments=segments,
        calibration=calibration,
        oracle_auc=oracle,
        models=models,
        test_labels=y["test"],
        test_pd={name: model.predict_proba(x["test"])[:, 1] for name, model in models.items()},
        test_matrix=x["test"],
        test_uscc=test["uscc"].to_numpy(),
        baselines=baselines,
    )


def register(result: TrainingResult, registry: ModelRegistry, *, sample: int = 5_000) -> None:
    """Log both models to MLflow with their metrics, metadata and charts; set the aliases.

    The scorecard becomes ``challenger``. The LightGBM model becomes ``champion`` when there
    is none yet; otherwise it is registered as ``candidate`` and waits for
    ``wzcredit models promote`` (which refuses a lower out-of-time AUC unless forced).
    """
    if result.test_labels is None or result.test_matrix is None:
        raise ModelError("result", "incomplete", "register a result made by train_main")
    y, x = result.test_labels, result.test_matrix
    specs = [spec.to_dict() for spec in feature_specs()]
    common: dict[str, Any] = {
        "feature_metadata.json": specs,
        "plan.json": result.to_dict()["plan"],
        "rows.json": result.rows,
    }
    if result.oracle_auc is not None:
        common["oracle.json"] = {"oracle_auc": result.oracle_auc}
    rng = np.random.default_rng(0)
    rows = rng.choice(len(x), size=min(sample, len(x)), replace=False)
    champion_base = result.models["champion"].base_model
    contributions = champion_base.contributions(x.iloc[rows])
    charts = {
        "roc.png": roc_chart(y, result.test_pd),
        "calibration.png": calibration_chart(y, result.test_pd),
    }
    extra = {
        "champion": {
            "ks.png": ks_chart(y, result.test_pd["champion"], "champion"),
            "shap_summary.png": shap_summary_chart(contributions),
        },
        "challenger": {
            "ks.png": ks_chart(y, result.test_pd["challenger"], "challenger"),
            "scorecard_points.csv": result.models["challenger"].base_model.points_table(),
        },
    }
    for name in MODELS:
        model = result.models[name]
        logged = registry.log_training(
            run_name=f"{name}-{result.plan.test[-1].isoformat()}",
            model=model,
            input_example=x.head(20),
            params={"model": type(model.base_model).__name__, "calibration":
                    result.calibration[name], **model.base_model.get_params()},
            metrics={"oot": result.metrics[name],
                     **({"oracle_auc": result.oracle_auc} if result.oracle_auc else {})},
            artifacts={**common, **charts, **extra[name],
                       "segments.json": result.segments[name],
                       **({BASELINE_ARTIFACT: result.baselines[name].to_dict()}
                          if name in result.baselines else {})},
            tags={"role": name},
        )  # fmt: skip
        result.versions[name] = logged.version
    aliases = registry.aliases()
    if result.versions["challenger"] is not None:
        registry.set_alias(result.versions["challenger"], "challenger")
    if result.versions["champion"] is not None:
        role = "champion" if "champion" not in aliases else CANDIDATE
        registry.set_alias(result.versions["champion"], role)


# --------------------------------------------------------------------------------------------
# Generic training on any tabular credit dataset
# --------------------------------------------------------------------------------------------
def read_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame."""
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path)
    raise ModelError("table", "format", f"{path.name}: only .csv and .parquet are read")


def prepare_table(
    frame: pd.DataFrame, target: str, bad: str
) -> tuple[pd.DataFrame, np.ndarray[Any, Any], list[str]]:
    """Split a table into features, a 0/1 target (1 = ``bad``) and its categorical columns."""
    if target not in frame.columns:
        raise ModelError("target", "missing", f"{target!r} is not a column")
    values = frame[target].astype("string").str.strip()
    if bad not in set(values.dropna()):
        seen = sorted(set(values.dropna()))[:10]
        raise ModelError("bad", "value", f"{bad!r} is not a value of {target!r}; seen {seen}")
    y = (values == bad).astype("int64").to_numpy()
    x = frame.drop(columns=[target])
    categorical = [c for c in x.columns if not pd.api.types.is_numeric_dtype(x[c])]
    for column in x.columns:
        if column in categorical:
            x[column] = x[column].astype("string")
        else:
            x[column] = x[column].astype("float64")
    return x, y, categorical


#: the scorecard of the generic pipeline drops a feature when it is both weak (IV < 0.02,
#: the textbook "useless" line) and not clearly related to default (p > 0.001; the p-value
#: of optimised bins is optimistic, see `WOEScorecard`)
TABLE_SCORECARD = {"selection_iv_min": 0.02, "selection_max_pvalue": 0.001}


def table_champion_params(n_rows: int, bad_rate: float) -> dict[str, Any]:
    """LightGBM parameters sized for a table of ``n_rows`` fitting rows.

    The champion's defaults suit the tens of thousands of entities of the main pipeline.
    On a table of a thousand rows, leaves of at least 50 entities leave room for a dozen
    leaves per tree at most; on one of thirty thousand, trees can have more than 15 leaves
    (on the validation parts of the Taiwan table, 31 leaves give the lower log-loss).
    Here, for ``n_rows`` rows:

    - ``min_child_samples``: a leaf holds at least 2 % of the rows, between 10 and 50;
    - ``num_leaves``: on average at least 500 rows per leaf, between 4 and 31 leaves, and
      ``max_depth`` one level more than a balanced tree of that many leaves needs;
    - ``reg_lambda``: the L2 penalty on a leaf's value weighs as much as the smallest
      allowed leaf (its Hessian, ``min_child_samples · p · (1 − p)`` at the bad rate
      ``p``), so that the values of the smallest leaves are halved and large leaves are
      barely touched.

    Examples
    --------
    >>> table_champion_params(640, 0.3)
    {'min_child_samples': 12, 'num_leaves': 4, 'max_depth': 3, 'reg_lambda': 2.52}
    >>> table_champion_params(19_200, 0.22)["num_leaves"]
    31
    """
    if n_rows < 1:
        raise ModelError("n_rows", "positive", f"sizing needs rows; got {n_rows}")
    if not 0.0 < bad_rate < 1.0:
        raise ModelError("bad_rate", "both_classes", f"needs goods and bads; got {bad_rate}")
    leaf = min(50, max(10, n_rows // 50))
    leaves = min(31, max(4, n_rows // 500))
    return {
        "min_child_samples": leaf,
        "num_leaves": leaves,
        "max_depth": math.ceil(math.log2(leaves)) + 1,
        "reg_lambda": round(leaf * bad_rate * (1.0 - bad_rate), 2),
    }


def _fit_table_pair(
    x: pd.DataFrame,
    y: np.ndarray[Any, Any],
    *,
    categorical: Sequence[str],
    special_codes: Sequence[float] | None = None,
    n_parts: int = 5,
    random_state: int = 0,
) -> dict[str, CalibratedModel]:
    """Both models of the generic pipeline, fitted on ``(x, y)`` and calibrated by cross-fitting.

    The rows are cut into ``n_parts`` stratified parts. The champion is cross-fitted
    (`models.crossfit.CrossFittedChampion`: one booster per part, fitted on the other parts
    and stopped early on it, their log-odds averaged). The scorecard is fitted on all the
    rows, as the readable table it is; a scorecard per part, fitted on the other parts,
    gives the out-of-part scores. Each model's calibrator is fitted on the out-of-part
    scores of every row, so nothing is held out of fitting and calibration rests on all
    the defaults of the table.
    """
    parts = StratifiedKFold(n_parts, shuffle=True, random_state=random_state)
    n_fit = len(y) - len(y) // n_parts
    params = table_champion_params(n_fit, float(np.mean(y)))
    champion = CrossFittedChampion(
        LightGBMChampion(categorical=list(categorical), **params),
        n_parts=n_parts,
        random_state=random_state,
    ).fit(x, y)
    challenger = WOEScorecard(
        categorical=list(categorical), special_codes=special_codes, **TABLE_SCORECARD
    )
    held_out = np.empty(len(y), dtype=np.float64)
    for rest, part in parts.split(x, y):
        card = clone(challenger).fit(x.iloc[rest], y[rest])
        held_out[part] = card.predict_proba(x.iloc[part])[:, 1]
    challenger.fit(x, y)
    return {
        "champion": CalibratedModel(champion, Calibrator().fit(champion.oof_pd_, y)),
        "challenger": CalibratedModel(challenger, Calibrator().fit(held_out, y)),
    }


def train_table(
    frame: pd.DataFrame,
    target: str,
    bad: str,
    *,
    special_codes: Sequence[float] | None = None,
    n_splits: int = 5,
    n_repeats: int = 3,
    random_state: int = 0,
    progress: Progress | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """Repeated stratified k-fold metrics of both models: ``{model: {metric: {mean, std}}}``.

    In each fold, both models are fitted, stopped early and calibrated on the training
    part alone by cross-fitting it (`_fit_table_pair`), and judged on the untouched test
    fold.
    """
    say = progress or (lambda message: None)
    x, y, categorical = prepare_table(frame, target, bad)
    folds = RepeatedStratifiedKFold(
        n_splits=n_splits, n_repeats=n_repeats, random_state=random_state
    )
    scores: dict[str, list[dict[str, float]]] = {name: [] for name in MODELS}
    for i, (train_idx, test_idx) in enumerate(folds.split(x, y), start=1):
        say(f"fold {i} of {n_splits * n_repeats}")
        models = _fit_table_pair(
            x.iloc[train_idx], y[train_idx], categorical=categorical,
            special_codes=special_codes, random_state=random_state + i,
        )  # fmt: skip
        for name, model in models.items():
            scores[name].append(evaluate(y[test_idx], model.predict_proba(x.iloc[test_idx])[:, 1]))
    return {
        name: {
            metric: {
                "mean": float(np.mean([s[metric] for s in runs])),
                "std": float(np.std([s[metric] for s in runs])),
            }
            for metric in runs[0]
        }
        for name, runs in scores.items()
    }
