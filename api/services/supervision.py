"""信用分类监管: the supervision list, its CSV export and summary, for regulators and analysts.

The list is the served snapshot's supervision columns (grade, class, sampling ratio,
inspections a year, 联合奖惩 overrides) joined with the register's facts (name, type,
district, industry). Nothing from the PBOC side is shown: no PD, no reasons, no resident ID.
A 个体工商户's name may hold its operator's name, so it is masked (`mask_business_name`).

Fast at a city's scale (Wenzhou: 1.1 million entities): the join, the masking and the
dictionary encoding of every column are done once per served snapshot (`SupervisionBase`,
cached); a request then filters and orders integer codes with numpy and materialises only
the rows it returns. Entities scored again since the snapshot (``entity_rescores``, after
an objection or a repair) are read in one query per request, and the newest rescore of each
replaces its snapshot row (`current`).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.db.tables import EntityRescore
from api.schemas.supervision import CountItem, SupervisionRow, SupervisionSummary
from api.security import mask_business_name
from api.services.directory import Directory
from api.services.scores import served
from api.services.snapshots import LoadedSnapshot
from api.state import Services
from features.area_codes import load_area_codes
from features.catalog import load_catalog
from scoring.policy import ScoringPolicy

Codes = npt.NDArray[np.int32]
Rows = npt.NDArray[np.intp]
Mask = npt.NDArray[np.bool_]
#: rows per CSV chunk streamed to the client
CSV_CHUNK = 50_000
#: UTF-8 byte order mark: Excel opens a CSV that starts with it as UTF-8 (Chinese names)
BOM = "\ufeff".encode()
#: separator of override codes inside one CSV cell
OVERRIDE_SEPARATOR = ";"
CSV_COLUMNS = (
    "uscc",
    "name",
    "entity_type",
    "district",
    "district_name",
    "industry",
    "industry_name",
    "grade",
    "supervision_class",
    "sampling_ratio",
    "inspections_per_year",
    "overrides",
    "rescored",
)


@dataclass(frozen=True)
class Coded:
    """A column as integer codes into ``names`` (a name may be None: missing)."""

    codes: Codes
    names: tuple[str | None, ...]

    @classmethod
    def encode(cls, values: pa.Array | pa.ChunkedArray, order: Sequence[str] = ()) -> Coded:
        """Dictionary-encode ``values``; ``order``'s names come first, in that order."""
        encoded = pc.dictionary_encode(pc.cast(values, pa.string()))
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        found: list[str | None] = encoded.dictionary.to_pylist()
        names: list[str | None] = list(dict.fromkeys([*order, *found]))
        if encoded.null_count:
            names.append(None)
        position = np.array([names.index(v) for v in found], dtype=np.int32)
        raw = encoded.indices.fill_null(len(found)).to_numpy(zero_copy_only=False)
        lookup = np.append(position, np.int32(names.index(None) if encoded.null_count else 0))
        return cls(lookup[raw].astype(np.int32), tuple(names))

    def index(self, name: str) -> int | None:
        return self.names.index(name) if name in self.names else None

    def strings(self, rows: Rows, names: Sequence[str | None] | None = None) -> pa.Array:
        """The values (or ``names``, parallel to ``self.names``) of ``rows`` as strings."""
        return pc.take(pa.array(names or self.names, pa.string()), pa.array(self.codes[rows]))

    def patched(self, rows: Sequence[int], values: Sequence[str | None]) -> Coded:
        """A copy with ``rows`` set to ``values`` (new names are appended)."""
        names, codes = list(self.names), self.codes.copy()
        for row, value in zip(rows, values, strict=True):
            if value not in names:
                names.append(value)
            codes[row] = names.index(value)
        return Coded(codes, tuple(names))


@dataclass(frozen=True)
class SupervisionBase:
    """The snapshot's supervision list, joined, masked and encoded once (read only)."""

    snapshot: LoadedSnapshot
    directory: Directory
    policy: ScoringPolicy
    uscc: pa.Array
    name: pa.Array
    entity_type: Coded
    district: Coded
    industry: Coded
    grade: Coded
    klass: Coded
    sampling_ratio: npt.NDArray[np.float64]
    inspections_per_year: npt.NDArray[np.float64]
    overrides: Coded
    by_uscc: Rows

    @property
    def rows(self) -> int:
        return len(self.uscc)


def _joined_overrides(column: pa.ChunkedArray) -> pa.Array:
    """``list<string>`` overrides as one string a row (codes joined, empty when none)."""
    joined = pc.binary_join(pc.fill_null(column, pa.scalar([], column.type)), OVERRIDE_SEPARATOR)
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


class _Latest:
    """The value built from the latest keys, compared by identity (one entry, thread-safe)."""

    def __init__(self, build: Callable[..., Any]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._entry: tuple[tuple[object, ...], Any] | None = None

    def get(self, *keys: object) -> Any:
        entry = self._entry
        if entry is None or not _same(entry[0], keys):
            with self._lock:
                entry = self._entry
                if entry is None or not _same(entry[0], keys):
                    entry = (keys, self._build(*keys))
                    self._entry = entry
        return entry[1]


def _same(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def register_table(directory: Directory) -> pa.Table:
    """The register's facts the list shows, a 个体工商户's name masked (once a register)."""
    facts = directory.entities.values()
    columns = (
        [f.uscc for f in facts],
        [mask_business_name(f.name) if f.natural_person else f.name for f in facts],
        [f.entity_type for f in facts],
        [f.district for f in facts],
        [f.industry for f in facts],
    )
    names = ("uscc", "name", "entity_type", "district", "industry")
    return pa.table({n: pa.array(c, pa.string()) for n, c in zip(names, columns, strict=True)})


_REGISTER = _Latest(register_table)


def build_base(
    snapshot: LoadedSnapshot, directory: Directory, policy: ScoringPolicy
) -> SupervisionBase:
    """Join the snapshot with the register and encode every column (once a snapshot)."""
    scores = snapshot.scores
    uscc = pc.cast(scores.column("uscc"), pa.string()).combine_chunks()
    register: pa.Table = _REGISTER.get(directory)
    facts = register.take(pc.index_in(uscc, register.column("uscc")))
    return SupervisionBase(
        snapshot=snapshot,
        directory=directory,
        policy=policy,
        uscc=uscc,
        name=facts.column("name").combine_chunks(),
        entity_type=Coded.encode(facts.column("entity_type")),
        district=Coded.encode(facts.column("district"), district_names()),
        industry=Coded.encode(facts.column("industry"), industry_names()),
        grade=Coded.encode(scores.column("grade"), policy.grade_names),
        klass=Coded.encode(scores.column("supervision_class"), [c.name for c in policy.classes]),
        sampling_ratio=scores.column("sampling_ratio").to_numpy().astype(np.float64),
        inspections_per_year=scores.column("inspections_per_year").to_numpy().astype(np.float64),
        overrides=Coded.encode(_joined_overrides(scores.column("overrides"))),
        by_uscc=np.asarray(pc.sort_indices(uscc).to_numpy(), dtype=np.intp),
    )


_BASE = _Latest(build_base)


def base_of(services: Services) -> SupervisionBase:
    """The served snapshot's `SupervisionBase` (built on first use, then shared).

    Rebuilt when the served snapshot, the register or the policy is replaced; the register's
    part (the slow one: a Python pass over every entity) only when the register is.
    """
    base: SupervisionBase = _BASE.get(served(services), services.directory, services.policy)
    return base


@lru_cache(maxsize=1)
def _district_table() -> dict[str, str]:
    history = load_area_codes()
    return {code: history.name(code) for code in history.district_codes()}


def district_names() -> tuple[str, ...]:
    """The current district codes of Wenzhou (GB/T 2260), the district filter's values."""
    return tuple(_district_table())


@lru_cache(maxsize=1)
def _industry_table() -> dict[str, str]:
    codes = load_catalog().item("entities").columns["industry"].codes
    return dict(codes or {})


def industry_names() -> tuple[str, ...]:
    """The GB/T 4754-2017 sections of the catalog, the industry filter's values."""
    return tuple(_industry_table())


def allowed_filters(policy: ScoringPolicy) -> dict[str, tuple[str, ...]]:
    """Every filter's allowed values (anything else is refused, naming these)."""
    return {
        "district": district_names(),
        "industry": industry_names(),
        "supervision_class": tuple(c.name for c in policy.classes),
        "grade": policy.grade_names,
    }


@dataclass(frozen=True)
class Filters:
    district: str | None = None
    industry: str | None = None
    supervision_class: str | None = None
    grade: str | None = None


@dataclass(frozen=True)
class Current:
    """The list as it stands now: the base with the newest rescores in place."""

    base: SupervisionBase
    grade: Coded
    klass: Coded
    sampling_ratio: npt.NDArray[np.float64]
    inspections_per_year: npt.NDArray[np.float64]
    overrides: Coded
    rescored: Rows  # sorted row numbers of the rescored entities

    def matching(self, filters: Filters) -> Mask:
        """Where the rows match ``filters`` (vectorised over the integer codes)."""
        base = self.base
        mask = np.ones(base.rows, dtype=np.bool_)
        for coded, value in (
            (base.district, filters.district),
            (base.industry, filters.industry),
            (self.klass, filters.supervision_class),
            (self.grade, filters.grade),
        ):
            if value is not None:
                index = coded.index(value)
                mask &= False if index is None else coded.codes == index
        return mask

    def select(self, filters: Filters) -> Rows:
        """Rows matching ``filters``, by class (highest risk first), then USCC."""
        base = self.base
        in_order = base.by_uscc[self.matching(filters)[base.by_uscc]]
        risk = self._risk()[self.klass.codes[in_order]]
        ordered: Rows = in_order[np.argsort(-risk, kind="stable")]
        return ordered

    def _risk(self) -> npt.NDArray[np.int8]:
        """Rank of each class name: A = 0 up to D; unknown names -1 (listed last)."""
        policy_classes = [c.name for c in self.base.policy.classes]
        return np.array(
            [policy_classes.index(n) if n in policy_classes else -1 for n in self.klass.names],
            dtype=np.int8,
        )

    def is_rescored(self, rows: Rows) -> npt.NDArray[np.bool_]:
        return np.isin(rows, self.rescored)

    def table(self, rows: Rows) -> pa.Table:
        """``rows`` as an Arrow table with the `CSV_COLUMNS`."""
        base, take = self.base, pa.array(rows)
        districts, industries = _district_table(), _industry_table()
        return pa.table(
            {
                "uscc": base.uscc.take(take),
                "name": base.name.take(take),
                "entity_type": base.entity_type.strings(rows),
                "district": base.district.strings(rows),
                "district_name": base.district.strings(
                    rows, [districts.get(n or "") for n in base.district.names]
                ),
                "industry": base.industry.strings(rows),
                "industry_name": base.industry.strings(
                    rows, [industries.get(n or "") for n in base.industry.names]
                ),
                "grade": self.grade.strings(rows),
                "supervision_class": self.klass.strings(rows),
                "sampling_ratio": self.sampling_ratio[rows],
                "inspections_per_year": self.inspections_per_year[rows],
                "overrides": self.overrides.strings(rows),
                "rescored": self.is_rescored(rows),
            }
        )


def newest_rescores(session: Session, snapshot_id: int | None) -> dict[str, dict[str, Any]]:
    """The newest rescore result of each entity rescored on the served snapshot (one query)."""
    if snapshot_id is None:
        return {}
    newest = (
        select(func.max(EntityRescore.id))
        .where(EntityRescore.snapshot_id == snapshot_id)
        .group_by(EntityRescore.uscc)
    )
    found = session.execute(
        select(EntityRescore.uscc, EntityRescore.result).where(EntityRescore.id.in_(newest))
    ).all()
    return {uscc: dict(result) for uscc, result in found}


def current(services: Services, session: Session) -> Current:
    """The served list with the newest rescores in place of their snapshot rows."""
    base = base_of(services)
    results = newest_rescores(session, services.snapshot_id)
    where = base.snapshot.score_rows
    rows = sorted((where[u], r) for u, r in results.items() if u in where)
    if not rows:
        return Current(
            base,
            base.grade,
            base.klass,
            base.sampling_ratio,
            base.inspections_per_year,
            base.overrides,
            np.empty(0, dtype=np.intp),
        )
    at = [row for row, _ in rows]
    results_in_order = [r for _, r in rows]
    ratio, per_year = base.sampling_ratio.copy(), base.inspections_per_year.copy()
    ratio[at] = [float(r["sampling_ratio"]) for r in results_in_order]
    per_year[at] = [float(r["inspections_per_year"]) for r in results_in_order]
    return Current(
        base=base,
        grade=base.grade.patched(at, [str(r["grade"]) for r in results_in_order]),
        klass=base.klass.patched(at, [str(r["supervision_class"]) for r in results_in_order]),
        sampling_ratio=ratio,
        inspections_per_year=per_year,
        overrides=base.overrides.patched(
            at, [OVERRIDE_SEPARATOR.join(r.get("overrides") or ()) for r in results_in_order]
        ),
        rescored=np.array(at, dtype=np.intp),
    )


def page_rows(now: Current, rows: Rows) -> list[SupervisionRow]:
    """The API rows of ``rows`` (a page: at most `Settings.page_size_max`)."""
    out = []
    for record in now.table(rows).to_pylist():
        overrides = record.pop("overrides")
        out.append(
            SupervisionRow(
                **record, overrides=overrides.split(OVERRIDE_SEPARATOR) if overrides else []
            )
        )
    return out


def csv_chunks(now: Current, rows: Rows, chunk: int = CSV_CHUNK) -> Iterator[bytes]:
    """The CSV of ``rows`` (UTF-8 with BOM, header first), ``chunk`` rows at a time."""
    yield BOM
    for start in range(0, max(len(rows), 1), chunk):
        buffer = io.BytesIO()
        options = pacsv.WriteOptions(include_header=start == 0, quoting_style="needed")
        pacsv.write_csv(now.table(rows[start : start + chunk]), buffer, options)
        yield buffer.getvalue()


def _counts(coded: Coded, where: Mask, labels: dict[str, str]) -> list[CountItem]:
    counts = np.bincount(coded.codes[where], minlength=len(coded.names))
    return [
        CountItem(code=name, name=labels.get(name or ""), count=int(n))
        for name, n in zip(coded.names, counts.tolist(), strict=True)
        if n or name in labels
    ]


def summary(now: Current, where: Mask) -> SupervisionSummary:
    """Counts of the rows ``where`` is true by class, grade, class × grade, district, industry."""
    base = now.base
    policy_grades = set(base.policy.grade_names)
    policy_classes = {c.name for c in base.policy.classes}
    n_grades = len(now.grade.names)
    pairs = np.bincount(
        now.klass.codes[where].astype(np.int64) * n_grades + now.grade.codes[where],
        minlength=len(now.klass.names) * n_grades,
    ).reshape(len(now.klass.names), n_grades)
    by_class_grade = {
        str(klass): {
            str(grade): int(pairs[i, j])
            for j, grade in enumerate(now.grade.names)
            if grade in policy_grades or pairs[i, j]
        }
        for i, klass in enumerate(now.klass.names)
        if klass in policy_classes or pairs[i].any()
    }
    return SupervisionSummary(
        as_of=base.snapshot.as_of,
        snapshot=base.snapshot.info.file,
        total=int(where.sum()),
        by_class={k: sum(v.values()) for k, v in by_class_grade.items()},
        by_grade={
            str(g): int(pairs[:, j].sum())
            for j, g in enumerate(now.grade.names)
            if g in policy_grades or pairs[:, j].any()
        },
        by_class_grade=by_class_grade,
        by_district=_counts(base.district, where, _district_table()),
        by_industry=_counts(base.industry, where, _industry_table()),
    )
