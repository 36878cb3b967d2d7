"""Reference series: the 温州指数 (synthetic) and the LPR (published values), and the legal cap.

温州指数 (温州民间融资综合利率指数): first published on 2012-12-07 at 21.43% a year (DOMAIN.md
§4.3); 2017–2019 levels are NOT FOUND, so the monthly series here is **synthetic**: a
composite that starts near 18% in 2015 and drifts down towards 13–14% by 2020, with small
noise, and sub-indices at typical spreads to it (the registration centre lowest, "other
market entities" highest, as in the 2012 and ~2014 samples).

LPR: the one-year and five-year loan prime rates as published monthly since the reform of
2019-08-20 (values from the 全国银行间同业拆借中心 monthly LPR announcements; publication on
the 20th, moved to the next working day when the 20th is not one). Later months are not in
this table: the legal cap then uses the last listed one-year value.

Legal cap on private-lending interest (DOMAIN.md §4.4): 24% a year for contracts before
2020-08-20 (法释〔2015〕18号), four times the one-year LPR at contract formation after it.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from features.synthetic.schema import make_table
from features.synthetic.world import World

logger = logging.getLogger(__name__)

#: Published LPR: (publication date, one-year %, five-year-plus %).
#: Source: 全国银行间同业拆借中心 monthly LPR announcements.
LPR_PUBLISHED: tuple[tuple[dt.date, float, float], ...] = (
    (dt.date(2019, 8, 20), 4.25, 4.85),
    (dt.date(2019, 9, 20), 4.20, 4.85),
    (dt.date(2019, 10, 21), 4.20, 4.85),
    (dt.date(2019, 11, 20), 4.15, 4.80),
    (dt.date(2019, 12, 20), 4.15, 4.80),
    (dt.date(2020, 1, 20), 4.15, 4.80),
    (dt.date(2020, 2, 20), 4.05, 4.75),
    (dt.date(2020, 3, 20), 4.05, 4.75),
    (dt.date(2020, 4, 20), 3.85, 4.65),
    (dt.date(2020, 5, 20), 3.85, 4.65),
    (dt.date(2020, 6, 22), 3.85, 4.65),
    (dt.date(2020, 7, 20), 3.85, 4.65),
    (dt.date(2020, 8, 20), 3.85, 4.65),
    (dt.date(2020, 9, 21), 3.85, 4.65),
    (dt.date(2020, 10, 20), 3.85, 4.65),
    (dt.date(2020, 11, 20), 3.85, 4.65),
    (dt.date(2020, 12, 21), 3.85, 4.65),
)
OLD_CAP = 24.0
CAP_REFORM = np.datetime64("2020-08-20")
LPR_REFORM = np.datetime64("2019-08-20")


def one_year_lpr(on: npt.NDArray[np.datetime64]) -> npt.NDArray[np.float64]:
    """The one-year LPR in force on each day (NaN before 2019-08-20).

    Examples
    --------
    >>> one_year_lpr(np.array(["2019-08-19", "2019-11-25", "2021-06-01"], "datetime64[D]"))
    array([ nan, 4.15, 3.85])
    """
    published = np.array([d for d, _, _ in LPR_PUBLISHED], dtype="datetime64[D]")
    rates = np.array([r for _, r, _ in LPR_PUBLISHED])
    index = np.searchsorted(published, on, side="right") - 1
    result: npt.NDArray[np.float64] = np.where(index >= 0, rates[np.maximum(index, 0)], np.nan)
    return result


def legal_cap(contract_on: npt.NDArray[np.datetime64]) -> npt.NDArray[np.float64]:
    """Highest protected private-lending rate (% a year) for contracts made on each day.

    Examples
    --------
    >>> legal_cap(np.array(["2018-01-01", "2020-09-01"], "datetime64[D]")).tolist()
    [24.0, 15.4]
    """
    result: npt.NDArray[np.float64] = np.where(
        contract_on < CAP_REFORM, OLD_CAP, np.round(4 * one_year_lpr(contract_on), 2)
    )
    return result


def composite_rate(months_since_1970: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Noise-free synthetic 温州指数 composite (% a year) for calendar months.

    Examples
    --------
    >>> [round(float(r), 1) for r in composite_rate([(2015 - 1970) * 12, (2020 - 1970) * 12])]
    [18.0, 13.9]
    """
    year = 1970.0 + np.asarray(months_since_1970, dtype=np.float64) / 12.0
    result: npt.NDArray[np.float64] = 11.5 + 9.9 * np.exp(-0.2 * (year - 2012.9))
    return result


def wenzhou_index(world: World) -> tuple[pa.Table, npt.NDArray[np.float64]]:
    """The ``wenzhou_index`` table for the window, and the composite for every grid month."""
    tl = world.timeline
    rng = world.rng("wenzhou_index")
    months = np.arange(tl.n_months)
    composite = np.round(composite_rate(tl.first + months) + rng.normal(0, 0.25, months.size), 2)
    window = np.arange(tl.j_start, tl.j_end + 1)
    c = composite[window]

    def sub(spread: float, noise: float) -> npt.NDArray[np.float64]:
        values = np.clip(c + spread + rng.normal(0, noise, c.size), 0.5, 99)
        return np.asarray(np.round(values, 2), dtype=np.float64)

    table = make_table(
        "wenzhou_index",
        {
            "month": world.month_label(window),
            "composite_rate": c,
            "center_rate": sub(-3.5, 0.4),
            "micro_loan_rate": sub(0.5, 0.4),
            "private_capital_rate": sub(-1.0, 0.4),
            "direct_lending_rate": sub(-1.5, 0.5),
            "other_rate": sub(8.0, 0.8),
        },
    )
    return table, composite


def lpr_table(world: World) -> pa.Table:
    """The ``lpr`` table: publications from 2019-08-20 up to the end of the window."""
    last = world.last_day.astype(dt.date)
    rows = [r for r in LPR_PUBLISHED if r[0] <= last]
    if last > LPR_PUBLISHED[-1][0] + dt.timedelta(days=31):
        logger.warning(
            "LPR publications after %s are not in the reference table; caps use the last value",
            LPR_PUBLISHED[-1][0],
        )
    return make_table(
        "lpr",
        {
            "published_on": np.array([r[0] for r in rows], dtype="datetime64[D]"),
            "one_year_rate": np.array([r[1] for r in rows], dtype=np.float64),
            "five_year_rate": np.array([r[2] for r in rows], dtype=np.float64),
        },
    )
