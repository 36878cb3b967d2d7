"""Objections (异议) and credit repair (信用修复) on the public-credit records.

Both tables point at one record of another catalog table: ``record_table`` names the table
and ``record_id`` holds the record's key (``case_no``, ``list_id``, ``record_id``,
``commitment_id`` or ``loan_id``); ``subject_id`` is the record's own subject.

``credit_objections``: a few per cent of the records are objected to by their subject some
days (median about three weeks) after the record became known — published (penalties),
listed (abnormal operations, court and blacklist listings), due (broken commitments) or
registered (private loans; for overdue and defaulted ones, once they fell behind) — and
while it is still shown. Ordinary-procedure and severe penalties, blacklist entries and
overdue loans draw more objections than summary penalties and loans in good standing. The
credit office settles an objection within 5 working days, or up to 20 when it extends the
term (浙江省公共信用信息管理条例 Arts. 30–31); objections not settled by the delivery date are
open (no ``resolved_on``, no ``outcome``). Most are upheld (维持). An objection succeeds
(更正 or 删除) mostly when the record was in fact wrong — drawn per objection, more often for
entities in a good latent state when the record appeared — and some end with the subject's
explanation annotated (标注). Records that carry a default (court listings, 违约 private
loans) are never corrected or deleted, so every default stays visible in the records.
``tax_credit`` and ``social_insurance_arrears`` are not objected to: their keys are
composite and have no single record id.

``credit_repairs``: applications once the breach was corrected, to the authority that made
the finding (国家发展改革委令第58号 Art. 3):

- ``admin_penalties``: ordinary-procedure penalties (summary-procedure ones are no negative
  information, 浙江条例 Art. 11) still in publicity, after the minimum publicity period from
  the decision — 3 months for 一般 penalties, 6 months for 较重 and 严重 ones, 1 year in work
  safety, fire safety, special equipment and food and drug (发改办财金〔2019〕527号 and the
  local guidance in DOMAIN.md §7) — and never for 吊销许可证, 责令停产停业, 责令关闭 or 限制从业
  (no early removal, SAMR Order 45 Art. 14). Light penalties leave publicity after 3 months,
  so they are never repaired.
- ``abnormal_operations`` and ``dishonest_debtors``: after the removal from the list.
- ``credit_commitments``: broken commitments, after the subject fulfilled them late.
- never ``serious_dishonesty``: repair is not available for the serious list (浙江条例
  Art. 32), and the catalog does not allow it.

An entity applies the more likely the more its latent score improved since the record
(recovered entities have something to gain), rarely while behind and hardly ever after a
default or once deregistered, and more often in later years (repair became routine after
2017, assumption); records deleted on objection are not repaired. The decision comes within 10
working days of the application (信用中国 review time, DOMAIN.md §7), sometimes up to 20:
mostly 批准, 驳回 more often for entities still in distress; applications not decided by the
delivery date are 审核中 (no ``decided_on``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from features.synthetic.events import Floats, logit, sequence_ids, sigmoid
from features.synthetic.registry import COOPERATIVE, ENTERPRISE, INDIVIDUAL
from features.synthetic.schema import flat, make_table
from features.synthetic.world import World

Ints = npt.NDArray[np.int64]
Days = npt.NDArray[np.datetime64]
Bools = npt.NDArray[np.bool_]

#: Penalty types whose publicity cannot end early (SAMR Order 45 Art. 14): no repair.
NOT_REPAIRABLE_PENALTIES = ("吊销许可证", "责令停产停业", "责令关闭", "限制从业")
#: Domains with a minimum publicity of one year before repair (catalog, DOMAIN.md §7).
ONE_YEAR_DOMAINS = ("安全生产", "消防", "特种设备", "食品药品")
#: Record tables each objection or repair can point at, with (key, subject) columns.
RECORD_COLUMNS = {
    "admin_penalties": ("case_no", "uscc"),
    "serious_dishonesty": ("list_id", "subject_id"),
    "dishonest_debtors": ("case_no", "subject_id"),
    "abnormal_operations": ("record_id", "uscc"),
    "credit_commitments": ("commitment_id", "uscc"),
    "private_loans": ("loan_id", "borrower_id"),
}
_NEVER = np.datetime64("9999-12-31")
_NAT = np.datetime64("NaT")
_REPAIR_BY_TYPE = {ENTERPRISE: 1.0, INDIVIDUAL: 0.45, COOPERATIVE: 0.7}


@dataclass
class Records:
    """The clean record tables objections and repairs point at, by catalog name, with the
    registry index of the entity behind each row."""

    tables: dict[str, pa.Table] = field(default_factory=dict)
    entities: dict[str, Ints] = field(default_factory=dict)

    def add(self, name: str, table: pa.Table, entity: Ints) -> pa.Table:
        """Keep ``table`` (whose row ``k`` is about entity ``entity[k]``); return it."""
        if entity.size != table.num_rows:
            raise ValueError(f"{name}: {table.num_rows} rows but {entity.size} entities")
        self.tables[name] = table
        self.entities[name] = np.asarray(entity, dtype=np.int64)
        return table

    def column(self, table: str, column: str) -> pa.ChunkedArray:
        """Column ``column`` of record table ``table``."""
        return self.tables[table].column(column)

    def days(self, table: str, column: str) -> Days:
        """A date column as ``datetime64[D]`` (NaT for nulls)."""
        result: Days = self.column(table, column).to_numpy().astype("datetime64[D]")
        return result

    def isin(self, table: str, column: str, values: tuple[str, ...]) -> Bools:
        """Whether each value of a code column is one of ``values``."""
        hits = pc.is_in(self.column(table, column), value_set=pa.array(values, pa.string()))
        result: Bools = np.asarray(hits.to_numpy(zero_copy_only=False), dtype=bool)
        return result


@dataclass(frozen=True)
class _Picked:
    """Rows of one record table that an objection or repair refers to."""

    table: str
    record_id: pa.Array
    subject: pa.Array
    entity: Ints


def _pick(records: Records, table: str, rows: Ints) -> _Picked:
    key, subject_column = RECORD_COLUMNS[table]
    index = pa.array(rows, type=pa.int64())
    return _Picked(
        table,
        flat(records.column(table, key).take(index)),
        flat(records.column(table, subject_column).take(index)),
        records.entities[table][rows],
    )


def add_months(days: Days, months: npt.ArrayLike) -> Days:
    """The same day ``months`` later (the month's last day when it has fewer days).

    Examples
    --------
    >>> add_months(np.array(["2019-08-31", "2020-01-15"], "datetime64[D]"), [6, 3]).tolist()
    [datetime.date(2020, 2, 29), datetime.date(2020, 4, 15)]
    """
    month = days.astype("datetime64[M]")
    offset = (days - month.astype("datetime64[D]")).astype(np.int64)
    target = month + np.asarray(months, dtype=np.int64).astype("timedelta64[M]")
    length = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(
        np.int64
    )
    result: Days = target.astype("datetime64[D]") + np.minimum(offset, length - 1).astype(
        "timedelta64[D]"
    )
    return result


def _distress(world: World, entity: Ints, days: Days) -> Floats:
    """Latent score relative to the baseline in the month of each day."""
    tl, lat = world.timeline, world.latent
    j = np.clip(tl.index_of(days), 0, tl.n_months - 1)
    result: Floats = lat.score[entity, j].astype(np.float64) - lat.params.base_logit
    return result


def _stage(world: World, entity: Ints, days: Days) -> npt.NDArray[np.int8]:
    tl = world.timeline
    j = np.clip(tl.index_of(days), 0, tl.n_months - 1)
    result: npt.NDArray[np.int8] = world.latent.stage[entity, j]
    return result


# ------------------------------------------------------------------------------ objections
@dataclass(frozen=True)
class _ObjectionTerms:
    """Per record of one table: objection rate, day known, day shown until, correctable."""

    table: str
    rate: Floats
    known: Days
    shown_until: Days  # NaT: still shown
    correctable: Bools
    wrong_share: float  # share of objected records that were in fact wrong (baseline)


def _objection_terms(world: World, records: Records) -> list[_ObjectionTerms]:
    delivered = world.timeline.delivered
    terms = []

    t = "admin_penalties"
    summary = records.isin(t, "procedure", ("简易",))
    heavy = records.isin(t, "severity", ("较重", "严重"))
    rate = np.where(summary, 0.008, np.where(heavy, 0.05, 0.03))
    terms.append(
        _ObjectionTerms(
            t,
            rate,
            records.days(t, "published_on"),
            records.days(t, "publicity_end_on"),
            np.ones(rate.size, bool),
            0.25,
        )
    )
    t = "serious_dishonesty"
    listed = records.days(t, "listed_on")
    terms.append(
        _ObjectionTerms(
            t,
            np.full(listed.size, 0.06),
            listed,
            records.days(t, "removed_on"),
            np.ones(listed.size, bool),
            0.2,
        )
    )
    t = "dishonest_debtors"
    listed = records.days(t, "listed_on")
    terms.append(
        _ObjectionTerms(
            t,
            np.full(listed.size, 0.03),
            listed,
            records.days(t, "removed_on"),
            np.zeros(listed.size, bool),
            0.0,
        )
    )
    t = "abnormal_operations"
    listed = records.days(t, "listed_on")
    terms.append(
        _ObjectionTerms(
            t,
            np.full(listed.size, 0.04),
            listed,
            records.days(t, "removed_on"),
            np.ones(listed.size, bool),
            0.35,
        )
    )
    t = "credit_commitments"
    broken = records.isin(t, "fulfilled", ("未履行",))
    due = records.days(t, "due_on")
    terms.append(
        _ObjectionTerms(
            t,
            np.where(broken, 0.06, 0.0),
            due,
            np.full(due.size, _NAT),
            np.ones(due.size, bool),
            0.3,
        )
    )
    t = "private_loans"
    defaulted = records.isin(t, "status", ("违约",))
    overdue = records.isin(t, "status", ("逾期",))
    registered = records.days(t, "registered_on")
    overdue_days = records.column(t, "overdue_days").to_numpy(zero_copy_only=False)
    fell_behind = delivered - np.asarray(overdue_days, dtype=np.int64).astype("timedelta64[D]")
    known = np.where(defaulted | overdue, np.maximum(registered, fell_behind), registered)
    terms.append(
        _ObjectionTerms(
            t,
            np.where(defaulted, 0.04, np.where(overdue, 0.03, 0.003)),
            known,
            np.full(known.size, _NAT),
            ~defaulted,
            0.25,
        )
    )
    return terms


def build_objections(world: World, records: Records) -> pa.Table:
    """The ``credit_objections`` table."""
    delivered = world.timeline.delivered
    wd = world.working_days
    rng = world.rng("credit_objections")
    picked: list[_Picked] = []
    raised_parts: list[Days] = []
    wrong_parts: list[Bools] = []
    for terms in _objection_terms(world, records):
        chosen = rng.random(terms.rate.size) < terms.rate
        rows = np.flatnonzero(chosen)
        delay = np.clip(np.exp(rng.normal(np.log(20.0), 0.9, rows.size)), 1, 365).astype(np.int64)
        raised = wd.next_working_day(terms.known[rows] + delay.astype("timedelta64[D]"))
        until = terms.shown_until[rows]
        keep = (raised < np.where(np.isnat(until), _NEVER, until)) & (raised < delivered)
        rows, raised = rows[keep], raised[keep]
        part = _pick(records, terms.table, rows)
        distress = _distress(world, part.entity, terms.known[rows])
        p_wrong = sigmoid(logit(max(terms.wrong_share, 1e-6)) - 0.4 * distress)
        wrong = terms.correctable[rows] & (rng.random(rows.size) < p_wrong)
        picked.append(part)
        raised_parts.append(raised)
        wrong_parts.append(wrong)

    raised = np.concatenate(raised_parts)
    wrong = np.concatenate(wrong_parts)
    table_name = np.concatenate([np.full(len(p.record_id), p.table) for p in picked])
    n = raised.size
    extended = rng.random(n) < 0.2
    within = np.where(extended, rng.integers(6, 21, n), rng.integers(1, 6, n))
    resolved = wd.add(raised, within)
    settled = resolved < delivered
    u = rng.random(n)
    success = np.where(
        (table_name == "abnormal_operations") | (u < 0.45), "删除", "更正"
    )  # a wrong listing is struck off; other wrong records are mostly corrected
    upheld = np.where(rng.random(n) < 0.15, "标注", "维持")
    outcome = np.where(wrong & (rng.random(n) < 0.9), success, upheld)
    order = np.argsort(raised, kind="stable")
    take = pa.array(order, type=pa.int64())
    return make_table(
        "credit_objections",
        {
            "objection_id": sequence_ids("YY", n, 10),
            "subject_id": flat(pa.concat_arrays([p.subject for p in picked]).take(take)),
            "record_table": table_name[order],
            "record_id": flat(pa.concat_arrays([p.record_id for p in picked]).take(take)),
            "raised_on": raised[order],
            "resolved_on": np.where(settled, resolved, _NAT)[order],
            "outcome": _nullable(np.where(settled, outcome, "")[order]),
        },
    )


def _nullable(values: npt.NDArray[np.str_]) -> pa.Array:
    """Strings with "" as null."""
    return pa.array(values.tolist(), type=pa.string(), mask=values == "")


# ------------------------------------------------------------------------------ repairs
@dataclass(frozen=True)
class _RepairTerms:
    """Eligible records of one table: rows, record day, earliest and latest application."""

    table: str
    rows: Ints
    recorded: Days  # when the breach was recorded (latent state then)
    earliest: Days  # first day an application is possible
    latest: Days  # NaT: no limit; else the application must come before
    base: float  # application probability for an enterprise that neither improved nor worsened


def _repair_terms(world: World, records: Records) -> list[_RepairTerms]:
    rng = world.rng("credit_repair_terms")
    terms = []

    t = "admin_penalties"
    decided = records.days(t, "decided_on")
    end = records.days(t, "publicity_end_on")
    general = records.isin(t, "severity", ("一般",))
    months = np.where(records.isin(t, "domain", ONE_YEAR_DOMAINS), 12, np.where(general, 3, 6))
    earliest = add_months(decided, months) + np.timedelta64(1, "D")
    eligible = (
        ~records.isin(t, "procedure", ("简易",))
        & ~records.isin(t, "penalty_type", NOT_REPAIRABLE_PENALTIES)
        & (earliest < end)
    )
    rows = np.flatnonzero(eligible)
    terms.append(_RepairTerms(t, rows, decided[rows], earliest[rows], end[rows], 0.25))

    for t, base in (("abnormal_operations", 0.08), ("dishonest_debtors", 0.15)):
        removed = records.days(t, "removed_on")
        rows = np.flatnonzero(~np.isnat(removed))
        listed = records.days(t, "listed_on")[rows]
        after = removed[rows] + np.timedelta64(1, "D")
        terms.append(_RepairTerms(t, rows, listed, after, np.full(rows.size, _NAT), base))

    t = "credit_commitments"
    rows = np.flatnonzero(records.isin(t, "fulfilled", ("未履行",)))
    due = records.days(t, "due_on")[rows]
    fulfilled_late = due + rng.integers(15, 181, rows.size).astype("timedelta64[D]")
    after = fulfilled_late + np.timedelta64(1, "D")
    terms.append(_RepairTerms(t, rows, due, after, np.full(rows.size, _NAT), 0.25))
    return terms


def build_repairs(world: World, records: Records, objections: pa.Table) -> pa.Table:
    """The ``credit_repairs`` table; records deleted on objection are never repaired."""
    reg, tl = world.registry, world.timeline
    delivered = tl.delivered
    wd = world.working_days
    rng = world.rng("credit_repairs")
    deleted = objections.filter(pc.equal(objections.column("outcome"), "删除"))
    picked: list[_Picked] = []
    applied_parts: list[Days] = []
    for terms in _repair_terms(world, records):
        n = terms.rows.size
        wait = np.minimum(rng.exponential(75.0, n), 3 * 365).astype(np.int64)
        applied = wd.next_working_day(terms.earliest + wait.astype("timedelta64[D]"))
        part = _pick(records, terms.table, terms.rows)
        e = part.entity
        improved = _distress(world, e, terms.recorded) - _distress(world, e, applied)
        stage = _stage(world, e, applied)
        year = applied.astype("datetime64[Y]").astype(np.int64) + 1970
        era = np.select([year < 2017, year < 2019], [0.3, 0.6], 1.0)
        kind = np.vectorize(_REPAIR_BY_TYPE.__getitem__, otypes=[float])(reg.entity_type[e])
        standing = np.select([stage == 0, (stage >= 1) & (stage <= 3)], [1.0, 0.3], 0.03)
        if terms.table == "dishonest_debtors":  # every one defaulted; removal = debt performed
            standing = np.ones(n)
        p = sigmoid(logit(terms.base) + 1.2 * improved) * era * kind * standing
        gone = reg.deregistered_on[e]
        alive = np.isnat(gone) | (gone > applied)
        latest = np.where(np.isnat(terms.latest), _NEVER, terms.latest)
        struck = pc.is_in(
            part.record_id,
            value_set=flat(
                deleted.filter(pc.equal(deleted.column("record_table"), terms.table)).column(
                    "record_id"
                )
            ),
        ).to_numpy(zero_copy_only=False)
        keep = (
            (rng.random(n) < p)
            & alive
            & (applied < latest)
            & (applied < delivered)
            & ~np.asarray(struck, dtype=bool)
        )
        index = pa.array(np.flatnonzero(keep), type=pa.int64())
        picked.append(
            _Picked(
                terms.table,
                flat(part.record_id.take(index)),
                flat(part.subject.take(index)),
                e[keep],
            )
        )
        applied_parts.append(applied[keep])

    applied = np.concatenate(applied_parts)
    entity = np.concatenate([p.entity for p in picked])
    table_name = np.concatenate([np.full(len(p.record_id), p.table) for p in picked])
    n = applied.size
    within = np.where(rng.random(n) < 0.9, rng.integers(3, 11, n), rng.integers(11, 21, n))
    decided = wd.add(applied, within)
    distress = _distress(world, entity, applied)
    rejected = rng.random(n) < sigmoid(logit(0.08) + 0.6 * np.maximum(distress, -2.0))
    done = decided < delivered
    decision = np.where(done, np.where(rejected, "驳回", "批准"), "审核中")
    order = np.argsort(applied, kind="stable")
    take = pa.array(order, type=pa.int64())
    return make_table(
        "credit_repairs",
        {
            "repair_id": sequence_ids("XF", n, 10),
            "subject_id": flat(pa.concat_arrays([p.subject for p in picked]).take(take)),
            "record_table": table_name[order],
            "record_id": flat(pa.concat_arrays([p.record_id for p in picked]).take(take)),
            "applied_on": applied[order],
            "decided_on": np.where(done, decided, _NAT)[order],
            "decision": decision[order],
        },
    )
