"""Labelled snapshots of the three-in-one view, split out of time.

A snapshot is the view as of a date joined with that date's 12-month default label
(`models.labels`): one row per entity in the development sample. Models train on earlier
snapshots, stop early and calibrate on a later one, and are judged on the latest one — out
of time, as a validator would test them. The label of the test snapshot must be complete,
so its as-of date plus 12 months must lie within the data.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from features.view import build_view, feature_specs
from features.view.metadata import FeatureSpec
from models.errors import ModelError
from models.labels import HORIZON_MONTHS, labels, months_after

logger = logging.getLogger(__name__)

TARGET = "default_12m"
#: segments the metrics are broken down by (entity type, thin files, 信易贷 target groups)
SEGMENTS = ("entity_type", "pboc_has_file", "is_small_micro", "is_agricultural",
            "is_young_entrepreneur")  # fmt: skip


@dataclass(frozen=True)
class SnapshotPlan:
    """As-of dates for training, validation (early stopping, calibration) and the OOT test."""

    train: tuple[dt.date, ...]
    validation: tuple[dt.date, ...]
    test: tuple[dt.date, ...]

    def __post_init__(self) -> None:
        if not (self.train and self.validation and self.test):
            raise ModelError("plan", "empty", "train, validation and test need a date each")
        if max(self.train) >= min(self.validation) or max(self.validation) >= min(self.test):
            raise ModelError("plan", "out_of_time", "train < validation < test dates are required")

    @classmethod
    def for_data_ending(cls, last_day: dt.date) -> SnapshotPlan:
        """The default plan for data ending on ``last_day`` (e.g. 2020-12-31).

        Test: the last half-year end whose 12-month window fits; validation: the half-year
        end before; training: the four half-year ends before that.

        Examples
        --------
        >>> plan = SnapshotPlan.for_data_ending(dt.date(2020, 12, 31))
        >>> [d.isoformat() for d in (*plan.train, *plan.validation, *plan.test)]
        ['2017-06-30', '2017-12-31', '2018-06-30', '2018-12-31', '2019-06-30', '2019-12-31']
        """
        test = _half_year_end(months_after(last_day, -HORIZON_MONTHS))
        validation = _previous_half_year_end(test)
        train = [_previous_half_year_end(validation)]
        while len(train) < 4:
            train.insert(0, _previous_half_year_end(train[0]))
        return cls(tuple(train), (validation,), (test,))


def _half_year_end(day: dt.date) -> dt.date:
    """The last 30 June or 31 December on or before ``day``."""
    if day >= dt.date(day.year, 12, 31):
        return dt.date(day.year, 12, 31)
    if day >= dt.date(day.year, 6, 30):
        return dt.date(day.year, 6, 30)
    return dt.date(day.year - 1, 12, 31)


def _previous_half_year_end(day: dt.date) -> dt.date:
    """The half-year end strictly before ``day``.

    Examples
    --------
    >>> _previous_half_year_end(dt.date(2019, 6, 30))
    datetime.date(2018, 12, 31)
    """
    return _half_year_end(day - dt.timedelta(days=1))


def snapshot(tables: Mapping[str, ir.Table], as_of: dt.date) -> pd.DataFrame:
    """The view as of ``as_of`` with its label (entities already in default are not in it)."""
    view = build_view(tables, as_of).table.to_pandas()
    y = labels(tables, as_of).to_pandas()[["uscc", TARGET]]
    frame = view.merge(y, on="uscc", how="inner", validate="one_to_one")
    logger.info("snapshot %s: %d entities, bad rate %.2f%%", as_of, len(frame),
                100 * frame[TARGET].mean())  # fmt: skip
    return frame


def snapshots(tables: Mapping[str, ir.Table], dates: Sequence[dt.date]) -> pd.DataFrame:
    """Several snapshots stacked (``as_of`` tells them apart)."""
    return pd.concat([snapshot(tables, day) for day in dates], ignore_index=True)


@dataclass(frozen=True)
class Design:
    """Which columns a model sees and how (from the feature metadata)."""

    features: tuple[str, ...]
    categorical: tuple[str, ...]
    monotone: dict[str, int]

    @classmethod
    def from_specs(cls, specs: Sequence[FeatureSpec] | None = None) -> Design:
        specs = tuple(specs or feature_specs())
        return cls(
            features=tuple(s.name for s in specs),
            categorical=tuple(s.name for s in specs if s.kind == "categorical"),
            monotone={s.name: s.direction for s in specs if s.direction != 0},
        )

    def matrix(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model matrix: features only, categoricals as strings, numbers as floats.

        The numeric columns are converted as one block (one request's row costs one
        conversion, not one per column); only if that fails are they converted one by one,
        so that the error names the column.
        """
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise ModelError("features", "missing", f"columns not in the data: {missing}")
        categorical = set(self.categorical)
        numeric = [c for c in self.features if c not in categorical]
        try:
            block = frame[numeric].to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            block = np.column_stack(
                [pd.to_numeric(frame[c], errors="raise").to_numpy(dtype=np.float64,
                                                                   na_value=np.nan)
                 for c in numeric]
            ) if numeric else np.empty((len(frame), 0))  # fmt: skip
        out = pd.DataFrame(block, columns=numeric, index=frame.index)
        for column in self.categorical:
            out[column] = frame[column].astype("string")
        return out[list(self.features)]
