"""Realistic delivery faults, injected at ``fault_rate`` of delivered rows, on a manifest.

Kinds and what ingest must do with them (``expect``):

========================  =============================================  ==========
fault                     what is wrong                                  expect
========================  =============================================  ==========
``check_digit``           wrong check character in a USCC / resident ID  quarantine
``fullwidth``             full-width characters in an identifier / code  repair
``stray_space``           spaces inside or around an identifier / code   repair
``stale_area_code``       district 330322 (洞头) or 330327 (龙港镇)       repair
``duplicate``             an exact copy of the row just before it        quarantine
``missing_field``         a mandatory field is empty                     quarantine
``negative_amount``       a negative money amount                        quarantine
``future_date``           a date (or month) after the delivery date      quarantine
``late_publication``      published > 7 working days after the decision  accept
``orphan``                identifier not in the registry / accounts      quarantine
========================  =============================================  ==========

Each manifest entry is ``{"table", "row", "column", "fault", "expect"}`` with ``row`` the
1-based data row of the written file (``column`` is null for duplicates). Every row not in
the manifest is clean and must be accepted.

Rows of tables that others reference (``entities``, ``persons``, ``pboc_accounts``) are never
corrupted: their faults sit on **extra** rows — a copy of a real row under a fresh key
(a copied entity gets an unused person as legal representative), then corrupted — placed
right after the original, so no child row becomes an orphan. In the other tables real rows
are corrupted, except rows that carry a default (PBOC statuses 4–7/B, 违约 loans, court
listings): those only get repairable faults or, for court listings, faulty extra copies,
so the defaults stay visible after ingest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from features.identifiers import make_resident_ids, make_usccs
from features.synthetic.schema import item
from features.synthetic.world import World

EXPECT = {
    "check_digit": "quarantine",
    "fullwidth": "repair",
    "stray_space": "repair",
    "stale_area_code": "repair",
    "duplicate": "quarantine",
    "missing_field": "quarantine",
    "negative_amount": "quarantine",
    "future_date": "quarantine",
    "late_publication": "accept",
    "orphan": "quarantine",
}
REPAIRABLE = ("fullwidth", "stray_space", "duplicate")
PARENT_TABLES = ("entities", "persons", "pboc_accounts")
NO_FAULTS = ("wenzhou_index", "lpr")
MONEY_COLUMNS = ("amount", "balance", "overdue_amount", "registered_capital", "amount_owed")
STALE = {"330305": "330322", "330383": "330327"}
_IDENTIFIERS = ("uscc", "resident_id", "subject_id")
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_ID_CHECKS = "0123456789X"
_ALPHABET = np.array(list(_USCC_ALPHABET))


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _stray_space(value: str, identifier: bool, rng: np.random.Generator) -> str:
    """Insert a space inside an identifier, or pad a value with a (full-width) space."""
    if identifier and rng.random() < 0.6:
        at = int(rng.integers(1, len(value)))
        return value[:at] + " " + value[at:]
    pad = " " if rng.random() < 0.6 else "\u3000"
    return pad + value if rng.random() < 0.5 else value + pad


_USABLE: dict[str, Callable[[Any], bool]] = {
    "fullwidth": lambda v: isinstance(v, str) and any("!" <= c <= "~" for c in v),
    "stale_area_code": lambda v: v in STALE,
    "missing_field": lambda v: True,
    "negative_amount": lambda v: True,
    "future_date": lambda v: True,
}


def _wrong_check(value: str, rng: np.random.Generator) -> str:
    checks = _USCC_ALPHABET if value.startswith("9") else _ID_CHECKS
    others = [c for c in checks if c != value[-1]]
    return value[:-1] + others[int(rng.integers(0, len(others)))]


class FaultInjector:
    """Injects faults table by table (batch by batch) and records them for the manifest."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.rate = world.config.fault_rate
        self.records: list[dict[str, Any]] = []
        self._batches: dict[str, int] = {}
        self._spare = 0
        self._fresh_persons: set[str] = set()
        self._fresh_accounts = 0
        self._taken_usccs: set[str] | None = None

    # ------------------------------------------------------------------ fresh values
    def fresh_usccs(self, rng: np.random.Generator, kind: list[str], area: list[str]) -> list[str]:
        """Valid USCCs that are in no registry row and were not handed out before."""
        if self._taken_usccs is None:
            self._taken_usccs = set(self.world.registry.uscc.tolist())
        out: list[str] = []
        for k, a in zip(kind, area, strict=True):
            while True:
                body = "MA" + "".join(_ALPHABET[rng.integers(0, 31, 6)].tolist())
                code = str(make_usccs("9", k, a, body))
                if code not in self._taken_usccs:
                    self._taken_usccs.add(code)
                    out.append(code)
                    break
        return out

    def fresh_resident_ids(self, rng: np.random.Generator, ids: list[str]) -> list[str]:
        """Valid resident IDs with the same area, birth date and sex as ``ids``, in no row.

        Real IDs use sequence numbers up to 993; these use 994–999.
        """
        out: list[str] = []
        for original in ids:
            value = original
            male = int(value[16]) % 2
            while True:
                sequence = 994 + 2 * int(rng.integers(0, 3)) + male
                birth = np.array(
                    [f"{value[6:10]}-{value[10:12]}-{value[12:14]}"], dtype="datetime64[D]"
                )
                fresh = str(
                    make_resident_ids(np.array([value[:6]]), birth, np.array([sequence]))[0]
                )
                if fresh not in self._fresh_persons:
                    self._fresh_persons.add(fresh)
                    out.append(fresh)
                    break
                birth_shift = int(rng.integers(1, 28))
                value = value[:12] + f"{birth_shift:02d}" + value[14:]
        return out

    def _fresh_identifier(self, rng: np.random.Generator, value: str) -> str:
        if value.startswith("9"):
            return self.fresh_usccs(rng, [value[1]], [value[2:8]])[0]
        return self.fresh_resident_ids(rng, [value])[0]

    # ------------------------------------------------------------------ column roles
    @staticmethod
    def _roles(table: str) -> dict[str, list[str]]:
        spec = item(table)
        key = set(spec.key)
        cols = spec.columns
        roles: dict[str, list[str]] = {
            "check_digit": [c for c, s in cols.items() if s.type in _IDENTIFIERS],
            "text": [c for c, s in cols.items() if s.type in (*_IDENTIFIERS, "code")],
            "stale_area_code": [c for c, s in cols.items() if s.type == "area_code"],
            "missing_field": [c for c, s in cols.items() if s.required and c not in key],
            "negative_amount": [c for c in cols if c in MONEY_COLUMNS],
            "future_date": [
                c
                for c, s in cols.items()
                if (s.type == "date" and not s.allow_future) or s.type == "month"
            ],
            "late_publication": [spec.publication_rule.publication]
            if spec.publication_rule
            else [],
            "orphan": [c for c, s in cols.items() if s.references],
        }
        return roles

    def _kinds(self, table: str) -> list[str]:
        roles = self._roles(table)
        kinds = ["duplicate"]
        if roles["check_digit"]:
            kinds.append("check_digit")
        if roles["text"]:
            kinds += ["fullwidth", "stray_space"]
        for kind in (
            "stale_area_code",
            "missing_field",
            "negative_amount",
            "future_date",
            "late_publication",
            "orphan",
        ):
            if roles[kind]:
                kinds.append(kind)
        return kinds

    @staticmethod
    def _protected(table: str, batch: pa.Table) -> npt.NDArray[np.bool_]:
        """Rows carrying a default: only repairable faults (or faulty extras) for them."""
        n = batch.num_rows
        if table == "pboc_monthly":
            status = batch.column("status")
            return np.asarray(
                pc.is_in(status, pa.array(["4", "5", "6", "7", "B"])).to_numpy(zero_copy_only=False)
            )
        if table == "private_loans":
            return np.asarray(
                pc.equal(batch.column("status"), "违约").to_numpy(zero_copy_only=False)
            )
        if table == "dishonest_debtors":
            return np.ones(n, dtype=bool)
        return np.zeros(n, dtype=bool)

    # ------------------------------------------------------------------ corruption
    def _corrupt(
        self, table: str, row: dict[str, Any], kind: str, rng: np.random.Generator
    ) -> tuple[dict[str, Any], str | None, str]:
        """Apply ``kind`` to one row (a dict); return (row, column, kind actually applied).

        Falls back to ``stray_space`` when no value has a character to widen, and to
        ``duplicate`` when the row has no column the fault can apply to.
        """
        if kind == "late_publication":
            return self._late_publication(table, row, rng)
        role = "text" if kind in ("fullwidth", "stray_space") else kind
        usable = _USABLE.get(kind, lambda v: v is not None)
        options = [c for c in self._roles(table)[role] if usable(row[c])]
        if not options:
            if kind == "fullwidth":
                return self._corrupt(table, row, "stray_space", rng)
            return row, None, "duplicate"
        column = options[int(rng.integers(0, len(options)))]
        row[column] = self._mutate(table, column, row[column], kind, rng)
        return row, column, kind

    def _mutate(
        self, table: str, column: str, value: Any, kind: str, rng: np.random.Generator
    ) -> Any:
        """The corrupted value of one cell."""
        spec = item(table).columns[column]
        mutations: dict[str, Callable[[], Any]] = {
            "check_digit": lambda: _wrong_check(value, rng),
            "fullwidth": lambda: _fullwidth(value),
            "stray_space": lambda: _stray_space(value, spec.type in _IDENTIFIERS, rng),
            "stale_area_code": lambda: STALE[value],
            "missing_field": lambda: None,
            "negative_amount": lambda: -abs(value) if value else -100.0,
            "future_date": lambda: self._future(spec.type == "month", rng),
            "orphan": lambda: self._orphan(table, value, rng),
        }
        return mutations[kind]()

    def _orphan(self, table: str, value: str, rng: np.random.Generator) -> str:
        """An identifier (or account id) that no registry row (or account) has."""
        if table == "pboc_monthly":
            self._fresh_accounts += 1
            return f"WZ9{self._fresh_accounts:011d}"
        return self._fresh_identifier(rng, value)

    def _future(self, month: bool, rng: np.random.Generator) -> dt.date | str:
        """A day (or a ``YYYY-MM`` month starting) after the delivery date."""
        delivered = self.world.config.delivery_date
        future = delivered + dt.timedelta(days=int(rng.integers(1, 400)))
        if not month:
            return future
        first_next = (delivered.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
        return max(future, first_next).strftime("%Y-%m")

    def _late_publication(
        self, table: str, row: dict[str, Any], rng: np.random.Generator
    ) -> tuple[dict[str, Any], str | None, str]:
        """Publish 12–40 working days after the decision (if still before delivery)."""
        rule = item(table).publication_rule
        assert rule is not None
        decided = np.array([row[rule.decision]], dtype="datetime64[D]")
        late = self.world.working_days.add(decided, int(rng.integers(12, 41)))[0]
        if late >= np.datetime64(self.world.config.delivery_date):
            return row, None, "duplicate"
        row[rule.publication] = late.astype(dt.date)
        return row, rule.publication, "late_publication"

    def _fresh_key(
        self, table: str, row: dict[str, Any], rng: np.random.Generator
    ) -> dict[str, Any]:
        """Give an extra row of a parent table (or a court listing) a fresh, unique key."""
        reg = self.world.registry
        if table == "entities":
            row["uscc"] = self.fresh_usccs(rng, [row["uscc"][1]], [row["uscc"][2:8]])[0]
            spare = reg.spare_persons[self._spare % reg.spare_persons.size]
            self._spare += 1
            row["legal_rep_id"] = str(reg.resident_id[spare])
        elif table == "persons":
            fresh = self.fresh_resident_ids(rng, [row["resident_id"]])[0]
            row["resident_id"] = fresh
            row["birth_date"] = dt.date(int(fresh[6:10]), int(fresh[10:12]), int(fresh[12:14]))
        elif table == "pboc_accounts":
            self._fresh_accounts += 1
            row["account_id"] = f"WZ8{self._fresh_accounts:011d}"
        elif table == "dishonest_debtors":
            row["case_no"] = row["case_no"].replace("执", "执恢", 1)
        return row

    # ------------------------------------------------------------------ batches
    def apply(self, table: str, batch: pa.Table, rows_before: int) -> pa.Table:
        """Return ``batch`` with its faults; ``rows_before`` rows of the file precede it."""
        n = batch.num_rows
        if self.rate <= 0 or table in NO_FAULTS or n == 0:
            return batch
        index = self._batches.get(table, 0)
        self._batches[table] = index + 1
        rng = self.world.rng(f"faults:{table}:{index}")
        count = int(rng.binomial(n, self.rate))
        if count == 0:
            return batch
        rows = np.sort(rng.choice(n, size=min(count, n), replace=False))
        kinds = self._kinds(table)
        chosen = [kinds[int(k)] for k in rng.integers(0, len(kinds), rows.size)]
        protected = self._protected(table, batch)
        area_rows = np.zeros(0, dtype=np.int64)
        if "stale_area_code" in kinds:
            district = batch.column("district").to_numpy(zero_copy_only=False)
            area_rows = np.flatnonzero(np.isin(district, list(STALE)))

        in_place: dict[int, tuple[dict[str, Any], str | None, str]] = {}
        extras: list[tuple[int, dict[str, Any], str | None, str]] = []
        for first_choice, first_kind in zip(rows.tolist(), chosen, strict=True):
            source, kind = first_choice, first_kind
            extra = table in PARENT_TABLES
            if kind == "stale_area_code" and extra and area_rows.size:
                source = int(area_rows[rng.integers(0, area_rows.size)])
            original = batch.slice(source, 1).to_pylist()[0]
            if kind != "duplicate" and protected[source] and EXPECT[kind] != "repair":
                if table == "dishonest_debtors":
                    extra = True
                else:
                    kind = ("fullwidth", "stray_space")[int(rng.integers(0, 2))]
            applied = "duplicate"
            if kind != "duplicate":
                row = self._fresh_key(table, dict(original), rng) if extra else dict(original)
                row, column, applied = self._corrupt(table, row, kind, rng)
            if applied == "duplicate":
                extras.append((source, original, None, "duplicate"))
            elif extra:
                extras.append((source, row, column, applied))
            else:
                in_place[source] = (row, column, applied)

        corrected = self._replace_rows(batch, in_place)
        extra_table = (
            pa.Table.from_pylist([e[1] for e in extras], schema=batch.schema) if extras else None
        )
        sources = np.array([e[0] for e in extras], dtype=np.int64)
        position = np.concatenate([np.arange(n), sources])
        sub = np.concatenate([np.zeros(n, np.int64), 1 + np.arange(sources.size)])
        order = np.lexsort((sub, position))
        final = np.empty(order.size, dtype=np.int64)
        final[order] = np.arange(order.size)
        for source, (_, column, kind) in in_place.items():
            self._record(table, rows_before + int(final[source]) + 1, column, kind)
        for k, (_, _, column, kind) in enumerate(extras):
            self._record(table, rows_before + int(final[n + k]) + 1, column, kind)
        combined = (
            pa.concat_tables([corrected, extra_table]) if extra_table is not None else corrected
        )
        return combined.take(pa.array(order))

    def _record(self, table: str, row: int, column: str | None, kind: str) -> None:
        self.records.append(
            {"table": table, "row": row, "column": column, "fault": kind, "expect": EXPECT[kind]}
        )

    @staticmethod
    def _replace_rows(
        batch: pa.Table, changes: dict[int, tuple[dict[str, Any], str | None, str]]
    ) -> pa.Table:
        """``batch`` with the changed cells of the given rows replaced."""
        if not changes:
            return batch
        columns = []
        for field in batch.schema:
            edits = {r: c[0][field.name] for r, c in changes.items() if c[1] == field.name}
            column = batch.column(field.name)
            if edits:
                mask = np.zeros(batch.num_rows, dtype=bool)
                rows = sorted(edits)
                mask[rows] = True
                values = pa.array([edits[r] for r in rows], type=field.type)
                column = pc.replace_with_mask(column.combine_chunks(), pa.array(mask), values)
            columns.append(column)
        return pa.Table.from_arrays(columns, schema=batch.schema)
