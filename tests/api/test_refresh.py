"""A running service picks up a new snapshot and keeps serving when the registry is gone."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pyarrow.compute as pc
from fastapi.testclient import TestClient

from api.app import create_app
from api.state import Services
from scoring.batch import SnapshotStore
from tests.api.conftest import Keys, Workspace


def test_a_new_snapshot_is_served_after_a_refresh(
    services: Services, workspace: Workspace, keys: Keys, tmp_path: Path
) -> None:
    scores = tmp_path / "scores"
    shutil.copytree(workspace.scores, scores)
    services.settings = services.settings.model_copy(update={"scores": scores})
    services.refresh()  # nothing new: the same snapshot stays
    assert services.snapshot is workspace.snapshot
    first_id = services.snapshot_id

    _, table = SnapshotStore(scores).read()
    uscc = keys.enterprise.uscc
    better = pc.if_else(pc.equal(table["uscc"], uscc), 951, table["score"])
    table = table.set_column(table.schema.get_field_index("score"), "score", better)
    written = SnapshotStore(scores).write(
        table, as_of=dt.date.fromisoformat(workspace.snapshot.info.as_of), model_version="2",
        policy_version=services.policy.version, reasons=True, engine="duckdb",
    )  # fmt: skip
    services.refresh()
    assert services.snapshot is not None
    assert services.snapshot.info.file == written.file
    assert services.snapshot_id != first_id
    with TestClient(create_app(services.settings, services=services)) as client:
        body = client.get(f"/v1/entities/{uscc}/score", headers=keys.regulator).json()
    assert body["score"] == 951
    assert body["provenance"]["model_version"] == "2"


def test_a_broken_snapshot_pointer_keeps_the_served_snapshot(
    services: Services, workspace: Workspace, tmp_path: Path
) -> None:
    scores = tmp_path / "scores"
    shutil.copytree(workspace.scores, scores)
    services.settings = services.settings.model_copy(update={"scores": scores})
    (scores / "CURRENT").write_text("{not json", encoding="utf-8")
    services.refresh()
    assert services.snapshot is workspace.snapshot
