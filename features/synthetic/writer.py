"""Writing a delivery: one file per table, ``delivery.json``, ``manifest.json``, checksums.

Parquet files are written with fixed options (zstd, dictionary encoding, fixed row-group
size, no timestamps in the metadata) and CSV files as UTF-8 with a header row, comma
separators and RFC 4180 quoting (dates ISO, booleans ``true``/``false``, nulls empty), so
the same seed gives byte-identical files. Large tables are streamed batch by batch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from features.files import file_sha256

ROW_GROUP_SIZE = 1 << 20
Progress = Callable[[str, int, int], None]


class TableWriter:
    """Streams Arrow tables of one schema into ``path`` (Parquet or CSV)."""

    def __init__(
        self, path: Path, schema: pa.Schema, file_format: Literal["parquet", "csv"]
    ) -> None:
        self.path = path
        self.rows = 0
        self._writer: pq.ParquetWriter | pacsv.CSVWriter
        if file_format == "parquet":
            self._writer = pq.ParquetWriter(
                path,
                schema,
                compression="zstd",
                compression_level=3,
                use_dictionary=True,
                write_statistics=True,
                version="2.6",
            )
        else:
            options = pacsv.WriteOptions(include_header=True, delimiter=",", quoting_style="needed")
            self._writer = pacsv.CSVWriter(path, schema, write_options=options)

    def write(self, table: pa.Table) -> None:
        """Append ``table`` (same schema) to the file."""
        if isinstance(self._writer, pq.ParquetWriter):
            self._writer.write_table(table, row_group_size=ROW_GROUP_SIZE)
        else:
            self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        """Finish the file."""
        self._writer.close()

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def write_json(path: Path, content: Any) -> None:
    """Write JSON deterministically (sorted keys, UTF-8, trailing newline)."""
    text = json.dumps(content, ensure_ascii=False, indent=2, sort_keys=True)
    path.write_text(text + "\n", encoding="utf-8")


def checksums(out: Path, exclude: tuple[str, ...] = ("manifest.json",)) -> dict[str, str]:
    """SHA-256 of every file under ``out`` (relative POSIX paths), except ``exclude``."""
    return {
        p.relative_to(out).as_posix(): file_sha256(p)
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.relative_to(out).as_posix() not in exclude
    }
