"""Monitoring of the champion (分析预警): population drift, grade migration, realised defaults.

Three questions a model owner asks every quarter, each answered against thresholds of the
policy (``scoring/policy.yaml``, ``monitoring``):

- **Has the population moved?** The PSI of the PD (hence of the score, which is monotone in
  it) and the CSI of every feature, against the model's training population as profiled at
  training time (`models.stability.StabilityBaseline`).
- **How did grades move?** The migration matrix of the entities scored at two dates with the
  same model: the share of each earlier grade that ended in each later grade, and the share
  that moved by more than one notch.
- **Were the PDs right?** For a snapshot whose 12-month outcome window has closed: the
  realised default rate of each grade next to the mean PD the model gave it, with a
  two-sided exact binomial test of the number of defaults.

An alert is raised for every threshold crossed; `MonitoringResult.to_dict` is what
``wzcredit monitor --json`` prints and what the model validation report shows.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats import binomtest

from features.view import feature_specs
from models.datasets import TARGET, Design
from models.stability import StabilityBaseline
from scoring.errors import ScoringError
from scoring.policy import ScoringPolicy, Threshold
from scoring.scale import grade_index

logger = logging.getLogger(__name__)
Level = Literal["ok", "warning", "alert"]


@dataclass(frozen=True)
class Alert:
    """One threshold crossed: which check, on what, by how much."""

    check: str
    subject: str
    value: float
    threshold: float
    level: Level
    message: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return dict(vars(self))


@dataclass(frozen=True)
class Migration:
    """Grade migration between two snapshots of the same entities (rows: from, cols: to)."""

    from_as_of: dt.date
    to_as_of: dt.date
    grades: tuple[str, ...]
    counts: npt.NDArray[np.int64]
    far_share: float

    @property
    def shares(self) -> npt.NDArray[np.float64]:
        """Each row as shares of the entities that started in that grade."""
        totals = self.counts.sum(axis=1, keepdims=True)
        out: npt.NDArray[np.float64] = np.divide(
            self.counts, totals, out=np.zeros(self.counts.shape), where=totals > 0
        )
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "from_as_of": self.from_as_of.isoformat(),
            "to_as_of": self.to_as_of.isoformat(),
            "grades": list(self.grades),
            "counts": self.counts.tolist(),
            "shares": np.round(self.shares, 6).tolist(),
            "far_share": self.far_share,
        }


@dataclass(frozen=True)
class MonitoringResult:
    """Everything `monitor` found, with the alerts it raised."""

    as_of: dt.date
    baseline_as_of: tuple[dt.date, ...]
    rows: int
    score_psi: float
    score_level: Level
    features: pd.DataFrame
    migration: Migration | None
    realised: pd.DataFrame | None
    realised_as_of: dt.date | None
    alerts: tuple[Alert, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The ``wzcredit monitor --json`` output."""
        return {
            "as_of": self.as_of.isoformat(),
            "baseline_as_of": [d.isoformat() for d in self.baseline_as_of],
            "rows": self.rows,
            "score_psi": self.score_psi,
            "score_level": self.score_level,
            "features": self.features.to_dict(orient="records"),
            "migration": None if self.migration is None else self.migration.to_dict(),
            "realised_as_of": None if self.realised_as_of is None else str(self.realised_as_of),
            "realised": None if self.realised is None else self.realised.to_dict(orient="records"),
            "alerts": [a.to_dict() for a in self.alerts],
        }


def feature_stability(
    matrix: pd.DataFrame, baseline: StabilityBaseline, threshold: Threshold
) -> pd.DataFrame:
    """CSI of every feature with its source and level, the largest first."""
    sources = {spec.name: spec.source for spec in feature_specs()}
    values = baseline.feature_stability(matrix)
    table = pd.DataFrame(
        {
            "feature": list(values),
            "source": [sources.get(name, "") for name in values],
            "psi": [round(v, 6) for v in values.values()],
            "level": [threshold.level(v) for v in values.values()],
        }
    )
    return table.sort_values(["psi", "feature"], ascending=[False, True], ignore_index=True)


def migration(earlier: pd.DataFrame, later: pd.DataFrame, policy: ScoringPolicy) -> Migration:
    """Grade migration of the entities present in both frames (``uscc``, ``as_of``, ``pd``)."""
    for name, frame in (("earlier", earlier), ("later", later)):
        missing = {"uscc", "pd", "as_of"} - set(frame.columns)
        if missing:
            raise ScoringError(name, "columns", f"needs columns {sorted(missing)}")
    both = earlier[["uscc", "pd"]].merge(
        later[["uscc", "pd"]], on="uscc", suffixes=("_from", "_to"), validate="one_to_one"
    )
    n = len(policy.grade_names)
    start = grade_index(both["pd_from"].to_numpy(), policy)
    end = grade_index(both["pd_to"].to_numpy(), policy)
    counts = np.zeros((n, n), dtype=np.int64)
    np.add.at(counts, (start, end), 1)
    far = float(np.mean(np.abs(end - start) > 1)) if len(both) else 0.0
    return Migration(
        from_as_of=_day(earlier), to_as_of=_day(later), grades=policy.grade_names,
        counts=counts, far_share=far,
    )  # fmt: skip


def realised_by_grade(labelled: pd.DataFrame, policy: ScoringPolicy) -> pd.DataFrame:
    """Realised 12-month default rate per grade against the mean PD the model gave it.

    ``labelled`` has one row per entity with ``pd`` (as scored at the start of the window)
    and ``default_12m``. The p-value is that of a two-sided exact binomial test of the
    grade's default count with the mean PD as the probability; grades with fewer entities
    than ``policy.monitoring.calibration_min_entities`` are listed but not tested.
    """
    rules = policy.monitoring
    index = grade_index(labelled["pd"].to_numpy(), policy)
    y = labelled[TARGET].to_numpy(dtype=np.int64)
    rows = []
    for i, grade in enumerate(policy.grade_names):
        in_grade = index == i
        n = int(in_grade.sum())
        if n == 0:
            continue
        defaults = int(y[in_grade].sum())
        mean_pd = float(labelled["pd"].to_numpy()[in_grade].mean())
        tested = n >= rules.calibration_min_entities
        p_value = float(binomtest(defaults, n, mean_pd).pvalue) if tested else float("nan")
        rows.append({
            "grade": grade, "entities": n, "defaults": defaults, "predicted_pd": mean_pd,
            "realised_rate": defaults / n, "p_value": p_value,
            "level": rules.calibration_p_value.level(p_value) if tested else "ok",
        })  # fmt: skip
    return pd.DataFrame(rows)


def monitor(
    current: pd.DataFrame,
    model: Any,
    baseline: StabilityBaseline,
    policy: ScoringPolicy,
    *,
    previous: pd.DataFrame | None = None,
) -> MonitoringResult:
    """Drift, migration and realised defaults of ``model`` on the view as of a date.

    Parameters
    ----------
    current
        The three-in-one view as of the monitoring date (one row per entity).
    model
        The fitted, calibrated model (``predict_proba``) the baseline belongs to.
    baseline
        The model's training population profile (``monitoring_baseline.json``).
    previous
        The view as of an earlier date, e.g. a year before: gives the grade migration, and
        when it carries the ``default_12m`` label (its window closed), the realised default
        rate per grade.
    """
    if current.empty:
        raise ScoringError("current", "non_empty", "the view to monitor has no rows")
    rules = policy.monitoring
    design = Design.from_specs()
    matrix = design.matrix(current)
    now = current[["uscc", "as_of"]].assign(pd=model.predict_proba(matrix)[:, 1])
    score_psi = baseline.score_stability(now["pd"].to_numpy())
    features = feature_stability(matrix, baseline, rules.feature_psi)
    alerts = []
    score_level = rules.score_psi.level(score_psi)
    if score_level != "ok":
        alerts.append(Alert("score_psi", "score", score_psi, _limit(rules.score_psi, score_level),
                            score_level, f"score PSI {score_psi:.3f} against the training "
                            "population"))  # fmt: skip
    for row in features.itertuples():
        if row.level != "ok":
            alerts.append(Alert("feature_psi", str(row.feature), float(row.psi),
                                _limit(rules.feature_psi, row.level), row.level,
                                f"{row.feature} ({row.source}) CSI {row.psi:.3f}"))  # fmt: skip
    moved, realised, realised_as_of = None, None, None
    if previous is not None and not previous.empty:
        before = previous[["uscc", "as_of"]].assign(
            pd=model.predict_proba(design.matrix(previous))[:, 1]
        )
        moved = migration(before, now, policy)
        level = rules.migration_far_share.level(moved.far_share)
        if level != "ok":
            alerts.append(Alert("migration", "grades", moved.far_share,
                                _limit(rules.migration_far_share, level), level,
                                f"{moved.far_share:.1%} of entities moved more than one grade "
                                f"from {moved.from_as_of} to {moved.to_as_of}"))  # fmt: skip
        if TARGET in previous.columns:
            realised_as_of = moved.from_as_of
            realised = realised_by_grade(before.assign(**{TARGET: previous[TARGET].to_numpy()}),
                                         policy)  # fmt: skip
            for row in realised.itertuples():
                if row.level != "ok":
                    alerts.append(Alert(
                        "calibration", str(row.grade), float(row.p_value),
                        _limit(rules.calibration_p_value, row.level), row.level,
                        f"grade {row.grade}: realised {row.realised_rate:.2%} vs predicted "
                        f"{row.predicted_pd:.2%} over {row.entities:,} entities "
                        f"(binomial p = {row.p_value:.2g})",
                    ))  # fmt: skip
    for alert in alerts:
        logger.debug("monitoring %s: %s", alert.level, alert.message)
    logger.info(
        "monitored %d entities: score PSI %.4f, %d alerts", len(now), score_psi, len(alerts)
    )
    return MonitoringResult(
        as_of=_day(now), baseline_as_of=baseline.as_of, rows=len(now), score_psi=score_psi,
        score_level=score_level, features=features, migration=moved, realised=realised,
        realised_as_of=realised_as_of, alerts=tuple(alerts),
    )  # fmt: skip


def _limit(threshold: Threshold, level: str) -> float:
    return threshold.alert if level == "alert" else threshold.warning


def _day(frame: pd.DataFrame) -> dt.date:
    values = pd.to_datetime(frame["as_of"]).dt.date.unique()
    if len(values) != 1:
        raise ScoringError("as_of", "single", f"a snapshot has one as-of date, got {len(values)}")
    day: dt.date = values[0]
    return day


__all__ = [
    "Alert",
    "Migration",
    "MonitoringResult",
    "feature_stability",
    "migration",
    "monitor",
    "realised_by_grade",
]
