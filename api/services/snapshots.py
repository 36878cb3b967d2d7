"""The served score snapshot and its view, in memory, indexed by USCC.

A service instance loads the current batch snapshot (`scoring.batch.SnapshotStore`) and the
three-in-one view it was scored from once, at start-up or on `reload`; a lookup is a dict
hit and one Arrow row. Both tables are immutable, so concurrent requests read them freely;
`reload` swaps in a new pair atomically (one attribute assignment).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from api.errors import NotFound, Unavailable
from scoring.batch import SnapshotInfo, SnapshotStore

logger = logging.getLogger(__name__)

VIEW_FILE = "three_in_one_view_{as_of}.parquet"


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

    def score_row(self, uscc: str) -> dict[str, Any]:
        """The snapshot's row of ``uscc``; `NotFound` if it was not scored."""
        index = self.score_rows.get(uscc)
        if index is None:
            raise NotFound("uscc", "scored", "no score for this entity in the current snapshot")
        row: dict[str, Any] = self.scores.slice(index, 1).to_pylist()[0]
        return row

    def has(self, uscc: str) -> bool:
        return uscc in self.score_rows

    def view_values(self, uscc: str, columns: list[str]) -> dict[str, Any]:
        """Values of some view columns for one entity (empty when the view is not loaded)."""
        if self.view is None or uscc not in self.view_rows:
            return {}
        index = self.view_rows[uscc]
        return {
            c: self.view.column(c)[index].as_py() for c in columns if c in self.view.schema.names
        }

    def view_row(self, uscc: str) -> dict[str, Any]:
        """The whole view row of ``uscc`` (`NotFound` if absent)."""
        if self.view is None or uscc not in self.view_rows:
            raise NotFound("uscc", "in_view", "this entity is not in the served view")
        row: dict[str, Any] = self.view.slice(self.view_rows[uscc], 1).to_pylist()[0]
        return row


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
    )
