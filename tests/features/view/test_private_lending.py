"""Private-lending features: point in time, the legal caps and registration as positive evidence."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from features.ingest import ingest_delivery
from features.view.context import ViewContext, load_policy
from features.view.engine import duckdb_tables, spark_session, spark_tables
from features.view.private_lending import FEATURES, build
from tests.features.conftest import DELIVERED_ON, entity, person, write_delivery

Row = dict[str, Any]
Rows = list[Row]
AS_OF = dt.date(2019, 6, 30)
NAMES = [f.name for f in FEATURES]
PERFORMANCE = [
    "pl_loans_overdue",
    "pl_max_days_past_due",
    "pl_loans_defaulted_5y",
    "pl_months_since_last_overdue",
]
MONTH = 30.4375
MICRO = "小额贷款公司"


def days(start: str, end: dt.date = DELIVERED_ON) -> int:
    return (end - dt.date.fromisoformat(start)).days


def loan(seq: int, borrower: str, contract: str, registered: str, due: str, **kw: Any) -> Row:
    """A loan contracted, registered and due on the given days (current, ¥1m at 15 %)."""
    row = {"loan_id": f"WZMJ{seq:010d}", "borrower_id": borrower, "lender_type": "个人",
           "lender_count": "1", "amount": "1000000", "annual_rate": "15",
           "contract_on": contract, "registered_on": registered, "term_months": "12",
           "due_on": due, "collateral": "房产", "purpose": "生产经营", "status": "正常",
           "overdue_days": "0", "settled_on": None}  # fmt: skip
    row.update({k: None if v is None else str(v) for k, v in kw.items()})
    return row


def overdue_since(
    start: str, status: str = "违约", delivered_on: dt.date = DELIVERED_ON
) -> dict[str, Any]:
    """The delivered status of a loan overdue since ``start`` (days counted to delivery)."""
    return {"status": status, "overdue_days": days(start, delivered_on)}


def index_rows(until: dt.date = DELIVERED_ON) -> Rows:
    """温州指数 at 15 % every month (16 % in 2017-01) for the months before ``until``."""
    rows = []
    for year in range(2011, until.year + 1):
        for month in range(1, 13):
            if dt.date(year, month, 1) < until.replace(day=1):
                rate = "16.0" if (year, month) == (2017, 1) else "15.0"
                rows.append({"month": f"{year}-{month:02d}", "composite_rate": rate})
    return rows


#: LPR with a made-up cut in 2020-09 so that "the latest one before the contract" matters
LPR = {"2019-08-20": "4.25", "2020-02-20": "4.05", "2020-08-20": "3.85", "2020-09-21": "3.50",
       "2020-10-20": "3.50", "2020-12-21": "3.50"}  # fmt: skip


def lpr_rows(until: dt.date = DELIVERED_ON) -> Rows:
    return [
        {"published_on": d, "one_year_rate": r} for d, r in LPR.items() if d <= until.isoformat()
    ]


def registry() -> dict[str, Rows]:
    """Seven entities; the second is a 个体工商户 whose owner borrows under a resident ID."""
    persons = [person(i + 1) for i in range(7)]
    entities = [
        entity(i + 1, p["resident_id"], kind="2" if i == 1 else "1") for i, p in enumerate(persons)
    ]
    return {"persons": persons, "entities": entities}


REG = registry()
A, B, C, D, F, G, E = (e["uscc"] for e in REG["entities"])
OWNER_B = REG["persons"][1]["resident_id"]
REP_A = REG["persons"][0]["resident_id"]  # legal representative of an enterprise: not the entity

LOANS_A = [
    loan(1, A, "2017-01-10", "2017-01-12", "2018-01-10",
         status="结清", settled_on="2018-01-10", annual_rate=18, amount=2_000_000, lender_count=3),
    loan(2, A, "2018-06-01", "2018-06-30", "2019-05-01",
         annual_rate=30, **overdue_since("2019-05-01", "逾期")),
    loan(3, A, "2019-01-10", "2019-01-11", "2020-01-10", lender_type=MICRO, annual_rate=26,
         amount=500_000, status="结清", settled_on="2020-01-10"),
    loan(4, A, "2019-06-20", "2019-07-02", "2020-06-20"),
    loan(5, REP_A, "2018-01-10", "2018-01-11", "2019-01-10", **overdue_since("2018-03-01")),
]  # fmt: skip
LOANS_OTHERS = [
    loan(10, OWNER_B, "2015-06-01", "2015-06-05", "2015-12-01",
         **overdue_since("2016-01-01")),
    # C: a default settled more than 5 years ago, one settled within, a short overdue
    loan(20, C, "2011-06-01", "2011-06-03", "2011-12-01",
         settled_on="2013-06-01", **overdue_since("2012-01-01")),
    loan(21, C, "2013-06-01", "2013-06-03", "2013-12-01",
         settled_on="2015-01-01", **overdue_since("2014-01-01")),
    loan(22, C, "2017-06-01", "2017-06-03", "2018-01-01",
         settled_on="2018-02-15", **overdue_since("2018-01-01")),
    # F: contracted in the as-of month, whose 温州指数 is not published yet
    loan(30, F, "2019-06-03", "2019-06-05", "2020-06-03", annual_rate=20),
    # G: overdue only from 2019-09-01, after AS_OF
    loan(40, G, "2019-01-15", "2019-01-20", "2019-09-01",
         **overdue_since("2019-09-01")),
    # E: caps after 2020-08-20 (4 × LPR at contract); the micro-loan company is exempt
    loan(50, E, "2020-08-10", "2020-08-12", "2021-08-10", annual_rate=20),
    loan(51, E, "2020-08-20", "2020-08-22", "2021-08-20", annual_rate=15.5),
    loan(52, E, "2020-09-10", "2020-09-12", "2021-09-10", annual_rate=15),
    loan(53, E, "2020-09-25", "2020-09-28", "2021-09-25", annual_rate=15),
    loan(54, E, "2020-09-25", "2020-09-28", "2021-09-25", annual_rate=30, lender_type=MICRO),
]  # fmt: skip


def make_warehouse(folder: Path, loans: Rows, delivered_on: dt.date = DELIVERED_ON) -> Path:
    tables = {**REG, "private_loans": loans, "wenzhou_index": index_rows(delivered_on),
              "lpr": lpr_rows(delivered_on)}  # fmt: skip
    delivery = write_delivery(folder / "delivery", tables, delivered_on=delivered_on)
    warehouse = folder / "warehouse.duckdb"
    outcome = ingest_delivery(delivery, warehouse)
    assert outcome.quarantined == 0, outcome.to_dict()
    return warehouse


def features(warehouse: Path, as_of: dt.date) -> pd.DataFrame:
    with duckdb_tables(warehouse) as (_, tables):
        frame = build(ViewContext(tables, as_of, load_policy())).execute()
    assert frame["uscc"].is_unique
    return frame.set_index("uscc")


def row(frame: pd.DataFrame, uscc: str) -> dict[str, Any]:
    """A row as a dict, NaN as None."""
    return {k: None if pd.isna(v) else v for k, v in frame.loc[uscc].items()}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_warehouse(tmp_path_factory.mktemp("scenario"), LOANS_A + LOANS_OTHERS)


# ---------------------------------------------------------------------------------------------
def test_metadata() -> None:
    assert len(NAMES) == len(set(NAMES)) >= 14
    assert all(
        n.startswith("pl_") and f.source == "private_lending"
        for n, f in zip(NAMES, FEATURES, strict=True)
    )
    spec = {f.name: f for f in FEATURES}
    # DOMAIN §4.2: describing registered loans as such may only help
    for name in ("pl_has_registered_loan", "pl_loans", "pl_amount", "pl_loans_good_standing",
                 "pl_loans_settled_on_time"):  # fmt: skip
        assert spec[name].direction == -1
    assert spec["pl_has_registered_loan"].kind == "flag"
    # no registered loan = a loan that says nothing either way: 0 everywhere, so a loan in
    # good standing, fairly priced and filed on time is never less favourable on any feature
    # (0 is the least favourable value of the -1 features, the most favourable of the +1);
    # only "months since the last overdue episode" stays missing: never overdue
    assert {name: f.fill for name, f in spec.items() if f.fill != 0} == {
        "pl_months_since_last_overdue": None
    }


def test_columns_types_and_population(scenario: Path) -> None:
    with duckdb_tables(scenario) as (_, tables):
        frame = build(ViewContext(tables, AS_OF, load_policy())).execute()
    assert list(frame.columns) == ["uscc", *NAMES]
    assert frame["pl_has_registered_loan"].dtype == "int64"
    assert all(frame[n].dtype == "float64" for n in NAMES[1:])
    # D has no loan, E's loans are registered after AS_OF; the legal representative's own
    # loan is not the enterprise's
    assert sorted(frame["uscc"]) == sorted([A, B, C, F, G])


def test_values_of_one_entity(scenario: Path) -> None:
    a = row(features(scenario, AS_OF), A)
    assert a == pytest.approx({
        "pl_has_registered_loan": 1, "pl_loans": 3, "pl_amount": 3_500_000,
        "pl_months_since_first_registration": days("2017-01-12", AS_OF) / MONTH,
        "pl_loans_good_standing": 2, "pl_loans_settled_on_time": 1,
        "pl_share_ever_overdue": 1 / 3, "pl_loans_overdue": 1, "pl_max_days_past_due": 60,
        "pl_loans_defaulted_5y": 0, "pl_months_since_last_overdue": 60 / MONTH,
        "pl_rate_spread_max": 15, "pl_rate_spread_mean": (2 + 15 + 11) / 3,
        "pl_share_above_legal_cap": 1 / 2, "pl_max_lender_count": 3,
        "pl_share_registered_late": 1 / 3,
    })  # fmt: skip


def test_owner_loans_default_and_retention(scenario: Path) -> None:
    frame = features(scenario, AS_OF)
    b, c = row(frame, B), row(frame, C)
    assert b["pl_loans_overdue"] == 1
    assert b["pl_max_days_past_due"] == days("2016-01-01", AS_OF)
    assert b["pl_loans_defaulted_5y"] == 1
    # C: the 2012 default ended in 2013, more than 5 years before AS_OF, and is forgotten;
    # the 2014 default was settled in 2015 and still counts; the 2018 episode never reached 91
    assert c["pl_loans_defaulted_5y"] == 1
    assert c["pl_share_ever_overdue"] == pytest.approx(2 / 3)
    assert c["pl_months_since_last_overdue"] == pytest.approx(days("2018-01-01", AS_OF) / MONTH)
    assert (c["pl_loans_overdue"], c["pl_max_days_past_due"]) == (0, 0)
    assert (c["pl_loans_good_standing"], c["pl_loans_settled_on_time"]) == (3, 0)


def test_index_of_the_as_of_month_is_not_known_yet(scenario: Path) -> None:
    f = row(features(scenario, AS_OF), F)
    # no excess can be shown yet: 0, as for an entity without a registered loan
    assert f["pl_rate_spread_max"] == 0
    assert f["pl_rate_spread_mean"] == 0
    assert f["pl_share_above_legal_cap"] == 0  # 20 % < 24 %
    later = row(features(scenario, dt.date(2019, 7, 1)), F)
    assert later["pl_rate_spread_max"] == pytest.approx(5)


def test_legal_cap_uses_the_lpr_at_contract_and_exempts_micro_loan_companies(
    scenario: Path,
) -> None:
    e = row(features(scenario, dt.date(2021, 1, 1)), E)
    # 50: 20 % ≤ 24 % (before 2020-08-20); 51: 15.5 % > 4 × 3.85; 52: 15 % ≤ 4 × 3.85;
    # 53: 15 % > 4 × 3.50 (LPR of 2020-09-21); 54: micro-loan company, not bound
    assert e["pl_share_above_legal_cap"] == pytest.approx(2 / 4)
    assert e["pl_loans"] == 5


def test_a_default_after_as_of_does_not_show_until_it_happens(scenario: Path) -> None:
    before = row(features(scenario, AS_OF), G)
    assert before["pl_loans_good_standing"] == 1
    assert before["pl_share_ever_overdue"] == 0
    assert before["pl_months_since_last_overdue"] is None
    for name in ("pl_loans_overdue", "pl_max_days_past_due", "pl_loans_defaulted_5y"):
        assert before[name] == 0
    at_90 = row(features(scenario, dt.date(2019, 11, 30)), G)
    assert (at_90["pl_max_days_past_due"], at_90["pl_loans_defaulted_5y"]) == (90, 0)
    at_91 = row(features(scenario, dt.date(2019, 12, 1)), G)
    assert (at_91["pl_max_days_past_due"], at_91["pl_loans_defaulted_5y"]) == (91, 1)
    assert at_91["pl_loans_good_standing"] == 0


def test_nothing_on_or_after_as_of_changes_any_value(tmp_path: Path) -> None:
    """What was delivered on as_of and what was delivered months later give the same view."""
    as_of = dt.date(2020, 10, 15)

    def loans(delivered_on: dt.date) -> Rows:
        late = delivered_on > as_of
        return [
            # overdue at as_of, still unpaid later (违约 by then)
            loan(1, A, "2019-07-01", "2019-07-03", "2020-07-01",
                 **overdue_since("2020-07-01", "违约" if late else "逾期", delivered_on)),
            # current at as_of, overdue from 2020-11-01
            loan(2, A, "2019-11-01", "2019-11-05", "2020-11-01",
                 **(overdue_since("2020-11-01", "逾期", delivered_on) if late else {})),
            # current at as_of, settled later
            loan(3, C, "2020-09-10", "2020-09-12", "2020-12-01",
                 **({"status": "结清", "settled_on": "2020-12-01"} if late else {})),
            # settled before as_of
            loan(4, C, "2019-02-01", "2019-02-05", "2020-02-01",
                 status="结清", settled_on="2020-03-01"),
            # contracted in the as-of month (index unknown), under the LPR of 2020-09-21
            loan(5, F, "2020-10-05", "2020-10-08", "2021-10-05",
                 annual_rate=14.5),
            # a past default settled before as_of
            loan(6, B, "2017-02-01", "2017-02-05", "2017-08-01",
                 settled_on="2018-03-01", **overdue_since("2017-09-01", "违约", delivered_on)),
            # registered on as_of: not known yet
            loan(7, G, "2020-10-10", "2020-10-15", "2021-10-10"),
        ] + ([
            loan(8, G, "2020-10-20", "2020-10-25", "2021-10-20"),
            loan(9, A, "2020-10-12", "2020-10-20", "2021-10-12",
                 annual_rate=40),
        ] if late else [])  # fmt: skip

    early = features(make_warehouse(tmp_path / "early", loans(as_of), as_of), as_of)
    late_warehouse = make_warehouse(tmp_path / "late", loans(DELIVERED_ON))
    late = features(late_warehouse, as_of)
    pd.testing.assert_frame_equal(early.sort_index(), late.sort_index(), rtol=1e-12)
    assert sorted(late.index) == sorted([A, B, C, F])
    assert late.loc[F, "pl_share_above_legal_cap"] == 1  # 14.5 % > 4 × 3.50
    assert not late.equals(features(late_warehouse, DELIVERED_ON).loc[late.index])


CLEAN_LOANS = {
    "current": loan(90, "", "2019-02-01", "2019-02-03", "2020-02-01"),
    "settled": loan(90, "", "2017-05-01", "2017-05-03", "2018-05-01",
                    status="结清", settled_on="2018-05-01", annual_rate=14),
    "micro_loan": loan(90, "", "2019-03-01", "2019-03-02", "2020-03-01", lender_type=MICRO,
                       annual_rate=12),
    "overdue_after_as_of": loan(90, "", "2019-03-01", "2019-03-02", "2019-08-01",
                                **overdue_since("2019-08-01")),
    "filed_late": loan(90, "", "2018-09-01", "2018-11-01", "2019-09-01", amount=50_000,
                       lender_count=40),
}  # fmt: skip


def riskier_moves(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """Features that moved towards risk; ``before`` None: the entity had no loan (fills)."""
    moved = []
    for spec in FEATURES:
        old = spec.fill if before is None else before[spec.name]
        new = after[spec.name]
        if spec.direction == 0 or (old is None and new is None):
            continue
        if old is None:  # no evidence before: a risk feature may only appear at its minimum
            if spec.direction == 1 and new != 0:
                moved.append(spec.name)
            continue
        if new is None or spec.direction * (new - old) > 1e-12:
            moved.append(spec.name)
    return moved


@pytest.fixture(scope="module")
def base_view(scenario: Path) -> pd.DataFrame:
    return features(scenario, AS_OF)


@pytest.mark.parametrize("kind", list(CLEAN_LOANS))
def test_a_loan_in_good_standing_never_raises_risk(
    kind: str, tmp_path: Path, base_view: pd.DataFrame
) -> None:
    """DOMAIN §4.2: a registered loan in good standing (priced at or below the market) can
    only help, both for an entity with a bad record (A) and for one with none (D)."""
    extra = [
        {**CLEAN_LOANS[kind], "loan_id": f"CLEAN{i}", "borrower_id": u}
        for i, u in enumerate((A, D))
    ]
    after = features(make_warehouse(tmp_path, LOANS_A + LOANS_OTHERS + extra), AS_OF)
    assert riskier_moves(row(base_view, A), row(after, A)) == []
    assert riskier_moves(None, row(after, D)) == []
    for name in PERFORMANCE:
        assert row(after, A)[name] == row(base_view, A)[name]
    assert row(after, D)["pl_has_registered_loan"] == 1
    assert (
        row(after, A)["pl_loans_good_standing"] == row(base_view, A)["pl_loans_good_standing"] + 1
    )


def test_an_expensive_loan_in_good_standing_only_moves_the_price_features(
    tmp_path: Path, base_view: pd.DataFrame
) -> None:
    """A rate far above the 温州指数 and the cap is a distress signal of its own (DATA.md)."""
    extra = [loan(91, A, "2019-02-01", "2019-02-03", "2020-02-01", annual_rate=35)]
    after = row(features(make_warehouse(tmp_path, LOANS_A + LOANS_OTHERS + extra), AS_OF), A)
    moved = riskier_moves(row(base_view, A), after)
    assert sorted(moved) == [
        "pl_rate_spread_max",
        "pl_rate_spread_mean",
        "pl_share_above_legal_cap",
    ]


# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def spark() -> Any:
    pytest.importorskip("pyspark")
    return spark_session("wzcredit-test-private-lending")


@pytest.mark.slow
def test_duckdb_and_spark_agree(scenario: Path, spark: Any, tmp_path: Path) -> None:
    policy = load_policy()
    dates = (AS_OF, dt.date(2021, 1, 1))  # overdue, default and retention; the LPR caps
    with duckdb_tables(scenario) as (_, tables):
        expected = [build(ViewContext(tables, d, policy)).execute() for d in dates]
    with spark_tables(scenario, tmp_path / "parquet", session=spark) as (_, tables):
        found = [build(ViewContext(tables, d, policy)).execute() for d in dates]
    for duck, pyspark in zip(expected, found, strict=True):
        want, got = (f.sort_values("uscc").reset_index(drop=True) for f in (duck, pyspark))
        assert list(got.columns) == list(want.columns)
        assert (got.dtypes == want.dtypes).all()
        pd.testing.assert_frame_equal(got, want, rtol=1e-9, atol=1e-9)


def test_a_loan_under_open_objection_is_not_used(tmp_path: Path) -> None:
    objected = loan(60, OWNER_B, "2015-06-01", "2015-06-05", "2015-12-01",
                    **overdue_since("2016-01-01"))  # fmt: skip
    tables = {**REG, "private_loans": [objected], "wenzhou_index": index_rows(),
              "lpr": lpr_rows(),
              "credit_objections": [{
                  "objection_id": "O1", "subject_id": OWNER_B, "record_table": "private_loans",
                  "record_id": objected["loan_id"], "raised_on": "2019-03-01",
                  "resolved_on": None, "outcome": None}]}  # fmt: skip
    warehouse = tmp_path / "warehouse.duckdb"
    outcome = ingest_delivery(write_delivery(tmp_path / "delivery", tables), warehouse)
    assert outcome.quarantined == 0, outcome.to_dict()
    before = features(warehouse, dt.date(2019, 2, 1))
    assert row(before, B)["pl_loans_overdue"] == 1
    during = features(warehouse, dt.date(2019, 4, 1))
    assert B not in during.index  # its only record is hidden while the objection is open
