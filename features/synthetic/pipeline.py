"""Run the generator: build every table in dependency order and write the delivery."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from features.synthetic import (
    government,
    listings,
    pboc,
    pboc_monthly,
    pboc_relations,
    reference,
    remedies,
)
from features.synthetic.config import GeneratorConfig
from features.synthetic.faults import FaultInjector
from features.synthetic.latent import simulate
from features.synthetic.private_lending import build_private_loans
from features.synthetic.registry import build_registry
from features.synthetic.schema import arrow_schema, catalog
from features.synthetic.timeline import Timeline, WorkingDays
from features.synthetic.world import World
from features.synthetic.writer import Progress, TableWriter, checksums, write_json

logger = logging.getLogger(__name__)

TRUTH_FILE = Path("truth") / "default_probability.parquet"


@dataclass(frozen=True)
class GenerationResult:
    """What `generate` wrote.

    Attributes
    ----------
    out
        The delivery folder.
    row_counts
        Rows written per table (faulty rows included).
    fault_count
        Number of injected faults listed in the manifest.
    manifest_path
        ``out/manifest.json``.
    """

    out: Path
    row_counts: dict[str, int]
    fault_count: int
    manifest_path: Path


class _Sink:
    """Writes tables (through the fault injector) and reports progress."""

    def __init__(
        self, out: Path, config: GeneratorConfig, faults: FaultInjector, progress: Progress | None
    ) -> None:
        self.out = out
        self.config = config
        self.faults = faults
        self.progress = progress
        self.row_counts: dict[str, int] = {}

    def write(self, table: str, batches: Iterable[pa.Table], total: int) -> None:
        started = time.perf_counter()
        path = self.out / f"{table}.{self.config.file_format}"
        done = 0
        if self.progress:
            self.progress(table, 0, total)
        with TableWriter(path, arrow_schema(table), self.config.file_format) as writer:
            for batch in batches:
                clean_rows = batch.num_rows
                writer.write(self.faults.apply(table, batch, writer.rows))
                done += clean_rows
                if self.progress:
                    self.progress(table, min(done, total), total)
            self.row_counts[table] = writer.rows
        logger.info("%s: %d rows in %.1f s", table, writer.rows, time.perf_counter() - started)

    def table(self, name: str, table: pa.Table) -> None:
        self.write(name, [table], table.num_rows)


def _clear(out: Path) -> None:
    """Remove files a previous run left that would confuse ingest (other format, manifests)."""
    for table in catalog().tables:
        for suffix in (".parquet", ".csv"):
            (out / f"{table}{suffix}").unlink(missing_ok=True)
    for name in ("delivery.json", "manifest.json", TRUTH_FILE.as_posix()):
        (out / name).unlink(missing_ok=True)


def build_world(config: GeneratorConfig) -> World:
    """Registry, grid and latent paths of a run."""
    registry = build_registry(config)
    timeline = Timeline.from_config(config)
    latent = simulate(registry, timeline, config.seed, distress_shift=config.distress_shift)
    first_year = int(str(timeline.month(0))[:4])
    working_days = WorkingDays(first_year, config.delivery_date.year + 1)
    return World(config, timeline, registry, latent, working_days)


def generate(
    config: GeneratorConfig, out: Path, progress: Progress | None = None
) -> GenerationResult:
    """Generate a synthetic Wenzhou delivery into ``out`` (see ``features.synthetic``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _clear(out)
    started = time.perf_counter()
    world = build_world(config)
    logger.info("registry and latent paths: %.1f s", time.perf_counter() - started)
    faults = FaultInjector(world)
    sink = _Sink(out, config, faults, progress)

    sink.table("persons", world.registry.persons_table())
    sink.table("entities", world.registry.entities_table())

    accounts = pboc.build_accounts(world)
    sink.table("pboc_accounts", pboc.accounts_table(world, accounts))
    post_loan = pboc_monthly.PostLoanInquiries([], [], [])
    _, counts = pboc_monthly.row_counts(world, accounts)
    sink.write(
        "pboc_monthly", pboc_monthly.monthly_batches(world, accounts, post_loan), int(counts.sum())
    )
    guarantees, guarantor, guarantee_start = pboc_relations.build_guarantees(world, accounts)
    sink.table("pboc_guarantees", guarantees)
    sink.table(
        "pboc_inquiries",
        pboc_relations.build_inquiries(world, accounts, post_loan, guarantor, guarantee_start),
    )

    index_table, composite = reference.wenzhou_index(world)
    loans, private_shows, loan_entity = build_private_loans(world, composite)
    sink.table("private_loans", loans)
    sink.table("wenzhou_index", index_table)
    sink.table("lpr", reference.lpr_table(world))

    shown = pboc.pboc_shows_default(world, accounts) | private_shows
    # objections and repairs point at the clean records (faults go only into the files)
    records = remedies.Records()
    records.add("private_loans", loans, loan_entity)
    debtors, debtor_entity = listings.build_dishonest_debtors(world, shown)
    sink.table("dishonest_debtors", records.add("dishonest_debtors", debtors, debtor_entity))
    abnormal, abnormal_entity, stuck_entity, stuck_day = listings.build_abnormal_operations(world)
    sink.table("abnormal_operations", records.add("abnormal_operations", abnormal, abnormal_entity))
    serious, serious_entity = listings.build_serious_dishonesty(world, stuck_entity, stuck_day)
    sink.table("serious_dishonesty", records.add("serious_dishonesty", serious, serious_entity))
    tax, a_entity, a_year = government.build_tax_credit(world)
    sink.table("tax_credit", tax)
    sink.table("red_list", listings.build_red_list(world, a_entity, a_year))
    sink.table("admin_licenses", government.build_licenses(world))
    penalties, penalty_entity = government.build_penalties(world)
    sink.table("admin_penalties", records.add("admin_penalties", penalties, penalty_entity))
    sink.table("social_insurance_arrears", government.build_arrears(world))
    commitments, commitment_entity = government.build_commitments(world)
    sink.table(
        "credit_commitments", records.add("credit_commitments", commitments, commitment_entity)
    )
    objections = remedies.build_objections(world, records)
    sink.table("credit_objections", objections)
    sink.table("credit_repairs", remedies.build_repairs(world, records, objections))

    _write_truth(world, out / TRUTH_FILE, progress)
    write_json(
        out / "delivery.json",
        {"delivery_id": config.delivery_id, "delivered_on": config.delivery_date.isoformat()},
    )
    manifest_path = out / "manifest.json"
    write_json(
        manifest_path,
        {
            "generator": "features.synthetic",
            "catalog_version": catalog().version,
            "parameters": _parameters(config),
            "row_counts": dict(sorted(sink.row_counts.items())),
            "fault_count": len(faults.records),
            "faults": faults.records,
            "sha256": checksums(out),
        },
    )
    logger.info(
        "generated %d rows with %d faults in %.1f s",
        sum(sink.row_counts.values()),
        len(faults.records),
        time.perf_counter() - started,
    )
    return GenerationResult(out, dict(sink.row_counts), len(faults.records), manifest_path)


def _parameters(config: GeneratorConfig) -> dict[str, object]:
    return {
        "entities": config.entities,
        "seed": config.seed,
        "start": config.start,
        "end": config.end,
        "fault_rate": config.fault_rate,
        "file_format": config.file_format,
        "delivered_on": config.delivery_date.isoformat(),
        "delivery_id": config.delivery_id,
        "distress_shift": config.distress_shift,
    }


def _write_truth(world: World, path: Path, progress: Progress | None) -> None:
    """``truth/default_probability.parquet``: for evaluation only, never for features."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tl = world.timeline
    schema = pa.schema(
        [("uscc", pa.string()), ("month", pa.string()), ("default_probability", pa.float32())]
    )
    months = tl.j_end - tl.j_start + 1
    with pq.ParquetWriter(
        path, schema, compression="zstd", use_dictionary=True, version="2.6"
    ) as writer:
        for k, batch in enumerate(world.latent.truth_batches(world.uscc, world.labels)):
            writer.write_table(pa.Table.from_batches([batch], schema=schema))
            if progress:
                progress("truth", k + 1, months)
