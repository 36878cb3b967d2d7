"""End to end: the demo flow on a small generated dataset, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
from typer.testing import CliRunner

from models.registry import ModelRegistry, RegistryConfig
from scoring.batch import SnapshotStore
from scoring.policy import load_policy
from wzcredit.cli import DEMO_AS_OF, app


def test_demo_generates_ingests_reports_and_builds_the_view(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    store = ["--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", "--no-serve"]
    result = CliRunner().invoke(
        app, ["demo", "--workdir", str(workdir), "--entities", "1500", *store]
    )
    assert result.exit_code == 0, result.output

    manifest = json.loads((workdir / "delivery" / "manifest.json").read_text("utf-8"))
    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        accepted = con.execute("SELECT sum(accepted), sum(rows_in) FROM deliveries").fetchall()
    assert accepted[0][1] == sum(manifest["row_counts"].values())
    assert accepted[0][0] < accepted[0][1]  # the injected faults were quarantined

    quality = json.loads((workdir / "reports" / "quality.json").read_text("utf-8"))
    assert {t["table"] for t in quality["tables"]} >= {"entities", "pboc_monthly", "private_loans"}

    view = workdir / "features" / f"three_in_one_view_{DEMO_AS_OF}.parquet"
    meta = json.loads(view.with_suffix(".json").read_text("utf-8"))
    table = pq.read_table(view)
    assert table.num_rows == meta["rows"] > 500
    assert table.column_names == ["uscc", "as_of", *(f["name"] for f in meta["features"])]

    registry = ModelRegistry(RegistryConfig(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db"))
    assert set(registry.aliases()) == {"champion", "challenger"}

    info, scores = SnapshotStore(workdir / "scores").read()
    assert scores.num_rows == table.num_rows
    assert scores.column("uscc").to_pylist() == table.column("uscc").to_pylist()
    assert info.model_version == str(registry.aliases()["champion"])
    assert info.policy_version == load_policy().version
    assert info.as_of == DEMO_AS_OF
    assert {"pd", "score", "grade", "supervision_class", "decision", "limit",
            "reason_1_code"} <= set(scores.column_names)  # fmt: skip
    villages = pq.read_table(workdir / "scores" / "rural" / f"villages_{DEMO_AS_OF}.parquet")
    assert villages.num_rows > 0

    reports = workdir / "reports"
    for name in ("model_validation", f"annual_{DEMO_AS_OF[:4]}"):
        html = (reports / f"{name}.html").read_text("utf-8")
        assert (reports / f"{name}.pdf").read_bytes().startswith(b"%PDF")
        twin = json.loads((reports / f"{name}.json").read_text("utf-8"))
        assert twin
        assert "<h2" in html
    assert "年度运行分析报告" in (reports / f"annual_{DEMO_AS_OF[:4]}.html").read_text("utf-8")
    monitoring = json.loads((reports / f"monitoring_{DEMO_AS_OF}.json").read_text("utf-8"))
    assert monitoring["as_of"] == DEMO_AS_OF
    assert monitoring["rows"] == table.num_rows
    assert 0 <= monitoring["score_psi"] < 10

    # the monitor's exit code follows its alerts: 1 with --fail-on warning iff any was raised
    checked = CliRunner().invoke(app, [
        "monitor", "--as-of", DEMO_AS_OF, "--warehouse", str(workdir / "warehouse.duckdb"),
        "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", "--json", "--fail-on", "warning",
    ])  # fmt: skip
    alerts = json.loads(checked.stdout.splitlines()[-1])["alerts"]
    assert checked.exit_code == (1 if alerts else 0), checked.output
    assert [a["message"] for a in alerts] == [a["message"] for a in monitoring["alerts"]]

    again = CliRunner().invoke(
        app, ["demo", "--workdir", str(workdir), "--entities", "1500", *store]
    )
    assert again.exit_code == 0, again.output  # re-running is safe: nothing ingested twice
    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM deliveries").fetchall() == [(1,)]
    assert set(registry.aliases()) == {"champion", "challenger", "candidate"}
