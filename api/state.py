"""Everything a request may use, built once in the lifespan and injected (`api.deps`)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from api.db.session import Database
from api.db.tables import PolicyVersion, ScoreSnapshot
from api.services.audit import Metrics
from api.services.directory import Directory, load_directory
from api.services.models import ModelHolder
from api.services.snapshots import LoadedSnapshot, load_snapshot
from api.settings import Settings
from scoring.policy import DEFAULT_POLICY_PATH, ScoringPolicy, parse_policy

logger = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    database: Database
    policy: ScoringPolicy
    policy_text: str
    models: ModelHolder
    directory: Directory
    metrics: Metrics = field(default_factory=Metrics)
    snapshot: LoadedSnapshot | None = None
    snapshot_id: int | None = None
    snapshot_error: str | None = None

    def load_snapshot(self) -> None:
        """(Re)load the current snapshot; on failure keep the one served and say why."""
        from api.errors import Unavailable  # noqa: PLC0415

        try:
            loaded = load_snapshot(self.settings.scores, self.settings.features)
        except Unavailable as exc:
            self.snapshot_error = exc.message
            logger.warning("no snapshot served: %s", exc.message)
            return
        self.snapshot_id = register_snapshot(self.database, loaded)
        self.snapshot = loaded
        self.snapshot_error = None
        self._after_snapshot()

    def refresh(self) -> None:
        """Ask the registry for the alias again and serve a newer snapshot if one landed.

        Run periodically by the app (`Settings.refresh_seconds`): a registry that cannot be
        reached leaves the last good model serving (`ModelHolder.refresh`), a snapshot that
        cannot be read leaves the served one.
        """
        from scoring.batch import SnapshotStore  # noqa: PLC0415

        self.models.refresh()
        try:
            current = SnapshotStore(self.settings.scores).current()
        except (OSError, ValueError) as exc:
            logger.warning("snapshot pointer unreadable, keeping the served one: %s", exc)
            return
        if current is not None and (
            self.snapshot is None or current.file != self.snapshot.info.file
        ):
            self.load_snapshot()

    def _after_snapshot(self) -> None:
        """Carry the service's objections and repairs onto the new snapshot (a batch run
        knows only the warehouse's own), and build the supervision list once, now."""
        from api.services.rescore import reapply  # noqa: PLC0415
        from api.services.supervision import base_of  # noqa: PLC0415

        if self.models.loaded:
            with self.database.session() as session:
                carried = reapply(self, session)
            if carried:
                logger.info("carried objections and repairs over: %d entities", len(carried))
        base_of(self)


def read_policy(path: Path = DEFAULT_POLICY_PATH) -> tuple[ScoringPolicy, str]:
    import yaml  # noqa: PLC0415

    text = path.read_text(encoding="utf-8")
    return parse_policy(yaml.safe_load(text)), text


def register_policy(database: Database, policy: ScoringPolicy, text: str) -> None:
    """Record the served policy's exact text once (policy_versions)."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    with database.session() as session:
        if session.scalar(select(PolicyVersion.id).where(PolicyVersion.sha256 == digest)) is None:
            session.add(PolicyVersion(version=policy.version, sha256=digest, content=text))


def register_snapshot(database: Database, loaded: LoadedSnapshot) -> int:
    """The id of the served snapshot in score_snapshots (added the first time it is served)."""
    info = loaded.info
    with database.session() as session:
        found = session.scalar(select(ScoreSnapshot.id).where(ScoreSnapshot.file == info.file))
        if found is not None:
            return found
        row = ScoreSnapshot(
            file=info.file, as_of=loaded.as_of, model_version=info.model_version,
            policy_version=info.policy_version, rows=info.rows, reasons=info.reasons,
            engine=info.engine, created=info.created,
        )  # fmt: skip
        session.add(row)
        session.flush()
        return row.id


def build_services(settings: Settings, *, models: ModelHolder | None = None) -> Services:
    """Open the database, read the policy, the directory and the snapshot; load the model."""
    from api.db.migrate import upgrade  # noqa: PLC0415

    database = Database(settings.database_url)
    if settings.migrate_on_start:
        upgrade(database.engine)
    policy, text = read_policy()
    register_policy(database, policy, text)
    holder = models or ModelHolder(settings.tracking_uri, settings.model_alias)
    if models is None:
        holder.refresh()
    services = Services(
        settings=settings, database=database, policy=policy, policy_text=text, models=holder,
        directory=load_directory(settings.warehouse),
    )  # fmt: skip
    services.load_snapshot()
    return services
