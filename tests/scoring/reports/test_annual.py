"""The annual report (年度运行分析报告): files, sections, and every figure against the warehouse.

One report for 2019 on the small shared warehouse: the champion's snapshot of the view as of
2019-12-31, the previous year end's snapshot (the labelled validation view as of
2018-12-31) for realised outcomes, and a hand-made service activity. Figures are checked
against direct DuckDB queries of the same warehouse file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from features.quality import working_days_between
from features.view.engine import duckdb_tables, packaged_catalog
from models.calibration import CalibratedModel
from models.datasets import TARGET
from scoring.batch import SnapshotStore, score_view
from scoring.errors import ScoringError
from scoring.policy import load_policy
from scoring.reports.annual import (
    EVENT_DATES,
    AnnualReport,
    ServiceActivity,
    annual_report,
    collection_section,
    preapproval_section,
    render_annual,
    working_days,
)
from scoring.reports.render import ReportFiles, number, write_report
from tests.fixtures.scoring import SCORE_AS_OF, VALIDATION_AS_OF, ScoringData

YEAR = SCORE_AS_OF.year
HEADINGS = ("一、概览", "二、数据归集", "三、主体覆盖", "四、信用等级与分类监管", "五、红黑名单",
            "六、异议与信用修复", "七、查询服务", "八、信易贷预授信")  # fmt: skip
ACTIVITY = ServiceActivity(
    year=YEAR,
    queries_by_purpose={"loan_approval": 7, "post_loan": 2, "": 3},
    queries_by_route={"/v1/preapprovals": 5, "/v1/entities/{uscc}/score": 7},
    queries_by_status={200: 10, 403: 2},
    purpose_names={"loan_approval": "贷款审批", "post_loan": "贷后管理"},
    objections_raised=4, objections_resolved=3, objections_resolved_on_time=2,
    repairs_applied=2, repairs_decided=1, repairs_decided_on_time=1,
    repairs_by_status={"approved": 1, "under_review": 1},
    preapprovals_by_decision={"approve": 3, "decline": 2},
)  # fmt: skip


@dataclass(frozen=True)
class Built:
    report: AnnualReport
    snapshot: pd.DataFrame
    previous: pd.DataFrame
    files: ReportFiles
    html: str
    warehouse: Path


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, scoring_data: ScoringData, champion: CalibratedModel
) -> Built:
    root = tmp_path_factory.mktemp("annual")
    policy = load_policy()
    store = SnapshotStore(root / "scores")
    store.write(score_view(scoring_data.score, champion, policy, reasons=False),
                as_of=SCORE_AS_OF, model_version="1", policy_version=policy.version,
                reasons=False, engine="duckdb")  # fmt: skip
    _, snapshot = store.read()
    previous_view = scoring_data.validation.drop(columns=[TARGET])
    previous = score_view(previous_view, champion, policy, reasons=False)
    with duckdb_tables(scoring_data.warehouse) as (_, tables):
        report = annual_report(tables, YEAR, snapshot, view=scoring_data.score,
                               previous=previous, activity=ACTIVITY, policy=policy)  # fmt: skip
    html = render_annual(report)
    files = write_report(html, root / "annual.html", pdf=True)
    return Built(report, snapshot.to_pandas(), previous.to_pandas(), files, html,
                 scoring_data.warehouse)  # fmt: skip


@pytest.fixture
def sql(built: Built) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(built.warehouse), read_only=True)
    yield con
    con.close()


def scalar(con: duckdb.DuckDBPyConnection, query: str) -> Any:
    return con.execute(query).fetchall()[0][0]


def test_the_html_and_pdf_exist_with_every_section(built: Built) -> None:
    assert built.files.html.stat().st_size > 50_000  # charts are embedded
    assert built.files.pdf is not None
    assert built.files.pdf.read_bytes()[:5] == b"%PDF-"
    text = built.files.html.read_text(encoding="utf-8")
    positions = [text.index(f">{heading}</h2>") for heading in HEADINGS]
    assert positions == sorted(positions)
    assert text.count('<img class="chart"') >= 7


def test_every_section_shows_its_numbers(built: Built) -> None:
    report, html = built.report, built.html
    sections = html.split("<h2>")[1:]
    assert len(sections) == len(HEADINGS)
    overview, collection, coverage, grades, lists, remedies, queries, preapproval = sections
    assert number(report.snapshot_rows) in overview
    assert number(report.overview["red_list_in_force"]) in overview
    for record in report.collection["records"]:
        assert f"<td>{number(record['records'])}</td>" in collection
    assert number(report.coverage["all_three"]) in coverage
    for row in report.grades["grade_by_district"]:
        assert f'<td class="l">{row["name"]}</td>' in grades
    for entry in report.lists:
        assert f"<td>{number(entry['in_force'])}</td>" in lists
    assert f"<td>{number(report.remedies['warehouse']['objections_raised'])}</td>" in remedies
    assert "贷款审批" in queries
    assert "<td>7</td>" in queries
    assert "未说明用途" in queries
    for group in report.preapproval["groups"]:
        assert f'<td class="l">{group["name"]}</td>' in preapproval
    assert "实际违约率" in preapproval  # the outcomes were observable


def test_without_service_activity_the_query_section_says_so(built: Built) -> None:
    html = render_annual(dataclasses.replace(built.report, queries=None))
    assert "无服务查询记录" in html.split("<h2>七、查询服务</h2>")[1]
    assert "无服务查询记录" not in built.html


def test_records_of_the_year_agree_with_the_warehouse(
    built: Built, sql: duckdb.DuckDBPyConnection
) -> None:
    catalog = packaged_catalog()
    records = {r["table"]: r for r in built.report.collection["records"]}
    assert set(records) == set(EVENT_DATES)
    for table, column in EVENT_DATES.items():
        where = f"WHERE year({column}) = {YEAR}"
        assert records[table]["records"] == scalar(sql, f"SELECT count(*) FROM {table} {where}")
        item = catalog.item(table)
        filled = sum(scalar(sql, f'SELECT count("{c}") FROM {table} {where}')
                     for c in item.column_names)  # fmt: skip
        n = records[table]["records"]
        if n:
            assert records[table]["completeness"] == pytest.approx(
                filled / (n * len(item.column_names))
            )
    assert built.report.overview["records_of_year"] == sum(r["records"] for r in records.values())


def test_publication_timeliness_counts_working_days(
    built: Built, sql: duckdb.DuckDBPyConnection
) -> None:
    limit = built.report.collection["working_day_limit"]
    for entry in built.report.collection["timeliness"]:
        rows = sql.execute(
            f"SELECT decided_on, published_on FROM {entry['table']} WHERE year(decided_on) = {YEAR}"
        ).fetchall()
        on_time = sum(working_days_between(d, p) <= limit for d, p in rows)
        assert (entry["decisions"], entry["on_time"]) == (len(rows), on_time)
        assert entry["decisions"] > 0


def test_deliveries_by_department_agree_with_the_ledger(
    built: Built, sql: duckdb.DuckDBPyConnection
) -> None:
    # the shared warehouse has one delivery, in 2021: 2019 received none
    assert built.report.collection["by_department"] == []
    assert "本年度无数据交付记录" in built.html
    year = scalar(sql, "SELECT year(max(delivered_on)) FROM deliveries")
    with duckdb_tables(built.warehouse) as (_, tables):
        section = collection_section(tables, year)
    expected = sql.execute(
        "SELECT department, sum(rows_in), sum(accepted), sum(quarantined) FROM delivery_tables "
        "GROUP BY department"
    ).fetchall()
    got = {d["department"]: (d["rows_in"], d["accepted"], d["quarantined"])
           for d in section["by_department"]}  # fmt: skip
    assert got == {dep: (int(a), int(b), int(c)) for dep, a, b, c in expected}
    orphans = scalar(sql, "SELECT count(*) FROM quarantine WHERE rule = 'orphan'")
    assert sum(d["orphans"] for d in section["by_department"]) == orphans > 0
    assert section["deliveries"] == 1


def test_grades_and_classes_add_up_to_the_snapshot(built: Built) -> None:
    grades, snapshot = built.report.grades, built.snapshot
    expected = snapshot.grade.astype(str).value_counts().to_dict()
    assert {g: n for g, n in grades["grades"].items() if n} == expected
    for key, column in (("grade_by_district", "grade"), ("class_by_district", "supervision_class"),
                        ("grade_by_industry", "grade"),
                        ("class_by_industry", "supervision_class")):  # fmt: skip
        rows = grades[key]
        assert sum(r["total"] for r in rows) == len(snapshot)
        for name in grades["grade_names" if column == "grade" else "class_names"]:
            assert (
                sum(r["counts"][name] for r in rows) == (snapshot[column].astype(str) == name).sum()
            )
    district_names = {r["name"] for r in grades["grade_by_district"]}
    assert "鹿城区" in district_names


def test_list_counts_agree_with_the_warehouse(
    built: Built, sql: duckdb.DuckDBPyConnection, scoring_data: ScoringData
) -> None:
    end = f"DATE '{YEAR}-12-31'"
    lists = {entry["table"]: entry for entry in built.report.lists}
    for table, until in (("red_list", "expires_on"), ("serious_dishonesty", "removed_on"),
                         ("dishonest_debtors", "removed_on"),
                         ("abnormal_operations", "removed_on")):  # fmt: skip
        in_force = scalar(sql, f"SELECT count(*) FROM {table} WHERE listed_on <= {end} "
                               f"AND ({until} IS NULL OR {until} > {end})")  # fmt: skip
        new = scalar(sql, f"SELECT count(*) FROM {table} WHERE year(listed_on) = {YEAR}")
        assert (lists[table]["in_force"], lists[table]["new"]) == (in_force, new)
    assert lists["red_list"]["in_force"] > 0
    assert lists["serious_dishonesty"]["scored_entities_flagged"] == int(
        scoring_data.score.gov_blacklisted.fillna(0).sum()
    )


def test_objections_and_repairs_agree_with_the_warehouse(
    built: Built, sql: duckdb.DuckDBPyConnection
) -> None:
    remedies = built.report.remedies
    warehouse = remedies["warehouse"]
    raised = scalar(sql, f"SELECT count(*) FROM credit_objections WHERE year(raised_on) = {YEAR}")
    resolved = sql.execute(
        f"SELECT raised_on, resolved_on FROM credit_objections WHERE year(resolved_on) = {YEAR}"
    ).fetchall()
    within = sum(working_days_between(a, b) <= 5 for a, b in resolved)
    assert warehouse["objections_raised"] == raised > 0
    assert (warehouse["objections_resolved"], warehouse["objections_within_term"]) == (
        len(resolved), within)  # fmt: skip
    applied = scalar(sql, f"SELECT count(*) FROM credit_repairs WHERE year(applied_on) = {YEAR}")
    assert warehouse["repairs_applied"] == applied
    # warehouse and service together
    assert remedies["objections_handled"] == len(resolved) + ACTIVITY.objections_resolved
    assert remedies["objections_on_time_share"] == pytest.approx(
        (within + ACTIVITY.objections_resolved_on_time) / remedies["objections_handled"]
    )


def test_coverage_comes_from_the_view_flags(built: Built, scoring_data: ScoringData) -> None:
    coverage, view = built.report.coverage, scoring_data.score
    assert coverage["entities"] == len(built.snapshot)
    assert coverage["by_source"]["pboc_has_file"] == int(view.pboc_has_file.fillna(0).sum())
    assert sum(r["entities"] for r in coverage["combinations"]) == len(view)
    flags = view[["gov_has_record", "pboc_has_file", "pl_has_registered_loan"]].fillna(0)
    assert coverage["all_three"] == int(flags.astype(bool).all(axis=1).sum())
    assert coverage["thin_file"] == int((view.pboc_has_credit_history.fillna(0) == 0).sum())


def test_preapprovals_and_their_outcomes(built: Built, scoring_data: ScoringData) -> None:
    section, snapshot = built.report.preapproval, built.snapshot
    approved = snapshot[snapshot.decision.astype(str) == "approve"]
    assert section["totals"]["approve"] == len(approved)
    assert section["totals"]["total_limit"] == int(approved["limit"].sum())
    assert sum(section["totals"][d] for d in ("approve", "refer", "decline")) == len(snapshot)
    outcomes = section["outcomes"]
    assert outcomes["status"] == "observed"
    assert outcomes["as_of"] == VALIDATION_AS_OF.isoformat()
    labelled = built.previous[["uscc", "decision"]].merge(
        scoring_data.validation[["uscc", TARGET]], on="uscc"
    )
    for row in outcomes["by_decision"]:
        part = labelled[labelled.decision.astype(str) == row["decision"]]
        assert (row["entities"], row["defaults"]) == (len(part), int(part[TARGET].sum()))


def test_outcomes_not_yet_observable_are_said_to_be(
    built: Built, scoring_data: ScoringData
) -> None:
    late = built.snapshot.assign(as_of=dt.date(2020, 12, 31))  # window ends after the data
    with duckdb_tables(built.warehouse) as (_, tables):
        section = preapproval_section(built.snapshot, load_policy(), tables=tables,
                                      previous=late)  # fmt: skip
    assert section["outcomes"]["status"] == "not_observable"
    html = render_annual(dataclasses.replace(built.report, preapproval=section))
    assert "尚不可观察" in html


def test_a_snapshot_of_another_year_is_refused(built: Built, scoring_data: ScoringData) -> None:
    with duckdb_tables(built.warehouse) as (_, tables), pytest.raises(ScoringError) as error:
        annual_report(tables, YEAR + 1, pa.Table.from_pandas(built.snapshot))
    assert error.value.rule == "as_of_in_year"


def test_working_days_match_the_quality_calendar() -> None:
    rng = random.Random(3)
    starts = [dt.date(2018, 1, 1) + dt.timedelta(days=rng.randrange(900)) for _ in range(300)]
    ends = [s + dt.timedelta(days=rng.randrange(-5, 40)) for s in starts]
    got = working_days(pd.Series(starts), pd.Series(ends))
    assert list(got) == [working_days_between(s, e) for s, e in zip(starts, ends, strict=True)]
