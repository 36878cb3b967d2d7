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


def _service_activity(database_url: str | None, year: int) -> Any:
    """The service's activity in ``year``, or None when there is no service database yet."""
    if database_url is None:
        return None
    prefix = "sqlite:///"
    if database_url.startswith(prefix) and not Path(database_url[len(prefix) :]).exists():
        return None  # the service never ran here: nothing to count, nothing to create
    from api.services.activity import service_activity  # noqa: PLC0415 - fast --help
    from wzcredit.cli import _database, service_settings  # noqa: PLC0415

    settings = service_settings(database_url=database_url)
    with _database(settings) as database, database.session() as session:
        return service_activity(session, year)


def annual_files(
    year: int,
    *,
    warehouse: Path,
    scores: Path,
    out: Path,
    features: Path | None = None,
    database_url: str | None = None,
    tracking_uri: str = DEFAULT_TRACKING,
    pdf: bool = True,
    progress: Any = None,
) -> Any:
    """Write the annual report of ``year`` (HTML, PDF, JSON twin); return the files.

    The current score snapshot must be as of a day in ``year``. The outcomes of last year's
    pre-approvals come from scoring the view as of the previous year end with the
    snapshot's model (decisions without reasons), labelled by what happened since.
    """
    import pyarrow.parquet as pq  # noqa: PLC0415 - fast --help

    from features.view import build_view  # noqa: PLC0415
    from features.view.engine import duckdb_tables  # noqa: PLC0415
    from models.registry import ModelRegistry, RegistryConfig  # noqa: PLC0415
    from scoring.batch import SnapshotStore, score_view  # noqa: PLC0415
    from scoring.policy import load_policy  # noqa: PLC0415
    from scoring.reports.annual import annual_report, render_annual  # noqa: PLC0415
    from scoring.reports.render import write_report  # noqa: PLC0415

    say = progress or (lambda message: None)
    info, snapshot = SnapshotStore(scores).read()
    policy = load_policy()
    activity = _service_activity(database_url, year)
    view_file = None if features is None else features / f"three_in_one_view_{info.as_of}.parquet"
    with duckdb_tables(warehouse) as (_, tables):
        view = pq.read_table(view_file) if view_file and view_file.exists() else None
        previous_day = dt.date(year - 1, 12, 31)
        say(f"scoring the view as of {previous_day} for the outcomes of last year's decisions")
        model = ModelRegistry(RegistryConfig(tracking_uri=tracking_uri)).load(
            int(info.model_version) if info.model_version.isdigit() else info.model_version
        )
        previous = score_view(build_view(tables, previous_day).table, model, policy, reasons=False)
        say(f"gathering the figures of {year}")
        report = annual_report(
            tables, year, snapshot, view=view, previous=previous, activity=activity, policy=policy
        )
    return write_report(render_annual(report), out, pdf=pdf, data=report.to_dict())


@report_app.command("annual")
def report_annual(
    year: Annotated[int, typer.Option(help="Calendar year of the report (年度).")],
    workdir: Annotated[
        Path | None,
        typer.Option(help="A `wzcredit demo` folder: its warehouse, scores, service database."),
    ] = None,
    warehouse: WarehouseOpt = DEFAULT_WAREHOUSE,
    scores: Annotated[Path, typer.Option(help="Score snapshot folder.")] = Path("scores"),
    database_url: Annotated[
        str | None, typer.Option(envvar="WZCREDIT_DATABASE_URL", help="Service database URL.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="HTML file (PDF and JSON beside it).")] = None,
    pdf: Annotated[bool, typer.Option(help="Also print the report to PDF.")] = True,
    tracking_uri: TrackingOpt = DEFAULT_TRACKING,
) -> None:
    """The annual platform operation analysis report (年度运行分析报告), HTML and PDF."""
    from wzcredit.cli import DEMO_DATABASE, _run, err  # noqa: PLC0415

    features = None
    if workdir is not None:
        warehouse, scores, features = (workdir / "warehouse.duckdb", workdir / "scores",
                                       workdir / "features")  # fmt: skip
        database_url = database_url or f"sqlite:///{workdir / DEMO_DATABASE}"
    target = out or (workdir or Path()) / "reports" / f"annual_{year}.html"
    files = _run(
        lambda: annual_files(
            year,
            warehouse=warehouse,
            scores=scores,
            out=target,
            features=features,
            database_url=database_url,
            tracking_uri=tracking_uri,
            pdf=pdf,
            progress=err.print,
        )
    )
    err.print(f"[green]annual report {year}[/] → {files}")


def model_files(
    *,
    warehouse: Path,
    out: Path,
    truth: Path | None = None,
    monitoring: dict[str, Any] | None = None,
    tracking_uri: str = DEFAULT_TRACKING,
    pdf: bool = True,
) -> Any:
    """Write the model validation report of the registered champion and challenger.

    ``monitoring`` (a `scoring.monitoring.MonitoringResult.to_dict`) fills the stability
    section; without it the section says it was not computed.
    """
    from features.view.engine import duckdb_tables  # noqa: PLC0415 - fast --help
    from models.registry import ModelRegistry, RegistryConfig  # noqa: PLC0415
    from scoring.policy import load_policy  # noqa: PLC0415
    from scoring.reports.model import model_report, render_model  # noqa: PLC0415
    from scoring.reports.render import write_report  # noqa: PLC0415

    registry = ModelRegistry(RegistryConfig(tracking_uri=tracking_uri))
    with duckdb_tables(warehouse) as (_, tables):
        report = model_report(
            tables, registry, truth=truth, monitoring=monitoring, policy=load_policy()
        )
    return write_report(render_model(report), out, pdf=pdf, data=report.to_dict())


@report_app.command("model")
def report_model(
    warehouse: WarehouseOpt = DEFAULT_WAREHOUSE,
    truth: Annotated[
        Path | None, typer.Option(help="Generator truth folder: oracle AUC, true-risk fairness.")
    ] = None,
    monitoring: Annotated[
        Path | None,
        typer.Option(help="A `wzcredit monitor --out` JSON for the stability section."),
    ] = None,
    monitor_as_of: Annotated[
        str | None,
        typer.Option(help="Or monitor the champion as of YYYY-MM-DD for that section."),
    ] = None,
    out: Annotated[Path, typer.Option(help="HTML file (PDF and JSON beside it).")] = Path(
        "reports/model_validation.html"
    ),
    pdf: Annotated[bool, typer.Option(help="Also print the report to PDF.")] = True,
    tracking_uri: TrackingOpt = DEFAULT_TRACKING,
) -> None:
    """The model validation report: data, features, OOT performance, calibration, stability,
    segments, fairness, scorecard, top reasons (HTML and PDF)."""
    from wzcredit.cli import _parse_date, _run, err  # noqa: PLC0415

    if monitoring is not None and monitor_as_of is not None:
        err.print("[bold red]error[/] monitoring: exclusive: give --monitoring or --monitor-as-of")
        raise typer.Exit(2)
    day = _parse_date("monitor_as_of", monitor_as_of)

    def action() -> Any:
        stability = None
        if monitoring is not None:
            stability = json.loads(monitoring.read_text("utf-8"))
        elif day is not None:
            err.print(f"monitoring the champion as of {day} for the stability section")
            stability = monitoring_result(warehouse, day, tracking_uri=tracking_uri).to_dict()
        err.print("rebuilding the out-of-time test set and judging both models")
        return model_files(
            warehouse=warehouse, out=out, truth=truth, monitoring=stability,
            tracking_uri=tracking_uri, pdf=pdf,
        )  # fmt: skip

    files = _run(action)
    err.print(f"[green]model validation report[/] → {files}")
