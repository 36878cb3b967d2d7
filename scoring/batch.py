"""Batch scoring: every entity of a view, written as one atomic, traceable snapshot.

`score_frame` is the one scoring function: view rows → PD (the registered calibrated model)
→ score, grade, supervision class and frequency, 信易贷 / 信易批 / 信易租 decisions
(`scoring.decisions`) and, optionally, the top reason codes (`scoring.reasons`). DuckDB
scoring calls it on the whole view in chunks; Spark calls the very same function on each
Arrow batch through ``mapInPandas`` (`score_spark`), so both engines give equal results.

Snapshots (`SnapshotStore`): each snapshot is one immutable Parquet file named after its
as-of date, model version, policy version and creation time, with that provenance also in
the file's schema metadata. The store's ``CURRENT`` file names the snapshot readers should
use and is replaced atomically (write a temporary file, fsync, ``os.replace``) only after
the new snapshot is completely written: a reader sees the old snapshot or the new one,
never a mix, and a failed run leaves the old one current.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.view import feature_specs
from models.datasets import Design
from scoring.decisions import decide
from scoring.errors import ScoringError
from scoring.policy import ScoringPolicy

logger = logging.getLogger(__name__)

CURRENT = "CURRENT"
METADATA_KEY = b"wzcredit.snapshot"
#: snapshots kept besides the current one (older ones are removed after a new one lands)
KEEP = 3
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SnapshotInfo:
    """Provenance of a score snapshot: every score traces back to these inputs."""

    file: str
    as_of: str
    model_version: str
    policy_version: str
    rows: int
    reasons: bool
    engine: str
    created: str
    #: version of the reason-code table the reasons were written with ("" without reasons)
    reason_codes_version: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)


def score_frame(
    view: pd.DataFrame,
    model: Any,
    policy: ScoringPolicy,
    *,
    reasons: bool = True,
    design: Design | None = None,
) -> pd.DataFrame:
    """Score view rows: ``uscc``, ``as_of``, ``pd`` and the decision and reason columns.

    ``registered_loan_guard`` is true where `registered_loan_guard` applied: the entity's
    PD (and its reasons) are those of the same entity without its registered private
    loans in good standing, which were scored worse.
    """
    design = design or Design.from_specs()
    x = design.matrix(view)
    probability, x, guarded = registered_loan_guard(model, x, view)
    decided = decide(view.reset_index(drop=True), probability, policy)
    out = pd.concat(
        [
            pd.DataFrame(
                {
                    "uscc": view["uscc"].to_numpy(),
                    "as_of": view["as_of"].to_numpy(),
                    "pd": probability,
                    "registered_loan_guard": guarded,
                }
            ),
            decided.reset_index(drop=True),
        ],
        axis=1,
    )
    if reasons:
        from scoring.reasons import reason_columns  # noqa: PLC0415 - SHAP only when asked

        out = pd.concat(
            [out, reason_columns(model, x, top=policy.reasons.top).reset_index(drop=True)],
            axis=1,
        )
    return out


def in_good_standing(view: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """Entities whose registered private loans are all in good standing now: at least one
    registered loan, none overdue now, none in default in the last 5 years."""

    def column(name: str) -> npt.NDArray[np.float64]:
        values: npt.NDArray[np.float64] = view[name].fillna(0).to_numpy(dtype=np.float64)
        return values

    result: npt.NDArray[np.bool_] = (
        (column("pl_has_registered_loan") > 0)
        & (column("pl_loans_overdue") == 0)
        & (column("pl_loans_defaulted_5y") == 0)
    )
    return result


def registered_loan_guard(
    model: Any, x: pd.DataFrame, view: pd.DataFrame
) -> tuple[npt.NDArray[np.float64], pd.DataFrame, npt.NDArray[np.bool_]]:
    """PDs in which a registered private loan in good standing never counts against.

    《温州市民间融资管理条例》 第十八条 (DOMAIN.md §4.2): a filed loan must not be treated as a
    negative factor for the borrower's credit grade. A tree model cannot promise that by
    itself (monotone constraints do not govern where missing values go, and the loan's
    price features may raise the PD), so for every entity whose registered loans are all in
    good standing the model also scores the same row without them — every private-lending
    feature at its value for an entity with no registered loan — and the lower PD is kept,
    with the matrix it came from (so reasons explain the PD that is reported).

    Returns ``(pd, matrix used, guard applied)``.
    """
    probability = model.predict_proba(x)[:, 1]
    holders = np.flatnonzero(in_good_standing(view))
    guarded = np.zeros(len(x), dtype=np.bool_)
    if holders.size == 0:
        return probability, x, guarded
    without = x.iloc[holders].copy()
    private = [s for s in feature_specs() if s.source == "private_lending" and s.name in x]
    for spec in private:
        without[spec.name] = np.nan if spec.fill is None else float(spec.fill)
    lower = model.predict_proba(without)[:, 1]
    better = lower < probability[holders]
    if not better.any():
        return probability, x, guarded
    rows = holders[better]
    guarded[rows] = True
    probability = probability.copy()
    probability[rows] = lower[better]
    x = x.copy()
    for spec in private:
        values = x[spec.name].to_numpy(dtype=np.float64, copy=True)
        values[rows] = without[spec.name].to_numpy(dtype=np.float64)[better]
        x[spec.name] = values
    return probability, x, guarded


def score_view(
    view: pa.Table | pd.DataFrame,
    model: Any,
    policy: ScoringPolicy,
    *,
    reasons: bool = True,
    chunk_rows: int = 200_000,
    progress: Progress | None = None,
) -> pa.Table:
    """Score a whole view in chunks (bounded memory), as one Arrow table."""
    frame = view.to_pandas() if isinstance(view, pa.Table) else view
    design = Design.from_specs()
    parts: list[pa.Table] = []
    total = len(frame)
    for start in range(0, max(total, 1), chunk_rows):
        chunk = frame.iloc[start : start + chunk_rows]
        scored = score_frame(chunk, model, policy, reasons=reasons, design=design)
        parts.append(pa.Table.from_pandas(scored, preserve_index=False))
        if progress is not None:
            progress(min(start + chunk_rows, total), total)
    return pa.concat_tables(parts) if parts else pa.table({})


def score_spark(view: Any, model: Any, policy: ScoringPolicy, *, reasons: bool = True) -> Any:
    """Score a Spark DataFrame of view rows with `score_frame` through ``mapInPandas``."""
    from pyspark.sql.pandas.types import from_arrow_schema  # noqa: PLC0415 - optional extra

    sample = view.limit(1).toPandas()
    if sample.empty:
        raise ScoringError("view", "not_empty", "the view has no rows to score")
    schema = pa.Table.from_pandas(
        score_frame(sample, model, policy, reasons=reasons), preserve_index=False
    ).schema
    design = Design.from_specs()

    def score_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if len(batch):
                yield score_frame(batch, model, policy, reasons=reasons, design=design)

    return view.mapInPandas(score_batches, schema=from_arrow_schema(schema))


class SnapshotStore:
    """A folder of immutable score snapshots and the ``CURRENT`` pointer to one of them."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def current(self) -> SnapshotInfo | None:
        """The current snapshot's provenance, or None before the first snapshot."""
        pointer = self.folder / CURRENT
        if not pointer.exists():
            return None
        return SnapshotInfo(**json.loads(pointer.read_text(encoding="utf-8")))

    def read(self, columns: list[str] | None = None) -> tuple[SnapshotInfo, pa.Table]:
        """The current snapshot and its provenance (one consistent snapshot)."""
        info = self.current()
        if info is None:
            raise ScoringError("snapshot", "exists", f"no score snapshot in {self.folder}")
        return info, pq.read_table(self.folder / info.file, columns=columns)

    def write(
        self,
        table: pa.Table,
        *,
        as_of: dt.date,
        model_version: str,
        policy_version: str,
        reasons: bool,
        engine: str,
        reason_codes_version: str | None = None,
    ) -> SnapshotInfo:
        """Write ``table`` as a new snapshot and make it current, atomically.

        ``reason_codes_version`` defaults to the packaged reason-code table's version when
        the snapshot has reasons (the table that `score_view` uses by default).
        """
        if reason_codes_version is None:
            reason_codes_version = _packaged_reason_codes_version() if reasons else ""
        self.folder.mkdir(parents=True, exist_ok=True)
        created = dt.datetime.now(dt.UTC)
        name = (
            f"scores_{as_of.isoformat()}_model-{model_version}_policy-{policy_version}_"
            f"{created.strftime('%Y%m%dT%H%M%S%fZ')}.parquet"
        )
        info = SnapshotInfo(
            file=name, as_of=as_of.isoformat(), model_version=str(model_version),
            policy_version=policy_version, rows=table.num_rows, reasons=reasons,
            engine=engine, created=created.isoformat(timespec="seconds"),
            reason_codes_version=reason_codes_version,
        )  # fmt: skip
        metadata = dict(table.schema.metadata or {})
        metadata[METADATA_KEY] = info.to_json().encode("utf-8")
        _atomic_write(
            self.folder / name,
            lambda path: pq.write_table(table.replace_schema_metadata(metadata), path),
        )
        _atomic_write(
            self.folder / CURRENT,
            lambda path: Path(path).write_text(info.to_json(), encoding="utf-8"),
        )
        self._prune(keep={name})
        logger.info("score snapshot %s: %d rows", name, table.num_rows)
        return info

    def _prune(self, keep: set[str]) -> None:
        snapshots = sorted(self.folder.glob("scores_*.parquet"), key=lambda p: p.stat().st_mtime)
        old = [p for p in snapshots if p.name not in keep][:-KEEP] if KEEP else snapshots
        for path in old:
            path.unlink(missing_ok=True)


def _packaged_reason_codes_version() -> str:
    from scoring.reasons import default_reason_codes  # noqa: PLC0415 - SHAP only when asked

    return default_reason_codes().version


def _atomic_write(target: Path, write: Callable[[str], object]) -> None:
    """Write through a temporary file in the same folder, fsync it, then rename over."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def summary(table: pa.Table) -> dict[str, Any]:
    """Counts by grade, class and decision of a scored table."""
    frame = table.select(["grade", "supervision_class", "decision"]).to_pandas()
    return {
        column: {str(k): int(v) for k, v in frame[column].value_counts().sort_index().items()}
        for column in frame.columns
    } | {"mean_pd": float(np.mean(table.column("pd").to_numpy()))}


__all__ = ["SnapshotInfo", "SnapshotStore", "score_frame", "score_spark", "score_view"]
