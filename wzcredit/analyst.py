"""The analyst's commands: ``wzcredit monitor`` and ``wzcredit report model|annual``.

Registered on the main app by `wzcredit.cli`; the console, error handling and option types
are the main CLI's (imported when a command runs, so that either module can be imported
first).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer


report_app = typer.Typer(
    help="Reports: the model validation report, the annual platform report.",
    no_args_is_help=True,
)

WarehouseOpt = Annotated[
    Path, typer.Option("--warehouse", envvar="WZCREDIT_WAREHOUSE", help="DuckDB warehouse file.")
]
TrackingOpt = Annotated[
    str, typer.Option(envvar="WZCREDIT_MLFLOW_URI", help="MLflow tracking URI.")
]
DEFAULT_TRACKING = "sqlite:///mlruns/mlflow.db"
DEFAULT_WAREHOUSE = Path("warehouse/wzcredit.duckdb")
LEVELS = ("none", "warning", "alert")


def monitoring_result(
    warehouse: Path,
    as_of: dt.date,
    *,
    model: str = "champion",
    previous: dt.date | None = None,
    tracking_uri: str = DEFAULT_TRACKING,
) -> Any:
    """Monitor a registered model on the view as of ``as_of`` (see `scoring.monitoring`).

    ``previous`` (default: twelve months earlier) gives the grade migration and, its window
    being closed by ``as_of``, the realised default rate per grade.
    """
    from features.view import build_view  # noqa: PLC0415 - fast --help
    from features.view.engine import duckdb_tables  # noqa: PLC0415
    from models.datasets import snapshot  # noqa: PLC0415
    from models.labels import HORIZON_MONTHS, months_after  # noqa: PLC0415
    from models.registry import ModelRegistry, RegistryConfig  # noqa: PLC0415
    from models.stability import StabilityBaseline  # noqa: PLC0415
    from models.train import BASELINE_ARTIFACT  # noqa: PLC0415
    from scoring.monitoring import monitor  # noqa: PLC0415
    from scoring.policy import load_policy  # noqa: PLC0415

    registry = ModelRegistry(RegistryConfig(tracking_uri=tracking_uri))
    fitted = registry.load(model)
    baseline = StabilityBaseline.from_dict(
        json.loads(registry.version_artifact(model, BASELINE_ARTIFACT))
    )
    before = previous or months_after(as_of, -HORIZON_MONTHS)
    with duckdb_tables(warehouse) as (_, tables):
        current = build_view(tables, as_of).table.to_pandas()
        earlier = snapshot(tables, before) if before < as_of else None
    return monitor(current, fitted, baseline, load_policy(), previous=earlier)


def monitor_command(
    as_of: Annotated[str, typer.Option("--as-of", help="Monitor the view as of YYYY-MM-DD.")],
    warehouse: WarehouseOpt = DEFAULT_WAREHOUSE,
    model: Annotated[str, typer.Option(help="Registered alias or version.")] = "champion",
    previous: Annotated[
        str | None,
        typer.Option(help="Earlier date for migration and realised defaults (default: −12 m)."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the result as JSON here.")] = None,
    fail_on: Annotated[
        str, typer.Option(help="Exit 1 when an alert of this level is raised: none|warning|alert.")
    ] = "none",
    tracking_uri: TrackingOpt = DEFAULT_TRACKING,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Drift (PSI/CSI), grade migration and realised defaults against the policy (分析预警)."""
    from rich.table import Table  # noqa: PLC0415

    from wzcredit.cli import _parse_date, _run, err  # noqa: PLC0415
    from wzcredit.cli import out as console  # noqa: PLC0415

    if fail_on not in LEVELS:
        err.print(f"[bold red]error[/] fail_on: choice: {fail_on!r} is not one of {LEVELS}")
        raise typer.Exit(2)
    day = _parse_date("as_of", as_of)
    earlier = _parse_date("previous", previous)
    assert day is not None
    if earlier is not None and earlier >= day:
        err.print(f"[bold red]error[/] previous: before_as_of: {earlier} is not before {day}")
        raise typer.Exit(2)
    err.print(f"monitoring model {model} on the view as of {day}")
    result = _run(
        lambda: monitoring_result(
            warehouse, day, model=model, previous=earlier, tracking_uri=tracking_uri
        )
    )
    data = result.to_dict()
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, ensure_ascii=False, indent=1), "utf-8")
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    else:
        colour = {"ok": "green", "warning": "yellow", "alert": "bold red"}
        console.print(
            f"{result.rows:,} entities as of {result.as_of}; score PSI "
            f"[{colour[result.score_level]}]{result.score_psi:.4f}[/] against the training "
            f"population of {', '.join(map(str, result.baseline_as_of))}"
        )
        top = Table(title="least stable features (CSI)")
        for column in ("feature", "source", "CSI", "level"):
            top.add_column(column)
        for row in result.features.head(8).itertuples():
            top.add_row(row.feature, row.source, f"{row.psi:.4f}",
                        f"[{colour[row.level]}]{row.level}[/]")  # fmt: skip
        console.print(top)
        if result.realised is not None:
            realised = Table(
                title=f"realised 12-month default rate, graded {result.realised_as_of}"
            )
            for column in ("grade", "entities", "predicted PD", "realised", "p", "level"):
                realised.add_column(column)
            for row in result.realised.itertuples():
                realised.add_row(row.grade, f"{row.entities:,}", f"{row.predicted_pd:.2%}",
                                 f"{row.realised_rate:.2%}", f"{row.p_value:.3g}",
                                 f"[{colour[row.level]}]{row.level}[/]")  # fmt: skip
            console.print(realised)
        if result.migration is not None:
            console.print(
                f"migration {result.migration.from_as_of} → {result.migration.to_as_of}: "
                f"{result.migration.far_share:.1%} moved more than one grade"
            )
        for alert in result.alerts:
            console.print(f"[{colour[alert.level]}]{alert.level}[/] {alert.message}")
        if not result.alerts:
            console.print("[green]no alerts[/]")
    if fail_on != "none":
        worst = {"warning": 1, "alert": 2}
        if any(worst[a.level] >= worst[fail_on] for a in result.alerts):
            raise typer.Exit(1)
