"""Chinese working days: statutory holidays off, 调休 weekend days on, Mon–Fri elsewhere."""

from __future__ import annotations

import datetime as dt

import chinese_calendar
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from api.services.workdays import add_working_days, today, working_days_between
from features.quality import is_working_day
from scoring.errors import PolicyError
from scoring.policy import DEFAULT_POLICY_PATH, load_policy, parse_policy

REMEDIES = load_policy().remedies


def test_deadline_runs_past_national_day_2024_and_counts_the_adjusted_saturday() -> None:
    raised = dt.date(2024, 9, 30)  # Monday; 10-01 … 10-07 off, Saturday 10-12 a working day
    due = add_working_days(raised, 5)
    assert due == dt.date(2024, 10, 12)
    assert due.weekday() == 5
    assert chinese_calendar.is_workday(due)
    assert all(not is_working_day(raised + dt.timedelta(days=d)) for d in range(1, 8))
    assert working_days_between(raised, due) == 5


def test_an_adjusted_sunday_counts_before_the_holiday() -> None:
    raised = dt.date(2024, 9, 27)  # Friday; Sunday 09-29 is a working day, Saturday 09-28 not
    assert add_working_days(raised, 1) == dt.date(2024, 9, 29)
    assert add_working_days(raised, 5) == dt.date(2024, 10, 10)


def test_raised_on_a_holiday_counts_from_the_next_working_day() -> None:
    assert add_working_days(dt.date(2024, 10, 3), 1) == dt.date(2024, 10, 8)
    assert add_working_days(dt.date(2024, 10, 3), 0) == dt.date(2024, 10, 3)


def test_policy_periods_over_the_holiday() -> None:
    raised = dt.date(2024, 9, 30)
    first = add_working_days(raised, REMEDIES.objection_working_days)
    longest = add_working_days(raised, REMEDIES.objection_max_working_days)
    assert first < longest
    assert working_days_between(raised, longest) == REMEDIES.objection_max_working_days
    # the holiday week adds calendar days: more than max working days × 7/5
    assert (longest - raised).days > REMEDIES.objection_max_working_days * 7 // 5


def test_years_the_calendar_does_not_know_fall_back_to_monday_to_friday() -> None:
    year = 2040
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(dt.date(year, 1, 2))
    friday = next(dt.date(year, 1, d) for d in range(1, 8) if dt.date(year, 1, d).weekday() == 4)
    assert add_working_days(friday, 1) == friday + dt.timedelta(days=3)
    national_day = dt.date(year, 10, 1)  # a holiday, unknown to the calendar in that year
    assert is_working_day(national_day) == (national_day.weekday() < 5)


def test_between_is_zero_backwards_and_negative_periods_are_refused() -> None:
    assert working_days_between(dt.date(2024, 10, 12), dt.date(2024, 9, 30)) == 0
    with pytest.raises(ValueError, match="n:"):
        add_working_days(dt.date(2024, 9, 30), -1)


@given(
    day=st.dates(min_value=dt.date(2004, 1, 1), max_value=dt.date(2027, 12, 31)),
    n=st.integers(min_value=0, max_value=40),
)
def test_between_inverts_add(day: dt.date, n: int) -> None:
    due = add_working_days(day, n)
    assert working_days_between(day, due) == n
    if n:
        assert is_working_day(due)
        assert working_days_between(day, due - dt.timedelta(days=1)) == n - 1


def test_today_is_the_date_in_china() -> None:
    before = dt.datetime.now(dt.UTC) + dt.timedelta(hours=8)
    day = today()
    after = dt.datetime.now(dt.UTC) + dt.timedelta(hours=8)
    assert day in {before.date(), after.date()}


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"objection_max_working_days": 4}, "remedies", "value_error"),
        ({"objection_working_days": 0}, "remedies.objection_working_days", "greater_than_equal"),
        ({"repair_min_publicity_months": {"一般": -1}}, "remedies", "value_error"),
        ({"objection_deadline": 5}, "remedies.objection_deadline", "unknown_key"),
    ],
)
def test_the_policy_refuses_inconsistent_periods(
    change: dict[str, object], field: str, rule: str
) -> None:
    raw = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    raw["remedies"].update(change)
    with pytest.raises(PolicyError) as caught:
        parse_policy(raw)
    assert (caught.value.field, caught.value.rule) == (field, rule)
