"""Parameters of one synthetic Wenzhou delivery.

Examples
--------
>>> config = GeneratorConfig(entities=1_000, seed=7)
>>> config.delivery_id
'synthetic-7-1000-2015-01-2020-12'
>>> config.delivery_date.isoformat()
'2021-02-01'
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

from features.synthetic.errors import GeneratorConfigError

FileFormat = Literal["parquet", "csv"]

#: Registration dates start here; the simulated window must start later.
REGISTRY_START = dt.date(1995, 1, 1)
_EARLIEST_START = dt.date(2000, 1, 1)
_LATEST_END = dt.date(2030, 12, 1)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def parse_month(value: str, field: str) -> dt.date:
    """Parse ``YYYY-MM`` into the first day of that month.

    Examples
    --------
    >>> parse_month("2019-08", "start")
    datetime.date(2019, 8, 1)
    """
    match = _MONTH.match(value)
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise GeneratorConfigError(field, "month_format", f"{value!r} is not YYYY-MM")
    return dt.date(int(match.group(1)), int(match.group(2)), 1)


def add_months(first_day: dt.date, months: int) -> dt.date:
    """The first day of the month ``months`` after the month of ``first_day``."""
    index = first_day.year * 12 + first_day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate.

    Parameters
    ----------
    entities
        Rows of the market-entity register (``entities``); every other volume scales with it.
        Wenzhou has about 1.1 million registered market entities.
    seed
        Seed of every random stream: the same seed gives byte-identical files.
    start, end
        First and last simulated month (``YYYY-MM``, inclusive).
    fault_rate
        Share of delivered rows that carry a realistic delivery fault (see ``faults``).
    file_format
        ``parquet`` or ``csv`` (UTF-8, header row, RFC 4180 quoting).
    delivered_on
        Delivery date; by default the first day of the second month after ``end``. Dates
        after it are "future" dates; it must fall after the end of month ``end``.
    distress_shift
        Added to every entity's distress logit (0: the calibrated world). A positive shift
        makes the whole population riskier, in its records and in its defaults: the knob
        for injecting drift when testing `wzcredit monitor`, and for what-if runs.
    """

    entities: int = 20_000
    seed: int = 0
    start: str = "2015-01"
    end: str = "2020-12"
    fault_rate: float = 0.01
    file_format: FileFormat = "parquet"
    delivered_on: dt.date | None = None
    distress_shift: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.entities, int) or not 50 <= self.entities <= 20_000_000:
            raise GeneratorConfigError(
                "entities", "range", f"must be an integer from 50 to 20,000,000: {self.entities}"
            )
        if not isinstance(self.seed, int) or self.seed < 0:
            raise GeneratorConfigError(
                "seed", "range", f"must be a non-negative integer: {self.seed}"
            )
        first, last = parse_month(self.start, "start"), parse_month(self.end, "end")
        if first < _EARLIEST_START or last > _LATEST_END:
            raise GeneratorConfigError(
                "start",
                "range",
                f"months must lie from {_EARLIEST_START:%Y-%m} to {_LATEST_END:%Y-%m}",
            )
        if last < first:
            raise GeneratorConfigError(
                "end", "order", f"end {self.end} is before start {self.start}"
            )
        if not 0.0 <= self.fault_rate <= 0.2:
            raise GeneratorConfigError(
                "fault_rate", "range", f"must lie in [0, 0.2]: {self.fault_rate}"
            )
        if not -3.0 <= self.distress_shift <= 3.0:
            raise GeneratorConfigError(
                "distress_shift", "range", f"must lie in [-3, 3]: {self.distress_shift}"
            )
        if self.file_format not in ("parquet", "csv"):
            raise GeneratorConfigError(
                "file_format", "code", f"must be 'parquet' or 'csv', not {self.file_format!r}"
            )
        if self.delivered_on is not None and self.delivered_on < add_months(last, 1):
            raise GeneratorConfigError(
                "delivered_on",
                "order",
                f"{self.delivered_on} must fall after the end of the last month {self.end}",
            )

    @property
    def start_month(self) -> dt.date:
        """First day of the first simulated month."""
        return parse_month(self.start, "start")

    @property
    def end_month(self) -> dt.date:
        """First day of the last simulated month."""
        return parse_month(self.end, "end")

    @property
    def delivery_date(self) -> dt.date:
        """``delivered_on``, or its default (first day of the second month after ``end``)."""
        return self.delivered_on or add_months(self.end_month, 2)

    @property
    def delivery_id(self) -> str:
        """``synthetic-<seed>-<entities>-<start>-<end>``."""
        return f"synthetic-{self.seed}-{self.entities}-{self.start}-{self.end}"
