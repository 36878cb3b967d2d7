"""The served score snapshot and its view, in memory, indexed by USCC.

A service instance loads the current batch snapshot (`scoring.batch.SnapshotStore`) and the
three-in-one view it was scored from once, at start-up or on `reload`; a lookup is a dict
hit and one row read column by column (`RowReader`: numbers from NumPy views of the Arrow
buffers, repeated strings from their dictionary, the rest from Arrow), the same values as
Arrow's ``to_pylist`` at a fraction of its cost. Both tables are immutable, so concurrent
requests read them freely; `reload` swaps in a new pair atomically (one attribute assignment).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from api.errors import NotFound, Unavailable
from scoring.batch import SnapshotInfo, SnapshotStore

logger = logging.getLogger(__name__)

VIEW_FILE = "three_in_one_view_{as_of}.parquet"
#: a string column with at most this share of distinct values is read through its dictionary
DICTIONARY_SHARE = 0.25

Cell = Callable[[int], Any]


def _numeric(array: pa.Array) -> Cell:
    """Cells of a number or boolean column from a NumPy view (None where the value is null)."""
    filled = array.fill_null(False if pa.types.is_boolean(array.type) else 0)
    values = filled.to_numpy(zero_copy_only=False)
    if array.null_count == 0:
        return lambda i: values[i].item()
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    return lambda i: values[i].item() if valid[i] else None


def _dictionary(array: pa.DictionaryArray) -> Cell:
    """Cells of a dictionary-encoded column: an index into a list of Python values."""
    words = array.dictionary.to_pylist()
    codes = array.indices.fill_null(0).to_numpy(zero_copy_only=False)
    if array.null_count == 0:
        return lambda i: words[codes[i]]
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    return lambda i: words[codes[i]] if valid[i] else None


def _cell_reader(column: pa.ChunkedArray) -> Cell:
    """The fastest exact reader of one column's cells (the values ``to_pylist`` gives)."""
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    kind = array.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        return _numeric(array)
    if pa.types.is_dictionary(kind):
        return _dictionary(array)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        distinct = pc.count_distinct(array).as_py() if len(array) else 0
        if distinct <= DICTIONARY_SHARE * len(array):
            return _dictionary(array.dictionary_encode())
    return lambda i: array[i].as_py()


class RowReader:
    """Rows of an immutable Arrow table as dicts, read cell by cell without slicing.

    >>> reader = RowReader(pa.table({"uscc": ["a", "b"], "score": [700, None]}))
    >>> reader.row(1)
    {'uscc': 'b', 'score': None}
    >>> reader.values(0, ["score", "absent"])
    {'score': 700}
    """

    def __init__(self, table: pa.Table) -> None:
        self.cells: dict[str, Cell] = {
            name: _cell_reader(table.column(name)) for name in table.column_names
        }

    def row(self, index: int) -> dict[str, Any]:
        return {name: cell(index) for name, cell in self.cells.items()}

    def values(self, index: int, columns: list[str]) -> dict[str, Any]:
        cells = self.cells
        return {c: cells[c](index) for c in columns if c in cells}


@dataclass(frozen=True)
class LoadedSnapshot:
    """One snapshot and its view, with a row index on ``uscc`` for each."""

    info: SnapshotInfo
    scores: pa.Table
    view: pa.Table | None
    score_rows: dict[str, int]
    view_rows: dict[str, int]

    @property
    def as_of(self) -> dt.date:
        return dt.date.fromisoformat(self.info.as_of)

    @cached_property
    def _score_reader(self) -> RowReader:
        return RowReader(self.scores)

    @cached_property
    def _view_reader(self) -> RowReader | None:
        return RowReader(self.view) if self.view is not None else None

    def prepare(self) -> LoadedSnapshot:
        """Build the row readers now (else on the first lookup); returns ``self``."""
        _ = self._score_reader, self._view_reader
        return self

    def score_row(self, uscc: str) -> dict[str, Any]:
        """The snapshot's row of ``uscc``; `NotFound` if it was not scored."""
        index = self.score_rows.get(uscc)
        if index is None:
            raise NotFound("uscc", "scored", "no score for this entity in the current snapshot")
        return self._score_reader.row(index)

    def has(self, uscc: str) -> bool:
        return uscc in self.score_rows

    def view_values(self, uscc: str, columns: list[str]) -> dict[str, Any]:
        """Values of some view columns for one entity (empty when the view is not loaded)."""
        index = self.view_rows.get(uscc)
        reader = self._view_reader
        if reader is None or index is None:
            return {}
        return reader.values(index, columns)

    def view_row(self, uscc: str) -> dict[str, Any]:
        """The whole view row of ``uscc`` (`NotFound` if absent)."""
        index = self.view_rows.get(uscc)
        reader = self._view_reader
        if reader is None or index is None:
            raise NotFound("uscc", "in_view", "this entity is not in the served view")
        return reader.row(index)


def _index(table: pa.Table) -> dict[str, int]:
    return {uscc: i for i, uscc in enumerate(table.column("uscc").to_pylist())}


def load_snapshot(scores: Path, features: Path) -> LoadedSnapshot:
    """Read the current snapshot of the ``scores`` folder and its view from ``features``.

    The view (for reason values, the three-in-one summary and pre-approval with a bank's
    PBOC report) is optional: without it those parts answer from the snapshot alone.
    """
    store = SnapshotStore(scores)
    if store.current() is None:
        raise Unavailable(
            "snapshot", "exists", f"no score snapshot in {scores}; run wzcredit score"
        )
    info, table = store.read()
    view_path = features / VIEW_FILE.format(as_of=info.as_of)
    view = None
    if view_path.exists():
        view = pq.read_table(view_path)
        view = view.filter(pc.is_in(view.column("uscc"), value_set=table.column("uscc")))
    else:
        logger.warning("view %s not found: reasons will carry no values", view_path.name)
    logger.info("serving snapshot %s (%d rows)", info.file, table.num_rows)
    return LoadedSnapshot(
        info=info,
        scores=table,
        view=view,
        score_rows=_index(table),
        view_rows=_index(view) if view is not None else {},
    ).prepare()
