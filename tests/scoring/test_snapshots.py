"""Score snapshots: atomic replacement, provenance, pruning."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from scoring.batch import CURRENT, KEEP, METADATA_KEY, SnapshotStore
from scoring.errors import ScoringError

AS_OF = dt.date(2020, 12, 31)


def _table(generation: int, rows: int) -> pa.Table:
    return pa.table({"uscc": [f"{i:018d}" for i in range(rows)],
                     "generation": pa.array([generation] * rows, pa.int64())})  # fmt: skip


def _write(store: SnapshotStore, generation: int, rows: int) -> None:
    store.write(_table(generation, rows), as_of=AS_OF, model_version=str(generation),
                policy_version="test", reasons=False, engine="duckdb")  # fmt: skip


def test_a_reader_during_writes_sees_one_whole_snapshot(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    _write(store, 0, 50_000)
    seen: list[tuple[int, int, int]] = []
    failures: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            try:
                info, table = store.read()
            except BaseException as exc:
                failures.append(exc)
                return
            generations = pc.unique(table["generation"]).to_pylist()
            seen.append((len(generations), table.num_rows, int(info.model_version)))
            assert generations == [int(info.model_version)]

    thread = threading.Thread(target=reader)
    thread.start()
    for generation in range(1, 9):
        _write(store, generation, 50_000 + generation)
    done.set()
    thread.join()
    assert not failures
    assert seen  # the reader ran during the writes
    assert all(distinct == 1 for distinct, _, _ in seen)
    assert all(rows == 50_000 + generation for _, rows, generation in seen)
    info, table = store.read()
    assert info.model_version == "8"
    assert table.num_rows == 50_008


def test_a_failed_write_leaves_the_old_snapshot_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SnapshotStore(tmp_path)
    _write(store, 1, 10)
    real_write = pq.write_table

    def disk_full_halfway(table: pa.Table, where: str) -> None:
        real_write(table.slice(0, 2), where)  # a partial file, then the failure
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", disk_full_halfway)
    with pytest.raises(OSError, match="No space"):
        _write(store, 2, 10)
    monkeypatch.undo()
    info, table = store.read()
    assert info.model_version == "1"
    assert table.num_rows == 10
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_provenance_is_in_the_pointer_and_in_the_file(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    _write(store, 3, 5)
    info = store.current()
    assert info is not None
    assert (info.as_of, info.model_version, info.policy_version, info.rows) == (
        "2020-12-31", "3", "test", 5)  # fmt: skip
    import pyarrow.parquet as pq  # noqa: PLC0415

    meta = pq.read_schema(tmp_path / info.file).metadata[METADATA_KEY]
    assert meta.decode() == (tmp_path / CURRENT).read_text(encoding="utf-8")


def test_old_snapshots_are_pruned_but_recent_ones_kept(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    for generation in range(KEEP + 4):
        _write(store, generation, 3)
    assert len(list(tmp_path.glob("scores_*.parquet"))) == KEEP + 1


def test_reading_an_empty_store_says_so(tmp_path: Path) -> None:
    with pytest.raises(ScoringError) as caught:
        SnapshotStore(tmp_path).read()
    assert (caught.value.field, caught.value.rule) == ("snapshot", "exists")


def test_the_reason_code_table_version_is_recorded(tmp_path: Path) -> None:
    from scoring.reasons import default_reason_codes  # noqa: PLC0415

    store = SnapshotStore(tmp_path)
    with_reasons = store.write(_table(1, 2), as_of=AS_OF, model_version="1",
                               policy_version="test", reasons=True, engine="duckdb")  # fmt: skip
    assert with_reasons.reason_codes_version == default_reason_codes().version
    assert store.current() == with_reasons
    _write(store, 2, 2)  # no reasons: no table was used
    current = store.current()
    assert current is not None
    assert current.reason_codes_version == ""
