"""Months, days, working days and random streams shared by every table builder.

The simulation runs on a monthly grid indexed ``j = 0 … n_months - 1``. It starts
``burn_in`` months before the delivered window (so that the latent paths and the distress
stages are settled when the data begin), covers the delivered window ``start … end``, and
runs on to ``horizon`` (12 months after ``end``, or the snapshot month if later) because
the true 12-month default probability looks a year ahead. The snapshot month is the month
before the delivery date: snapshot tables such as ``private_loans`` show the state then.
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from features.synthetic.config import GeneratorConfig

Days = npt.NDArray[np.datetime64]
Ints = npt.NDArray[np.int64]

BURN_IN_MONTHS = 12
LOOK_AHEAD_MONTHS = 12


def stream(seed: int, name: str) -> np.random.Generator:
    """The random stream called ``name``: independent of every other name, fixed by ``seed``.

    Examples
    --------
    >>> float(stream(0, "a").random()) == float(stream(0, "a").random())
    True
    """
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])


def _month_number(day: dt.date) -> int:
    return (day.year - 1970) * 12 + day.month - 1


@dataclass(frozen=True)
class Timeline:
    """The monthly grid of one generation run (see the module docstring)."""

    start: dt.date
    end: dt.date
    delivered_on: dt.date
    burn_in: int = BURN_IN_MONTHS
    first: int = field(init=False)  # months since 1970-01 of j = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "first", _month_number(self.start) - self.burn_in)

    @classmethod
    def from_config(cls, config: GeneratorConfig) -> Timeline:
        """The grid for ``config``."""
        return cls(config.start_month, config.end_month, config.delivery_date)

    @property
    def j_start(self) -> int:
        """Index of the first delivered month."""
        return self.burn_in

    @property
    def j_end(self) -> int:
        """Index of the last delivered month."""
        return _month_number(self.end) - self.first

    @property
    def j_snapshot(self) -> int:
        """Index of the month before the delivery date (state of snapshot tables)."""
        return _month_number(self.delivered_on - dt.timedelta(days=1)) - self.first

    @property
    def n_months(self) -> int:
        """Number of simulated months (burn-in, window, look-ahead)."""
        return max(self.j_end + LOOK_AHEAD_MONTHS, self.j_snapshot) + 1

    @property
    def delivered(self) -> np.datetime64:
        """The delivery date as ``datetime64[D]``."""
        return np.datetime64(self.delivered_on, "D")

    def month(self, j: npt.ArrayLike) -> npt.NDArray[np.datetime64]:
        """``datetime64[M]`` of grid index ``j``."""
        return (np.asarray(j, dtype=np.int64) + self.first).astype("datetime64[M]")

    def month_start(self, j: npt.ArrayLike) -> Days:
        """First day of month ``j``."""
        return self.month(j).astype("datetime64[D]")

    def days_in_month(self, j: npt.ArrayLike) -> Ints:
        """Number of days in month ``j``."""
        j = np.asarray(j, dtype=np.int64)
        return (self.month_start(j + 1) - self.month_start(j)).astype(np.int64)

    def index_of(self, days: Days) -> Ints:
        """Grid index of the month containing each day (may be negative or past the grid)."""
        months = np.asarray(days).astype("datetime64[M]").astype(np.int64)
        return months - self.first

    def random_day(self, j: npt.ArrayLike, rng: np.random.Generator) -> Days:
        """A uniformly random day within month ``j``."""
        j = np.asarray(j, dtype=np.int64)
        offset = np.floor(rng.random(j.shape) * self.days_in_month(j)).astype(np.int64)
        result: Days = self.month_start(j) + offset.astype("timedelta64[D]")
        return result

    def labels(self) -> pa.Array:
        """``YYYY-MM`` label of every grid month, for ``pc.take`` by index."""
        months = self.month(np.arange(self.n_months))
        return pa.array(np.datetime_as_string(months, unit="M"), type=pa.string())


class WorkingDays:
    """Chinese working days (statutory holidays and adjusted working weekends).

    Uses ``chinese_calendar`` for the years it covers and Monday to Friday elsewhere. The
    双公示 rule counts publication delays in these days.
    """

    def __init__(self, first_year: int, last_year: int) -> None:
        import chinese_calendar  # noqa: PLC0415 - heavy import, only needed here

        days = np.arange(
            np.datetime64(f"{first_year}-01-01"), np.datetime64(f"{last_year + 1}-01-01")
        )
        weekday = (days.astype(np.int64) + 3) % 7 < 5  # 1970-01-01 was a Thursday
        work = weekday.copy()
        for year in range(first_year, last_year + 1):
            try:
                listed = chinese_calendar.get_workdays(dt.date(year, 1, 1), dt.date(year, 12, 31))
            except NotImplementedError:
                continue
            in_year = (days >= np.datetime64(f"{year}-01-01")) & (
                days < np.datetime64(f"{year + 1}-01-01")
            )
            work[in_year] = False
            work[np.isin(days, np.array(listed, dtype="datetime64[D]"))] = True
        self.days: Days = days[work]

    def next_working_day(self, days: Days) -> Days:
        """The day itself if it is a working day, else the next working day."""
        index = np.searchsorted(self.days, days, side="left")
        result: Days = self.days[np.minimum(index, self.days.size - 1)]
        return result

    def add(self, days: Days, working_days: npt.ArrayLike) -> Days:
        """The working day ``working_days`` after each (working) day."""
        index = np.searchsorted(self.days, days, side="left") + np.asarray(working_days)
        result: Days = self.days[np.clip(index, 0, self.days.size - 1)]
        return result
