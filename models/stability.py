"""Population and characteristic stability: how far a population has moved from the one a
model was fitted on.

The **population stability index** compares the share of a reference population in each bin
of a variable (``e``) with the share of a new population in the same bins (``a``)::

    PSI = Σ (a_i − e_i) · ln(a_i / e_i)

It is the symmetric Kullback–Leibler divergence of the two binned distributions. Applied to
the score it is the PSI proper; applied to each input feature it is the *characteristic
stability index* (CSI), which tells which features moved. A common reading (Siddiqi, *Credit
Risk Scorecards*, 2006) is below 0.1 stable, 0.1–0.25 worth a look, above 0.25 a significant
shift; the thresholds the platform acts on are policy (``scoring/policy.yaml``,
``monitoring``).

Bins are fitted once on the reference population and then kept: deciles of a numeric
variable (fewer when values repeat), one bin per category of a categorical one plus one for
categories never seen, and always one bin for missing values, so that a feature that starts
to go missing is seen. An empty bin would make the logarithm infinite; shares are floored
at ``1e-4`` (the usual practice) before the index is taken.

`StabilityBaseline` holds the bins and shares of the score (as PD) and of every feature of a
model's training population. It is logged beside the model at training time
(``monitoring_baseline.json``), so monitoring compares against the population the model
really saw, whatever has been delivered to the warehouse since.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from models.errors import ModelError

FloatArray = npt.NDArray[np.float64]
#: shares are floored here before the logarithm (an empty bin would give an infinite PSI)
FLOOR = 1e-4
MISSING = "(missing)"
OTHER = "(other)"


def psi(expected: npt.ArrayLike, actual: npt.ArrayLike, *, floor: float = FLOOR) -> float:
    """Population stability index of two distributions over the same bins.

    Parameters
    ----------
    expected, actual
        Counts or shares per bin of the reference and the new population (each is
        normalised to sum to one).
    floor
        Shares below this are raised to it, so that an empty bin counts as rare, not as
        infinitely surprising.

    Examples
    --------
    >>> round(psi([50, 50], [60, 40]), 6)
    0.040547
    >>> psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5])
    0.0
    """
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.shape != a.shape or e.ndim != 1 or e.size < 1:
        raise ModelError(
            "bins", "shape", f"need two equal 1-d bin vectors, got {e.shape}, {a.shape}"
        )
    if (e < 0).any() or (a < 0).any() or e.sum() <= 0 or a.sum() <= 0:
        raise ModelError("bins", "non_negative", "counts must be non-negative, not all zero")
    e = np.maximum(e / e.sum(), floor)
    a = np.maximum(a / a.sum(), floor)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass(frozen=True)
class Profile:
    """The bins of one variable fitted on a reference population, with its shares.

    Numeric bins are ``(-inf, e_1], (e_1, e_2], …, (e_k, inf)`` and the missing bin;
    categorical bins are the reference's categories, ``(other)`` and ``(missing)``.

    Examples
    --------
    >>> p = Profile.fit("x", pd.Series([1.0, 2.0, 3.0, 4.0, None]), bins=2)
    >>> p.labels
    ('≤ 2', '> 2', '(missing)')
    >>> p.shares(pd.Series([1.0, 1.0, 5.0, None])).tolist()
    [0.5, 0.25, 0.25]
    """

    name: str
    kind: Literal["numeric", "categorical"]
    edges: tuple[float, ...] = ()
    levels: tuple[str, ...] = ()
    reference: tuple[float, ...] = field(default=())

    @classmethod
    def fit(cls, name: str, values: pd.Series, *, bins: int = 10) -> Profile:
        """Bins from the reference ``values``: quantiles if numeric, levels if categorical."""
        if bins < 2:
            raise ModelError("bins", "range", f"need at least 2 bins, got {bins}")
        if _is_numeric(values):
            x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            present = x[~np.isnan(x)]
            edges: tuple[float, ...] = ()
            if present.size:
                cuts = np.quantile(
                    present, np.linspace(0, 1, bins + 1)[1:-1], method="inverted_cdf"
                )
                inner = np.unique(cuts)
                # a cut at the maximum leaves an empty top bin: drop it
                edges = tuple(float(c) for c in inner if c < present.max())
            profile = cls(name, "numeric", edges=edges)
        else:
            levels = tuple(sorted(values.dropna().astype(str).unique().tolist()))
            profile = cls(name, "categorical", levels=levels)
        return cls(name, profile.kind, profile.edges, profile.levels, tuple(profile.shares(values)))

    @property
    def labels(self) -> tuple[str, ...]:
        """A readable name of each bin."""
        if self.kind == "categorical":
            return (*self.levels, OTHER, MISSING)
        if not self.edges:
            return ("all", MISSING)
        first = [f"≤ {_fmt(self.edges[0])}"]
        middle = [
            f"({_fmt(a)}, {_fmt(b)}]" for a, b in zip(self.edges, self.edges[1:], strict=False)
        ]
        return (*first, *middle, f"> {_fmt(self.edges[-1])}", MISSING)

    def counts(self, values: pd.Series) -> npt.NDArray[np.int64]:
        """How many ``values`` fall in each bin."""
        n_bins = len(self.labels)
        if self.kind == "numeric":
            x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            missing = np.isnan(x)
            index = np.searchsorted(np.asarray(self.edges), x[~missing], side="left")
        else:
            text = values.astype("string")
            missing = text.isna().to_numpy()
            codes = pd.Index(self.levels, dtype="string").get_indexer(text[~missing])
            index = np.where(codes < 0, len(self.levels), codes).astype(np.int64)
        out = np.bincount(index, minlength=n_bins).astype(np.int64)
        out[-1] = int(missing.sum())
        return out

    def shares(self, values: pd.Series) -> FloatArray:
        """The share of ``values`` in each bin (zeros when there are no values)."""
        counts = self.counts(values).astype(np.float64)
        total = counts.sum()
        return counts / total if total else counts

    def stability(self, values: pd.Series) -> float:
        """PSI of ``values`` against the reference shares."""
        if not len(values):
            raise ModelError(self.name, "empty", "no values to compare with the reference")
        return psi(self.reference, self.counts(values))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (`from_dict` reads it back)."""
        return {"name": self.name, "kind": self.kind, "edges": list(self.edges),
                "levels": list(self.levels), "reference": list(self.reference)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        """Read a profile written by `to_dict`, checking its shape."""
        try:
            profile = cls(
                name=str(data["name"]),
                kind=data["kind"],
                edges=tuple(float(e) for e in data["edges"]),
                levels=tuple(str(v) for v in data["levels"]),
                reference=tuple(float(s) for s in data["reference"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError("baseline", "format", f"not a stability profile: {exc}") from exc
        if profile.kind not in ("numeric", "categorical"):
            raise ModelError("baseline", "format", f"{profile.name}: unknown kind {profile.kind}")
        if len(profile.reference) != len(profile.labels):
            raise ModelError("baseline", "format", f"{profile.name}: shares do not match bins")
        return profile


@dataclass(frozen=True)
class StabilityBaseline:
    """Bins and shares of a model's training population: its PD and every feature.

    Examples
    --------
    >>> x = pd.DataFrame({"age": [1.0, 2, 3, 4], "kind": ["a", "b", "a", None]})
    >>> base = StabilityBaseline.fit(x, np.array([0.01, 0.02, 0.03, 0.5]),
    ...                              as_of=[dt.date(2018, 6, 30)], bins=2)
    >>> base.score_stability(np.array([0.01, 0.02, 0.03, 0.5]))
    0.0
    >>> StabilityBaseline.from_dict(base.to_dict()) == base
    True
    """

    as_of: tuple[dt.date, ...]
    rows: int
    score: Profile
    features: Mapping[str, Profile]

    @classmethod
    def fit(
        cls,
        matrix: pd.DataFrame,
        pd_: npt.ArrayLike,
        *,
        as_of: Sequence[dt.date],
        bins: int = 10,
    ) -> StabilityBaseline:
        """The baseline of a training population (model matrix and calibrated PDs)."""
        p = np.asarray(pd_, dtype=np.float64)
        if p.shape != (len(matrix),):
            raise ModelError("pd", "shape", f"one PD per row needed: {p.shape} vs {len(matrix)}")
        return cls(
            as_of=tuple(sorted(as_of)),
            rows=len(matrix),
            score=Profile.fit("pd", pd.Series(p), bins=bins),
            features={c: Profile.fit(c, matrix[c], bins=bins) for c in matrix.columns},
        )

    def score_stability(self, pd_: npt.ArrayLike) -> float:
        """PSI of a new population's PDs (the score's PSI: the score is monotone in PD)."""
        return self.score.stability(pd.Series(np.asarray(pd_, dtype=np.float64)))

    def feature_stability(self, matrix: pd.DataFrame) -> dict[str, float]:
        """CSI of each baseline feature in a new model matrix."""
        missing = [c for c in self.features if c not in matrix.columns]
        if missing:
            raise ModelError("features", "missing", f"columns not in the data: {missing}")
        return {name: p.stability(matrix[name]) for name, p in self.features.items()}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (`from_dict` reads it back)."""
        return {
            "as_of": [d.isoformat() for d in self.as_of],
            "rows": self.rows,
            "score": self.score.to_dict(),
            "features": [p.to_dict() for p in self.features.values()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StabilityBaseline:
        """Read a baseline written by `to_dict`."""
        try:
            as_of = tuple(dt.date.fromisoformat(d) for d in data["as_of"])
            rows = int(data["rows"])
            score = Profile.from_dict(data["score"])
            features = [Profile.from_dict(f) for f in data["features"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError("baseline", "format", f"not a stability baseline: {exc}") from exc
        return cls(as_of, rows, score, {p.name: p for p in features})


def _is_numeric(values: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values))


def _fmt(value: float) -> str:
    if math.isfinite(value) and value == round(value):
        return f"{value:,.0f}"
    return f"{value:.4g}"
