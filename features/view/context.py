"""What a feature builder may see as of a date: tables, point-in-time helpers and policy.

Every source module receives a `ViewContext` and must only use records *known before*
``as_of``: a penalty exists from its publication, a PBOC month from the month after it, a
listing from its listing date. Records under an objection that is open on ``as_of``, and
records repaired (信用修复) before ``as_of``, are removed by `ViewContext.effective`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import ibis
import ibis.expr.types as ir
import yaml
from pydantic import BaseModel, ConfigDict

from features.warehouse import key_column

DEFAULT_POLICY_PATH = Path(__file__).with_name("policy.yaml")
#: entity type whose owner's personal records are the business's own (个体工商户)
OWNER_IS_ENTITY = "个体工商户"
#: the entity's surrogate key (`features.warehouse`): what records are mapped to, grouped by
#: and joined on in the view; ``uscc`` itself is only carried to the output
ENTITY_KEY = key_column("uscc")


class InterestCap(BaseModel):
    """Legal interest caps on private lending."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    before_2020_08_20_percent: float
    lpr_multiple: float
    lpr_rule_from: dt.date
    exempt_lender_types: tuple[str, ...] = ()


class ViewPolicy(BaseModel):
    """Point-in-time rules (``features/view/policy.yaml``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    version: str
    negative_retention_months: int
    negative_retention_source: str
    penalty_publicity_months: Mapping[str, int]
    penalty_publicity_source: str
    summary_procedure_is_negative: bool
    summary_procedure_source: str
    private_loan_default_days: int
    private_loan_filing_days: int
    interest_cap: InterestCap


def load_policy(path: Path | None = None) -> ViewPolicy:
    """Load the view policy (default: the packaged ``policy.yaml``)."""
    raw = yaml.safe_load((path or DEFAULT_POLICY_PATH).read_text(encoding="utf-8"))
    return ViewPolicy.model_validate(raw)


def merge_on_entity(parts: Sequence[ir.Table]) -> ir.Table:
    """Full outer join of per-entity tables (each one row per `ENTITY_KEY`) into one such table.

    Each part is referenced once, so an engine computes it once; an entity missing from a
    part gets NULL in that part's columns.
    """
    out = parts[0]
    right = f"{ENTITY_KEY}_right"
    for part in parts[1:]:
        out = out.outer_join(part, out[ENTITY_KEY] == part[ENTITY_KEY])
        out = out.mutate(**{ENTITY_KEY: ibis.coalesce(out[ENTITY_KEY], out[right])}).drop(right)
    return out


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` months earlier (clipped to the month's length).

    Examples
    --------
    >>> months_before(dt.date(2018, 3, 31), 1)
    datetime.date(2018, 2, 28)
    """
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    next_month = dt.date(year + month // 12, month % 12 + 1, 1)
    last_day = (next_month - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last_day))


@dataclass(frozen=True)
class ViewContext:
    """Tables and the as-of date one view is built for.

    Parameters
    ----------
    tables
        Warehouse tables by catalog name, as Ibis tables of one backend (DuckDB or Spark),
        plus ``deliveries``.
    as_of
        Records dated on or after this day do not exist yet.
    policy
        Legal periods and thresholds.
    """

    tables: Mapping[str, ir.Table]
    as_of: dt.date
    policy: ViewPolicy

    # -- dates ---------------------------------------------------------------------------
    @property
    def as_of_value(self) -> ir.DateScalar:
        """``as_of`` as an Ibis literal."""
        return ibis.literal(self.as_of, type="date")

    @property
    def as_of_month(self) -> dt.date:
        """First day of the as-of month: monthly data for this month is not known yet."""
        return self.as_of.replace(day=1)

    def known(self, day: ir.DateValue) -> ir.BooleanValue:
        """True for a date strictly before ``as_of`` (the record is known)."""
        return day < self.as_of_value

    def within_months(self, day: ir.DateValue, months: int) -> ir.BooleanValue:
        """True for a date in the ``months`` months before ``as_of``."""
        start = ibis.literal(months_before(self.as_of, months), type="date")
        return (day >= start) & (day < self.as_of_value)

    def days_before(self, day: ir.DateValue) -> ir.IntegerValue:
        """Whole days from ``day`` to ``as_of`` (positive for past dates)."""
        return self.as_of_value.delta(day, unit="day")

    def months_since(self, day: ir.DateValue) -> ir.FloatingValue:
        """Months (of 30.4375 days) from ``day`` to ``as_of``; same on every engine."""
        return self.days_before(day).cast("float64") / 30.4375

    def active(self, start: ir.DateValue, end: ir.DateValue) -> ir.BooleanValue:
        """True for a listing that started before ``as_of`` and had not ended by then."""
        return self.known(start) & (end.isnull() | (end >= self.as_of_value))

    # -- tables --------------------------------------------------------------------------
    def table(self, name: str) -> ir.Table:
        """A warehouse table by catalog name."""
        return self.tables[name]

    def among(self, entities: ir.Table) -> ViewContext:
        """The same context with only ``entities`` (rows of ``entities``) as the entities.

        `by_entity` then maps records onto these entities only: all that a view of them
        needs (e.g. the view's population), and a smaller mapping to join.
        """
        return dataclasses.replace(self, tables={**self.tables, "entities": entities})

    @cached_property
    def subjects(self) -> ir.Table:
        """``subject_key → uscc_key, uscc``: every entity's own code, each 个体工商户 owner's ID.

        Records filed under an individual business owner's resident ID (PBOC loans, court
        listings, private loans) are that business's records: its owner is liable for it.
        Keys, not codes, are matched (`features.warehouse`: one key per identifier).
        """
        entities = self.table("entities")
        own = entities.select(
            subject_key=entities.uscc_key, uscc_key=entities.uscc_key, uscc=entities.uscc
        )
        owners = entities.filter(entities.entity_type == OWNER_IS_ENTITY).select(
            subject_key=entities.legal_rep_id_key, uscc_key=entities.uscc_key, uscc=entities.uscc
        )
        # the halves cannot overlap (USCCs vs resident IDs, each unique in its table), so a
        # plain UNION ALL gives the same rows without hashing them all
        return own.union(owners)

    def by_entity(self, table: ir.Table, subject_column: str) -> ir.Table:
        """``table`` with the entity's ``uscc_key`` and ``uscc``, mapping its subject.

        The subject is matched by its key, ``<subject_column>_key``. Rows whose subject is
        no entity (e.g. an enterprise's legal representative as a private person) are
        dropped; a subject that owns several businesses counts for each.
        """
        subjects = self.subjects.rename(_subject="subject_key")
        joined = table.inner_join(subjects, table[key_column(subject_column)] == subjects._subject)
        return joined.drop("_subject")

    def with_uscc(self, table: ir.Table) -> ir.Table:
        """A per-entity ``table`` (keyed by `ENTITY_KEY`) with ``uscc`` first, key dropped."""
        entities = self.table("entities").select(ENTITY_KEY, "uscc")
        joined = table.inner_join(entities, ENTITY_KEY)
        return joined.select("uscc", *[c for c in table.columns if c != ENTITY_KEY])

    @cached_property
    def hidden_records(self) -> ir.Table:
        """``record_table, record_id`` of every record hidden at as_of (distinct pairs).

        An objection (异议) hides the record while it is open and for good when it ended by
        correcting or deleting the record; an approved credit repair (信用修复) hides it from
        its decision on.
        """
        objections = self.table("credit_objections")
        repairs = self.table("credit_repairs")
        hidden_by_objection = objections.filter(
            self.known(objections.raised_on)
            & (
                objections.resolved_on.isnull()
                | (objections.resolved_on >= self.as_of_value)
                | objections.outcome.isin(["更正", "删除"])
            )
        ).select("record_table", "record_id")
        repaired = repairs.filter(
            (repairs.decision == "批准") & self.known(repairs.decided_on)
        ).select("record_table", "record_id")
        return hidden_by_objection.union(repaired, distinct=True)

    def hidden(self, name: str) -> ir.Table:
        """Ids (``record_id``, distinct) of the records of table ``name`` hidden at as_of."""
        hidden = self.hidden_records
        return hidden.filter(hidden.record_table == name).select("record_id")

    def effective(self, name: str, key: str) -> ir.Table:
        """Table ``name`` without the records `hidden` at as_of (objection or repair).

        ``key`` is the column holding the record id used in those tables.
        """
        table = self.table(name)
        hidden = self.hidden(name)
        return table.anti_join(hidden, table[key] == hidden.record_id)

    def marking_hidden(self, name: str, key: str) -> ir.Table:
        """Table ``name`` with ``_hidden``: true for a record `hidden` at as_of, else NULL.

        For a table read once for both effective and all records.
        """
        table = self.table(name)
        hidden = self.hidden(name)
        hidden = hidden.select(_hidden_id=hidden.record_id, _hidden=ibis.literal(True))
        return table.left_join(hidden, table[key] == hidden._hidden_id).drop("_hidden_id")
