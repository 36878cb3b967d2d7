"""Labels from hand-made timelines: which defaults count, when, and for whom."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from features.ingest import ingest_delivery
from features.view.engine import duckdb_tables
from models.labels import labels
from tests.features.conftest import entity, person

MakeDelivery = Callable[..., Path]


def account(aid: str, borrower: str) -> dict[str, Any]:
    return {"account_id": aid, "borrower_id": borrower, "account_type": "D1",
            "institution_type": "11", "institution_id": "B1", "business_type": "41",
            "guarantee_method": "4", "opened_on": "2016-01-05", "due_on": "2022-01-05",
            "amount": "500000", "closed_on": None}  # fmt: skip


def month(aid: str, ym: str, status: str) -> dict[str, Any]:
    return {"account_id": aid, "month": ym, "status": status, "balance": "1000",
            "overdue_amount": "0" if status == "N" else "500", "five_class": "1"}  # fmt: skip


def loan(lid: str, borrower: str, status: str, overdue_days: int) -> dict[str, Any]:
    return {"loan_id": lid, "borrower_id": borrower, "lender_type": "个人", "lender_count": "1",
            "amount": "3000000", "annual_rate": "15", "contract_on": "2017-01-01",
            "registered_on": "2017-01-10", "term_months": "24", "due_on": "2019-01-01",
            "collateral": "房产", "purpose": "生产经营", "status": status,
            "overdue_days": str(overdue_days), "settled_on": None}  # fmt: skip


def build(make_delivery: MakeDelivery, warehouse: Path) -> dict[str, str]:
    people = [person(i) for i in range(1, 8)]
    firms = [entity(i, people[i - 1]["resident_id"]) for i in range(1, 7)]
    shop = entity(7, people[6]["resident_id"], kind="2")  # owner liable: her loans are the shop's
    firms[5]["deregistered_on"] = "2018-09-01"
    u = [f["uscc"] for f in firms] + [shop["uscc"]]
    tables = {
        "persons": people,
        "entities": [*firms, shop],
        "pboc_accounts": [account("A0", u[0]), account("A1", u[1])],
        "pboc_monthly": [
            month("A0", "2018-06", "4"),  # 91+ DPD in June 2018: reported in July
            month("A1", "2018-06", "3"),  # 61–90: not a default
        ],
        # delivered 2021-01-15, 600 days overdue: overdue since 2019-05-25, 91 days past due
        # on 2019-08-24 (outside the window of as-of 2018-06-30); 950 days: 91 days past due
        # on 2018-09-08 (inside)
        "private_loans": [
            loan("L2", u[2], "违约", 600),
            loan("L6", people[6]["resident_id"], "违约", 950),
        ],
        "dishonest_debtors": [
            {"case_no": "C3", "subject_id": u[3], "court": "温州中院", "amount": "1",
             "listed_on": "2018-12-01", "removed_on": None},
            {"case_no": "C4", "subject_id": u[4], "court": "温州中院", "amount": "1",
             "listed_on": "2018-03-01", "removed_on": None},
        ],
    }  # fmt: skip
    ingest_delivery(make_delivery(tables), warehouse)
    return {"pboc": u[0], "dpd60": u[1], "loan_late": u[2], "court": u[3], "prior": u[4],
            "closed": u[5], "shop": u[6]}  # fmt: skip


def frame(warehouse: Path, as_of: dt.date) -> pd.DataFrame:
    with duckdb_tables(warehouse) as (_, tables):
        return labels(tables, as_of).to_pandas().set_index("uscc")


def test_which_events_are_defaults_in_the_window(
    make_delivery: MakeDelivery, warehouse: Path
) -> None:
    who = build(make_delivery, warehouse)
    got = frame(warehouse, dt.date(2018, 6, 30))
    assert got.loc[who["pboc"], "default_12m"] == 1  # status 4 reported 2018-07-01
    assert got.loc[who["pboc"], "default_on"] == pd.Timestamp("2018-07-01")
    assert got.loc[who["dpd60"], "default_12m"] == 0
    assert got.loc[who["loan_late"], "default_12m"] == 0  # passes 90 days after the window
    assert got.loc[who["court"], "default_12m"] == 1
    assert got.loc[who["shop"], "default_12m"] == 1  # the owner's private-loan default
    assert who["prior"] not in got.index  # defaulted before as-of: not in the sample


def test_exits_without_default_are_goods_and_flagged(
    make_delivery: MakeDelivery, warehouse: Path
) -> None:
    who = build(make_delivery, warehouse)
    got = frame(warehouse, dt.date(2018, 6, 30))
    assert got.loc[who["closed"], "default_12m"] == 0
    assert got.loc[who["closed"], "deregistered_in_window"] == 1
    assert who["closed"] not in frame(warehouse, dt.date(2018, 10, 1)).index


def test_the_window_moves_with_as_of(make_delivery: MakeDelivery, warehouse: Path) -> None:
    who = build(make_delivery, warehouse)
    later = frame(warehouse, dt.date(2019, 1, 1))
    assert who["pboc"] not in later.index  # its default was known on 2018-07-01
    assert later.loc[who["loan_late"], "default_12m"] == 1  # 2019-08-24 now inside
    early = frame(warehouse, dt.date(2017, 6, 30))
    assert early.loc[who["court"], "default_12m"] == 0  # 2018-12-01 is beyond 12 months
