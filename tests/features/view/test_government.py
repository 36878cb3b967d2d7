"""Government features: point in time, publicity periods, objections and credit repair."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from features.ingest import ingest_delivery
from features.view import government
from features.view.context import ViewContext, load_policy
from features.view.engine import duckdb_tables
from tests.features.conftest import base_tables, entity, penalty, person

MakeDelivery = Callable[..., Path]


def gov_features(warehouse: Path, as_of: dt.date) -> pd.DataFrame:
    with duckdb_tables(warehouse) as (_, tables):
        ctx = ViewContext(tables, as_of, load_policy())
        return government.build(ctx).to_pandas().set_index("uscc")


def value(frame: pd.DataFrame, uscc: str, column: str) -> Any:
    return frame.loc[uscc, column] if uscc in frame.index else None


def objection(oid: str, table: str, record: str, subject: str, **kw: Any) -> dict[str, Any]:
    row = {"objection_id": oid, "subject_id": subject, "record_table": table, "record_id": record,
           "raised_on": "2019-03-01", "resolved_on": None, "outcome": None}  # fmt: skip
    row.update(kw)
    return row


def repair(rid: str, table: str, record: str, subject: str, **kw: Any) -> dict[str, Any]:
    row = {"repair_id": rid, "subject_id": subject, "record_table": table, "record_id": record,
           "applied_on": "2019-02-01", "decided_on": "2019-02-20", "decision": "批准"}  # fmt: skip
    row.update(kw)
    return row


@pytest.fixture
def registry() -> dict[str, list[dict[str, Any]]]:
    tables = base_tables(6)
    tables["admin_penalties"] = []
    return tables


def test_a_penalty_exists_from_its_publication(
    make_delivery: MakeDelivery, warehouse: Path, registry: dict[str, Any]
) -> None:
    uscc = registry["entities"][0]["uscc"]
    registry["admin_penalties"] = [
        penalty(1, uscc, decided_on="2019-05-20", published_on="2019-07-02",
                publicity_end_on="2022-05-20")
    ]  # fmt: skip
    ingest_delivery(make_delivery(registry), warehouse)
    before = gov_features(warehouse, dt.date(2019, 7, 1))
    after = gov_features(warehouse, dt.date(2019, 7, 3))
    assert value(before, uscc, "gov_penalties_12m") in (None, 0)
    assert value(after, uscc, "gov_penalties_12m") == 1


def test_penalties_leave_after_their_publicity_period(
    make_delivery: MakeDelivery, warehouse: Path, registry: dict[str, Any]
) -> None:
    a, b, c = (registry["entities"][i]["uscc"] for i in range(3))
    registry["admin_penalties"] = [
        # delivered end of publicity: in force until 2019-06-01
        penalty(1, a, decided_on="2019-01-10", published_on="2019-01-14",
                publicity_end_on="2019-06-01"),
        # no end delivered: severity 一般 → 3 months (policy), severity 严重 → 36 months
        penalty(2, b, decided_on="2019-01-10", published_on="2019-01-14",
                publicity_end_on=None, severity="一般"),
        penalty(3, c, decided_on="2019-01-10", published_on="2019-01-14",
                publicity_end_on=None, severity="严重"),
    ]  # fmt: skip
    ingest_delivery(make_delivery(registry), warehouse)
    march = gov_features(warehouse, dt.date(2019, 3, 1))
    july = gov_features(warehouse, dt.date(2019, 7, 1))
    assert [value(march, u, "gov_penalties_12m") for u in (a, b, c)] == [1, 1, 1]
    assert [value(july, u, "gov_penalties_12m") for u in (a, b, c)] == [None, None, 1]


def test_summary_procedure_penalties_are_not_negative_information(
    make_delivery: MakeDelivery, warehouse: Path, registry: dict[str, Any]
) -> None:
    uscc = registry["entities"][0]["uscc"]
    registry["admin_penalties"] = [penalty(1, uscc, procedure="简易", penalty_type="警告")]
    ingest_delivery(make_delivery(registry), warehouse)
    assert value(gov_features(warehouse, dt.date(2019, 9, 1)), uscc, "gov_penalties_36m") is None


def test_objections_and_repairs_hide_records(
    make_delivery: MakeDelivery, warehouse: Path, registry: dict[str, Any]
) -> None:
    e = [registry["entities"][i]["uscc"] for i in range(5)]
    registry["admin_penalties"] = [
        penalty(i, e[i], decided_on="2018-10-08", published_on="2018-10-10",
                publicity_end_on="2021-10-08")
        for i in range(5)
    ]  # fmt: skip
    case = [p["case_no"] for p in registry["admin_penalties"]]
    registry["credit_objections"] = [
        # 0: open objection from 2019-03-01: hidden from then on
        objection("O0", "admin_penalties", case[0], e[0]),
        # 1: upheld on 2019-03-08: hidden only while open
        objection("O1", "admin_penalties", case[1], e[1], resolved_on="2019-03-08", outcome="维持"),
        # 2: deleted on 2019-03-08: hidden for good
        objection("O2", "admin_penalties", case[2], e[2], resolved_on="2019-03-08", outcome="删除"),
    ]
    registry["credit_repairs"] = [
        repair("R3", "admin_penalties", case[3], e[3]),  # approved 2019-02-20
        repair("R4", "admin_penalties", case[4], e[4], decision="驳回"),  # rejected
    ]
    ingest_delivery(make_delivery(registry), warehouse)

    def counts(day: dt.date) -> list[Any]:
        frame = gov_features(warehouse, day)
        return [value(frame, u, "gov_penalties_12m") for u in e]

    assert counts(dt.date(2019, 2, 1)) == [1, 1, 1, 1, 1]  # nothing happened yet
    assert counts(dt.date(2019, 3, 5)) == [None, None, None, None, 1]  # objections open
    assert counts(dt.date(2019, 4, 1)) == [None, 1, None, None, 1]  # resolved


def test_lists_are_active_between_listing_and_removal_and_kept_five_years(
    make_delivery: MakeDelivery, warehouse: Path, registry: dict[str, Any]
) -> None:
    a, b = registry["entities"][0]["uscc"], registry["entities"][1]["uscc"]
    registry["abnormal_operations"] = [
        {"record_id": "A1", "uscc": a, "reason": "未按规定报送年度报告",
         "listed_on": "2019-07-01", "removed_on": "2019-10-01"},
        {"record_id": "A2", "uscc": b, "reason": "未按规定报送年度报告",
         "listed_on": "2013-07-01", "removed_on": "2013-10-01"},
    ]  # fmt: skip
    ingest_delivery(make_delivery(registry), warehouse)
    june, august, december = (gov_features(warehouse, dt.date(2019, m, 1)) for m in (6, 8, 12))
    assert value(june, a, "gov_abnormal_listed") is None
    assert value(august, a, "gov_abnormal_listed") == 1
    assert value(december, a, "gov_abnormal_listed") == 0
    assert value(december, a, "gov_abnormal_listings_5y") == 1
    assert value(december, b, "gov_abnormal_listings_5y") is None  # older than 5 years


def test_owners_records_belong_to_their_business_only(
    make_delivery: MakeDelivery, warehouse: Path
) -> None:
    owner, director = person(1), person(2)
    shop = entity(1, owner["resident_id"], kind="2")  # 个体工商户: owner liable
    firm = entity(2, director["resident_id"], kind="1")  # 企业: the director is not the firm
    listing = {"court": "温州市中级人民法院", "amount": "80000", "listed_on": "2019-01-10",
               "removed_on": None}  # fmt: skip
    tables = {
        "persons": [owner, director],
        "entities": [shop, firm],
        "dishonest_debtors": [
            {"case_no": "(2019)浙03执1号", "subject_id": owner["resident_id"], **listing},
            {"case_no": "(2019)浙03执2号", "subject_id": director["resident_id"], **listing},
        ],
    }
    ingest_delivery(make_delivery(tables), warehouse)
    frame = gov_features(warehouse, dt.date(2019, 6, 1))
    assert value(frame, shop["uscc"], "gov_dishonest_debtor") == 1
    assert value(frame, shop["uscc"], "gov_dishonest_debtor_amount") == 80000
    assert value(frame, firm["uscc"], "gov_dishonest_debtor") is None


def test_tax_grade_latest_change_and_publication(
    make_delivery: MakeDelivery, warehouse: Path, registry: dict[str, Any]
) -> None:
    uscc = registry["entities"][0]["uscc"]
    registry["tax_credit"] = [
        {"uscc": uscc, "year": "2017", "grade": "B", "evaluated_on": "2018-04-20"},
        {"uscc": uscc, "year": "2018", "grade": "D", "evaluated_on": "2019-04-20"},
    ]
    ingest_delivery(make_delivery(registry), warehouse)
    before = gov_features(warehouse, dt.date(2019, 4, 1))
    after = gov_features(warehouse, dt.date(2019, 5, 1))
    assert value(before, uscc, "gov_tax_grade") == "B"
    assert pd.isna(value(before, uscc, "gov_tax_grade_change"))
    assert value(after, uscc, "gov_tax_grade") == "D"
    assert value(after, uscc, "gov_tax_grade_ordinal") == 4
    assert value(after, uscc, "gov_tax_grade_change") == 2
    assert value(after, uscc, "gov_tax_d_grades_3y") == 1


def test_output_is_one_row_per_entity_with_the_declared_columns(
    make_delivery: MakeDelivery, warehouse: Path, registry: dict[str, Any]
) -> None:
    uscc = registry["entities"][0]["uscc"]
    registry["admin_penalties"] = [penalty(i, uscc) for i in range(3)]
    registry["red_list"] = [
        {"honour_id": "H1", "uscc": uscc, "honour_type": "守合同重信用", "issuer": "市市场监管局",
         "listed_on": "2018-01-01", "expires_on": "2020-12-31"}
    ]  # fmt: skip
    ingest_delivery(make_delivery(registry), warehouse)
    frame = gov_features(warehouse, dt.date(2019, 9, 1))
    assert list(frame.columns) == [spec.name for spec in government.FEATURES]
    assert frame.index.is_unique
    assert value(frame, uscc, "gov_penalties_36m") == 3
    assert value(frame, uscc, "gov_red_listed") == 1
    assert value(frame, uscc, "gov_negative_records_36m") == 3


def test_a_hidden_listing_leaves_the_negative_record_total(
    make_delivery: MakeDelivery, warehouse: Path, registry: dict[str, Any]
) -> None:
    a, b = registry["entities"][0]["uscc"], registry["entities"][1]["uscc"]
    registry["abnormal_operations"] = [
        {"record_id": f"A{i}", "uscc": u, "reason": "未按规定报送年度报告",
         "listed_on": "2018-07-01", "removed_on": "2018-10-01"}
        for i, u in enumerate((a, b))
    ]  # fmt: skip
    registry["credit_repairs"] = [repair("R0", "abnormal_operations", "A0", a)]  # approved
    # each also has a penalty, so both stay in the government part
    registry["admin_penalties"] = [penalty(i, u) for i, u in enumerate((a, b))]
    ingest_delivery(make_delivery(registry), warehouse)
    frame = gov_features(warehouse, dt.date(2019, 9, 1))
    assert value(frame, b, "gov_negative_records_36m") == 2
    assert value(frame, b, "gov_abnormal_listings_5y") == 1
    # the repaired listing counts nowhere
    assert value(frame, a, "gov_negative_records_36m") == 1
    assert value(frame, a, "gov_abnormal_listings_5y") == 0
