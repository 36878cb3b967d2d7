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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from features.errors import FeatureError
from models.errors import ModelError
from scoring.errors import ScoringError

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


def _run(action: Callable[[], T]) -> T:
    """Run a command body, turning domain errors into a clear message and exit code 2."""
    try:
        return action()
    except (FeatureError, ModelError, ScoringError) as exc:
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
) -> None:
    """Generate synthetic Wenzhou deliveries of all three sources, with faults and truth."""
    result = _generate(out, entities, seed, start, end, fault_rate, file_format)
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


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Folder for the demo's data and outputs.")] = Path(
        "demo"
    ),
    entities: Annotated[int, typer.Option(help="Market entities to generate.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    tracking_uri: TrackingOption = "sqlite:///mlruns/mlflow.db",
) -> None:
    """The main job on embedded defaults: generate, ingest, quality, view, train, score."""
    delivery = workdir / "delivery"
    warehouse = workdir / "warehouse.duckdb"
    err.rule("1/6 generate synthetic Wenzhou deliveries")
    _generate(delivery, entities, seed, "2015-01", "2020-12", 0.01, "parquet")
    err.rule("2/6 ingest into the warehouse")
    ingest(delivery, warehouse=warehouse, delivery_id=None, delivered_on=None, as_json=False)
    err.rule("3/6 data quality")
    quality(
        warehouse=warehouse,
        delivery_id=None,
        output=workdir / "reports" / "quality.json",
        as_json=False,
    )
    err.rule("4/6 the three-in-one view (三位一体) as of the end of the data")
    features(as_of=DEMO_AS_OF, engine="duckdb", warehouse=warehouse, out=workdir / "features")
    err.rule("5/6 train champion and challenger, register them in MLflow")
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
    err.rule("6/6 score every entity: grades, supervision classes, 信易贷, reasons")
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
    err.print(
        f"[green]demo done[/]: warehouse {warehouse}, view in {workdir / 'features'}, "
        f"scores in {workdir / 'scores'}, reports in {workdir / 'reports'}"
    )


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


if __name__ == "__main__":  # pragma: no cover
    app()
