"""Small, hand-made, valid deliveries that tests then break one field at a time."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from features.catalog import load_catalog
from features.identifiers import make_resident_id, make_uscc

DELIVERED_ON = dt.date(2021, 1, 15)

Rows = list[dict[str, Any]]


def person(seq: int, district: str = "330302", town: str | None = None) -> dict[str, Any]:
    birth = dt.date(1970 + seq % 30, 1 + seq % 12, 1 + seq % 28)
    return {
        "resident_id": make_resident_id(district, birth, seq),
        "name": f"测试{seq}",
        "birth_date": birth.isoformat(),
        "household_id": f"H{seq:05d}",
        "district": district,
        "town": town,
        "village": None,
    }


def entity(seq: int, legal_rep_id: str, **overrides: Any) -> dict[str, Any]:
    kind = overrides.pop("kind", "1")
    area = overrides.pop("area", "330302")
    row = {
        "uscc": make_uscc("9", kind, area, f"MA{seq:06d}"),
        "name": f"测试主体{seq}",
        "entity_type": {"1": "企业", "2": "个体工商户", "3": "农民专业合作社"}[kind],
        "industry": "C",
        "district": area,
        "town": None,
        "village": None,
        "registered_on": "2012-03-01",
        "deregistered_on": None,
        "registered_capital": "1000000",
        "employees": "12",
        "legal_rep_id": legal_rep_id,
        "is_small_micro": "true",
        "is_agricultural": "false",
        "is_young_entrepreneur": "false",
    }
    row.update(overrides)
    return row


def penalty(seq: int, uscc: str, **overrides: Any) -> dict[str, Any]:
    row = {
        "case_no": f"温市监罚〔2019〕{seq}号",
        "uscc": uscc,
        "authority": "温州市市场监督管理局",
        "penalty_type": "罚款",
        "amount": "5000",
        "procedure": "普通",
        "severity": "一般",
        "domain": "一般",
        "decided_on": "2019-06-03",
        "published_on": "2019-06-05",
        "publicity_end_on": "2022-06-03",
    }
    row.update(overrides)
    return row


def base_tables(n_entities: int = 6) -> dict[str, Rows]:
    """A registry with one person per entity and one penalty per entity."""
    persons = [person(i + 1) for i in range(n_entities)]
    entities = [entity(i + 1, persons[i]["resident_id"]) for i in range(n_entities)]
    penalties = [penalty(i + 1, e["uscc"]) for i, e in enumerate(entities)]
    return {"persons": persons, "entities": entities, "admin_penalties": penalties}


def write_delivery(
    directory: Path,
    tables: dict[str, Rows],
    *,
    fmt: str = "csv",
    delivery_id: str | None = "test-delivery-1",
    delivered_on: dt.date = DELIVERED_ON,
) -> Path:
    """Write ``tables`` as a delivery folder, columns in catalog order, all values as text."""
    catalog = load_catalog()
    directory.mkdir(parents=True, exist_ok=True)
    for table, rows in tables.items():
        columns = catalog.item(table).column_names
        arrow = pa.table({c: pa.array([r.get(c) for r in rows], pa.string()) for c in columns})
        if fmt == "csv":
            pacsv.write_csv(arrow, directory / f"{table}.csv")
        else:
            pq.write_table(arrow, directory / f"{table}.parquet")
    meta: dict[str, str] = {"delivered_on": delivered_on.isoformat()}
    if delivery_id is not None:
        meta["delivery_id"] = delivery_id
    (directory / "delivery.json").write_text(json.dumps(meta), encoding="utf-8")
    return directory
