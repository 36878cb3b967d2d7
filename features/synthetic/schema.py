"""Arrow schemas of the delivered tables, read from the credit information catalog.

Every table is written with exactly the catalog's columns in catalog order: identifiers,
codes, strings and months (``YYYY-MM``) as strings, integers as int64, decimals as float64,
booleans as bool and dates as date32.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import numpy as np
import pyarrow as pa

from features.catalog import Catalog, CatalogItem, load_catalog

_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "code": pa.string(),
    "uscc": pa.string(),
    "resident_id": pa.string(),
    "subject_id": pa.string(),
    "area_code": pa.string(),
    "month": pa.string(),
    "integer": pa.int64(),
    "decimal": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
}


@cache
def catalog() -> Catalog:
    """The packaged catalog, loaded once."""
    return load_catalog()


def item(table: str) -> CatalogItem:
    """The catalog item of ``table``."""
    return catalog().item(table)


def arrow_schema(table: str) -> pa.Schema:
    """Arrow schema of ``table``: catalog columns in catalog order."""
    spec = item(table)
    return pa.schema(
        [pa.field(name, _ARROW_TYPES[column.type]) for name, column in spec.columns.items()]
    )


def flat(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous Arrow array (``pa.array`` returns chunks for large string input)."""
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def to_array(values: Any, type_: pa.DataType) -> pa.Array:
    """Convert numpy values (NaT and NaN become null) or an Arrow array to ``type_``."""
    if isinstance(values, pa.Array | pa.ChunkedArray):
        values = flat(values)
        return values if values.type == type_ else values.cast(type_)
    array = np.asarray(values)
    mask = None
    if np.issubdtype(array.dtype, np.datetime64):
        mask = np.isnat(array)
        array = array.astype("datetime64[D]")
    elif np.issubdtype(array.dtype, np.floating):
        mask = np.isnan(array)
    if mask is not None and not mask.any():
        mask = None
    return flat(pa.array(array, type=type_, mask=mask))


def make_table(table: str, columns: Mapping[str, Any]) -> pa.Table:
    """Build ``table`` from column values; refuses missing or unknown columns."""
    schema = arrow_schema(table)
    unknown = set(columns) - set(schema.names)
    missing = set(schema.names) - set(columns)
    if unknown or missing:
        raise KeyError(f"{table}: unknown columns {sorted(unknown)}, missing {sorted(missing)}")
    arrays = [to_array(columns[field.name], field.type) for field in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def take(vocabulary: Any, indices: Any) -> pa.Array:
    """Values of ``vocabulary`` (a list, numpy or Arrow array) at integer ``indices``."""
    source = vocabulary if isinstance(vocabulary, pa.Array) else pa.array(list(vocabulary))
    return source.take(pa.array(np.asarray(indices, dtype=np.int64)))
