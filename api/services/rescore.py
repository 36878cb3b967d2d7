"""Score an entity again after its records changed through the service (objection, repair).

The batch snapshot was scored from the warehouse's own ``credit_objections`` and
``credit_repairs``. An objection raised or resolved, or a repair approved, through this
service changes which of an entity's records count, so the entity is scored again: its
three-in-one view is rebuilt for that entity alone (the ``entities`` table restricted to
it, `features.view.build_view`) with the service's objections and repairs added to the
warehouse's (ibis memtables unioned with the warehouse tables, our states mapped to the
catalog's codes), scored by the served model under the served policy
(`scoring.batch.score_frame`), and stored as an `EntityRescore` on the served snapshot,
which `api.services.scores.scored_row` then prefers.

How the service's own objections and repairs apply (a decision, documented here): they
take effect **for the served snapshot's as_of date, whatever today's date is**. The view
uses only records known before as_of, so a repair approved today (after the as_of of the
batch) would not count at all if dated as it really was; instead every objection and
repair of the service enters the view dated the day before as_of:

- an open objection: raised then, not resolved → its record is hidden;
- a resolved objection: raised and resolved then, with its outcome (更正 / 删除 keep the
  record out for good; 维持 / 标注 bring it back);
- a repair: applied then, with its decision (批准 hides the record; 审核中 and 驳回 do not)
  and, once decided, decided then.

The score then answers "this entity as of the served date, with the records that stand
now". The real dates stay in the service database (raised_on, resolved_on, decided_on).

Objections and repairs of one entity are serialised: on PostgreSQL a transaction-scoped
advisory lock per entity (`lock_entities`) is taken before its records are read, so that
two concurrent changes cannot each rescore without the other's; SQLite serialises writers
anyway (the write lock is held from the first write to the commit).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from sqlalchemy import or_, select, text
from sqlalchemy.orm import Session

from api.db.tables import EntityRescore, Objection, Repair
from api.errors import NotFound, Unavailable
from api.services.records import (
    OBJECTIONS_ITEM,
    REMOVING_OUTCOMES,
    REPAIR_DECISIONS,
    REPAIRS_ITEM,
    ObjectionStatus,
    RecordStore,
    RepairStatus,
    entities_of,
)
from api.services.scores import served
from api.state import Services
from features.view import build_view
from features.view.engine import duckdb_tables, packaged_catalog
from scoring.batch import score_frame
from scoring.decisions import needed_columns
from scoring.reasons import default_reason_codes

logger = logging.getLogger(__name__)


def effective_day(as_of: dt.date) -> dt.date:
    """The date the service's objections and repairs carry in the view: known at as_of."""
    return as_of - dt.timedelta(days=1)


def objection_rows(session: Session, as_of: dt.date) -> list[dict[str, Any]]:
    """The service's objections as ``credit_objections`` rows effective at ``as_of``."""
    day = effective_day(as_of)
    return [
        {
            "objection_id": f"API-{o.id}",
            "subject_id": o.uscc,
            "record_table": o.record_table,
            "record_id": o.record_id,
            "raised_on": day,
            "resolved_on": day if o.status == ObjectionStatus.RESOLVED else None,
            "outcome": o.outcome if o.status == ObjectionStatus.RESOLVED else None,
        }
        for o in session.scalars(select(Objection).order_by(Objection.id))
    ]


def repair_rows(session: Session, as_of: dt.date) -> list[dict[str, Any]]:
    """The service's repairs as ``credit_repairs`` rows effective at ``as_of``."""
    day = effective_day(as_of)
    return [
        {
            "repair_id": f"API-{r.id}",
            "subject_id": r.uscc,
            "record_table": r.record_table,
            "record_id": r.record_id,
            "applied_on": day,
            "decided_on": day if r.decided_on is not None else None,
            "decision": REPAIR_DECISIONS[RepairStatus(r.status)],
        }
        for r in session.scalars(select(Repair).order_by(Repair.id))
    ]


def _with_rows(table: ir.Table, item: str, rows: list[dict[str, Any]]) -> ir.Table:
    """The warehouse table ``item`` (its catalog columns) with ``rows`` appended."""
    base = table.select(*packaged_catalog().item(item).column_names)
    schema = base.schema().to_pyarrow()
    ours = ibis.memtable(pa.Table.from_pylist(rows, schema=schema))
    return base.union(ours)


def entity_view(
    services: Services, session: Session, usccs: Iterable[str], as_of: dt.date
) -> pa.Table:
    """The three-in-one view of ``usccs`` as of ``as_of``, with the service's objections
    and repairs applied (see the module docstring); entities not in the population (not
    yet registered or deregistered at as_of) have no row."""
    wanted = sorted(set(usccs))
    objections, repairs = objection_rows(session, as_of), repair_rows(session, as_of)
    with duckdb_tables(services.settings.warehouse) as (_, tables):
        entities = tables["entities"]
        restricted: Mapping[str, ir.Table] = {
            **tables,
            "entities": entities.filter(entities.uscc.isin(wanted)),
            OBJECTIONS_ITEM: _with_rows(tables[OBJECTIONS_ITEM], OBJECTIONS_ITEM, objections),
            REPAIRS_ITEM: _with_rows(tables[REPAIRS_ITEM], REPAIRS_ITEM, repairs),
        }
        return build_view(restricted, as_of).table


def jsonable(value: Any) -> Any:
    """``value`` as JSON: NaN → None, dates → ISO text, lists and dicts element-wise."""
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def lock_entities(session: Session, usccs: Iterable[str]) -> None:
    """Serialise changes of these entities' records until the transaction ends (PostgreSQL
    advisory locks, taken in a fixed order; SQLite serialises writers itself)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for uscc in sorted(set(usccs)):
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"wzcredit:{uscc}"}
        )


def rescore(
    services: Services, session: Session, usccs: Iterable[str], cause: str
) -> list[EntityRescore]:
    """Score ``usccs`` again on the served snapshot and store the results.

    Entities that the served snapshot did not score, or that are not in the population at
    its as_of, are skipped. Raises `Unavailable` when no model or no snapshot is served.
    """
    model = services.models.served  # Unavailable without a model: nothing is written
    snapshot = served(services)
    if services.snapshot_id is None:
        raise Unavailable("snapshot", "registered", "the served snapshot is not registered")
    wanted = sorted(u for u in set(usccs) if snapshot.has(u))
    if not wanted:
        return []
    view = entity_view(services, session, wanted, snapshot.as_of)
    if view.num_rows == 0:
        return []
    frame = view.to_pandas()
    scored = score_frame(frame, model.model, services.policy, reasons=True)
    feature_of = {e.code: e.feature for e in default_reason_codes().codes}
    values = {row["uscc"]: row for row in view.to_pylist()}
    stored = []
    for row in pa.Table.from_pandas(scored, preserve_index=False).to_pylist():
        result: dict[str, Any] = jsonable(row)
        result["model_version"] = model.version
        result["policy_version"] = services.policy.version
        # the view as the entity's records stand now: the decision flags (联合奖惩, target
        # groups) where `decide` reads them, and the whole row for pages that show it
        view_row = values[row["uscc"]]
        for column in needed_columns(services.policy):
            result.setdefault(column, jsonable(view_row.get(column)))
        result["view"] = jsonable(view_row)
        k = 1
        while f"reason_{k}_code" in row:
            feature = feature_of.get(row[f"reason_{k}_code"] or "")
            view_value = values[row["uscc"]].get(feature) if feature else None
            result[f"reason_{k}_value"] = jsonable(view_value)
            k += 1
        rescored = EntityRescore(
            uscc=row["uscc"],
            snapshot_id=services.snapshot_id,
            cause=cause[:60],
            model_version=model.version,
            policy_version=services.policy.version,
            result=result,
        )
        session.add(rescored)
        stored.append(rescored)
    session.flush()
    logger.info("rescored %d entities (%s)", len(stored), cause.split(":", 1)[0])
    return stored


def affected_entities(services: Services, session: Session) -> set[str]:
    """Entities whose records the service's objections or approved repairs change."""
    store = RecordStore(services.settings.warehouse)
    changes: set[tuple[str, str, str]] = set()
    hiding = or_(
        Objection.status == ObjectionStatus.OPEN,
        Objection.outcome.in_([o.value for o in REMOVING_OUTCOMES]),
    )
    for o in session.scalars(select(Objection).where(hiding)):
        changes.add((o.uscc, o.record_table, o.record_id))
    for r in session.scalars(select(Repair).where(Repair.status == RepairStatus.APPROVED)):
        changes.add((r.uscc, r.record_table, r.record_id))
    out: set[str] = set()
    for uscc, table, record_id in changes:
        out.add(uscc)
        try:
            out.update(entities_of(store.find(table, record_id), services.directory))
        except NotFound:  # the record left the warehouse since
            continue
    return out


def reapply(services: Services, session: Session) -> list[EntityRescore]:
    """Rescore, on a newly served snapshot, every entity the service's objections and
    repairs change (a batch snapshot knows only the warehouse's own).

    For the service start-up or snapshot reload: the rescores of an older snapshot no
    longer apply (`api.services.scores.scored_row` matches the served snapshot).
    """
    usccs = affected_entities(services, session)
    if not usccs:
        return []
    present = session.scalars(
        select(EntityRescore.uscc).where(EntityRescore.snapshot_id == services.snapshot_id)
    )
    missing = usccs - set(present)
    return rescore(services, session, missing, f"snapshot:{services.snapshot_id}")
