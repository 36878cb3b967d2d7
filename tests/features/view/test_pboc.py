"""PBOC features of the three-in-one view on hand-made credit timelines.

One small warehouse holds every scenario, each on its own entity; most tests read one
entity's row at one or two as-of dates. Dates around the default as-of 2019-06-15: the
as-of month is 2019-06, so month-end rows up to 2019-05 are known and the 24-month window
is 2017-06 … 2019-05.
"""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from features.identifiers import make_uscc
from features.ingest import ingest_delivery
from features.view.context import ViewContext, load_policy
from features.view.engine import duckdb_tables, spark_session, spark_tables
from features.view.pboc import FEATURES, build
from tests.features.conftest import entity, person, write_delivery

AS_OF = dt.date(2019, 6, 15)
Rows = list[dict[str, Any]]
SYMBOLS = {  # status symbol → (severity, delinquent, 60+ days)
    "N": (0, 0, 0),
    "M": (0, 0, 0),
    "*": (0, 0, 0),
    "#": (0, 0, 0),
    "C": (0, 0, 0),
    "/": (0, 0, 0),
    "1": (1, 1, 0),
    "2": (2, 1, 0),
    "3": (3, 1, 1),
    "4": (4, 1, 1),
    "7": (7, 1, 1),
    "D": (3, 1, 0),
    "Z": (3, 1, 0),
    "B": (7, 1, 1),
    "G": (7, 0, 0),
}


def month_range(first: str, last: str) -> list[str]:
    """Months ``first`` … ``last`` (inclusive) as ``YYYY-MM``."""
    return [f"{p.year:04d}-{p.month:02d}" for p in pd.period_range(first, last, freq="M")]


class Book:
    """Accumulates a delivery: persons, entities and their PBOC records."""

    def __init__(self) -> None:
        self.tables: dict[str, Rows] = {
            name: []
            for name in (
                "persons",
                "entities",
                "pboc_accounts",
                "pboc_monthly",
                "pboc_guarantees",
                "pboc_inquiries",
            )
        }
        self.names: dict[str, str] = {}
        self._seq = 0

    def person(self) -> str:
        self._seq += 1
        row = person(self._seq)
        self.tables["persons"].append(row)
        return str(row["resident_id"])

    def entity(self, name: str, kind: str = "1") -> tuple[str, str]:
        """A new entity (``kind`` 1 企业, 2 个体工商户); returns (uscc, legal rep ID)."""
        rep = self.person()
        row = entity(self._seq, rep, kind=kind)
        self.tables["entities"].append(row)
        self.names[name] = row["uscc"]
        return str(row["uscc"]), rep

    def account(
        self,
        borrower: str,
        opened_on: str,
        months: list[str],
        *,
        account_type: str = "D1",
        guarantee: str = "4",
        amount: float = 1_000_000,
        closed_on: str | None = None,
        changes: dict[str, dict[str, Any]] | None = None,
    ) -> str:
        """An account with one month-end row per month (status N, full balance, class 1).

        ``changes`` maps a month (``YYYY-MM``) to the fields that differ in it.
        """
        account_id = f"A{len(self.tables['pboc_accounts']) + 1:05d}"
        self.tables["pboc_accounts"].append(
            {
                "account_id": account_id,
                "borrower_id": borrower,
                "account_type": account_type,
                "institution_type": "11",
                "institution_id": "B0001",
                "business_type": "81" if account_type == "R2" else "E1",
                "guarantee_method": guarantee,
                "opened_on": opened_on,
                "due_on": None,
                "amount": str(amount),
                "closed_on": closed_on,
            }
        )
        for month in months:
            row = {"status": "N", "balance": amount, "overdue_amount": 0, "five_class": "1"}
            row.update((changes or {}).get(month, {}))
            self.tables["pboc_monthly"].append(
                {"account_id": account_id, "month": month, **{k: str(v) for k, v in row.items()}}
            )
        return account_id

    def inquiry(self, subject: str, day: str, reason: str, institution: str = "B0001") -> None:
        rows = self.tables["pboc_inquiries"]
        rows.append(
            {
                "inquiry_id": f"Q{len(rows) + 1:05d}",
                "subject_id": subject,
                "inquired_on": day,
                "institution_type": "11",
                "institution_id": institution,
                "reason": reason,
            }
        )

    def guarantee(
        self,
        guarantor: str,
        borrower: str,
        started_on: str,
        *,
        liability_type: str = "2",
        amount: float = 500_000,
        five_class: str = "1",
        ended_on: str | None = None,
    ) -> None:
        rows = self.tables["pboc_guarantees"]
        rows.append(
            {
                "guarantee_id": f"G{len(rows) + 1:05d}",
                "guarantor_id": guarantor,
                "borrower_id": borrower,
                "liability_type": liability_type,
                "amount": str(amount),
                "balance": "0",
                "five_class": five_class,
                "started_on": started_on,
                "ended_on": ended_on,
            }
        )


def scenario() -> Book:
    """Every timeline the tests check, one entity each."""
    book = Book()
    # A 60+ day delinquency reported for 2019-06: unknown until July.
    late, _ = book.entity("late")
    book.account(
        late,
        "2017-01-10",
        month_range("2017-01", "2019-08"),
        guarantee="2",
        changes={"2019-06": {"status": "3", "overdue_amount": 30_000, "five_class": "3"}},
    )
    # A 121–150 day delinquency in 2017-06, the first month of the 24-month window.
    window, _ = book.entity("window")
    book.account(
        window,
        "2016-01-05",
        month_range("2016-01", "2020-12"),
        changes={"2017-06": {"status": "5"}},
    )
    # Two accounts late in overlapping months, one of them also before the window and in
    # its last month: each late month counts once for the entity.
    overlap, _ = book.entity("overlapping accounts")
    book.account(
        overlap,
        "2016-01-04",
        month_range("2016-01", "2019-05"),
        changes={
            "2017-05": {"status": "3"},
            "2018-03": {"status": "1"},
            "2018-04": {"status": "2"},
        },
    )
    book.account(
        overlap,
        "2017-11-20",
        month_range("2017-12", "2019-05"),
        changes={month: {"status": "3"} for month in ("2018-04", "2018-05", "2019-05")},
    )
    # One status symbol each, reported for 2019-03.
    for symbol in SYMBOLS:
        uscc, _ = book.entity(f"symbol {symbol}")
        book.account(
            uscc,
            "2019-01-02",
            month_range("2019-01", "2019-05"),
            changes={"2019-03": {"status": symbol}},
        )
    # Balances and utilisation.
    util, _ = book.entity("utilisation")
    book.account(
        util,
        "2018-01-01",
        month_range("2018-01", "2019-06"),
        account_type="R2",
        amount=100_000,
        changes={
            "2019-04": {"five_class": "6"},
            "2019-05": {"balance": 25_000},
            "2019-06": {"balance": 99_000, "five_class": "5"},
        },
    )
    book.account(
        util,
        "2018-03-01",
        month_range("2018-03", "2019-05"),
        account_type="R1",
        guarantee="1",
        amount=300_000,
        changes={"2019-05": {"balance": 150_000, "five_class": "9"}},
    )
    book.account(
        util,
        "2018-06-01",
        month_range("2018-06", "2019-05"),
        guarantee="3",
        closed_on="2019-06-15",  # closes on the as-of day: still open then
        changes={"2019-05": {"balance": 600_000, "five_class": "2"}},
    )
    book.account(  # closed before as-of: its last reported balance is gone
        util,
        "2017-01-01",
        month_range("2017-01", "2019-05"),
        guarantee="2",
        amount=500_000,
        closed_on="2019-06-10",
        changes={"2019-05": {"balance": 100_000, "overdue_amount": 7}},
    )
    book.account(util, "2019-06-14", [], account_type="R2", amount=50_000)  # no month yet
    book.account(util, "2019-06-15", ["2019-06"], amount=200_000)  # opened on the as-of day
    unclassified, _ = book.entity("unclassified")
    book.account(
        unclassified,
        "2019-01-02",
        month_range("2019-01", "2019-05"),
        changes={m: {"five_class": "9"} for m in month_range("2019-01", "2019-05")},
    )
    # Inquiries around 2019-06-15 (12 months back: 2018-06-15; 1 month back: 2019-05-15).
    inquired, _ = book.entity("inquiries")
    for day, reason, institution in [
        ("2019-06-15", "02", "X"),  # on the as-of day: not yet
        ("2019-06-14", "02", "X"),
        ("2019-05-15", "24", "Y"),  # exactly one month back: in the 1-month window
        ("2019-05-14", "03", "Y"),
        ("2019-01-10", "26", "Z"),
        ("2018-09-01", "08", "W"),  # 12 months only
        ("2018-06-14", "02", "V"),  # a day too old
        ("2019-03-01", "01", "X"),
        ("2018-12-01", "21", "X"),
        ("2019-04-01", "22", "X"),  # related-party review: neither pre- nor post-loan
        ("2019-02-01", "09", "C"),
    ]:
        book.inquiry(inquired, day, reason, institution)
    first_seen, _ = book.entity("first seen in June")
    book.inquiry(first_seen, "2019-06-15", "02")  # on the as-of day
    # A report shows the query records of the last two years (from 2017-06-15 on).
    book.inquiry(book.entity("inquired two years back")[0], "2017-06-15", "02")
    book.inquiry(book.entity("inquired too long ago")[0], "2017-06-14", "02")
    # Guarantees: the borrower's class 次级 in 2019-03 and 2019-04 only.
    borrower, _ = book.entity("guaranteed borrower")
    bad = {"five_class": "3"}
    book.account(
        borrower,
        "2018-01-05",
        month_range("2018-01", "2019-12"),
        changes={"2019-03": bad, "2019-04": bad},
    )
    guarantor, _ = book.entity("guarantor")
    outside = make_uscc("9", "1", "330102", "MA000777")
    book.guarantee(guarantor, borrower, "2018-01-05")
    book.guarantee(guarantor, outside, "2018-05-01", amount=200_000, ended_on="2019-06-10")
    book.guarantee(guarantor, borrower, "2018-01-01", liability_type="1", amount=999)
    book.guarantee(guarantor, outside, "2019-06-15", amount=1)  # starts on the as-of day
    late_guarantor, _ = book.entity("late guarantor")
    book.guarantee(late_guarantor, borrower, "2019-05-02")  # after the borrower recovered
    snapshot, _ = book.entity("snapshot guarantor")
    book.guarantee(snapshot, outside, "2018-05-01", five_class="4")
    # An individual business's owner borrows as a person; an enterprise's legal rep too.
    business, owner = book.entity("individual business", kind="2")
    book.account(owner, "2018-01-01", month_range("2018-01", "2019-05"))
    book.inquiry(owner, "2019-01-01", "02")
    book.inquiry(business, "2019-02-01", "02")
    _, rep = book.entity("enterprise with an indebted rep")
    book.account(rep, "2018-01-01", month_range("2018-01", "2019-05"))
    book.inquiry(book.person(), "2019-01-01", "02")  # a private person: no entity
    return book


def ingest(book: Book, folder: Path) -> Path:
    """Ingest ``book`` as one delivery; every row must pass validation."""
    warehouse = folder / "warehouse.duckdb"
    outcome = ingest_delivery(write_delivery(folder / "delivery", book.tables), warehouse)
    assert {t: o.quarantined for t, o in outcome.tables.items() if o.quarantined} == {}
    return warehouse


def view(warehouse: Path, as_of: dt.date) -> pd.DataFrame:
    """The PBOC view as of ``as_of`` on DuckDB, indexed by uscc."""
    with duckdb_tables(warehouse) as (_, tables):
        frame = build(ViewContext(tables, as_of, load_policy())).execute()
    return frame.set_index("uscc").sort_index()


@pytest.fixture(scope="module")
def book() -> Book:
    return scenario()


@pytest.fixture(scope="module")
def warehouse(book: Book, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ingest(book, tmp_path_factory.mktemp("pboc"))


@pytest.fixture(scope="module")
def at(warehouse: Path, book: Book) -> Any:
    """``at(as_of, name)``: the row of the named entity (None if it has no row)."""
    cache: dict[dt.date, pd.DataFrame] = {}

    def row(as_of: dt.date, name: str) -> pd.Series | None:
        if as_of not in cache:
            cache[as_of] = view(warehouse, as_of)
        frame = cache[as_of]
        uscc = book.names[name]
        return frame.loc[uscc] if uscc in frame.index else None

    return row


def test_columns_are_the_features_one_row_per_entity(warehouse: Path) -> None:
    frame = view(warehouse, AS_OF).reset_index()
    assert list(frame.columns) == ["uscc", *(f.name for f in FEATURES)]
    assert frame.uscc.is_unique
    for spec in FEATURES:
        expected = "int64" if spec.kind == "flag" else "float64"
        assert str(frame[spec.name].dtype) == expected, spec.name
        if spec.kind == "flag":
            assert set(frame[spec.name]) <= {0, 1}


def test_feature_metadata() -> None:
    names = [f.name for f in FEATURES]
    assert len(names) == len(set(names)) >= 28
    assert all(n.startswith(("pboc_", "inq_")) for n in names)
    assert {f.source for f in FEATURES} == {"pboc"}
    missing_means_unknown = {n for n in names if "since" in n or "worst" in n}
    missing_means_unknown |= {"pboc_revolving_utilisation", "pboc_balance_to_amount"}
    assert {f.name for f in FEATURES if f.fill is None} == missing_means_unknown


def test_delinquency_counts_only_once_its_month_is_over(at: Any) -> None:
    for as_of in (AS_OF, dt.date(2019, 6, 30)):
        before = at(as_of, "late")
        assert before.pboc_worst_status_24m == 0
        assert before.pboc_delinquent_months_24m == 0
        assert np.isnan(before.pboc_months_since_delinquency)
        assert before.pboc_delinquent_accounts_latest == 0
        assert before.pboc_overdue_amount_latest == 0
        assert before.pboc_worst_five_class_latest == 1
    after = at(dt.date(2019, 7, 1), "late")
    assert after.pboc_worst_status_24m == 3
    assert after.pboc_delinquent_months_24m == 1
    assert after.pboc_60dpd_months_24m == 1
    assert after.pboc_months_since_delinquency == 1
    assert after.pboc_delinquent_accounts_latest == 1
    assert after.pboc_overdue_amount_latest == 30_000
    assert after.pboc_worst_five_class_latest == 3
    cured = at(dt.date(2019, 8, 1), "late")
    assert (cured.pboc_delinquent_accounts_latest, cured.pboc_worst_status_24m) == (0, 3)
    assert cured.pboc_months_since_delinquency == 2


def test_24_month_window_and_5_year_retention(at: Any) -> None:
    inside = at(AS_OF, "window")  # window 2017-06 … 2019-05
    assert (inside.pboc_worst_status_24m, inside.pboc_delinquent_months_24m) == (5, 1)
    assert inside.pboc_60dpd_months_24m == 1
    assert inside.pboc_months_since_delinquency == 24
    outside = at(dt.date(2019, 7, 1), "window")  # window 2017-07 … 2019-06
    assert (outside.pboc_worst_status_24m, outside.pboc_delinquent_months_24m) == (0, 0)
    assert outside.pboc_months_since_delinquency == 25
    assert at(dt.date(2022, 6, 1), "window").pboc_months_since_delinquency == 60
    assert np.isnan(at(dt.date(2022, 7, 1), "window").pboc_months_since_delinquency)


def test_late_months_are_counted_once_across_accounts(at: Any) -> None:
    row = at(AS_OF, "overlapping accounts")  # window 2017-06 … 2019-05
    # 2018-03, 2018-04 (both accounts), 2018-05, 2019-05; 2017-05 is before the window
    assert row.pboc_delinquent_months_24m == 4
    assert row.pboc_60dpd_months_24m == 3  # 2018-04, 2018-05, 2019-05
    assert row.pboc_worst_status_24m == 3
    assert row.pboc_months_since_delinquency == 1
    later = at(dt.date(2019, 12, 1), "overlapping accounts")  # window 2017-12 … 2019-11
    assert (later.pboc_delinquent_months_24m, later.pboc_60dpd_months_24m) == (4, 3)
    latest = at(dt.date(2020, 6, 1), "overlapping accounts")  # window 2018-06 … 2020-05
    assert (latest.pboc_delinquent_months_24m, latest.pboc_60dpd_months_24m) == (1, 1)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_status_severity(at: Any, symbol: str) -> None:
    severity, delinquent, sixty_plus = SYMBOLS[symbol]
    row = at(AS_OF, f"symbol {symbol}")
    assert row.pboc_worst_status_24m == severity
    assert row.pboc_delinquent_months_24m == delinquent
    assert row.pboc_60dpd_months_24m == sixty_plus


def test_balances_and_utilisation_use_each_open_accounts_latest_month(at: Any) -> None:
    row = at(AS_OF, "utilisation")
    assert row.pboc_accounts_ever == 5  # not the one opened on the as-of day
    assert row.pboc_accounts_open == 4  # one closed five days before
    assert row.pboc_accounts_opened_6m == 1
    first = (AS_OF - dt.date(2017, 1, 1)).days / 30.4375
    assert row.pboc_months_since_first_account == pytest.approx(first)
    assert row.pboc_balance_total == 775_000
    assert row.pboc_balance_secured == 150_000  # 质押
    assert row.pboc_balance_guaranteed == 600_000  # 保证
    assert row.pboc_balance_unsecured == 25_000  # 信用
    assert row.pboc_overdue_amount_latest == 0  # the closed account's arrears are gone
    assert row.pboc_revolving_utilisation == pytest.approx(175_000 / 400_000)
    assert row.pboc_balance_to_amount == pytest.approx(775_000 / 1_400_000)
    assert row.pboc_worst_five_class_latest == 2  # 9 未分类 ignored, June unknown
    assert row.pboc_worst_five_class_24m == 5  # 6 违约 counts as 5 损失
    later = at(dt.date(2019, 7, 1), "utilisation")
    assert later.pboc_revolving_utilisation == pytest.approx((99_000 + 150_000) / 400_000)
    assert later.pboc_accounts_open == 4  # the 保证 loan closed, the new loan opened


def test_unclassified_and_missing_history_stay_missing(at: Any) -> None:
    row = at(AS_OF, "unclassified")
    assert np.isnan(row.pboc_worst_five_class_latest)
    assert np.isnan(row.pboc_worst_five_class_24m)
    assert row.pboc_worst_status_24m == 0
    thin = at(AS_OF, "inquiries")
    assert (thin.pboc_has_file, thin.pboc_has_credit_history, thin.pboc_accounts_ever) == (1, 0, 0)
    for name in ("pboc_worst_status_24m", "pboc_revolving_utilisation", "pboc_balance_to_amount"):
        assert np.isnan(thin[name])


def test_inquiry_windows_and_reason_groups(at: Any) -> None:
    row = at(AS_OF, "inquiries")
    counts = [row[f"inq_preloan_{m}m"] for m in (1, 3, 6, 12)]
    assert counts == [2, 3, 4, 5]
    assert row.inq_postloan_12m == 2
    assert row.inq_preloan_institutions_6m == 3  # X, Y, Z
    assert row.inq_judicial_12m == 1


def test_a_report_shows_inquiries_of_the_last_two_years(at: Any) -> None:
    shown = at(AS_OF, "inquired two years back")
    assert (shown.pboc_has_file, shown.inq_preloan_12m) == (1, 0)
    assert at(AS_OF, "inquired too long ago") is None  # no record a report would show


def test_an_entity_exists_once_its_first_record_is_known(at: Any) -> None:
    assert at(AS_OF, "first seen in June") is None
    assert at(dt.date(2019, 7, 1), "first seen in June").inq_preloan_1m == 1


def test_guarantees_given(at: Any) -> None:
    early = at(dt.date(2019, 3, 20), "guarantor")
    assert early.pboc_guarantees_active == 2  # co-borrowing is not a guarantee
    assert early.pboc_guarantee_amount_active == 700_000
    assert early.pboc_guarantee_substandard == 0  # the borrower's March is not known yet
    april = at(dt.date(2019, 4, 1), "guarantor")
    assert april.pboc_guarantee_substandard == 1
    june = at(AS_OF, "guarantor")
    assert (june.pboc_guarantees_active, june.pboc_guarantee_amount_active) == (1, 500_000)
    assert june.pboc_guarantee_substandard == 1
    assert at(AS_OF, "late guarantor").pboc_guarantee_substandard == 0  # bad before it began


def test_guarantee_snapshot_counts_only_after_its_delivery(at: Any) -> None:
    assert at(AS_OF, "snapshot guarantor").pboc_guarantee_substandard == 0
    assert at(dt.date(2021, 2, 1), "snapshot guarantor").pboc_guarantee_substandard == 1


def test_owner_records_belong_to_the_individual_business_only(
    at: Any, book: Book, warehouse: Path
) -> None:
    row = at(AS_OF, "individual business")
    assert row.pboc_accounts_ever == 1
    assert row.inq_preloan_6m == 2  # one on the owner, one on the business
    assert at(AS_OF, "enterprise with an indebted rep") is None
    with duckdb_tables(warehouse) as (_, tables):
        rows = build(ViewContext(tables, AS_OF, load_policy())).count().execute()
    # not the rep's enterprise, the one first seen in June, the one inquired too long ago
    entities_with_records = len(book.names) - 3
    assert rows == entities_with_records


def truncate(book: Book, as_of: dt.date) -> Book:
    """``book`` as it could have been delivered on ``as_of``: nothing dated on or after it.

    Snapshot fields of guarantees (balance, class) are scrambled: the real delivery is
    later than ``as_of``, so they must not matter.
    """
    day, month = as_of.isoformat(), f"{as_of:%Y-%m}"
    cut = copy.deepcopy(book)
    tables = cut.tables
    tables["pboc_accounts"] = [a for a in tables["pboc_accounts"] if a["opened_on"] < day]
    kept = {a["account_id"] for a in tables["pboc_accounts"]}
    for a in tables["pboc_accounts"]:
        if a["closed_on"] is not None and a["closed_on"] >= day:
            a["closed_on"] = None
    tables["pboc_monthly"] = [
        m for m in tables["pboc_monthly"] if m["month"] < month and m["account_id"] in kept
    ]
    tables["pboc_inquiries"] = [q for q in tables["pboc_inquiries"] if q["inquired_on"] < day]
    tables["pboc_guarantees"] = [g for g in tables["pboc_guarantees"] if g["started_on"] < day]
    for g in tables["pboc_guarantees"]:
        if g["ended_on"] is not None and g["ended_on"] >= day:
            g["ended_on"] = None
        g["balance"], g["five_class"] = g["amount"], "9"
    return cut


@pytest.mark.parametrize("as_of", [dt.date(2019, 3, 20), AS_OF, dt.date(2019, 7, 1)])
def test_nothing_dated_on_or_after_as_of_matters(
    book: Book, warehouse: Path, as_of: dt.date, tmp_path: Path
) -> None:
    full = view(warehouse, as_of)
    known = view(ingest(truncate(book, as_of), tmp_path), as_of)
    pd.testing.assert_frame_equal(full, known)


@pytest.fixture(scope="module")
def spark() -> Any:
    """One local Spark session for the module (starting one takes seconds).

    Not stopped: ``getOrCreate`` shares it with the other view tests of this process.
    """
    return spark_session("wzcredit-test-pboc")


@pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")  # pyspark on pandas 3
def test_duckdb_and_spark_agree(
    warehouse: Path, spark: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("parquet")
    as_of = dt.date(2019, 7, 1)  # one as-of: a Spark run of the view takes ~10 s here
    with spark_tables(warehouse, folder, session=spark) as (_, tables):
        on_spark = build(ViewContext(tables, as_of, load_policy())).execute()
    on_spark = on_spark.set_index("uscc").sort_index()
    on_duckdb = view(warehouse, as_of)
    pd.testing.assert_index_equal(on_spark.index, on_duckdb.index)
    assert on_duckdb.pboc_delinquent_months_24m.sum() > 0  # the comparison is not vacuous
    for spec in FEATURES:
        np.testing.assert_allclose(
            on_spark[spec.name].to_numpy(dtype=float),
            on_duckdb[spec.name].to_numpy(dtype=float),
            rtol=1e-9,
            atol=1e-9,
            err_msg=spec.name,
        )
