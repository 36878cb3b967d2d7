"""Chinese working days (工作日) for objection deadlines, and the service's today.

A working day is a day the State Council's holiday arrangement makes one: Monday to Friday
except statutory holidays, plus the weekend days made working days to make up for a
holiday (调休). ``chinese_calendar`` knows the arrangements of the years it ships (2004 to
2026 in version 1.11); for any other year it cannot know the holidays, and these functions
fall back to Monday to Friday (`features.quality.is_working_day`; counting working days
between two dates is `features.quality.working_days_between`, the inverse of
`add_working_days`). A deadline that runs into
such a year is therefore provisional: a later ``chinese_calendar`` may move it.

The periods themselves (5 working days, at most 20) are policy, not code: see the scoring
policy's ``remedies`` (浙江省公共信用信息管理条例 第三十、三十一条).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends

from features.quality import is_working_day, working_days_between

#: deadlines run on the date in China, whatever the server's time zone
CHINA = ZoneInfo("Asia/Shanghai")
#: a sanity bound: no legal period of the service is longer than this many working days
MAX_WORKING_DAYS = 1_000


__all__ = ["CHINA", "Today", "add_working_days", "today", "working_days_between"]


def add_working_days(day: dt.date, n: int) -> dt.date:
    """The ``n``-th working day after ``day`` (``day`` itself never counts; ``n = 0`` → day).

    An objection raised on ``day`` must be settled by ``add_working_days(day, 5)``.

    Examples
    --------
    >>> add_working_days(dt.date(2024, 9, 30), 5)   # National Day week off; 10-12 is 调休
    datetime.date(2024, 10, 12)
    >>> add_working_days(dt.date(2024, 10, 1), 1)   # raised on a holiday
    datetime.date(2024, 10, 8)
    """
    if not 0 <= n <= MAX_WORKING_DAYS:
        raise ValueError(f"n: between 0 and {MAX_WORKING_DAYS} working days, got {n}")
    current, left = day, n
    while left:
        current += dt.timedelta(days=1)
        if is_working_day(current):
            left -= 1
    return current


def today() -> dt.date:
    """Today's date in China (a dependency: tests override it to move the clock)."""
    return dt.datetime.now(CHINA).date()


#: ``day: Today`` in a route signature
Today = Annotated[dt.date, Depends(today)]
