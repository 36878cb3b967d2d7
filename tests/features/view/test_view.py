"""The whole three-in-one view on generated data: point in time, cardinality, metadata, engines."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from features.ingest import ingest_delivery
from features.synthetic import GeneratorConfig, generate
from features.view import (
    ViewContext,
    build_view,
    feature_specs,
    government,
    load_policy,
    pboc,
    private_lending,
)
from features.view.build import (
    ViewCardinalityError,
    _check_cardinality,
    in_uscc_order,
    view_query,
)
from features.view.engine import duckdb_tables, spark_session, spark_tables
from wzcredit.cli import app

AS_OF = dt.date(2018, 6, 30)

#: When each record becomes known (the test's own reading of the catalog, independent of the
#: feature code): rows known on or after the cut-off did not exist yet.
KNOWN_FROM = {
    "entities": "registered_on",
    "admin_licenses": "published_on",
    "admin_penalties": "published_on",
    "serious_dishonesty": "listed_on",
    "red_list": "listed_on",
    "dishonest_debtors": "listed_on",
    "tax_credit": "evaluated_on",
    "social_insurance_arrears": "reported_on",
    "abnormal_operations": "listed_on",
    "credit_commitments": "signed_on",
    "credit_objections": "raised_on",
    "credit_repairs": "applied_on",
    "pboc_accounts": "opened_on",
    "pboc_monthly": "month",
    "pboc_guarantees": "started_on",
    "pboc_inquiries": "inquired_on",
    "private_loans": "registered_on",
    "wenzhou_index": "month",
    "lpr": "published_on",
}
#: Events inside a known record that happen later: they had not happened at the cut-off.
LATER_EVENTS = {
    "entities": ["deregistered_on"],
    "serious_dishonesty": ["removed_on"],
    "dishonest_debtors": ["removed_on"],
    "abnormal_operations": ["removed_on"],
    "credit_objections": ["resolved_on", "outcome"],
    "credit_repairs": ["decided_on"],
    "pboc_accounts": ["closed_on"],
    "pboc_guarantees": ["ended_on"],
}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("view")
    result = generate(GeneratorConfig(entities=2_000, seed=11), root / "delivery")
    target = root / "warehouse.duckdb"
    ingest_delivery(result.out, target)
    return target


def view(warehouse: Path, as_of: dt.date = AS_OF) -> pd.DataFrame:
    with duckdb_tables(warehouse) as (_, tables):
        return build_view(tables, as_of).table.to_pandas()


def cut_back(warehouse: Path, target: Path, cut: dt.date) -> Path:
    """A copy of the warehouse holding only what was known before ``cut``."""
    shutil.copy(warehouse, target)
    con = duckdb.connect(str(target))
    for table, column in KNOWN_FROM.items():
        con.execute(f'DELETE FROM "{table}" WHERE "{column}" >= ?', [cut])
        for later in LATER_EVENTS.get(table, []):
            first = LATER_EVENTS[table][0]
            con.execute(f'UPDATE "{table}" SET "{later}" = NULL WHERE "{first}" >= ?', [cut])
    con.close()
    return target


def test_no_record_from_after_as_of_reaches_the_view(warehouse: Path, tmp_path: Path) -> None:
    full = view(warehouse)
    known = view(cut_back(warehouse, tmp_path / "cut.duckdb", AS_OF))
    pd.testing.assert_frame_equal(full, known, check_exact=False, rtol=1e-12)


def test_later_records_do_show_at_a_later_date(warehouse: Path) -> None:
    early, late = view(warehouse), view(warehouse, dt.date(2019, 6, 30))
    shared = early.merge(late, on="uscc", suffixes=("_a", "_b"))
    changed = [
        spec.name
        for spec in feature_specs()
        if spec.kind != "categorical"
        and not np.allclose(shared[f"{spec.name}_a"], shared[f"{spec.name}_b"], equal_nan=True)
    ]
    assert len(changed) > len(feature_specs()) // 2  # a year of records moves most features


def test_one_row_per_active_entity(warehouse: Path) -> None:
    frame = view(warehouse)
    assert frame["uscc"].is_unique
    assert frame["uscc"].is_monotonic_increasing  # the view is in uscc order
    con = duckdb.connect(str(warehouse), read_only=True)
    active = con.execute(
        "SELECT count(*) FROM entities WHERE registered_on < ? "
        "AND (deregistered_on IS NULL OR deregistered_on >= ?)",
        [AS_OF, AS_OF],
    ).fetchall()[0][0]
    con.close()
    assert len(frame) == active
    assert (pd.to_datetime(frame["as_of"]) == pd.Timestamp(AS_OF)).all()


def test_the_view_agrees_with_each_sources_own_build(warehouse: Path) -> None:
    """The view joins the sources' parts itself: it must give each source's `build` values.

    An entity absent from a source's build gets every feature's fill in the view.
    """
    frame = view(warehouse).set_index("uscc")
    with duckdb_tables(warehouse) as (_, tables):
        ctx = ViewContext(tables, AS_OF, load_policy())
        builds = {m: m.build(ctx).to_pandas() for m in (government, pboc, private_lending)}
    for module, built in builds.items():
        own = built.set_index("uscc")
        shared = own.index.intersection(frame.index)
        assert len(shared) > 20, module.__name__  # the comparison is not vacuous
        for spec in module.FEATURES:
            expected = own.loc[shared, spec.name]
            if spec.fill is not None:
                expected = expected.fillna(spec.fill)
            found = frame.loc[shared, spec.name]
            if spec.kind == "categorical":
                pd.testing.assert_series_equal(found, expected, check_dtype=False)
            else:
                np.testing.assert_allclose(found.astype(float), expected.astype(float),
                                           rtol=1e-12, err_msg=spec.name)  # fmt: skip
            absent = frame.loc[frame.index.difference(own.index), spec.name]
            assert (absent.isna() if spec.fill is None else absent == spec.fill).all(), spec.name


def test_cardinality_check_refuses_duplicates_and_missing_entities() -> None:
    _check_cardinality(pa.table({"uscc": ["A", "B", "C"]}), 3)
    _check_cardinality(pa.table({"uscc": ["B", "C", "A"]}), 3)  # not sorted, still unique
    _check_cardinality(pa.table({"uscc": pa.array([], pa.string())}), 0)
    for table, population in (
        (pa.table({"uscc": ["A", "B", "B"]}), 3),
        (pa.table({"uscc": ["A", "B"]}), 3),
        (pa.table({"uscc": ["A", None, "C"]}), 3),
    ):
        with pytest.raises(ViewCardinalityError):
            _check_cardinality(table, population)


def test_rows_are_put_in_uscc_order_from_sorted_runs_or_sorted() -> None:
    def table(keys: list[str | None]) -> pa.Table:
        return pa.table({"uscc": keys, "x": list(range(len(keys)))})

    # one run per thread, each in order: merged block by block, no row copied
    runs = pa.concat_tables([table(["D", "E", "F"]), table(["A", "B", "C"])])
    ordered = in_uscc_order(runs)
    assert ordered["uscc"].to_pylist() == ["A", "B", "C", "D", "E", "F"]
    assert ordered["x"].to_pylist() == [0, 1, 2, 0, 1, 2]  # each row kept with its values
    assert ordered["x"].chunk(0).buffers()[1].address == runs["x"].chunk(1).buffers()[1].address
    interleaved = in_uscc_order(table(["B", "D", "A", "C"]))  # runs B D and A C
    assert interleaved["uscc"].to_pylist() == ["A", "B", "C", "D"]
    assert interleaved["x"].to_pylist() == [2, 0, 3, 1]
    assert in_uscc_order(table(["C", "A", "B"]))["x"].to_pylist() == [1, 2, 0]
    # NULL keys: sorted, NULLs last
    assert in_uscc_order(table(["B", None, "A"]))["uscc"].to_pylist() == ["A", "B", None]
    # in order already, or too short to be out of it: the same table
    already = table(["A", "B"])
    assert in_uscc_order(already) is already
    assert in_uscc_order(table([]))["uscc"].to_pylist() == []
    # a duplicate across two runs is kept beside its twin, for the cardinality check
    twins = in_uscc_order(pa.concat_tables([table(["B", "C"]), table(["A", "B"])]))
    assert twins["uscc"].to_pylist() == ["A", "B", "B", "C"]


@pytest.mark.parametrize("seed", range(20))
def test_sorted_blocks_dealt_to_threads_come_back_in_order(seed: int) -> None:
    """Sorted keys cut into blocks, dealt to threads, each thread's blocks in order."""
    rng = np.random.default_rng(seed)
    keys = sorted({f"{k:018d}" for k in rng.integers(0, 10**12, size=int(rng.integers(2, 3000)))})
    cuts = np.sort(rng.choice(np.arange(1, len(keys)), size=min(len(keys) - 1, 40), replace=False))
    blocks = np.split(np.arange(len(keys)), cuts)
    threads = int(rng.integers(1, 5))
    dealt = [np.concatenate(blocks[t::threads] or [np.array([], int)]) for t in range(threads)]
    rows = np.concatenate(dealt).astype(int)
    shuffled = pa.table({"uscc": [keys[i] for i in rows], "x": rows})
    ordered = in_uscc_order(shuffled)
    assert ordered["uscc"].to_pylist() == keys
    assert ordered["x"].to_pylist() == list(range(len(keys)))
    assert ordered["x"].num_chunks <= len(blocks)  # whole blocks moved, not rows


def test_rows_interleaved_one_by_one_are_sorted_instead(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("features.view.build.MAX_BLOCKS", 3)
    keys = [f"{k:02d}" for k in range(12)]
    dealt = keys[0::2] + keys[1::2]  # two runs that alternate row by row
    ordered = in_uscc_order(pa.table({"uscc": dealt}))
    assert ordered["uscc"].to_pylist() == keys
    assert ordered["uscc"].num_chunks == 1  # sorted: one new chunk, not 12 slices


def test_metadata_describes_every_column(warehouse: Path) -> None:
    specs = {spec.name: spec for spec in feature_specs()}
    frame = view(warehouse)
    assert list(frame.columns) == ["uscc", "as_of", *specs]
    assert len(specs) >= 60
    assert {spec.source for spec in specs.values()} == {
        "entity", "government", "pboc", "private_lending"
    }  # fmt: skip
    for spec in specs.values():
        assert spec.zh, spec.name
        assert spec.en, spec.name
        assert spec.unit, spec.name
        assert spec.direction in (-1, 0, 1), spec.name
        if spec.fill is not None:
            assert frame[spec.name].notna().all(), f"{spec.name} has gaps despite fill"
    for name in ("pboc_has_file", "pl_has_registered_loan", "gov_has_record"):
        assert name in specs, f"coverage flag {name} missing"


def test_the_engine_returns_the_declared_types(warehouse: Path) -> None:
    """DuckDB's own result already has the view's types: nothing is converted afterwards.

    A float literal is a DECIMAL to the engines, so a sum of ``1.0`` would come back as
    DECIMAL(38, 1) while the expression claims float64.
    """
    with duckdb_tables(warehouse) as (backend, tables):
        expression = view_query(ViewContext(tables, AS_OF, load_policy()))
        raw = backend.con.sql(backend.compile(expression)).to_arrow_table()
    declared = expression.schema().to_pyarrow()
    assert raw.num_rows > 0
    assert {f.name: f.type for f in raw.schema} == {f.name: f.type for f in declared}


def test_registered_private_loans_never_count_against_the_entity() -> None:
    """DOMAIN.md §4.2: a registered loan as such may only lower the risk (direction -1)."""
    specs = {spec.name: spec for spec in feature_specs()}
    as_such = ("pl_has_registered_loan", "pl_loans", "pl_amount", "pl_loans_good_standing",
               "pl_loans_settled_on_time")  # fmt: skip
    for name in as_such:
        assert specs[name].direction == -1, name


def test_cli_writes_the_view_and_its_metadata(warehouse: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["features", "--as-of", "2018-06-30", "--warehouse", str(warehouse),
              "--out", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "three_in_one_view_2018-06-30.json").read_text("utf-8"))
    assert meta["rows"] == len(view(warehouse))
    assert len(meta["features"]) == len(feature_specs())
    assert (tmp_path / "three_in_one_view_2018-06-30.parquet").exists()


def _sorted(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas().sort_values("uscc").reset_index(drop=True)


@pytest.mark.slow
def test_duckdb_and_spark_build_the_same_view(warehouse: Path, tmp_path: Path) -> None:
    with duckdb_tables(warehouse) as (_, tables):
        on_duckdb = _sorted(build_view(tables, AS_OF).table)
    session = spark_session("wzcredit-test")
    with spark_tables(warehouse, tmp_path / "parquet", session=session) as (_, tables):
        on_spark = _sorted(build_view(tables, AS_OF, engine="spark").table)
    assert len(on_duckdb) > 1_000
    pd.testing.assert_frame_equal(
        on_duckdb, on_spark, check_exact=False, rtol=1e-9, check_dtype=False
    )
