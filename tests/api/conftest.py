"""Fixtures of the service tests: a served workspace, a database per test, a key per role.

The workspace (session-scoped, built on first use) is the shared small synthetic warehouse
(`tests.fixtures.scoring`) scored by the shared champion into a real snapshot folder, with
the view beside it, as `wzcredit features` and `wzcredit score` would leave them.

``database_url`` is parametrised over SQLite (a file per test) and PostgreSQL (when
``WZCREDIT_TEST_DATABASE_URL`` is set, as `.ci/run` does; skipped with that reason
otherwise): every test that uses the app runs against both. Each PostgreSQL test starts from
an empty schema (migrated down to base, then up to head).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.db.migrate import downgrade, upgrade
from api.db.session import Database
from api.security import Role
from api.services.directory import Directory, EntityFacts, load_directory
from api.services.keys import create_key
from api.services.models import ModelHolder
from api.services.snapshots import VIEW_FILE, LoadedSnapshot, load_snapshot
from api.settings import Settings
from api.state import Services, read_policy, register_policy, register_snapshot
from models.calibration import CalibratedModel
from scoring.batch import SnapshotStore, score_view
from scoring.policy import load_policy
from tests.fixtures.scoring import SCORE_AS_OF, ScoringData

PG_ENV = "WZCREDIT_TEST_DATABASE_URL"
INSTITUTION = "鹿城农商行"
MODEL_VERSION = "1"


@dataclass(frozen=True)
class Workspace:
    """What `wzcredit demo` leaves for the service, on the small shared warehouse."""

    root: Path
    warehouse: Path
    scores: Path
    features: Path
    snapshot: LoadedSnapshot
    directory: Directory
    champion: CalibratedModel

    def entities(self, *, natural_person: bool) -> list[EntityFacts]:
        """Scored entities of one kind, in USCC order."""
        return sorted(
            (f for f in self.directory.entities.values()
             if f.natural_person == natural_person and self.snapshot.has(f.uscc)),
            key=lambda f: f.uscc,
        )  # fmt: skip


@pytest.fixture(scope="session")
def workspace(
    tmp_path_factory: pytest.TempPathFactory, scoring_data: ScoringData, champion: CalibratedModel
) -> Workspace:
    root = tmp_path_factory.mktemp("service")
    features, scores = root / "features", root / "scores"
    features.mkdir()
    view = pa.Table.from_pandas(scoring_data.score, preserve_index=False)
    pq.write_table(view, features / VIEW_FILE.format(as_of=SCORE_AS_OF.isoformat()))
    policy = load_policy()
    scored = score_view(view, champion, policy, reasons=True)
    SnapshotStore(scores).write(
        scored, as_of=SCORE_AS_OF, model_version=MODEL_VERSION, policy_version=policy.version,
        reasons=True, engine="duckdb",
    )  # fmt: skip
    return Workspace(
        root=root, warehouse=scoring_data.warehouse, scores=scores, features=features,
        snapshot=load_snapshot(scores, features), directory=load_directory(scoring_data.warehouse),
        champion=champion,
    )  # fmt: skip


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, migrated service database: SQLite, then PostgreSQL when configured."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'service.db'}"
        return
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (set by .ci/run)")
    database = Database(url)
    try:
        downgrade(database.engine)  # a clean schema even after a test that failed midway
    finally:
        database.dispose()
    yield url


def make_settings(workspace: Workspace, database_url: str) -> Settings:
    return Settings(
        environment="test", database_url=database_url, warehouse=workspace.warehouse,
        scores=workspace.scores, features=workspace.features, tracking_uri="",
        secret="test-secret-0123456789",
    )  # fmt: skip


@pytest.fixture
def services(workspace: Workspace, database_url: str) -> Iterator[Services]:
    """The services a started app holds, on a fresh database, serving the shared champion."""
    settings = make_settings(workspace, database_url)
    database = Database(database_url)
    upgrade(database.engine)
    policy, text = read_policy()
    register_policy(database, policy, text)
    built = Services(
        settings=settings, database=database, policy=policy, policy_text=text,
        models=ModelHolder.of(workspace.champion, MODEL_VERSION), directory=workspace.directory,
        snapshot=workspace.snapshot,
    )  # fmt: skip
    built.snapshot_id = register_snapshot(database, workspace.snapshot)
    yield built
    database.dispose()


@pytest.fixture
def app(services: Services) -> FastAPI:
    return create_app(services.settings, services=services)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@dataclass(frozen=True)
class Keys:
    """One bearer header per role; the subject keys belong to `enterprise` and `person`."""

    underwriter: dict[str, str]
    regulator: dict[str, str]
    analyst: dict[str, str]
    admin: dict[str, str]
    subject: dict[str, str]  # the enterprise `enterprise`
    person: dict[str, str]  # the operator of the 个体工商户 `business`
    enterprise: EntityFacts
    business: EntityFacts

    def of(self, role: Role) -> dict[str, str]:
        return {
            Role.UNDERWRITER: self.underwriter, Role.REGULATOR: self.regulator,
            Role.ANALYST: self.analyst, Role.ADMIN: self.admin, Role.SUBJECT: self.subject,
        }[role]  # fmt: skip


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keys(services: Services, workspace: Workspace) -> Keys:
    enterprise = workspace.entities(natural_person=False)[0]
    business = workspace.entities(natural_person=True)[0]

    def make(role: Role, subject: str | None = None) -> dict[str, str]:
        created = create_key(services.database, role, INSTITUTION, subject_id=subject)
        return bearer(created.key)

    return Keys(
        underwriter=make(Role.UNDERWRITER), regulator=make(Role.REGULATOR),
        analyst=make(Role.ANALYST), admin=make(Role.ADMIN),
        subject=make(Role.SUBJECT, enterprise.uscc),
        person=make(Role.SUBJECT, business.legal_rep_id),
        enterprise=enterprise, business=business,
    )  # fmt: skip


def consent_body(
    resident_id: str, purpose: str = "loan_approval", days: int = 90
) -> dict[str, str]:
    today = dt.date.today()
    return {
        "subject_id": resident_id, "purpose": purpose, "valid_from": today.isoformat(),
        "valid_to": (today + dt.timedelta(days=days)).isoformat(), "evidence": "SQ-2026-0001",
    }  # fmt: skip
