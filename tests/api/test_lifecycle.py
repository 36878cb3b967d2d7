"""The service's life: start-up from settings alone, a registry that goes away, rescores
reaching the served scores, keys from the command line, and the demo's serve step
(`wzcredit serve` in its own process)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert
from typer.testing import CliRunner

from api.app import create_app
from api.db.session import Database
from api.db.tables import EntityRescore
from api.security import Role
from api.services.keys import create_key
from api.services.scores import RESCORED_TTL_SECONDS
from api.settings import Settings
from api.state import Services
from models.calibration import CalibratedModel
from models.registry import ModelRegistry, RegistryConfig
from tests.api.conftest import INSTITUTION, Keys, Workspace, bearer
from wzcredit.cli import app as cli
from wzcredit.cli import demo_examples, prepare_demo_service, print_demo_service, service_settings

SECRET = "test-secret-0123456789"
#: how long a started service may take to answer /ready (MLflow's import and the model load)
START_SECONDS = 120


@pytest.fixture(scope="module")
def registry_store(
    tmp_path_factory: pytest.TempPathFactory, champion: CalibratedModel, score_matrix: pd.DataFrame
) -> Path:
    """An MLflow store whose ``champion`` alias holds the shared champion (version 1)."""
    root = tmp_path_factory.mktemp("registry")
    registry = ModelRegistry(
        RegistryConfig(
            tracking_uri=f"sqlite:///{root}/mlflow.db",
            artifact_location=str(root / "artifacts"),
            infer_requirements=False,
        )
    )
    logged = registry.log_training(
        run_name="champion-test", model=champion, input_example=score_matrix.head(5), params={},
        metrics={"oot": {"roc_auc": 0.7}}, tags={"role": "champion"},
    )  # fmt: skip
    assert logged.version is not None
    registry.set_alias(logged.version, "champion")
    return root


@pytest.fixture
def tracking_uri(registry_store: Path, tmp_path: Path) -> str:
    """This test's own copy of the store (the artifacts stay in the module's store)."""
    shutil.copyfile(registry_store / "mlflow.db", tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_app_from_settings_loads_the_champion_and_keeps_it_without_the_registry(
    workspace: Workspace,
    database_url: str,
    tracking_uri: str,
    tmp_path: Path,
    champion: CalibratedModel,
    score_matrix: pd.DataFrame,
) -> None:
    settings = Settings(
        environment="test", database_url=database_url, warehouse=workspace.warehouse,
        scores=workspace.scores, features=workspace.features, tracking_uri=tracking_uri,
        secret=SECRET,
    )  # fmt: skip
    app = create_app(settings)  # no services injected: the lifespan builds them
    enterprise = workspace.entities(natural_person=False)[0].uscc
    with TestClient(app) as client:
        ready = client.get("/ready")
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["model_loaded"] is True
        assert body["model_version"] == "1"
        assert body["registry_error"] is None
        assert body["snapshot"] == workspace.snapshot.info.file
        services = app.state.services
        served = services.models.served.model
        rows = score_matrix.head(50)
        np.testing.assert_allclose(served.predict_proba(rows), champion.predict_proba(rows))

        # the registry's database is lost: emptied in place, since MLflow keeps a pool of open
        # connections per URI (through which a renamed or deleted file would still be read)
        (tmp_path / "mlflow.db").write_bytes(b"")
        assert services.models.refresh() is True  # still serving

        after = client.get("/ready").json()
        assert after["ready"] is True
        assert after["model_loaded"] is True
        assert after["model_version"] == "1"
        assert after["registry_error"]  # and saying why it could not refresh
        assert services.models.served.model is served
        np.testing.assert_allclose(served.predict_proba(rows), champion.predict_proba(rows))
        key = create_key(services.database, Role.REGULATOR, INSTITUTION)
        score = client.get(f"/v1/entities/{enterprise}/score", headers=bearer(key.key))
        assert score.status_code == 200, score.text
        assert score.json()["provenance"]["snapshot"] == workspace.snapshot.info.file


def rescore_row(services: Services, workspace: Workspace, uscc: str, grade: str) -> dict:
    row = workspace.snapshot.score_row(uscc)
    result = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}
    return {
        "uscc": uscc, "snapshot_id": services.snapshot_id, "cause": "repair:test",
        "model_version": "1", "policy_version": services.policy.version,
        "result": {**result, "grade": grade},
    }  # fmt: skip


OTHER_PROCESS = """
import json, sys
from sqlalchemy import insert
from api.db.session import Database
from api.db.tables import EntityRescore
database = Database(sys.argv[1])
with database.engine.begin() as connection:
    connection.execute(insert(EntityRescore), [json.loads(sys.argv[2])])
database.dispose()
"""


def test_rescores_are_served_at_once_here_and_within_the_ttl_from_another_process(
    client: TestClient, keys: Keys, services: Services, workspace: Workspace, database_url: str
) -> None:
    first, second, third = (f.uscc for f in workspace.entities(natural_person=False)[:3])

    def grade(uscc: str) -> tuple[str, bool]:
        body = client.get(f"/v1/entities/{uscc}/score", headers=keys.regulator).json()
        return body["grade"], body["provenance"]["rescored"]

    assert grade(first) == (workspace.snapshot.score_row(first)["grade"], False)
    with services.database.session() as session:  # the ORM, in this process
        session.add(EntityRescore(**rescore_row(services, workspace, first, "CC")))
    assert grade(first) == ("CC", True)

    other = Database(database_url)  # another engine of this process, Core
    with other.engine.begin() as connection:
        connection.execute(insert(EntityRescore), [rescore_row(services, workspace, second, "C")])
    other.dispose()
    assert grade(second) == ("C", True)

    row = rescore_row(services, workspace, third, "CCC")
    assert grade(third)[1] is False
    subprocess.run(
        [sys.executable, "-c", OTHER_PROCESS, database_url, json.dumps(row)],
        check=True, timeout=120,
    )  # fmt: skip
    written = time.monotonic()
    while grade(third) != ("CCC", True):
        assert time.monotonic() - written < RESCORED_TTL_SECONDS + 1.0, "rescore not seen"
        time.sleep(0.05)


def test_keys_are_created_listed_and_revoked_from_the_command_line(
    workspace: Workspace, tmp_path: Path
) -> None:
    person = workspace.entities(natural_person=True)[0].legal_rep_id
    url = ["--database-url", f"sqlite:///{tmp_path / 'keys.db'}"]
    runner = CliRunner()

    made = runner.invoke(cli, ["keys", "create", "--role", "subject", "--subject-id", person, *url])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    prefix = key.split("_")[1]
    assert key.startswith("wzc_")
    assert person not in made.output  # the resident ID is never printed, only masked
    listed = runner.invoke(cli, ["keys", "list", *url])
    assert listed.exit_code == 0, listed.output
    assert prefix in listed.stdout
    assert person not in listed.stdout
    assert person[:6] in listed.stdout  # masked: area code and last four characters

    refused = runner.invoke(cli, ["keys", "create", "--role", "auditor", *url])
    assert refused.exit_code == 2
    assert "role: choice:" in refused.output

    assert runner.invoke(cli, ["keys", "revoke", prefix, *url]).exit_code == 0
    again = runner.invoke(cli, ["keys", "list", *url])
    row = next(line for line in again.stdout.splitlines() if prefix in line)
    assert row.count("20") >= 2  # created and revoked dates
    missing = runner.invoke(cli, ["keys", "revoke", "nosuchkey", *url])
    assert missing.exit_code == 2
    assert "prefix: exists:" in missing.output


# ------------------------------------------------------------------------------------------
# the demo's serve step


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def demo_folder(workspace: Workspace, tmp_path: Path) -> Path:
    """The layout `wzcredit demo --workdir` leaves, on the shared small workspace."""
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "warehouse.duckdb").symlink_to(workspace.warehouse)
    (folder / "scores").symlink_to(workspace.scores)
    (folder / "features").symlink_to(workspace.features)
    return folder


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No WZCREDIT_* service settings from the caller's environment."""
    for name in list(os.environ):
        if name.startswith("WZCREDIT_") and name != "WZCREDIT_TEST_DATABASE_URL":
            monkeypatch.delenv(name)


class Served:
    """``wzcredit serve`` in a process of its own, stopped like Ctrl-C at the end."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._out = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "wzcredit.cli", "serve", "--port", str(self.port), *args],
            stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def wait_ready(self) -> dict[str, object]:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text("utf-8", errors="replace")
            try:
                ready = httpx.get(f"{self.url}/ready", timeout=5)
                if ready.status_code == 200:
                    body: dict[str, object] = ready.json()
                    return body
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(self.log.read_text("utf-8", errors="replace"))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._out.close()
        return self.process.returncode


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[type[Served]]:
    started: list[Served] = []

    class Started(Served):
        def __init__(self, args: list[str], log: Path = tmp_path / "serve.log") -> None:
            super().__init__(args, log)
            started.append(self)

    yield Started
    for service in started:
        service.stop()


@pytest.mark.usefixtures("clean_environment")
@pytest.mark.parametrize("workers", [1, 2])
def test_demo_serve_step_answers_with_its_keys(
    demo_folder: Path,
    tracking_uri: str,
    workspace: Workspace,
    start_service: type[Served],
    capsys: pytest.CaptureFixture[str],
    workers: int,
) -> None:
    settings = service_settings(demo_folder, tracking_uri=tracking_uri)
    demo = prepare_demo_service(settings, demo_folder)
    operator = workspace.directory.entities[demo.business].legal_rep_id
    assert demo.operator_file.read_text("utf-8").strip() == operator

    service = start_service(
        ["--workdir", str(demo_folder), "--tracking-uri", tracking_uri, "--workers", str(workers)]
    )
    ready = service.wait_ready()
    assert ready["model_loaded"] is True
    assert ready["snapshot"] == workspace.snapshot.info.file

    print_demo_service(demo, service.url)
    printed = capsys.readouterr().out
    assert operator not in printed  # keys and USCCs only
    assert all(k.key in printed for k in demo.keys.values())
    assert demo.enterprise in printed

    def get(key: str, path: str) -> httpx.Response:
        return httpx.get(service.url + path, headers=bearer(demo.keys[key].key), timeout=30)

    regulator = get("regulator", f"/v1/entities/{demo.enterprise}/score")
    assert regulator.status_code == 200, regulator.text
    assert regulator.json()["reasons"]
    assert regulator.json()["lending"] is None
    person = get("underwriter", f"/v1/persons/{operator}/scores?purpose=loan_approval")
    assert person.status_code == 200, person.text  # the demo recorded the operator's consent
    assert demo.business in [s["identity"]["uscc"] for s in person.json()["scores"]]
    own = get("person", f"/v1/persons/{operator}/scores")
    assert own.status_code == 200, own.text
    other = get("enterprise", f"/v1/entities/{demo.business}/score")
    assert other.status_code == 403

    if shutil.which("curl"):  # the printed examples work as pasted
        for what, command in demo_examples(demo, service.url):
            status = subprocess.run(
                ["bash", "-c", f"{command} -o /dev/null -w '%{{http_code}}'"],
                capture_output=True, text=True, timeout=30, check=True,
            ).stdout  # fmt: skip
            assert status == "200", (what, status)
    assert service.stop() in (0, -signal.SIGINT)
    assert operator not in service.log.read_text("utf-8", errors="replace")
