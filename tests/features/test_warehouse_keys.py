"""Surrogate keys: one integer per identifier, the same in every table, stable across deliveries.

(A delivery that fails part-way assigns no key: `tests/features/test_ingest.py` compares the
keys table before and after, with the rest of the warehouse.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import duckdb

from features.catalog import load_catalog
from features.identifiers import make_uscc
from features.ingest import ingest_delivery
from features.validation import WAREHOUSE_TYPES, quote
from features.view import build_view
from features.view.engine import duckdb_tables
from features.warehouse import (
    KEYS_TABLE,
    assign_keys,
    connect,
    ensure_schema,
    key_columns,
    keyed_select,
)
from tests.features.conftest import base_tables, penalty

MakeDelivery = Callable[..., Path]


def keys_of(warehouse: Path) -> dict[str, int]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(f"SELECT subject_id, subject_key FROM {KEYS_TABLE}").fetchall()
    finally:
        con.close()
    keys = dict(rows)
    assert len(keys) == len(rows)  # each identifier once
    return keys


def keyed_values(warehouse: Path) -> dict[tuple[str, str], list[tuple[str, int | None]]]:
    """``(table, column) → [(identifier, its key column's value)]`` for every keyed column."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {
            (item.table, column): con.execute(
                f'SELECT "{column}", "{key}" FROM "{item.table}" ORDER BY ALL'
            ).fetchall()
            for item in load_catalog().items
            for column, key in key_columns(item).items()
        }
    finally:
        con.close()


def assert_keyed(warehouse: Path) -> dict[str, int]:
    """Every identifier in the warehouse carries its own key; the keys are distinct."""
    keys = keys_of(warehouse)
    assert len(set(keys.values())) == len(keys)
    seen = 0
    for (table, column), rows in keyed_values(warehouse).items():
        for identifier, key in rows:
            if identifier is None:
                assert key is None, (table, column)
            else:
                assert key == keys[identifier], (table, column, identifier)
                seen += 1
    assert seen
    return keys


def test_every_identifier_has_one_key_in_every_table(
    make_delivery: MakeDelivery, warehouse: Path
) -> None:
    tables = base_tables()
    # an entity's penalty is filed under its USCC: the penalty's uscc_key is the entity's
    ingest_delivery(make_delivery(tables), warehouse)
    keys = assert_keyed(warehouse)
    identifiers = {p["resident_id"] for p in tables["persons"]}
    identifiers |= {e["uscc"] for e in tables["entities"]}
    assert set(keys) == identifiers
    assert sorted(keys.values()) == list(range(1, len(identifiers) + 1))


def test_keys_are_stable_and_new_identifiers_numbered_after(
    make_delivery: MakeDelivery, warehouse: Path
) -> None:
    first = base_tables()
    ingest_delivery(make_delivery(first, delivery_id="first"), warehouse)
    before = keys_of(warehouse)
    stranger = make_uscc("9", "1", "330302", "MA999999")
    later = base_tables(8)  # persons and entities 1–6 again (duplicates), 7 and 8 new
    later["admin_penalties"] = [penalty(200, stranger)]  # an orphan: quarantined, no key
    outcome = ingest_delivery(make_delivery(later, delivery_id="later"), warehouse)
    assert outcome.tables["entities"].accepted == 2
    assert outcome.tables["admin_penalties"].rules == {"orphan": 1}
    after = assert_keyed(warehouse)
    assert {k: after[k] for k in before} == before
    new = set(after) - set(before)
    assert new == {later["persons"][i]["resident_id"] for i in (6, 7)} | {
        later["entities"][i]["uscc"] for i in (6, 7)
    }
    assert min(after[k] for k in new) > max(before.values())
    assert stranger not in after


def test_a_warehouse_from_before_keys_gets_them_and_builds_the_view(
    make_delivery: MakeDelivery, warehouse: Path
) -> None:
    ingest_delivery(make_delivery(base_tables()), warehouse)
    expected = keyed_values(warehouse)
    # the same warehouse as written before keys existed: no key columns, no keys table
    con = duckdb.connect(str(warehouse))
    for item in load_catalog().items:
        for key in key_columns(item).values():
            con.execute(f'ALTER TABLE "{item.table}" DROP COLUMN "{key}"')
    con.execute(f"DROP TABLE {KEYS_TABLE}")
    con.close()
    with duckdb_tables(warehouse) as (_, tables):  # a reader upgrades it once
        view = build_view(tables, dt.date(2020, 1, 1)).table
    assert view.num_rows == 6
    assert view["gov_penalties_36m"].to_pylist() == [1.0] * 6
    assert_keyed(warehouse)
    assert keyed_values(warehouse) == expected  # keys in identifier order, as at ingest
    con = connect(warehouse)
    try:
        ensure_schema(con, load_catalog())  # now a no-op
    finally:
        con.close()
    assert keyed_values(warehouse) == expected


def test_rows_are_stored_in_delivered_order() -> None:
    """Looking keys up does not reorder a table: rows stay as delivered (``_source_row``).

    300,000 rows delivered against identifier order, enough for DuckDB to run the key
    lookup on both threads and build its hash table on either side.
    """
    catalog = load_catalog()
    item = catalog.item("pboc_inquiries")
    con = connect(":memory:")
    try:
        ensure_schema(con, catalog)
        columns = [
            "printf('S%07d', 300000 - i) AS subject_id"
            if name == "subject_id"
            else f"NULL::{WAREHOUSE_TYPES[spec.type]} AS {quote(name)}"
            for name, spec in item.columns.items()
        ]
        con.execute(
            f"CREATE TEMP TABLE delivered AS SELECT {', '.join(columns)}, "
            "'d' AS _delivery_id, i AS _source_row FROM range(300000) r(i)"
        )
        assert assign_keys(con, ["SELECT subject_id FROM delivered"]) == 300_000
        con.execute(f"INSERT INTO pboc_inquiries {keyed_select(item, 'SELECT * FROM delivered')}")
        stored = [r[0] for r in con.execute("SELECT _source_row FROM pboc_inquiries").fetchall()]
        assert stored == list(range(300_000))
        assert con.execute(
            "SELECT count(*) FROM pboc_inquiries q JOIN subject_keys k "
            "ON k.subject_id = q.subject_id AND k.subject_key = q.subject_id_key"
        ).fetchall() == [(300_000,)]
    finally:
        con.close()
