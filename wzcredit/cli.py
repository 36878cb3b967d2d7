"""The ``wzcredit`` command line.

The CLI is an edge: it builds settings from options and the environment, configures logging
and progress bars, calls package functions and prints their results. Domain errors become a
one-line message naming the field and the rule, and exit code 2.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.errors import ServiceError
from features.errors import FeatureError
from models.errors import ModelError
from scoring.errors import ScoringError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from api.db.session import Database
    from api.settings import Settings

app = typer.Typer(
    name="wzcredit",
    help="温州三位一体信用评分与信易贷分析 / Wenzhou three-in-one credit scoring.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console()

DEFAULT_WAREHOUSE = Path("warehouse/wzcredit.duckdb")
#: the demo data runs to 2020-12; its latest view is as of the last day
DEMO_AS_OF = "2020-12-31"
WarehouseOption = Annotated[
    Path,
    typer.Option(
        "--warehouse",
        envvar="WZCREDIT_WAREHOUSE",
        help="DuckDB warehouse file (created if absent).",
    ),
]
T = TypeVar("T")


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug detail.")] = False,
) -> None:
    """Configure logging for every command (to stderr; never names or resident IDs)."""
    # the CLI is the edge where the environment is set: MLflow must not phone home and
    # must log through our handlers rather than its own
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
    # LightGBM's OpenMP threads spin while waiting; on 2 busy cores that slows fits 50-fold
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False, rich_tracebacks=False)],
        force=True,
    )
    # WeasyPrint narrates every step of a PDF at INFO, fontTools every subset: keep warnings
    for chatty in ("weasyprint", "fontTools"):
        logging.getLogger(chatty).setLevel(logging.DEBUG if verbose else logging.WARNING)


def _run(action: Callable[[], T]) -> T:
    """Run a command body, turning domain errors into a clear message and exit code 2."""
    try:
        return action()
    except (FeatureError, ModelError, ScoringError, ServiceError) as exc:
        err.print(f"[bold red]error[/] {exc.field}: {exc.rule}: {exc.message}", highlight=False)
        raise typer.Exit(2) from None
    except LookupError as exc:  # models.registry.RegistryError (kept lazy: mlflow is slow)
        if not hasattr(exc, "rule"):
            raise
        err.print(f"[bold red]error[/] {exc}", highlight=False)
        raise typer.Exit(2) from None


@contextmanager
def _progress(quiet: bool) -> Iterator[Progress]:
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=quiet or not err.is_terminal,
        transient=False,
    )
    with progress:
        yield progress


# --------------------------------------------------------------------------------------------
@app.command()
def ingest(
    directory: Annotated[Path, typer.Argument(help="Delivery folder: one file per catalog table.")],
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
    delivery_id: Annotated[str | None, typer.Option(help="Override delivery.json.")] = None,
    delivered_on: Annotated[
        str | None, typer.Option(help="Delivery date YYYY-MM-DD (default: delivery.json, today).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Validate a delivery against the catalog and load it; bad rows go to quarantine."""
    from features.ingest import ingest_delivery, read_delivery  # noqa: PLC0415 - fast --help

    def action() -> dict[str, Any]:
        on = _parse_date("delivered_on", delivered_on)
        from features.catalog import load_catalog  # noqa: PLC0415

        catalog = load_catalog()
        files = read_delivery(directory, catalog, delivery_id=delivery_id, delivered_on=on).files
        with _progress(as_json) as progress:
            task = progress.add_task("ingest", total=len(files))

            def step(outcome: Any) -> None:
                progress.update(task, advance=1, description=f"ingest {outcome.table}")

            outcome = ingest_delivery(
                directory,
                warehouse,
                catalog=catalog,
                delivery_id=delivery_id,
                delivered_on=on,
                on_table=step,
            )
        return outcome.to_dict()

    result = _run(action)
    if as_json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
        return
    table = Table(title=f"delivery {result['delivery_id']} — {result['status']}")
    table.add_column("table")
    for column in ("rows in", "accepted", "quarantined"):
        table.add_column(column, justify="right")
    table.add_column("top rules")
    for name, t in result["tables"].items():
        top = sorted(t["rules"].items(), key=lambda kv: -kv[1])[:3]
        table.add_row(
            name,
            f"{t['rows_in']:,}",
            f"{t['accepted']:,}",
            f"{t['quarantined']:,}",
            ", ".join(f"{rule} {n}" for rule, n in top),
        )
    out.print(table)


@app.command()
def quality(
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
    delivery_id: Annotated[str | None, typer.Option(help="Only this delivery.")] = None,
    output: Annotated[Path, typer.Option("--out", help="Where to write the JSON report.")] = Path(
        "reports/quality.json"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON report.")] = False,
) -> None:
    """Data quality per table and department: completeness, validity, duplicates, orphans,
    publication timeliness (working days, Chinese holidays)."""
    from features.quality import quality_report  # noqa: PLC0415

    report = _run(lambda: quality_report(warehouse, delivery_id=delivery_id))
    data = report.to_dict()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
        return
    table = Table(title=f"数据质量 data quality ({output})")
    for column in (
        "table",
        "department",
        "rows in",
        "complete",
        "valid",
        "dup",
        "orphan",
        f"≤{report.working_day_limit} wd",
    ):
        table.add_column(column, justify="left" if column in {"table", "department"} else "right")
    for t in report.tables:
        table.add_row(
            t.table,
            t.department,
            f"{t.rows_in:,}",
            pct(t.completeness),
            pct(t.validity),
            pct(t.duplicate_rate),
            pct(t.orphan_rate),
            pct(t.timeliness),
        )
    out.print(table)


@app.command()
def features(
    as_of: Annotated[str, typer.Option("--as-of", help="Build the view as of YYYY-MM-DD.")],
    engine: Annotated[str, typer.Option(help="duckdb (default) or spark.")] = "duckdb",
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
    out: Annotated[Path, typer.Option("--out", help="Folder for the view and metadata.")] = Path(
        "data/features"
    ),
) -> None:
    """Build the three-in-one view (三位一体): one row per entity, point in time."""
    import tempfile  # noqa: PLC0415

    from features.view import build_view  # noqa: PLC0415 - fast --help
    from features.view.engine import duckdb_tables, spark_tables  # noqa: PLC0415

    day = _parse_date("as_of", as_of)
    assert day is not None
    if engine not in {"duckdb", "spark"}:
        err.print(f"[bold red]error[/] engine: code: {engine!r} is not duckdb or spark")
        raise typer.Exit(2)

    def action() -> Any:
        if engine == "duckdb":
            with duckdb_tables(warehouse) as (_, tables):
                return build_view(tables, day, engine=engine, out=out)
        with (
            tempfile.TemporaryDirectory(prefix="wzcredit-spark-") as tmp,
            spark_tables(warehouse, Path(tmp)) as (_, tables),
        ):
            return build_view(tables, day, engine=engine, out=out)

    result = _run(action)
    meta = result.metadata
    err.print(
        f"[green]view[/] as of {meta['as_of']} ({engine}): {meta['rows']:,} entities × "
        f"{len(meta['features'])} features in {meta['build_seconds']:.1f} s → {result.path}"
    )


@app.command()
def train(
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
    truth: Annotated[
        Path | None, typer.Option(help="Generator truth folder: report the oracle AUC.")
    ] = None,
    table: Annotated[
        Path | None, typer.Option(help="Train on this CSV/Parquet table instead (with CV).")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Target column of --table.")] = None,
    bad: Annotated[str | None, typer.Option(help="Value of --target meaning default.")] = None,
    special_codes: Annotated[
        str | None, typer.Option(help="Comma-separated special codes, e.g. -7,-8,-9.")
    ] = None,
    data_end: Annotated[str, typer.Option(help="Last day of the data (plans snapshots).")] = (
        "2020-12-31"
    ),
    tracking_uri: Annotated[
        str, typer.Option(envvar="WZCREDIT_MLFLOW_URI", help="MLflow tracking URI.")
    ] = "sqlite:///mlruns/mlflow.db",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Train the champion (LightGBM) and challenger (WOE scorecard), calibrate, register."""
    from features.view.engine import duckdb_tables  # noqa: PLC0415 - fast --help
    from models.datasets import SnapshotPlan  # noqa: PLC0415
    from models.registry import ModelRegistry, RegistryConfig  # noqa: PLC0415
    from models.train import read_table, register, train_main, train_table  # noqa: PLC0415

    def action() -> dict[str, Any]:
        if table is not None:
            if target is None or bad is None:
                err.print("[bold red]error[/] target: required: --table needs --target and --bad")
                raise typer.Exit(2)
            codes = [float(c) for c in special_codes.split(",")] if special_codes else None
            return train_table(
                read_table(table), target, bad, special_codes=codes, progress=err.print
            )
        day = _parse_date("data_end", data_end)
        assert day is not None
        plan = SnapshotPlan.for_data_ending(day)
        with duckdb_tables(warehouse) as (_, tables):
            result = train_main(tables, plan, truth=truth, progress=err.print)
        register(result, ModelRegistry(RegistryConfig(tracking_uri=tracking_uri)))
        return result.to_dict()

    result = _run(action)
    if as_json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False, default=str) + "\n")
        return
    cv = table is not None
    summary = Table(title="cross-validation (mean ± std)" if cv else "out-of-time test")
    summary.add_column("model")
    for column in ("ROC AUC", "KS", "Brier", "calibration error"):
        summary.add_column(column, justify="right")
    if not cv:
        summary.add_column("calibrated by")
        summary.add_column("version", justify="right")
    for name in ("champion", "challenger"):
        m = result[name]
        keys = ("roc_auc", "ks", "brier", "calibration_error")
        if cv:
            cells = [f"{m[k]['mean']:.4f} ± {m[k]['std']:.4f}" for k in keys]
        else:
            cells = [f"{m[k]:.4f}" for k in keys]
            cells += [str(m["calibration"]), str(result["versions"].get(name))]
        summary.add_row(name, *cells)
    out.print(summary)
    if "oracle_auc" in result:
        out.print(f"oracle AUC (generator truth, same test rows): {result['oracle_auc']:.4f}")


models_app = typer.Typer(help="Registered models (MLflow): list, promote.", no_args_is_help=True)
app.add_typer(models_app, name="models")
TrackingOption = Annotated[
    str, typer.Option(envvar="WZCREDIT_MLFLOW_URI", help="MLflow tracking URI.")
]


@models_app.command("list")
def models_list(tracking_uri: TrackingOption = "sqlite:///mlruns/mlflow.db") -> None:
    """Every registered version with its aliases and out-of-time metrics."""
    from models.registry import ModelRegistry, RegistryConfig  # noqa: PLC0415

    versions = _run(lambda: ModelRegistry(RegistryConfig(tracking_uri=tracking_uri)).versions())
    table = Table(title="wzcredit models")
    for column in ("version", "aliases", "role", "OOT AUC", "KS", "Brier", "created"):
        table.add_column(column)
    for v in versions:
        m = v.metrics
        table.add_row(
            str(v.version),
            ", ".join(v.aliases),
            v.tags.get("role", ""),
            f"{m.get('oot.roc_auc', float('nan')):.4f}",
            f"{m.get('oot.ks', float('nan')):.4f}",
            f"{m.get('oot.brier', float('nan')):.4f}",
            f"{v.created:%Y-%m-%d %H:%M}",
        )
    out.print(table)


@models_app.command("promote")
def models_promote(
    version: Annotated[int, typer.Argument(help="Model version to make champion.")],
    force: Annotated[bool, typer.Option(help="Promote even with a lower OOT AUC.")] = False,
    tracking_uri: TrackingOption = "sqlite:///mlruns/mlflow.db",
) -> None:
    """Make VERSION the champion; refused if its OOT AUC is below the champion's."""
    from models.registry import ModelRegistry, RegistryConfig  # noqa: PLC0415

    registry = ModelRegistry(RegistryConfig(tracking_uri=tracking_uri))
    result = _run(lambda: registry.promote(version, force=force))
    err.print(f"[green]promoted[/] {result}")


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", help="Folder for the delivery files.")] = Path(
        "data/synthetic"
    ),
    entities: Annotated[int, typer.Option(help="Market entities (Wenzhou: ~1,100,000).")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, byte-identical files.")] = 0,
    start: Annotated[str, typer.Option(help="First simulated month, YYYY-MM.")] = "2015-01",
    end: Annotated[str, typer.Option(help="Last simulated month, YYYY-MM.")] = "2020-12",
    fault_rate: Annotated[float, typer.Option(help="Share of delivered rows with faults.")] = 0.01,
    file_format: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    distress_shift: Annotated[
        float, typer.Option(help="Make every entity riskier (> 0) or safer: a drift to inject.")
    ] = 0.0,
) -> None:
    """Generate synthetic Wenzhou deliveries of all three sources, with faults and truth."""
    result = _generate(out, entities, seed, start, end, fault_rate, file_format, distress_shift)
    total = sum(result.row_counts.values())
    out_msg = f"{total:,} rows in {len(result.row_counts)} tables, {result.fault_count:,} faults"
    err.print(f"[green]generated[/] {out_msg} → {result.out}")


def _generate(
    out: Path,
    entities: int,
    seed: int,
    start: str,
    end: str,
    fault_rate: float,
    file_format: str,
    distress_shift: float = 0.0,
) -> Any:
    from features.synthetic import GeneratorConfig  # noqa: PLC0415 - fast --help
    from features.synthetic import generate as run_generator  # noqa: PLC0415

    def action() -> Any:
        config = GeneratorConfig(
            entities=entities,
            seed=seed,
            start=start,
            end=end,
            fault_rate=fault_rate,
            file_format=file_format,  # type: ignore[arg-type]  # validated by the config
            distress_shift=distress_shift,
        )
        with _progress(False) as progress:
            tasks: dict[str, Any] = {}

            def step(table: str, done: int, total: int) -> None:
                if table not in tasks:
                    tasks[table] = progress.add_task(f"generate {table}", total=total)
                progress.update(tasks[table], completed=done, total=total)

            return run_generator(config, out, progress=step)

    return _run(action)


@app.command()
def score(
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
    as_of: Annotated[
        str,
        typer.Option("--as-of", help="Score the view as of YYYY-MM-DD (built from the warehouse)."),
    ] = DEMO_AS_OF,
    view: Annotated[
        Path | None, typer.Option(help="Score this view file (from `wzcredit features`) instead.")
    ] = None,
    engine: Annotated[str, typer.Option(help="duckdb or spark (mapInPandas).")] = "duckdb",
    out: Annotated[Path, typer.Option(help="Snapshot folder.")] = Path("scores"),
    model: Annotated[str, typer.Option(help="Registered alias or version to score with.")] = (
        "champion"
    ),
    reasons: Annotated[bool, typer.Option(help="Add the top reason codes (TreeSHAP).")] = True,
    tracking_uri: TrackingOption = "sqlite:///mlruns/mlflow.db",
    as_json: Annotated[bool, typer.Option("--json", help="Print the snapshot as JSON.")] = False,
) -> None:
    """Score every entity of the view into one atomic snapshot (PD, grade, decisions, reasons)."""
    import pyarrow.parquet as pq  # noqa: PLC0415 - fast --help

    from features.view import build_view  # noqa: PLC0415
    from features.view.engine import duckdb_tables  # noqa: PLC0415
    from models.registry import ModelRegistry, RegistryConfig  # noqa: PLC0415
    from scoring.batch import SnapshotStore, score_view, summary  # noqa: PLC0415
    from scoring.policy import load_policy  # noqa: PLC0415

    if engine not in ("duckdb", "spark"):
        err.print(f"[bold red]error[/] engine: choice: {engine!r} is not duckdb or spark")
        raise typer.Exit(2)

    def action() -> dict[str, Any]:
        policy = load_policy()
        registry = ModelRegistry(RegistryConfig(tracking_uri=tracking_uri))
        fitted = registry.load(model)
        version = str(registry.aliases().get(model, model))
        if view is not None:
            table = pq.read_table(view)
            day = dt.date.fromisoformat(str(table.column("as_of")[0].as_py())[:10])
        else:
            parsed = _parse_date("as_of", as_of)
            assert parsed is not None
            day = parsed
            with duckdb_tables(warehouse) as (_, tables):
                table = build_view(tables, day).table
        err.print(f"scoring {table.num_rows:,} entities as of {day} with model {model} "
                  f"(version {version}), policy {policy.version} on {engine}")  # fmt: skip
        if engine == "spark":
            scored = _score_on_spark(table, fitted, policy, reasons=reasons)
        else:
            with _progress(quiet=False) as bar:
                task = bar.add_task("scoring", total=table.num_rows)
                scored = score_view(
                    table, fitted, policy, reasons=reasons,
                    progress=lambda done, total: bar.update(task, completed=done),
                )  # fmt: skip
        info = SnapshotStore(out).write(
            scored, as_of=day, model_version=version, policy_version=policy.version,
            reasons=reasons, engine=engine,
        )  # fmt: skip
        rural = _rural_ratings(warehouse, scored, table, policy, out, day)
        return {"snapshot": str(out / info.file), **vars(info), "summary": summary(scored),
                "rural": rural}  # fmt: skip

    result = _run(action)
    if as_json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False, default=str) + "\n")
        return
    err.print(
        f"[green]scored[/] {result['rows']:,} entities → {result['snapshot']}\n"
        f"  grades {result['summary']['grade']}\n"
        f"  classes {result['summary']['supervision_class']}\n"
        f"  信易贷 {result['summary']['decision']}\n"
        f"  rural: {result['rural']}"
    )


def _rural_ratings(
    warehouse: Path, scored: Any, view: Any, policy: Any, out: Path, day: dt.date
) -> dict[str, Any]:
    """信用户 / 信用村 / 信用乡镇 of a scored view, written beside the snapshot."""
    import duckdb  # noqa: PLC0415

    from scoring.rural import households, towns, villages  # noqa: PLC0415

    if not warehouse.exists():
        return {"skipped": f"no warehouse at {warehouse} for the villages"}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        places = con.sql("SELECT uscc, district, town, village FROM entities").df()
    units = households(scored.to_pandas(), view.to_pandas(), places, policy)
    village_table = villages(units, policy)
    town_table = towns(village_table, policy)
    folder = out / "rural"
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in (("households", units), ("villages", village_table), ("towns", town_table)):
        frame.to_parquet(folder / f"{name}_{day.isoformat()}.parquet", index=False)
    return {
        "credit_households": f"{int(units.credit_household.sum()):,} of {len(units):,}",
        "credit_villages": f"{int(village_table.credit_village.sum()):,} of {len(village_table):,}",
        "credit_towns": f"{int(town_table.credit_town.sum()):,} of {len(town_table):,}",
        "folder": str(folder),
    }


def _score_on_spark(table: Any, fitted: Any, policy: Any, *, reasons: bool) -> Any:
    """Score a view table on local Spark (the same `score_frame`, through mapInPandas)."""
    import tempfile  # noqa: PLC0415

    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    from features.view.engine import spark_session  # noqa: PLC0415
    from scoring.batch import score_spark  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="wzcredit-score-") as tmp:
        source, target = Path(tmp) / "view.parquet", Path(tmp) / "scores"
        pq.write_table(table, source)
        session = spark_session()
        frame = session.read.parquet(str(source))
        score_spark(frame, fitted, policy, reasons=reasons).write.parquet(str(target))
        scored = pq.read_table(target)
        order = pa.compute.sort_indices(scored, [("uscc", "ascending")])
        return scored.take(order).replace_schema_metadata(None)


# --------------------------------------------------------------------------------------------
# The service: serve, keys, db

#: where `wzcredit serve` and the demo listen unless told otherwise (loopback only)
SERVE_HOST = "127.0.0.1"
SERVE_PORT = 8000
#: the app factory that uvicorn's worker processes import (settings from the environment)
SERVICE_FACTORY = "wzcredit.cli:service_app"
#: the demo folder's service database, beside its warehouse
DEMO_DATABASE = "wzcredit.db"
#: label of the keys `wzcredit demo` creates (a new demo revokes the previous demo's keys)
DEMO_KEY_LABEL = "demo"
WorkdirOption = Annotated[
    Path | None,
    typer.Option(
        "--workdir",
        help="A demo folder (wzcredit demo --workdir): its warehouse.duckdb, scores/, "
        "features/ and the service database wzcredit.db.",
    ),
]
DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL of the service database (default: $WZCREDIT_DATABASE_URL, "
        "the --workdir's wzcredit.db, or sqlite:///wzcredit.db).",
    ),
]
ServiceTrackingOption = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        envvar="WZCREDIT_MLFLOW_URI",
        help="MLflow tracking URI of the served champion (default: sqlite:///mlruns/mlflow.db).",
    ),
]


def service_settings(
    workdir: Path | None = None, *, database_url: str | None = None, tracking_uri: str | None = None
) -> Settings:
    """The service's settings: ``WZCREDIT_*`` from the environment, a demo folder's paths.

    ``workdir`` points the warehouse, the snapshot and view folders and the service database
    at the layout `wzcredit demo --workdir` leaves; explicit options win over both.
    """
    from pydantic import ValidationError  # noqa: PLC0415 - fast --help

    from api.settings import Settings  # noqa: PLC0415

    overrides: dict[str, Any] = {}
    if workdir is not None:
        overrides |= {
            "warehouse": workdir / "warehouse.duckdb",
            "scores": workdir / "scores",
            "features": workdir / "features",
            "database_url": f"sqlite:///{workdir / DEMO_DATABASE}",
            "quality_report": workdir / "reports" / "quality.json",
        }
    if database_url is not None:
        overrides["database_url"] = database_url
    if tracking_uri is not None:
        overrides["tracking_uri"] = tracking_uri
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or "settings"
        err.print(f"[bold red]error[/] {field}: {first['type']}: {first['msg']}", highlight=False)
        raise typer.Exit(2) from None


def settings_environment(settings: Settings) -> dict[str, str]:
    """``settings`` as ``WZCREDIT_*`` variables: how worker processes receive them."""
    values = settings.model_dump(mode="json")
    return {
        f"WZCREDIT_{name.upper()}": value if isinstance(value, str) else json.dumps(value)
        for name, value in values.items()
    }


#: young-generation threshold of the garbage collector while serving (Python's default: 700)
SERVE_GC_THRESHOLD = 20_000


def tuned_for_serving(app: FastAPI) -> FastAPI:
    """Keep the garbage collector off what start-up built, and collect the young less often.

    A served process holds several hundred thousand long-lived objects (MLflow, LightGBM,
    the directory, the policy). A full collection walks all of them: at the default
    thresholds under load that was a pause of up to 0.6 s every second or so, which set
    the p99 latency. Once the lifespan has loaded the services, `gc.freeze` moves every
    object alive into a generation the collector never walks; requests' own garbage is
    freed by reference counting, and cycles among it by the (cheap) young collections.
    """
    import gc  # noqa: PLC0415

    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with started(app) as state:
            gc.collect()
            gc.freeze()
            yield state

    app.router.lifespan_context = lifespan
    gc.set_threshold(SERVE_GC_THRESHOLD, *gc.get_threshold()[1:])
    return app


def service_app() -> FastAPI:
    """The app of one uvicorn worker process, its settings built from the environment.

    `wzcredit serve --workers N` puts its settings into ``WZCREDIT_*`` variables and names
    this factory (`SERVICE_FACTORY`): each worker is an entry point of its own.
    """
    from api.app import create_app  # noqa: PLC0415
    from api.settings import Settings  # noqa: PLC0415

    if not logging.getLogger().handlers:  # a fresh worker process: log as the parent does
        logging.basicConfig(
            level=logging.INFO, format="%(levelname)s [worker %(process)d] %(name)s: %(message)s"
        )
    return tuned_for_serving(create_app(Settings()))  # type: ignore[call-arg]


def prepare_database(settings: Settings) -> None:
    """Migrate, and record the served policy and snapshot, once before the workers start.

    Each worker would otherwise do it at start-up, racing the others for the same rows.
    """
    from api.db.session import Database  # noqa: PLC0415
    from api.services.snapshots import load_snapshot  # noqa: PLC0415
    from api.state import read_policy, register_policy, register_snapshot  # noqa: PLC0415

    database = Database(settings.database_url)
    try:
        if settings.migrate_on_start:
            from api.db.migrate import upgrade  # noqa: PLC0415

            upgrade(database.engine)
        register_policy(database, *read_policy())
        if (settings.scores / "CURRENT").exists():
            register_snapshot(database, load_snapshot(settings.scores, settings.features))
    finally:
        database.dispose()


def run_service(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    """Run the service with uvicorn (uvloop and httptools) until interrupted.

    No access log: a request line holds the raw path, and ``/v1/persons/{resident_id}``
    would put a resident ID into the log. The query log and ``/metrics`` record requests.
    """
    import uvicorn  # noqa: PLC0415

    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # start-up chatter
    options: dict[str, Any] = {
        "host": host, "port": port, "access_log": False, "log_config": None,
        "timeout_graceful_shutdown": 10,
    }  # fmt: skip
    if workers <= 1:
        from api.app import create_app  # noqa: PLC0415

        uvicorn.run(tuned_for_serving(create_app(settings)), **options)
        return
    prepare_database(settings)
    os.environ.update(settings_environment(settings))
    os.environ["WZCREDIT_MIGRATE_ON_START"] = "false"
    uvicorn.run(SERVICE_FACTORY, factory=True, workers=workers, **options)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = SERVE_HOST,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = SERVE_PORT,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    workdir: WorkdirOption = None,
    database_url: DatabaseOption = None,
    tracking_uri: ServiceTrackingOption = None,
) -> None:
    """Run the API service (uvicorn) on the settings from WZCREDIT_* and the options."""
    settings = service_settings(workdir, database_url=database_url, tracking_uri=tracking_uri)
    err.print(f"serving http://{host}:{port} ({workers} worker{'s' * (workers > 1)}); "
              f"docs at http://{host}:{port}/docs; Ctrl-C stops")  # fmt: skip
    run_service(settings, host, port, workers)


@contextmanager
def _database(settings: Settings) -> Iterator[Database]:
    """The service database, migrated to the latest revision (as the service does at start)."""
    from api.db.session import Database  # noqa: PLC0415

    database = Database(settings.database_url)
    try:
        if settings.migrate_on_start:
            from api.db.migrate import upgrade  # noqa: PLC0415

            upgrade(database.engine)
        yield database
    finally:
        database.dispose()


def _shown_subject(subject_id: str | None) -> str:
    """A key's subject as listings show it: a USCC as it is, a resident ID masked."""
    from api.security import mask_resident_id  # noqa: PLC0415
    from features.identifiers import is_valid_uscc  # noqa: PLC0415

    if not subject_id:
        return ""
    return subject_id if is_valid_uscc(subject_id) else mask_resident_id(subject_id) or ""


keys_app = typer.Typer(help="API keys of the service: create, list, revoke.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="underwriter, regulator, analyst, subject or admin.")],
    institution: Annotated[
        str | None, typer.Option(help="The holder's institution (default: $WZCREDIT_INSTITUTION).")
    ] = None,
    subject_id: Annotated[
        str | None, typer.Option("--subject-id", help="A subject key's own USCC or resident ID.")
    ] = None,
    label: Annotated[str, typer.Option(help="A note shown in listings.")] = "",
    workdir: WorkdirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Create an API key and print it once (only its SHA-256 is stored)."""
    from api.services.keys import create_key  # noqa: PLC0415

    settings = service_settings(workdir, database_url=database_url)

    def action() -> Any:
        with _database(settings) as database:
            return create_key(
                database, role, institution or settings.institution, subject_id=subject_id,
                label=label,
            )  # fmt: skip

    created = _run(action)
    bound = f", bound to {_shown_subject(subject_id.strip().upper())}" if subject_id else ""
    err.print(
        f"[green]created[/] {created.role} key [bold]{created.prefix}[/] for "
        f"{created.institution}{bound}; it is shown once, store it now:",
        highlight=False,
    )
    sys.stdout.write(created.key + "\n")


@keys_app.command("list")
def keys_list(workdir: WorkdirOption = None, database_url: DatabaseOption = None) -> None:
    """Every key: prefix, role, institution, subject (resident IDs masked), created, revoked."""
    from sqlalchemy import select  # noqa: PLC0415

    from api.db.tables import ApiKey  # noqa: PLC0415

    settings = service_settings(workdir, database_url=database_url)
    with _database(settings) as database, database.session() as session:
        rows = session.scalars(select(ApiKey).order_by(ApiKey.id)).all()
    table = Table(title=f"API keys ({len(rows)})")
    for column in ("prefix", "role", "institution", "subject", "label", "created", "revoked"):
        table.add_column(column)
    for key in rows:
        table.add_row(
            key.prefix, key.role, key.institution, _shown_subject(key.subject_id), key.label,
            f"{key.created_at:%Y-%m-%d %H:%M}",
            f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "",
        )  # fmt: skip
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    prefix: Annotated[str, typer.Argument(help="The key's prefix (wzc_<prefix>_…).")],
    workdir: WorkdirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Revoke a key; a running service refuses it within 10 s (its key cache)."""
    from api.services.keys import revoke_key  # noqa: PLC0415

    settings = service_settings(workdir, database_url=database_url)

    def action() -> None:
        with _database(settings) as database:
            revoke_key(database, prefix)

    _run(action)
    err.print(f"[green]revoked[/] key {prefix}")


db_app = typer.Typer(
    help="The service database (Alembic migrations): upgrade, downgrade, current.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")


def _migrate(
    settings: Settings, step: Callable[[Any, str], None], revision: str, verb: str
) -> None:
    from api.db.migrate import current_revision, head_revision  # noqa: PLC0415
    from api.db.session import Database  # noqa: PLC0415

    database = Database(settings.database_url)
    try:
        step(database.engine, revision)
        now = current_revision(database.engine)
        where = database.engine.url.render_as_string(hide_password=True)
    finally:
        database.dispose()
    err.print(f"[green]{verb}[/] {where}: at revision {now or 'base (empty)'}, "
              f"head {head_revision()}", highlight=False, soft_wrap=True)  # fmt: skip


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    workdir: WorkdirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Migrate the service database up to REVISION (the latest by default)."""
    from api.db.migrate import upgrade  # noqa: PLC0415

    settings = service_settings(workdir, database_url=database_url)
    _migrate(settings, upgrade, revision, "upgraded")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[
        str, typer.Argument(help="Target revision: -1 one step back, base removes every table.")
    ] = "-1",
    workdir: WorkdirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Migrate the service database down to REVISION (one step back by default)."""
    from api.db.migrate import downgrade  # noqa: PLC0415

    settings = service_settings(workdir, database_url=database_url)
    _migrate(settings, downgrade, revision, "downgraded")


@db_app.command("current")
def db_current(workdir: WorkdirOption = None, database_url: DatabaseOption = None) -> None:
    """The revision the service database is at, and the latest one shipped."""
    from api.db.migrate import current_revision, head_revision  # noqa: PLC0415
    from api.db.session import Database  # noqa: PLC0415

    settings = service_settings(workdir, database_url=database_url)
    database = Database(settings.database_url)
    try:
        now = current_revision(database.engine)
    finally:
        database.dispose()
    head = head_revision()
    state = "up to date" if now == head else "behind: run wzcredit db upgrade"
    sys.stdout.write(f"{now or 'base'} (head {head}: {state})\n")


# --------------------------------------------------------------------------------------------
# The demo's service step: a key per role, a consent, curl examples


@dataclass(frozen=True)
class DemoKey:
    """A demo key and what it may see, in words (keys and USCCs only, never an ID)."""

    role: str
    key: str
    sees: str


@dataclass(frozen=True)
class DemoService:
    """What the demo's service step prepared: its keys and the entities of the examples."""

    keys: dict[str, DemoKey]
    enterprise: str
    business: str
    #: a file holding the business operator's resident ID (the examples read it, never print it)
    operator_file: Path
    #: the enterprise's district (a filter of the supervision list example)
    district: str


def _demo_entities(settings: Settings) -> tuple[Any, Any]:
    """A scored enterprise and a scored 个体工商户 with reasons (first in USCC order)."""
    from api.services.directory import load_directory  # noqa: PLC0415
    from scoring.batch import SnapshotStore  # noqa: PLC0415

    _, scores = SnapshotStore(settings.scores).read()
    columns = scores.select(["uscc", "reason_1_code"]).to_pydict()
    with_reasons = [u for u, r in zip(columns["uscc"], columns["reason_1_code"], strict=True) if r]
    scored = sorted(with_reasons or columns["uscc"])
    directory = load_directory(settings.warehouse)
    found: dict[bool, Any] = {}
    for uscc in scored:
        facts = directory.entities.get(uscc)
        if facts is not None:
            found.setdefault(facts.natural_person, facts)
        if len(found) == 2:
            return found[False], found[True]
    raise ServiceError(
        "warehouse", "entities", "the demo needs a scored enterprise and a scored 个体工商户"
    )


def prepare_demo_service(settings: Settings, workdir: Path) -> DemoService:
    """Migrate the demo database, create a key per role and a consent for the examples.

    The previous demo's keys are revoked. The subject keys belong to a real enterprise and
    to the operator of a real 个体工商户 of the demo warehouse; the underwriter gets that
    operator's consent for loan approval (a year from today), so every example works.
    """
    from sqlalchemy import select, update  # noqa: PLC0415

    from api.db.tables import ApiKey, Consent  # noqa: PLC0415
    from api.security import subject_ref  # noqa: PLC0415
    from api.services.consent import Purpose  # noqa: PLC0415
    from api.services.keys import create_key  # noqa: PLC0415

    enterprise, business = _demo_entities(settings)
    operator_file = workdir / "demo_operator_id.txt"
    operator_file.write_text(business.legal_rep_id + "\n", encoding="utf-8")
    operator_file.chmod(0o600)
    wanted = {
        "underwriter": ("underwriter", None, f"any entity with a purpose; {settings.institution}"),
        "regulator": ("regulator", None, "supervision classes and lists, no PBOC detail"),
        "analyst": ("analyst", None, "scores and supervision lists, masked"),
        "admin": ("admin", None, "objections, repairs, the query log"),
        "enterprise": ("subject", enterprise.uscc, f"enterprise {enterprise.uscc} only"),
        "person": ("subject", business.legal_rep_id, f"the operator of {business.uscc} only"),
    }
    today = dt.date.today()
    with _database(settings) as database:
        with database.session() as session:
            session.execute(
                update(ApiKey)
                .where(ApiKey.label == DEMO_KEY_LABEL, ApiKey.revoked_at.is_(None))
                .values(revoked_at=dt.datetime.now(dt.UTC))
            )
        keys: dict[str, DemoKey] = {}
        prefixes: dict[str, str] = {}
        for name, (role, subject, sees) in wanted.items():
            created = create_key(
                database, role, settings.institution, subject_id=subject, label=DEMO_KEY_LABEL
            )
            keys[name] = DemoKey(role, created.key, sees)
            prefixes[name] = created.prefix
        with database.session() as session:
            underwriter = session.scalar(
                select(ApiKey.id).where(ApiKey.prefix == prefixes["underwriter"])
            )
            session.add(
                Consent(
                    subject_ref=subject_ref(settings.secret, business.legal_rep_id),
                    institution=settings.institution,
                    purpose=Purpose.LOAN_APPROVAL.value,
                    valid_from=today,
                    valid_to=today + dt.timedelta(days=365),
                    evidence="demo 授权书",
                    recorded_by=underwriter,
                )
            )
    return DemoService(keys, enterprise.uscc, business.uscc, operator_file, enterprise.district)


def demo_examples(demo: DemoService, base: str) -> list[tuple[str, str]]:
    """Ready-to-paste ``curl`` examples of the demo service: (what it shows, command)."""
    keys = demo.keys

    def curl(key: str, path: str, *extra: str) -> str:
        return " ".join(
            ["curl -s", f'-H "Authorization: Bearer {keys[key].key}"', *extra, f'"{base}{path}"']
        )

    operator = f"$(cat {demo.operator_file})"
    preapproval = f"""-H "Content-Type: application/json" -d '{{"uscc": "{demo.business}"}}'"""
    return [
        ("an enterprise's score with reasons (underwriter, loan approval)",
         curl("underwriter", f"/v1/entities/{demo.enterprise}/score?purpose=loan_approval")),
        (f"a person's businesses and scores (the operator of {demo.business}; consent recorded)",
         curl("underwriter", f"/v1/persons/{operator}/scores?purpose=loan_approval")),
        ("the same person with their own subject key",
         curl("person", f"/v1/persons/{operator}/scores")),
        (f"信易贷 pre-approval of the 个体工商户 {demo.business} (double query; consent recorded)",
         curl("underwriter", "/v1/preapprovals", preapproval)),
        (f"the supervision list of district {demo.district}, first page of 5 (regulator)",
         curl("regulator", f"/v1/supervision?district={demo.district}&size=5")),
        ("readiness: database, model, snapshot", f"curl -s {base}/ready"),
    ]  # fmt: skip


def print_demo_service(demo: DemoService, base: str) -> None:
    """The demo keys and the curl examples, on stdout without wrapping (to copy and paste)."""
    lines = ["", "Demo API keys (shown once; only their hashes are stored):"]
    lines += [f"  {name:<12} {k.key}   {k.role}: {k.sees}" for name, k in demo.keys.items()]
    lines += ["", "Try:"]
    for what, command in demo_examples(demo, base):
        lines += [f"  # {what}", f"  {command}"]
    lines += ["", f"API docs: {base}/docs",
              f"web console: {base}/console (sign in with a key above)", ""]  # fmt: skip
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Folder for the demo's data and outputs.")] = Path(
        "demo"
    ),
    entities: Annotated[int, typer.Option(help="Market entities to generate.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    tracking_uri: TrackingOption = "sqlite:///mlruns/mlflow.db",
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Stop after scoring; do not start the service.")
    ] = False,
    port: Annotated[int, typer.Option(help="Port of the demo service (on 127.0.0.1).")] = (
        SERVE_PORT
    ),
) -> None:
    """The main job on embedded defaults: generate, ingest, quality, view, train, score,
    monitor, the model validation and annual reports, and the service running on 127.0.0.1
    with a demo key per role (until Ctrl-C)."""
    delivery = workdir / "delivery"
    warehouse = workdir / "warehouse.duckdb"
    err.rule("1/8 generate synthetic Wenzhou deliveries")
    _generate(delivery, entities, seed, "2015-01", "2020-12", 0.01, "parquet")
    err.rule("2/8 ingest into the warehouse")
    ingest(delivery, warehouse=warehouse, delivery_id=None, delivered_on=None, as_json=False)
    err.rule("3/8 data quality")
    quality(
        warehouse=warehouse,
        delivery_id=None,
        output=workdir / "reports" / "quality.json",
        as_json=False,
    )
    err.rule("4/8 the three-in-one view (三位一体) as of the end of the data")
    features(as_of=DEMO_AS_OF, engine="duckdb", warehouse=warehouse, out=workdir / "features")
    err.rule("5/8 train champion and challenger, register them in MLflow")
    from models.evaluation import TRUTH_FOLDER  # noqa: PLC0415 - the oracle AUC only

    train(
        warehouse=warehouse,
        truth=delivery / TRUTH_FOLDER,
        table=None,
        target=None,
        bad=None,
        special_codes=None,
        data_end=DEMO_AS_OF,
        tracking_uri=tracking_uri,
        as_json=False,
    )
    err.rule("6/8 score every entity: grades, supervision classes, 信易贷, reasons")
    score(
        warehouse=warehouse,
        as_of=DEMO_AS_OF,
        view=workdir / "features" / f"three_in_one_view_{DEMO_AS_OF}.parquet",
        engine="duckdb",
        out=workdir / "scores",
        model="champion",
        reasons=True,
        tracking_uri=tracking_uri,
        as_json=False,
    )
    err.rule("7/8 monitoring (分析预警) and the reports: model validation, 年度运行分析报告")
    reports = workdir / "reports"
    monitoring = reports / f"monitoring_{DEMO_AS_OF}.json"
    monitor_command(as_of=DEMO_AS_OF, warehouse=warehouse, model="champion", previous=None,
                    out=monitoring, fail_on="none", tracking_uri=tracking_uri,
                    as_json=False)  # fmt: skip
    report_model(warehouse=warehouse, truth=delivery / TRUTH_FOLDER, monitoring=monitoring,
                 monitor_as_of=None, out=reports / "model_validation.html", pdf=True,
                 tracking_uri=tracking_uri)  # fmt: skip
    year = dt.date.fromisoformat(DEMO_AS_OF).year
    report_annual(year=year, workdir=workdir, warehouse=warehouse, scores=workdir / "scores",
                  database_url=None, out=None, pdf=True, tracking_uri=tracking_uri)  # fmt: skip
    err.print(
        f"[green]demo done[/]: warehouse {warehouse}, view in {workdir / 'features'}, "
        f"scores in {workdir / 'scores'}, reports in {reports}: model_validation.html/.pdf, "
        f"annual_{year}.html/.pdf, {monitoring.name}"
    )
    if no_serve:
        return
    base = f"http://{SERVE_HOST}:{port}"
    err.rule(f"8/8 the service on {base}: a demo key per role (Ctrl-C stops it)")
    settings = service_settings(workdir, tracking_uri=tracking_uri)
    service = _run(lambda: prepare_demo_service(settings, workdir))
    print_demo_service(service, base)
    run_service(settings, SERVE_HOST, port)


def pct(value: float | None) -> str:
    """A share as a percentage, or a dash when it does not apply."""
    return "—" if value is None else f"{value:.1%}"


def _parse_date(name: str, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        err.print(f"[bold red]error[/] {name}: type: {value!r} is not a date YYYY-MM-DD")
        raise typer.Exit(2) from None


# the analyst's commands live in their own module (monitor, report model|annual)
from wzcredit.analyst import monitor_command, report_annual, report_app, report_model  # noqa: E402

app.command("monitor")(monitor_command)
app.add_typer(report_app, name="report")

if __name__ == "__main__":  # pragma: no cover
    app()
