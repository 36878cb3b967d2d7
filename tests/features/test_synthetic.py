"""The synthetic Wenzhou generator: schema, shape, codes, defaults, truth, faults, determinism."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from features.catalog import load_catalog
from features.identifiers import resident_id_errors, uscc_errors
from features.synthetic import GenerationResult, GeneratorConfig, generate
from features.synthetic import latent as latent_module
from features.synthetic.errors import GeneratorConfigError
from features.synthetic.latent import DEFAULTED
from features.synthetic.pipeline import build_world
from features.synthetic.reference import LPR_PUBLISHED, legal_cap
from features.synthetic.timeline import WorkingDays

ENTITIES = 4_000
SEED = 11
CATALOG = load_catalog()
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def delivery(tmp_path_factory: pytest.TempPathFactory) -> GenerationResult:
    out = tmp_path_factory.mktemp("synthetic")
    return generate(GeneratorConfig(entities=ENTITIES, seed=SEED), out)


@pytest.fixture(scope="module")
def manifest(delivery: GenerationResult) -> dict[str, Any]:
    content: dict[str, Any] = json.loads(delivery.manifest_path.read_text(encoding="utf-8"))
    return content


@pytest.fixture(scope="module")
def tables(delivery: GenerationResult) -> dict[str, pa.Table]:
    return {t: pq.read_table(delivery.out / f"{t}.parquet") for t in CATALOG.tables}


@pytest.fixture(scope="module")
def clean(tables: dict[str, pa.Table], manifest: dict[str, Any]) -> dict[str, pa.Table]:
    """Every table without the rows listed in the manifest."""
    faulted: dict[str, set[int]] = {}
    for fault in manifest["faults"]:
        faulted.setdefault(fault["table"], set()).add(fault["row"] - 1)
    out = {}
    for name, table in tables.items():
        keep = np.ones(table.num_rows, dtype=bool)
        keep[list(faulted.get(name, ()))] = False
        out[name] = table.filter(pa.array(keep))
    return out


@pytest.fixture(scope="module")
def con(
    clean: dict[str, pa.Table], delivery: GenerationResult
) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    for name, table in clean.items():
        connection.register(name, table)
    truth = pq.read_table(delivery.out / "truth" / "default_probability.parquet")
    connection.register("truth", truth)
    yield connection
    connection.close()


def _delivered(delivery: GenerationResult) -> dt.date:
    meta = json.loads((delivery.out / "delivery.json").read_text(encoding="utf-8"))
    return dt.date.fromisoformat(meta["delivered_on"])


# ------------------------------------------------------------------------------ layout
def test_writes_every_catalog_table_with_exactly_its_columns(delivery: GenerationResult) -> None:
    for item in CATALOG.items:
        schema = pq.read_schema(delivery.out / f"{item.table}.parquet")
        assert tuple(schema.names) == item.column_names, item.table
    meta = json.loads((delivery.out / "delivery.json").read_text(encoding="utf-8"))
    assert meta == {
        "delivery_id": f"synthetic-{SEED}-{ENTITIES}-2015-01-2020-12",
        "delivered_on": "2021-02-01",
    }


def test_manifest_counts_and_checksums(
    delivery: GenerationResult, manifest: dict[str, Any]
) -> None:
    assert manifest["row_counts"] == delivery.row_counts
    assert manifest["fault_count"] == delivery.fault_count == len(manifest["faults"])
    assert set(manifest["sha256"]) >= {f"{t}.parquet" for t in CATALOG.tables} | {
        "delivery.json",
        "truth/default_probability.parquet",
    }
    total = sum(n for t, n in delivery.row_counts.items() if t not in ("wenzhou_index", "lpr"))
    assert 0.006 < delivery.fault_count / total < 0.014


# ------------------------------------------------------------------------- validity
def _identifier_errors(column: pa.ChunkedArray) -> list[str]:
    values = column.combine_chunks()
    is_uscc = pc.starts_with(values, "9")
    errors = pc.if_else(is_uscc, uscc_errors(values), resident_id_errors(values))
    return [e for e in errors.to_pylist() if e is not None]


def test_identifiers_are_valid_except_faulted_rows(clean: dict[str, pa.Table]) -> None:
    for item in CATALOG.items:
        for name, spec in item.columns.items():
            if spec.type in ("uscc", "resident_id", "subject_id"):
                assert _identifier_errors(clean[item.table].column(name)) == [], (item.table, name)


def test_clean_values_satisfy_the_catalog(
    clean: dict[str, pa.Table], delivery: GenerationResult
) -> None:
    delivered = _delivered(delivery)
    for item in CATALOG.items:
        table = clean[item.table]
        for name, spec in item.columns.items():
            column = table.column(name)
            where = (item.table, name)
            if spec.required:
                assert column.null_count == 0, where
            if spec.codes is not None:
                assert set(pc.unique(column).drop_null().to_pylist()) <= set(spec.codes), where
            if spec.min is not None and len(column.drop_null()):
                assert pc.min(column).as_py() >= spec.min, where
            if spec.max is not None and len(column.drop_null()):
                assert pc.max(column).as_py() <= spec.max, where
            if spec.type == "date" and len(column.drop_null()):
                assert pc.min(column).as_py() >= CATALOG.min_date, where
                if not spec.allow_future:
                    assert pc.max(column).as_py() <= delivered, where
            if spec.type == "month":
                assert all(re.fullmatch(r"\d{4}-\d{2}", m) for m in pc.unique(column).to_pylist())
            if spec.max_length is not None:
                assert (pc.max(pc.utf8_length(column)).as_py() or 0) <= spec.max_length, where
        for rule in item.rules:
            if rule.rule == "date_order":
                a, b = (table.column(c) for c in rule.columns)
                assert not pc.any(pc.less(b, a)).as_py(), (item.table, rule.columns)
        keys = table.select(list(item.key)).group_by(list(item.key)).aggregate([])
        assert keys.num_rows == table.num_rows, (item.table, "key not unique")


def test_persons_birth_dates_match_their_ids(clean: dict[str, pa.Table]) -> None:
    persons = clean["persons"]
    ids = persons.column("resident_id").to_pylist()
    births = persons.column("birth_date").to_pylist()
    assert all(i[6:14] == b.strftime("%Y%m%d") for i, b in zip(ids, births, strict=True))
    assert min(births) >= dt.date(1950, 1, 1)
    assert max(births) <= dt.date(2002, 12, 31)
    male = np.array([int(i[16]) % 2 for i in ids])
    assert 0.4 < male.mean() < 0.6
    legal_reps = set(clean["entities"].column("legal_rep_id").to_pylist())
    assert legal_reps <= set(ids)


# -------------------------------------------------------------------------- shape
def test_entity_type_shares_and_all_twelve_districts(clean: dict[str, pa.Table]) -> None:
    entities = clean["entities"]
    types = entities.column("entity_type").to_numpy(zero_copy_only=False)
    assert abs((types == "企业").mean() - 0.27) < 0.03
    assert abs((types == "个体工商户").mean() - 0.72) < 0.03
    assert 0.002 < (types == "农民专业合作社").mean() < 0.025
    districts = set(entities.column("district").to_pylist())
    assert districts == {
        "330302", "330303", "330304", "330305", "330324", "330326",
        "330327", "330328", "330329", "330381", "330382", "330383",
    }  # fmt: skip
    industries = entities.column("industry").to_numpy(zero_copy_only=False)
    assert {"C", "F"} <= set(industries)
    assert (industries[types == "个体工商户"] == "F").mean() > 0.3


def test_uscc_area_is_the_code_in_force_at_registration(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        """SELECT district, substr(uscc, 3, 6) AS area, registered_on, town FROM entities
           WHERE district IN ('330383', '330305')"""
    ).fetchall()
    for district, area, registered, town in rows:
        if district == "330383":
            assert town == "龙港镇"
            assert area == ("330327" if registered < dt.date(2019, 8, 16) else "330383")
        elif registered < dt.date(2015, 7, 23):
            assert area == ("330303" if town == "灵昆街道" else "330322")
        else:
            assert area == "330305"
    assert any(a == "330327" for d, a, _, _ in rows if d == "330383")


def _entity_of_subject(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """CREATE OR REPLACE TEMP VIEW subject AS
           SELECT uscc AS sid, uscc FROM entities
           UNION ALL SELECT legal_rep_id, uscc FROM entities"""
    )


def test_pboc_coverage_is_thin_and_lower_for_individual_businesses(
    con: duckdb.DuckDBPyConnection,
) -> None:
    _entity_of_subject(con)
    coverage = dict(
        con.execute(
            """SELECT e.entity_type, avg((c.uscc IS NOT NULL)::INT) FROM entities e LEFT JOIN (
                 SELECT DISTINCT s.uscc FROM pboc_accounts a JOIN subject s ON s.sid = a.borrower_id
               ) c USING (uscc) GROUP BY 1"""
        ).fetchall()
    )
    overall = con.execute(
        """SELECT avg((uscc IN (SELECT s.uscc FROM pboc_accounts a
                                JOIN subject s ON s.sid = a.borrower_id))::INT) FROM entities"""
    ).fetchall()[0][0]
    assert overall < 0.4
    assert coverage["个体工商户"] < coverage["企业"]
    assert coverage["企业"] > 0.5


def test_some_entities_appear_only_in_private_lending(con: duckdb.DuckDBPyConnection) -> None:
    _entity_of_subject(con)
    government = " UNION ".join(
        f"SELECT uscc FROM {t}"
        for t in ("admin_licenses", "admin_penalties", "tax_credit", "social_insurance_arrears",
                  "abnormal_operations", "credit_commitments", "red_list")
    )  # fmt: skip
    in_pboc = """SELECT s.uscc FROM pboc_accounts a JOIN subject s ON s.sid = a.borrower_id
                 UNION SELECT s.uscc FROM pboc_inquiries q JOIN subject s ON s.sid = q.subject_id"""
    only_private = con.execute(
        f"""SELECT count(DISTINCT s.uscc)
            FROM private_loans p JOIN subject s ON s.sid = p.borrower_id
            WHERE s.uscc NOT IN ({in_pboc}) AND s.uscc NOT IN ({government})"""
    ).fetchall()[0][0]
    assert only_private > 0


def test_private_loans_rates_caps_and_registration(clean: dict[str, pa.Table]) -> None:
    loans = clean["private_loans"]
    contract = loans.column("contract_on").to_numpy().astype("datetime64[D]")
    registered = loans.column("registered_on").to_numpy().astype("datetime64[D]")
    assert ((registered - contract).astype(int) <= 15).mean() > 0.85
    assert (loans.column("annual_rate").to_numpy() > legal_cap(contract)).any()
    assert set(loans.column("status").to_pylist()) >= {"正常", "结清", "违约"}


def test_reference_tables(clean: dict[str, pa.Table]) -> None:
    lpr = clean["lpr"].to_pylist()
    assert [(r["published_on"], r["one_year_rate"], r["five_year_rate"]) for r in lpr] == list(
        LPR_PUBLISHED
    )
    index = clean["wenzhou_index"].to_pandas()
    assert len(index) == 72
    first_year = index[index["month"].str.startswith("2015")]["composite_rate"]
    assert 15 <= first_year.mean() <= 20
    assert index["composite_rate"].iloc[-1] < index["composite_rate"].iloc[0]


# ------------------------------------------------------------ objections and repairs
_RECORDS = """
    SELECT 'admin_penalties' AS t, case_no AS id, uscc AS sid, published_on AS known,
           publicity_end_on AS until, NULL AS state FROM admin_penalties
    UNION ALL SELECT 'serious_dishonesty', list_id, subject_id, listed_on, removed_on, NULL
      FROM serious_dishonesty
    UNION ALL SELECT 'dishonest_debtors', case_no, subject_id, listed_on, removed_on, NULL
      FROM dishonest_debtors
    UNION ALL SELECT 'abnormal_operations', record_id, uscc, listed_on, removed_on, NULL
      FROM abnormal_operations
    UNION ALL SELECT 'credit_commitments', commitment_id, uscc, due_on, NULL, fulfilled
      FROM credit_commitments
    UNION ALL SELECT 'private_loans', loan_id, borrower_id, registered_on, NULL, status
      FROM private_loans
"""


def _working_days_after(start: list[dt.date], end: list[dt.date]) -> np.ndarray:
    """Working days after each start up to and including each end."""
    days = WorkingDays(2014, 2022).days
    a = np.searchsorted(days, np.array(start, dtype="datetime64[D]"), side="right")
    b = np.searchsorted(days, np.array(end, dtype="datetime64[D]"), side="right")
    return b - a


def test_objections_refer_to_known_records_and_are_settled_in_time(
    con: duckdb.DuckDBPyConnection, delivery: GenerationResult
) -> None:
    delivered = _delivered(delivery)
    rows = con.execute(
        f"""SELECT o.record_table, o.subject_id, r.sid, o.raised_on, r.known, r.until, r.state,
                   o.resolved_on, o.outcome, r.id IS NOT NULL
            FROM credit_objections o LEFT JOIN ({_RECORDS}) r
              ON r.t = o.record_table AND r.id = o.record_id"""
    ).fetchall()
    assert len(rows) > 50
    found = [r for r in rows if r[9]]
    assert len(found) > 0.95 * len(rows)  # the others point at a faulted record row
    assert {r[0] for r in rows} >= {
        "admin_penalties", "serious_dishonesty", "dishonest_debtors", "abnormal_operations",
    }  # fmt: skip
    for table, subject, record_subject, raised, known, until, state, _, outcome, _ in found:
        assert subject == record_subject, table
        assert known < raised < delivered, table
        assert until is None or raised < until, table
        if table == "credit_commitments":
            assert state == "未履行"
        if table == "dishonest_debtors" or state == "违约":  # defaults stay visible
            assert outcome in (None, "维持", "标注")
    records = sum(
        con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
        for t in ("admin_penalties", "serious_dishonesty", "dishonest_debtors",
                  "abnormal_operations", "credit_commitments", "private_loans")
    )  # fmt: skip
    assert 0.01 < len(rows) / records < 0.08

    settled = [r for r in rows if r[7] is not None]
    assert all(r[8] is not None for r in settled)
    waited = _working_days_after([r[3] for r in settled], [r[7] for r in settled])
    assert waited.min() >= 1
    assert waited.max() <= 20
    assert (waited <= 5).mean() > 0.6
    for _, _, _, raised, _, _, _, resolved, outcome, _ in rows:
        if resolved is None:  # still open at delivery: raised in its last 20 working days
            assert outcome is None
            assert raised > delivered - dt.timedelta(days=35)
    outcomes = [r[8] for r in settled]
    assert outcomes.count("维持") > 0.5 * len(outcomes)
    assert {"更正", "删除", "标注"} <= set(outcomes)


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = (dt.date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month + 1, min(day.day, last))


def test_repairs_follow_the_repair_rules(
    con: duckdb.DuckDBPyConnection, delivery: GenerationResult
) -> None:
    delivered = _delivered(delivery)
    repairs = con.execute(
        "SELECT record_table, record_id, subject_id, applied_on, decided_on, decision "
        "FROM credit_repairs"
    ).fetchall()
    assert len(repairs) > 20
    tables = {r[0] for r in repairs}
    assert "serious_dishonesty" not in tables
    assert tables >= {"admin_penalties", "abnormal_operations", "dishonest_debtors"}

    penalties = con.execute(
        """SELECT p.case_no, p.uscc, r.subject_id, p.procedure, p.penalty_type, p.severity,
                  p.domain, p.decided_on, p.publicity_end_on, r.applied_on
           FROM credit_repairs r JOIN admin_penalties p ON p.case_no = r.record_id
           WHERE r.record_table = 'admin_penalties'"""
    ).fetchall()
    assert penalties
    for _, uscc, subject, procedure, kind, severity, domain, decided, end, applied in penalties:
        assert subject == uscc
        assert procedure == "普通"
        assert kind not in ("吊销许可证", "责令停产停业", "责令关闭", "限制从业")
        months = 3 if severity == "一般" else 6
        if domain in ("安全生产", "消防", "特种设备", "食品药品"):
            months = 12
        assert applied > _add_months(decided, months), (decided, severity, domain, applied)
        assert applied < end
    listings = con.execute(
        """SELECT r.record_table, r.subject_id, x.sid, x.until, x.state, r.applied_on
           FROM credit_repairs r JOIN ("""
        + _RECORDS
        + """) x ON x.t = r.record_table AND x.id = r.record_id
           WHERE r.record_table <> 'admin_penalties'"""
    ).fetchall()
    assert listings
    for table, subject, record_subject, removed, state, applied in listings:
        assert subject == record_subject
        if table == "credit_commitments":
            assert state == "未履行"
        else:  # abnormal operations and court listings: only once removed
            assert removed is not None, table
            assert applied > removed, table
    deleted = set(
        con.execute(
            "SELECT record_table, record_id FROM credit_objections WHERE outcome = '删除'"
        ).fetchall()
    )
    assert not deleted & {(r[0], r[1]) for r in repairs}

    for _, _, _, applied, decided, decision in repairs:
        assert applied < delivered
        assert (decided is None) == (decision == "审核中")
    done = [r for r in repairs if r[4] is not None]
    waited = _working_days_after([r[3] for r in done], [r[4] for r in done])
    assert waited.min() >= 1
    assert waited.max() <= 20
    assert (waited <= 10).mean() > 0.75
    decisions = [r[5] for r in done]
    assert decisions.count("批准") > 0.6 * len(decisions)
    assert "驳回" in decisions


def test_some_objections_and_repairs_are_still_open_at_delivery(tmp_path: Path) -> None:
    """A few are open on the delivery day (also: a one-year window generates at all)."""
    delivered = dt.date(2021, 1, 1)
    config = GeneratorConfig(
        entities=100_000, seed=3, start="2020-01", end="2020-12", fault_rate=0.0,
        delivered_on=delivered,
    )  # fmt: skip
    generate(config, tmp_path)
    objections = pq.read_table(tmp_path / "credit_objections.parquet")
    repairs = pq.read_table(tmp_path / "credit_repairs.parquet")
    open_objections = objections.filter(pc.is_null(objections.column("resolved_on")))
    assert 0 < open_objections.num_rows < 0.05 * objections.num_rows
    assert open_objections.column("outcome").null_count == open_objections.num_rows
    raised = open_objections.column("raised_on").to_pylist()
    assert min(raised) > delivered - dt.timedelta(days=35)
    pending = repairs.filter(pc.equal(repairs.column("decision"), "审核中"))
    assert 0 < pending.num_rows < 0.2 * repairs.num_rows
    assert pending.column("decided_on").null_count == pending.num_rows
    applied = pending.column("applied_on").to_pylist()
    assert min(applied) > delivered - dt.timedelta(days=35)


# ------------------------------------------------------------------------ defaults
def _defaults(con: duckdb.DuckDBPyConnection, delivered: dt.date) -> None:
    """First default month per entity, derived from the records only."""
    _entity_of_subject(con)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE first_default AS
        SELECT s.uscc, min(m) AS m FROM (
          SELECT a.borrower_id AS sid, p.month AS m FROM pboc_monthly p
            JOIN pboc_accounts a USING (account_id) WHERE p.status IN ('4','5','6','7','B')
          UNION ALL
          SELECT borrower_id, strftime(DATE '{delivered}' - overdue_days::INT + 90, '%Y-%m')
            FROM private_loans WHERE status = '违约'
          UNION ALL SELECT subject_id, strftime(listed_on, '%Y-%m') FROM dishonest_debtors
        ) x JOIN subject s USING (sid) GROUP BY 1"""
    )


def _window(con: duckdb.DuckDBPyConnection, as_of: str) -> tuple[np.ndarray, np.ndarray]:
    """(realised default, truth probability) of the entities active in month ``as_of``.

    The truth of month ``m`` is the probability of a default in months ``m … m+11`` — the
    twelve months of records reported after the end of month ``m`` — for an entity that had
    not defaulted by month ``m - 1``: the population and window here.
    """
    year, month = map(int, as_of.split("-"))
    end = f"{year + (month + 10) // 12}-{(month + 10) % 12 + 1:02d}"
    rows = con.execute(
        f"""SELECT coalesce(d.m >= '{as_of}' AND d.m <= '{end}', FALSE), t.default_probability
            FROM entities e LEFT JOIN first_default d USING (uscc)
            LEFT JOIN truth t ON t.uscc = e.uscc AND t.month = '{as_of}'
            WHERE strftime(e.registered_on, '%Y-%m') <= '{as_of}'
              AND (e.deregistered_on IS NULL OR strftime(e.deregistered_on, '%Y-%m') > '{as_of}')
              AND (d.m IS NULL OR d.m >= '{as_of}')"""
    ).fetchall()
    realised = np.array([r[0] for r in rows], dtype=bool)
    truth = np.array([np.nan if r[1] is None else r[1] for r in rows], dtype=float)
    return realised, truth


def _auc(label: np.ndarray, score: np.ndarray) -> float:
    ranks = np.empty(score.size)
    ranks[np.argsort(score, kind="stable")] = np.arange(1, score.size + 1)
    positives = int(label.sum())
    negatives = label.size - positives
    return float((ranks[label].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def test_default_rate_band_and_stress_years(
    con: duckdb.DuckDBPyConnection, delivery: GenerationResult
) -> None:
    _defaults(con, _delivered(delivery))
    rates = {}
    for as_of in ("2015-01", "2016-01", "2017-01", "2018-01", "2019-01", "2019-12"):
        realised, _ = _window(con, as_of)
        rates[as_of] = realised.mean()
        assert 0.02 <= rates[as_of] <= 0.09, (as_of, rates[as_of])
    assert rates["2015-01"] > rates["2018-01"]
    assert rates["2019-12"] > rates["2018-01"]  # the window covers the 2020 shock


def _faulted_default_rows(tables: dict[str, pa.Table], manifest: dict[str, Any]) -> int:
    """Rows carrying a default that also carry a delivery fault (so `clean` drops them)."""
    default_status = {
        "dishonest_debtors": None,  # every listing is a default
        "pboc_monthly": ("4", "5", "6", "7", "B"),
        "private_loans": ("违约",),
    }
    count = 0
    for fault in manifest["faults"]:
        table = fault["table"]
        if table not in default_status:
            continue
        statuses = default_status[table]
        row = tables[table].slice(fault["row"] - 1, 1).to_pylist()[0]
        count += statuses is None or row["status"] in statuses
    return count


def test_truth_is_calibrated_and_oracle_auc_below_one(
    con: duckdb.DuckDBPyConnection,
    delivery: GenerationResult,
    tables: dict[str, pa.Table],
    manifest: dict[str, Any],
) -> None:
    _defaults(con, _delivered(delivery))
    realised, truth = _window(con, "2019-06")
    # a truth row for every active, non-defaulted entity — except that an entity whose default
    # record carries a (repairable) fault loses that record in `clean` and looks non-defaulted
    missing = np.isnan(truth)
    assert missing.sum() <= _faulted_default_rows(tables, manifest)
    realised, truth = realised[~missing], truth[~missing]
    assert abs(truth.mean() - realised.mean()) < 0.3 * realised.mean()
    assert 0.75 < _auc(realised, truth) < 0.95


def _signalled(con: duckdb.DuckDBPyConnection, as_of: str) -> list[tuple[bool, float, int]]:
    """(defaults in the 12 months from as_of, share with a negative record in the year
    before, entities) for the entities registered a year before as_of and active in it."""
    start = f"{int(as_of[:4]) - 1}{as_of[4:]}"
    end = f"{int(as_of[:4]) + 1}{as_of[4:]}"

    def month(column: str) -> str:
        value = f"strftime({column}, '%Y-%m')"
        return f"{value} >= '{start}' AND {value} < '{as_of}'"

    rows: list[tuple[bool, float, int]] = con.execute(
        f"""WITH signals AS (
              SELECT s.uscc FROM pboc_inquiries q JOIN subject s ON s.sid = q.subject_id
                WHERE q.reason IN ('02', '03', '24', '26') AND {month("q.inquired_on")}
              UNION SELECT uscc FROM social_insurance_arrears
                WHERE month >= '{start}' AND month < '{as_of}'
              UNION SELECT uscc FROM abnormal_operations WHERE {month("listed_on")}
              UNION SELECT uscc FROM admin_penalties
                WHERE procedure = '普通' AND {month("decided_on")}
              UNION SELECT s.uscc FROM pboc_monthly p JOIN pboc_accounts a USING (account_id)
                JOIN subject s ON s.sid = a.borrower_id
                WHERE p.status IN ('1', '2', '3') AND p.month >= '{start}' AND p.month < '{as_of}'
            )
            SELECT coalesce(d.m >= '{as_of}' AND d.m < '{end}', FALSE) AS bad,
                   avg((e.uscc IN (SELECT uscc FROM signals))::INT), count(*)
            FROM entities e LEFT JOIN first_default d USING (uscc)
            WHERE strftime(e.registered_on, '%Y-%m') < '{start}'
              AND (e.deregistered_on IS NULL OR strftime(e.deregistered_on, '%Y-%m') > '{as_of}')
              AND (d.m IS NULL OR d.m >= '{as_of}')
            GROUP BY 1 ORDER BY 1"""
    ).fetchall()
    return rows


def test_defaults_are_foreshadowed_in_the_records(
    con: duckdb.DuckDBPyConnection, delivery: GenerationResult
) -> None:
    """The strain that precedes most defaults shows in the year before: credit shopping,
    social-insurance arrears, abnormal-operation listings, penalties, late PBOC months."""
    _defaults(con, _delivered(delivery))
    for as_of in ("2017-06", "2018-06"):
        (_, good, _), (_, bad, defaults) = _signalled(con, as_of)
        assert defaults > 30
        assert bad > 0.6, (as_of, bad)
        assert bad > 1.5 * good, (as_of, bad, good)


def test_feature_code_never_reads_the_truth() -> None:
    pattern = re.compile(r"""["'/\\]truth["'/\\]|default_probability\.parquet|TRUTH_FILE""")
    offenders = []
    for package in ("features", "models", "scoring", "api", "wzcredit"):
        for path in (REPO / package).rglob("*.py"):
            relative = path.relative_to(REPO).as_posix()
            if relative.startswith("features/synthetic/") or "evaluat" in relative:
                continue
            if pattern.search(path.read_text(encoding="utf-8")):
                offenders.append(relative)
    assert offenders == []


# -------------------------------------------------------------------------- faults
def _is_fullwidth(value: str) -> bool:
    return any("\uff01" <= c <= "\uff5e" for c in value)


def test_manifest_rows_really_carry_their_fault(
    tables: dict[str, pa.Table], manifest: dict[str, Any], delivery: GenerationResult
) -> None:
    delivered = _delivered(delivery)
    working_days = WorkingDays(2014, 2022)
    registry = set(tables["entities"].column("uscc").to_pylist()) | set(
        tables["persons"].column("resident_id").to_pylist()
    )
    accounts = set(tables["pboc_accounts"].column("account_id").to_pylist())
    rows = {name: table.to_pylist() for name, table in tables.items()}
    seen_kinds = set()
    for fault in manifest["faults"]:
        table, kind, column = fault["table"], fault["fault"], fault["column"]
        row = rows[table][fault["row"] - 1]
        value = row[column] if column else None
        seen_kinds.add(kind)
        if kind == "check_digit":
            assert _identifier_errors(pa.chunked_array([pa.array([value])]))
        elif kind == "fullwidth":
            assert _is_fullwidth(value)
        elif kind == "stray_space":
            assert value != "".join(value.split())
        elif kind == "stale_area_code":
            assert value in ("330322", "330327")
        elif kind == "duplicate":
            assert row in rows[table][: fault["row"] - 1][-50:]
        elif kind == "missing_field":
            assert value is None
        elif kind == "negative_amount":
            assert value < 0
        elif kind == "future_date":
            assert (
                (value > delivered.strftime("%Y-%m"))
                if isinstance(value, str)
                else value > delivered
            )
        elif kind == "late_publication":
            decided = np.array([row["decided_on"]], dtype="datetime64[D]")
            assert value > working_days.add(decided, 7)[0].astype(dt.date)
            assert value <= delivered
        elif kind == "orphan":
            assert value not in (accounts if table == "pboc_monthly" else registry)
        assert fault["expect"] in ("quarantine", "repair", "accept")
    assert seen_kinds >= {
        "check_digit", "fullwidth", "stray_space", "stale_area_code", "duplicate",
        "missing_field", "negative_amount", "future_date", "late_publication", "orphan",
    }  # fmt: skip


# ---------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    config = GeneratorConfig(
        entities=600, seed=5, file_format="csv", start="2018-01", end="2019-06"
    )
    first = generate(config, tmp_path / "a")
    second = generate(config, tmp_path / "b")
    a = json.loads(first.manifest_path.read_text(encoding="utf-8"))
    b = json.loads(second.manifest_path.read_text(encoding="utf-8"))
    assert a["sha256"] == b["sha256"]
    assert first.manifest_path.read_bytes() == second.manifest_path.read_bytes()
    other = generate(GeneratorConfig(entities=600, seed=6, file_format="csv", start="2018-01",
                                     end="2019-06"), tmp_path / "c")  # fmt: skip
    c = json.loads(other.manifest_path.read_text(encoding="utf-8"))
    assert c["sha256"]["entities.csv"] != a["sha256"]["entities.csv"]
    header = (tmp_path / "a" / "entities.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.replace('"', "").split(",") == list(CATALOG.item("entities").column_names)


def test_progress_is_reported_per_table(tmp_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    generate(
        GeneratorConfig(entities=200, seed=1, start="2019-01", end="2019-12"),
        tmp_path,
        progress=lambda table, done, total: calls.append((table, done, total)),
    )
    finished = {t for t, done, total in calls if done == total}
    assert set(CATALOG.tables) <= finished


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"entities": 10}, "entities"),
        ({"start": "2015-13"}, "start"),
        ({"start": "2020-01", "end": "2019-01"}, "end"),
        ({"fault_rate": 0.5}, "fault_rate"),
        ({"file_format": "xlsx"}, "file_format"),
        ({"delivered_on": dt.date(2020, 12, 15)}, "delivered_on"),
    ],
)
def test_config_refuses_bad_parameters(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(GeneratorConfigError) as error:
        GeneratorConfig(**kwargs)
    assert error.value.field == field


def test_truth_uses_only_what_is_known_at_the_as_of_month(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A shock after month ``j`` (like 2020's) must not move the truth of month ``j``."""
    world = build_world(GeneratorConfig(entities=2_000))
    latent, j = world.latent, world.timeline.n_months - 14
    rows = np.flatnonzero(latent.active(j) & (latent.stage[:, j] < DEFAULTED))
    before = latent.default_probability(j, rows)
    realised = latent_module.credit_cycle
    month_j = world.timeline.first + j

    def with_a_later_shock(months: Any) -> tuple[Any, Any]:
        stress, covid = realised(months)
        return stress + 3.0 * (np.asarray(months) > month_j), covid

    monkeypatch.setattr(latent_module, "credit_cycle", with_a_later_shock)
    np.testing.assert_array_equal(latent.default_probability(j, rows), before)
    # while the simulated months themselves do feel such a shock
    assert (latent.deterministic(j + 1) > latent.deterministic(j + 1, cycle_month=j)).all()
