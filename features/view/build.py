"""Assemble the three-in-one view and write it with its metadata.

Cardinality, stated and checked: the population (`entity.population`) has one row per
entity; each source's `parts` (one aggregate per warehouse table) contribute at most one row
per entity each, joined many-to-one on the entity's key ``uscc_key`` (left joins: an entity
absent from every part of a source gets the features' ``fill``). After the view is
materialised, the row count must equal the population's, counted in the same query, and
``uscc`` must be unique, or `ViewCardinalityError` is raised and nothing is written.

Speed (issue 4): each part is computed once, its table aggregated with conditional
aggregates (the large ones, month-end rows and inquiries, per account or subject before the
entity mapping; a few selective re-reads remain where an aggregate needs other rows); the
parts join the population in one flat chain of left joins; records are mapped onto the
population's entities only; every mapping, aggregate and join is on the integer surrogate keys
assigned at ingest (`features.warehouse`), never on the identifier strings. On DuckDB the
finished view is never sorted: the population is, before the joins, and the rows come back in
sorted runs that `in_uscc_order` merges without copying them (`view_query`).
"""

from __future__ import annotations

import datetime as dt
import functools
import heapq
import itertools
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.catalog import load_catalog
from features.errors import FeatureError
from features.view import entity, government, pboc, private_lending
from features.view.context import ENTITY_KEY, ViewContext, ViewPolicy, load_policy
from features.view.metadata import FeatureSpec

logger = logging.getLogger(__name__)

#: the sources joined onto the population, in column order
SOURCES: tuple[ModuleType, ...] = (government, pboc, private_lending)
KEY_COLUMNS = ("uscc", "as_of")


class ViewCardinalityError(FeatureError):
    """The view does not have exactly one row per entity of the population."""


def feature_specs() -> tuple[FeatureSpec, ...]:
    """Metadata of every feature column, in view order."""
    specs: list[FeatureSpec] = [*entity.FEATURES]
    for module in SOURCES:
        specs.extend(module.FEATURES)
    names = [s.name for s in specs]
    duplicated = {n for n in names if names.count(n) > 1}
    if duplicated:
        raise AssertionError(f"feature names used twice: {sorted(duplicated)}")
    return tuple(specs)


def view_expression(ctx: ViewContext, *, sorted_population: bool = False) -> ir.Table:
    """The view as one Ibis expression: the population ⟕ every part of every source.

    Each source's `parts` (one per-entity aggregate per warehouse table) are left-joined
    straight onto the population, so that each is computed once, and its `columns` turn
    them into features; an entity absent from every part of a source gets the fills.
    With ``sorted_population`` the population (its registry columns only) is sorted by
    ``uscc`` before the joins (see `view_query`).
    """
    out = entity.build(ctx)
    if sorted_population:
        out = out.order_by("uscc")
    # records map onto population entities only: the rest would be dropped by the joins
    among_population = ctx.among(entity.population(ctx))
    parts = [part for module in SOURCES for part in module.parts(among_population)]
    names = [name for part in parts for name in part.columns if name != ENTITY_KEY]
    shared = {name for name in names if names.count(name) > 1} | (set(names) & set(out.columns))
    if shared:
        raise AssertionError(f"columns in more than one part: {sorted(shared)}")
    for number, part in enumerate(parts):
        # one join chain: each part's key is kept as uscc_key_<number> rather than dropped
        out = out.left_join(part, ENTITY_KEY, rname=f"{{name}}_{number}")
    values: dict[str, ir.Value] = {spec.name: out[spec.name] for spec in entity.FEATURES}
    for module in SOURCES:
        values.update(module.columns(out))
    fills: dict[str, ir.Value] = {}
    for spec in feature_specs():
        column = values[spec.name]
        if spec.fill is not None:
            column = column.fill_null(spec.fill)
        fills[spec.name] = column
    return out.select("uscc", as_of=ctx.as_of_value, **fills)


#: engines whose joins keep each thread's share of a sorted input in order (see `view_query`)
SORTED_RUN_ENGINES = ("duckdb",)


def view_query(ctx: ViewContext, engine: str = "duckdb") -> ir.Table:
    """What `build_view` runs: the view with ``_population``, in ``uscc`` order or in runs.

    ``_population`` is the population counted in the same query, independently of the
    view's joins, for the cardinality check.

    Order. On Spark the result is sorted by ``uscc``. On DuckDB, sorting the finished view
    would move all its ~90 columns (0.5–0.6 s of a 3.5 s build at Wenzhou scale); instead
    the population's dozen registry columns are sorted before the joins, and each thread
    carries its share of them through the join chain in order: the result comes back as a
    few sorted runs, one per thread, which `in_uscc_order` puts in order without moving a
    row. That is how DuckDB executes the plan, not a promise of SQL, so `in_uscc_order`
    checks the runs and sorts the table itself whenever they are not so.
    """
    count = entity.population(ctx).count().as_scalar()
    in_runs = engine in SORTED_RUN_ENGINES
    view = view_expression(ctx, sorted_population=in_runs).mutate(_population=count)
    return view if in_runs else view.order_by("uscc")


@dataclass(frozen=True)
class ViewResult:
    """A materialised view: its table, where it was written, and how it was built."""

    table: pa.Table
    path: Path | None
    metadata: dict[str, Any]


#: more runs or blocks than this and the table is sorted instead (rows interleaved finely)
MAX_BLOCKS = 4096


def _first_not_below(keys: pa.StringArray, start: int, end: int, bound: str) -> int:
    """The first index in ``[start, end)`` whose key is ``>= bound`` (``end`` if none).

    ``keys[start:end]`` is in order: a binary search.
    """
    while start < end:
        middle = (start + end) // 2
        if keys[middle].as_py() < bound:
            start = middle + 1
        else:
            end = middle
    return start


def _merged_blocks(
    keys: pa.StringArray, runs: list[tuple[int, int]]
) -> list[tuple[int, int]] | None:
    """Row ranges that, concatenated, put the sorted ``runs`` of ``keys`` in order.

    A k-way merge that moves whole blocks: the run with the smallest next key gives rows
    up to the next key of any other run, found by binary search. ``None`` if that takes
    more than `MAX_BLOCKS` blocks (runs interleaved row by row are better sorted).
    """
    heap = [(keys[start].as_py(), start, end) for start, end in runs]
    heapq.heapify(heap)
    blocks: list[tuple[int, int]] = []
    while heap:
        _, start, end = heapq.heappop(heap)
        stop = end if not heap else _first_not_below(keys, start + 1, end, heap[0][0])
        blocks.append((start, stop))
        if len(blocks) > MAX_BLOCKS:
            return None
        if stop < end:
            heapq.heappush(heap, (keys[stop].as_py(), stop, end))
    return blocks


def in_uscc_order(table: pa.Table) -> pa.Table:
    """``table`` with its rows in ``uscc`` order (NULLs last).

    The DuckDB query (`view_query`) returns one run per thread, each in order, made of
    blocks of consecutive population rows: a merge of the runs that moves whole blocks
    puts the table in order by slicing it and concatenating the slices, with no row
    copied. A table that is not made so (NULL keys; rows interleaved finely) is sorted.
    """
    if table.num_rows < 2:
        return table
    uscc = table["uscc"].combine_chunks()
    if uscc.null_count:  # sorted with the NULLs last (the cardinality check refuses them)
        return table.sort_by("uscc")
    steps = pc.less(uscc.slice(1), uscc.slice(0, len(uscc) - 1))
    descents = np.flatnonzero(steps.to_numpy(zero_copy_only=False)) + 1
    if len(descents) == 0:
        return table
    blocks = None
    if len(descents) < MAX_BLOCKS:
        blocks = _merged_blocks(uscc, list(itertools.pairwise([0, *descents.tolist(), len(uscc)])))
    if blocks is None:
        return table.sort_by("uscc")
    return pa.concat_tables([table.slice(start, stop - start) for start, stop in blocks])


def _increasing(values: pa.ChunkedArray) -> bool:
    """True if every value is greater than the one before (sorted and unique), in O(n)."""
    values = values.combine_chunks()
    if len(values) < 2 or values.null_count:
        return bool(values.null_count == 0)
    later = pc.greater(values.slice(1), values.slice(0, len(values) - 1))
    return bool(pc.all(later).as_py())


def _check_cardinality(table: pa.Table, population: int) -> None:
    """One row per entity of the population: as many rows, ``uscc`` unique.

    The table is sorted by ``uscc``, so uniqueness is checked on neighbours first; only if
    that fails are distinct values counted, for the error message.
    """
    if table.num_rows == population and _increasing(table["uscc"]):
        return
    unique = pc.count_distinct(table["uscc"]).as_py()
    if table.num_rows != population or unique != table.num_rows:
        raise ViewCardinalityError(
            "uscc",
            "one_row_per_entity",
            f"{table.num_rows} rows, {unique} distinct entities, population {population}",
        )


@functools.cache
def _catalog_version() -> str:
    """Version of the packaged catalog (parsed once per process)."""
    return load_catalog().version


def metadata(
    as_of: dt.date, engine: str, policy: ViewPolicy, rows: int, seconds: float
) -> dict[str, Any]:
    """The metadata file written beside the view."""
    return {
        "as_of": as_of.isoformat(),
        "engine": engine,
        "rows": rows,
        "build_seconds": round(seconds, 3),
        "catalog_version": _catalog_version(),
        "policy_version": policy.version,
        "key": list(KEY_COLUMNS),
        "cardinality": "one row per entity registered before as_of and not deregistered; "
        "each source joined many-to-one on uscc",
        "features": [spec.to_dict() for spec in feature_specs()],
    }


def build_view(
    tables: Mapping[str, ir.Table],
    as_of: dt.date,
    *,
    engine: str = "duckdb",
    out: Path | None = None,
    policy: ViewPolicy | None = None,
) -> ViewResult:
    """Build, check and (optionally) write the view as of ``as_of``.

    Parameters
    ----------
    tables
        Warehouse tables of one backend (see `features.view.engine`).
    as_of
        Only records known before this date are used.
    engine
        The backend of ``tables`` (``duckdb`` or ``spark``): how the query orders the rows
        (`view_query`); recorded in the metadata.
    out
        Folder to write ``three_in_one_view_<as_of>.parquet`` and its ``.json`` metadata.
    """
    policy = policy or load_policy()
    ctx = ViewContext(tables, as_of, policy)
    started = time.perf_counter()
    table = in_uscc_order(view_query(ctx, engine).to_pyarrow())
    if table.num_rows:
        population = table["_population"][0].as_py()
    else:  # no row to carry the count
        population = int(entity.population(ctx).count().to_pyarrow().as_py())
    table = table.drop_columns(["_population"])
    _check_cardinality(table, population)
    seconds = time.perf_counter() - started
    meta = metadata(as_of, engine, policy, table.num_rows, seconds)
    logger.info(
        "view as of %s: %d entities, %d features, %.1f s",
        as_of,
        table.num_rows,
        len(meta["features"]),
        seconds,
    )
    path = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"three_in_one_view_{as_of.isoformat()}.parquet"
        pq.write_table(table, path)
        path.with_suffix(".json").write_text(
            json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8"
        )
    return ViewResult(table, path, meta)


__all__ = [
    "ViewCardinalityError",
    "ViewResult",
    "build_view",
    "feature_specs",
    "in_uscc_order",
    "view_query",
]
