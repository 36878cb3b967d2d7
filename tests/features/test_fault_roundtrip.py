"""Generator → ingest round trip: every injected fault is caught or repaired, nothing else is.

The generator lists every fault it injects in ``manifest.json`` with what ingest must do:
``quarantine``, ``repair`` (normalise and accept) or ``accept`` (a timeliness issue the
quality report measures). This proves ingest does exactly that, on realistic data.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pytest

from features.identifiers import normalise_code
from features.ingest import ingest_delivery
from features.quality import quality_report
from features.synthetic import GeneratorConfig, generate


@pytest.fixture(scope="module", params=["parquet", "csv"])
def ingested(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp(f"roundtrip-{request.param}")
    config = GeneratorConfig(entities=2_500, seed=7, fault_rate=0.02, file_format=request.param)
    result = generate(config, root / "delivery")
    warehouse = root / "warehouse.duckdb"
    outcome = ingest_delivery(result.out, warehouse)
    manifest = json.loads(result.manifest_path.read_text(encoding="utf-8"))
    return outcome, manifest, warehouse


def _faults(manifest: dict[str, Any], expect: str) -> set[tuple[str, int]]:
    return {(f["table"], f["row"]) for f in manifest["faults"] if f["expect"] == expect}


def test_every_quarantine_fault_is_quarantined_and_nothing_else(ingested: Any) -> None:
    _, manifest, warehouse = ingested
    expected = _faults(manifest, "quarantine")
    assert len(expected) > 100  # the check below means something
    with duckdb.connect(str(warehouse), read_only=True) as con:
        quarantined = set(con.execute("SELECT table_name, source_row FROM quarantine").fetchall())
    assert expected - quarantined == set(), "faults that ingest let through"
    assert quarantined - expected == set(), "clean rows that ingest refused"


def test_repaired_and_accepted_faults_land_in_the_warehouse(ingested: Any) -> None:
    _, manifest, warehouse = ingested
    kept = [f for f in manifest["faults"] if f["expect"] in {"repair", "accept"}]
    assert kept
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for fault in kept:
            column = fault["column"] or "_source_row"
            found = con.execute(
                f'SELECT "{column}" FROM "{fault["table"]}" WHERE _source_row = ?', [fault["row"]]
            ).fetchall()
            assert len(found) == 1, fault
            value = found[0][0]
            if fault["fault"] in {"fullwidth", "stray_space"}:
                # repaired: what is stored is the normalised code, half-width and unspaced
                assert value == normalise_code(value), fault
            elif fault["fault"] == "stale_area_code":
                assert value in {"330305", "330383"}, fault


def test_every_clean_row_is_accepted(ingested: Any) -> None:
    outcome, manifest, _ = ingested
    quarantine = _faults(manifest, "quarantine")
    for table, result in outcome.tables.items():
        expected_out = sum(1 for t, _ in quarantine if t == table)
        assert result.rows_in == manifest["row_counts"][table]
        assert result.quarantined == expected_out, table
        assert result.accepted == result.rows_in - expected_out, table


def test_repairs_are_counted_per_column(ingested: Any) -> None:
    outcome, manifest, _ = ingested
    stale = [f for f in manifest["faults"] if f["fault"] == "stale_area_code"]
    repaired_districts = sum(t.repaired.get("district", 0) for t in outcome.tables.values())
    assert repaired_districts >= len(stale) > 0


def test_late_publications_show_in_timeliness(ingested: Any) -> None:
    _, manifest, warehouse = ingested
    late = [f for f in manifest["faults"] if f["fault"] == "late_publication"]
    report = {t.table: t for t in quality_report(warehouse).tables}
    measured = sum(report[t].late_publications or 0 for t in ("admin_licenses", "admin_penalties"))
    assert measured >= len(late)
