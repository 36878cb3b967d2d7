"""Ingest guarantees: nothing lost, nothing half-written, every bad row named by field and rule."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from features import ingest as ingest_module
from features.catalog import load_catalog
from features.errors import DeliveryConflictError, DeliveryError
from features.identifiers import make_uscc
from features.ingest import ingest_delivery
from features.warehouse import KEYS_TABLE, connect, ensure_schema, row_counts
from tests.features.conftest import base_tables, entity, penalty, person

MakeDelivery = Callable[..., Path]


def snapshot(warehouse: Path) -> dict[str, Any]:
    """Everything a reader could see: row counts, the ledger and the surrogate keys."""
    if not warehouse.exists():
        return {}
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        counts = row_counts(con, load_catalog())
        ledger = con.execute("SELECT * FROM deliveries ORDER BY delivery_id").fetchall()
        keys = con.execute(f"SELECT * FROM {KEYS_TABLE} ORDER BY ALL").fetchall()
    finally:
        con.close()
    return {"counts": counts, "ledger": ledger, "keys": keys}


def quarantine(warehouse: Path) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(
            "SELECT table_name, source_row, field, rule, violations, original_row "
            "FROM quarantine ORDER BY table_name, source_row"
        ).fetchall()
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------
def test_clean_delivery_is_accepted_whole(make_delivery: MakeDelivery, warehouse: Path) -> None:
    outcome = ingest_delivery(make_delivery(base_tables()), warehouse)
    assert outcome.status == "ingested"
    for table in ("persons", "entities", "admin_penalties"):
        assert outcome.tables[table].rows_in == 6
        assert outcome.tables[table].accepted == 6
        assert outcome.tables[table].quarantined == 0
    assert snapshot(warehouse)["counts"]["entities"] == 6


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_rows_in_equals_accepted_plus_quarantined(
    make_delivery: MakeDelivery, warehouse: Path, fmt: str
) -> None:
    tables = base_tables()
    tables["entities"][1]["industry"] = "Z"  # code
    tables["entities"][2]["employees"] = "twelve"  # type
    tables["admin_penalties"][0]["amount"] = "-1"  # range
    tables["admin_penalties"].append(dict(tables["admin_penalties"][3]))  # duplicate
    outcome = ingest_delivery(make_delivery(tables, fmt=fmt), warehouse)
    counts = snapshot(warehouse)["counts"]
    for name, table in outcome.tables.items():
        assert table.rows_in == len(tables[name])
        assert table.rows_in == table.accepted + table.quarantined
        assert counts[name] == table.accepted
    assert counts["quarantine"] == outcome.quarantined
    # an entity refused means its penalty is an orphan: quarantined too, never silently dropped
    assert outcome.tables["entities"].rules == {"code": 1, "type": 1}
    assert outcome.tables["admin_penalties"].rules == {"duplicate": 1, "orphan": 2, "range": 1}


RULE_CASES: list[tuple[str, str, dict[str, Any], str, str]] = [
    # (id, table, overrides on row 0, expected field, expected rule)
    ("required", "entities", {"name": "  "}, "name", "required"),
    ("type-date", "entities", {"registered_on": "2012/03/01"}, "registered_on", "type"),
    ("type-int", "entities", {"employees": "3.5"}, "employees", "type"),
    ("type-bool", "entities", {"is_small_micro": "maybe"}, "is_small_micro", "type"),
    ("code", "entities", {"entity_type": "公司"}, "entity_type", "code"),
    ("range", "entities", {"registered_capital": "-100"}, "registered_capital", "range"),
    ("length", "entities", {"name": "名" * 201}, "name", "length"),
    ("future", "entities", {"registered_on": "2021-02-01"}, "registered_on", "future_date"),
    ("too-old", "entities", {"registered_on": "1900-01-01"}, "registered_on", "range"),
    ("order", "entities", {"deregistered_on": "2011-01-01"}, "deregistered_on", "date_order"),
    ("area", "entities", {"district": "110105"}, "district", "area_code_unknown"),
    ("kind", "entities", {"entity_type": "个体工商户"}, "entity_type", "uscc_entity_type"),
    ("nan", "entities", {"registered_capital": "NaN"}, "registered_capital", "type"),
]


@pytest.mark.parametrize(
    ("table", "overrides", "field", "rule"),
    [case[1:] for case in RULE_CASES],
    ids=[case[0] for case in RULE_CASES],
)
def test_each_rule_quarantines_with_field_and_rule(
    make_delivery: MakeDelivery,
    warehouse: Path,
    table: str,
    overrides: dict[str, Any],
    field: str,
    rule: str,
) -> None:
    tables = base_tables()
    tables[table][0].update(overrides)
    outcome = ingest_delivery(make_delivery(tables), warehouse)
    rows = [q for q in quarantine(warehouse) if q[0] == table]
    assert [(r[1], r[2], r[3]) for r in rows] == [(1, field, rule)]
    assert outcome.tables[table].accepted == len(tables[table]) - 1


def _flip_last(code: str) -> str:
    return code[:-1] + ("0" if code[-1] != "0" else "1")


def test_identifier_rules(make_delivery: MakeDelivery, warehouse: Path) -> None:
    tables = base_tables(8)
    ents, pers = tables["entities"], tables["persons"]
    ents[0]["uscc"] = _flip_last(ents[0]["uscc"])  # check char 18
    org_check = ents[1]["uscc"][16]
    wrong = "0" if org_check == "X" else str((int(org_check) + 1) % 10)
    ents[1]["uscc"] = ents[1]["uscc"][:16] + wrong + ents[1]["uscc"][17]  # org check char
    ents[2]["uscc"] = ents[2]["uscc"][:17]  # length
    ents[3]["uscc"] = "91330302" + "MA2C8K7Q" + "IO"  # I and O are not GB 32100 symbols
    ents[4]["uscc"] = make_uscc("9", "1", "330383", "MA000005")  # 龙港 code before 2019
    pers[5]["birth_date"] = "1999-09-09"  # differs from the ID
    tables["persons"].append(dict(pers[6], resident_id=_flip_last(pers[6]["resident_id"])))
    ingest_delivery(make_delivery(tables), warehouse)
    found = {(q[0], q[1]): (q[2], q[3]) for q in quarantine(warehouse)}
    assert found[("entities", 1)] == ("uscc", "uscc_check")
    assert found[("entities", 2)] == ("uscc", "uscc_org_check")
    assert found[("entities", 3)] == ("uscc", "uscc_length")
    assert found[("entities", 4)] == ("uscc", "uscc_charset")
    assert found[("entities", 5)] == ("uscc", "uscc_area_in_force")
    assert found[("persons", 6)] == ("birth_date", "birth_date_matches_id")
    assert found[("persons", 9)] == ("resident_id", "id_check")


def test_normalisation_repairs_codes_and_keeps_the_original(
    make_delivery: MakeDelivery, warehouse: Path
) -> None:
    tables = base_tables()
    original = tables["entities"][0]["uscc"]
    full_width = " " + original[:4].translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    tables["entities"][0]["uscc"] = full_width + "\u3000" + original[4:].lower() + "\t"
    tables["admin_penalties"][0]["uscc"] = original[:9] + " " + original[9:]
    dongtou = person(50, district="330322")  # 洞头县 code, replaced by 330305 in 2015
    tables["persons"].append(dongtou)
    outcome = ingest_delivery(make_delivery(tables), warehouse)
    assert outcome.quarantined == 0
    assert outcome.tables["entities"].repaired == {"uscc": 1}
    assert outcome.tables["admin_penalties"].repaired == {"uscc": 1}
    assert outcome.tables["persons"].repaired == {"district": 1}
    con = duckdb.connect(str(warehouse), read_only=True)
    assert con.execute("SELECT count(*) FROM entities WHERE uscc = ?", [original]).fetchone() == (
        1,
    )
    district = con.execute(
        "SELECT district FROM persons WHERE resident_id = ?", [dongtou["resident_id"]]
    ).fetchone()
    assert district == ("330305",)


def test_longgang_split_uses_the_town(make_delivery: MakeDelivery, warehouse: Path) -> None:
    tables = base_tables()
    tables["entities"][0].update(district="330327", town="龙港镇")
    tables["entities"][1].update(district="330327", town="灵溪镇")
    ingest_delivery(make_delivery(tables), warehouse)
    con = duckdb.connect(str(warehouse), read_only=True)
    got = dict(con.execute("SELECT uscc, district FROM entities").fetchall())
    assert got[tables["entities"][0]["uscc"]] == "330383"
    assert got[tables["entities"][1]["uscc"]] == "330327"


def test_quarantine_keeps_the_row_as_delivered(
    make_delivery: MakeDelivery, warehouse: Path
) -> None:
    tables = base_tables()
    tables["entities"][2].update(industry="Z", employees="-3")
    ingest_delivery(make_delivery(tables), warehouse)
    (row,) = [q for q in quarantine(warehouse) if q[0] == "entities"]
    assert row[4] == ["industry:code", "employees:range"]
    delivered = json.loads(row[5])
    # CSV has no null: an absent value was delivered as empty text, and is kept as such
    assert delivered == {k: "" if v is None else v for k, v in tables["entities"][2].items()}


def test_duplicates_within_and_across_deliveries(
    make_delivery: MakeDelivery, warehouse: Path
) -> None:
    tables = base_tables()
    ingest_delivery(make_delivery(tables, delivery_id="first"), warehouse)
    again = {"admin_penalties": [penalty(1, tables["entities"][0]["uscc"])] * 2}
    outcome = ingest_delivery(make_delivery(again, delivery_id="second"), warehouse)
    assert outcome.tables["admin_penalties"].rules == {"duplicate": 1, "duplicate_existing": 1}
    assert snapshot(warehouse)["counts"]["admin_penalties"] == 6


def test_orphans_refer_to_the_registry_in_the_warehouse(
    make_delivery: MakeDelivery, warehouse: Path
) -> None:
    tables = base_tables()
    ingest_delivery(make_delivery(tables, delivery_id="registry"), warehouse)
    stranger = make_uscc("9", "1", "330302", "MA999999")
    later = {
        "admin_penalties": [
            penalty(100, tables["entities"][0]["uscc"]),  # known from the earlier delivery
            penalty(101, stranger),
        ]
    }
    outcome = ingest_delivery(make_delivery(later, delivery_id="later"), warehouse)
    assert outcome.tables["admin_penalties"].accepted == 1
    assert outcome.tables["admin_penalties"].rules == {"orphan": 1}


def test_reingesting_a_delivery_adds_nothing(make_delivery: MakeDelivery, warehouse: Path) -> None:
    tables = base_tables()
    tables["entities"][0]["industry"] = "Z"
    delivery = make_delivery(tables)
    first = ingest_delivery(delivery, warehouse)
    before = snapshot(warehouse)
    second = ingest_delivery(delivery, warehouse)
    assert second.status == "already_ingested"
    assert second.to_dict()["tables"] == first.to_dict()["tables"]
    assert snapshot(warehouse) == before


def test_same_id_with_other_contents_is_refused(
    make_delivery: MakeDelivery, warehouse: Path
) -> None:
    tables = base_tables()
    ingest_delivery(make_delivery(tables, delivery_id="d"), warehouse)
    before = snapshot(warehouse)
    tables["persons"].append(person(77))
    with pytest.raises(DeliveryConflictError) as caught:
        ingest_delivery(make_delivery(tables, delivery_id="d"), warehouse)
    assert caught.value.field == "delivery_id"
    assert snapshot(warehouse) == before


def test_an_error_mid_delivery_leaves_the_warehouse_as_it_was(
    make_delivery: MakeDelivery, warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_delivery(make_delivery(base_tables(3), delivery_id="earlier"), warehouse)
    before = snapshot(warehouse)
    real = ingest_module._ingest_table
    calls = []

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[1].table)
        if len(calls) == 3:  # persons and entities are written, then the disk "fails"
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest_module, "_ingest_table", failing)
    tables = base_tables(6)
    tables = {name: rows[3:] for name, rows in tables.items()}
    with pytest.raises(OSError, match="disk full"):
        ingest_delivery(make_delivery(tables, delivery_id="doomed"), warehouse)
    assert calls == ["persons", "entities", "admin_penalties"]
    assert snapshot(warehouse) == before


def test_a_killed_ingest_leaves_the_warehouse_as_it_was(
    make_delivery: MakeDelivery, warehouse: Path
) -> None:
    """SIGKILL in the middle of the transaction: DuckDB must not keep the partial delivery."""
    ingest_delivery(make_delivery(base_tables(3), delivery_id="earlier"), warehouse)
    before = snapshot(warehouse)
    tables = {name: rows[3:] for name, rows in base_tables(6).items()}
    delivery = make_delivery(tables, delivery_id="killed")
    script = textwrap.dedent(
        f"""
        import os, signal
        from features import ingest
        real = ingest._ingest_table
        seen = []
        def kill_after_two(*args, **kwargs):
            seen.append(1)
            if len(seen) == 3:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        ingest._ingest_table = kill_after_two
        ingest.ingest_delivery({str(delivery)!r}, {str(warehouse)!r})
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()
    assert snapshot(warehouse) == before


@pytest.mark.parametrize(
    ("setup", "field", "rule"),
    [
        ("wrong_columns", "entities.csv", "columns"),
        ("gbk", "entities.csv", "encoding"),
        ("binary_csv", "entities.csv", "encoding"),
        ("ragged_csv", "entities.csv", "csv_structure"),
        ("text_as_parquet", "entities.parquet", "format"),
        ("unknown_table", "gossip.csv", "unknown_table"),
        ("excel", "entities.xlsx", "format"),
        ("empty", "directory", "empty_delivery"),
    ],
)
def test_malformed_files_are_refused_and_change_nothing(
    make_delivery: MakeDelivery, warehouse: Path, tmp_path: Path, setup: str, field: str, rule: str
) -> None:
    ingest_delivery(make_delivery(base_tables(2), delivery_id="earlier"), warehouse)
    before = snapshot(warehouse)
    delivery = make_delivery(base_tables(4), delivery_id="bad")
    entities = delivery / "entities.csv"
    header, *lines = entities.read_text(encoding="utf-8").splitlines()
    if setup == "wrong_columns":
        entities.write_text(header.replace('"industry"', '"sector"') + "\n", encoding="utf-8")
    elif setup == "gbk":
        entities.write_bytes("\n".join([header, *lines]).encode("gbk"))
    elif setup == "binary_csv":
        entities.write_bytes(os.urandom(256) + b"\xff\xfe\x00")
    elif setup == "ragged_csv":
        entities.write_text("\n".join([header, lines[0] + ',"extra"']) + "\n", encoding="utf-8")
    elif setup == "text_as_parquet":
        entities.rename(delivery / "entities.parquet")
    elif setup == "unknown_table":
        (delivery / "gossip.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    elif setup == "excel":
        (delivery / "entities.xlsx").write_bytes(b"PK\x03\x04")
    elif setup == "empty":
        for path in delivery.glob("*.csv"):
            path.unlink()
    with pytest.raises(DeliveryError) as caught:
        ingest_delivery(delivery, warehouse)
    assert (caught.value.field, caught.value.rule) == (field, rule)
    assert snapshot(warehouse) == before


def test_csv_and_parquet_give_the_same_warehouse(
    make_delivery: MakeDelivery, tmp_path: Path
) -> None:
    tables = base_tables()
    tables["entities"][0]["employees"] = "x"
    tables["admin_penalties"][1]["published_on"] = "2019-05-01"
    results = []
    for fmt in ("csv", "parquet"):
        target = tmp_path / f"{fmt}.duckdb"
        ingest_delivery(make_delivery(tables, fmt=fmt, delivery_id="same"), target)
        con = duckdb.connect(str(target), read_only=True)
        results.append(
            {
                t: con.execute(f"SELECT * EXCLUDE (_delivery_id) FROM {t} ORDER BY ALL").fetchall()
                for t in ("persons", "entities", "admin_penalties")
            }
            | {"q": con.execute("SELECT source_row, rule FROM quarantine ORDER BY ALL").fetchall()}
        )
    assert results[0] == results[1]


def test_warehouse_with_another_schema_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "w.duckdb"
    con = connect(target)
    con.execute("CREATE TABLE entities (uscc VARCHAR)")
    with pytest.raises(Exception, match="warehouse_schema"):
        ensure_schema(con, load_catalog())
    con.close()


def test_keys_stay_unique_in_the_warehouse(make_delivery: MakeDelivery, warehouse: Path) -> None:
    tables = base_tables()
    tables["entities"] += [
        dict(tables["entities"][0]),
        entity(99, tables["persons"][0]["resident_id"]),
    ]
    ingest_delivery(make_delivery(tables, delivery_id="a"), warehouse)
    ingest_delivery(make_delivery(tables, delivery_id="b"), warehouse)
    con = duckdb.connect(str(warehouse), read_only=True)
    for item in load_catalog().items:
        key = ", ".join(f'"{k}"' for k in item.key)
        dupes = con.execute(
            f'SELECT count(*) FROM (SELECT {key} FROM "{item.table}" '
            "GROUP BY ALL HAVING count(*) > 1)"
        ).fetchone()
        assert dupes == (0,), item.table
