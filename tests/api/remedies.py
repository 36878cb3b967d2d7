"""Helpers of the objection, repair and own-report tests: records picked from the small
warehouse by what the tests need, and subject keys for their entities."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import duckdb
from fastapi import FastAPI

from api.security import Role
from api.services.keys import create_key
from api.services.workdays import today
from api.state import Services
from features.view.context import months_before
from tests.api.conftest import INSTITUTION, Workspace, bearer

#: the features an administrative penalty in force counts in
PENALTY_FEATURES = (
    "gov_penalties_12m",
    "gov_penalties_36m",
    "gov_penalties_severe_36m",
    "gov_penalty_amount_36m",
    "gov_months_since_penalty",
    "gov_negative_records_36m",
)


@dataclass(frozen=True)
class Penalty:
    """An administrative penalty counted in its entity's served view."""

    uscc: str
    case_no: str
    penalty_type: str


def rows(workspace: Workspace, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(workspace.warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def counted_penalties(workspace: Workspace, services: Services) -> list[Penalty]:
    """Penalties that surely count in ``gov_penalties_36m`` of an enterprise's served view.

    Ordinary procedure (not 简易), published before as_of, decided in the 36 months before,
    publicised past as_of by the delivered end date, and never named by a delivered
    objection or repair, of a type that may be repaired; the enterprise is on no serious
    dishonesty list.
    """
    as_of = workspace.snapshot.as_of
    start = months_before(as_of, 36)
    excluded = tuple(services.policy.remedies.repair_excluded_penalty_types)
    found = rows(
        workspace,
        """
        SELECT p.uscc, p.case_no, p.penalty_type FROM admin_penalties p
        JOIN entities e ON e.uscc = p.uscc AND e.entity_type = '企业'
        WHERE p.procedure = '普通' AND p.published_on < ? AND p.decided_on >= ?
          AND p.decided_on < ? AND p.publicity_end_on >= ?
          AND p.case_no NOT IN (SELECT record_id FROM credit_objections)
          AND p.case_no NOT IN (SELECT record_id FROM credit_repairs)
          AND p.uscc NOT IN (SELECT subject_id FROM serious_dishonesty)
        ORDER BY p.uscc, p.case_no
        """,
        [as_of, start, as_of, as_of],
    )
    return [
        Penalty(uscc, case_no, kind)
        for uscc, case_no, kind in found
        if kind not in excluded and workspace.snapshot.has(uscc)
    ]


def subject_key(services: Services, subject_id: str) -> dict[str, str]:
    """Bearer headers of a new subject key for ``subject_id`` (a USCC or resident ID)."""
    return bearer(
        create_key(services.database, Role.SUBJECT, INSTITUTION, subject_id=subject_id).key
    )


def set_today(app: FastAPI, day: dt.date) -> None:
    """Move the service's clock to ``day`` (overrides the `today` dependency)."""
    app.dependency_overrides[today] = lambda: day
