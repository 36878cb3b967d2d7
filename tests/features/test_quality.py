"""Data quality figures agree with hand counts, including Chinese working days."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from features.identifiers import make_uscc
from features.ingest import ingest_delivery
from features.quality import is_working_day, quality_report, working_days_between
from tests.features.conftest import base_tables, penalty
from wzcredit.cli import app

MakeDelivery = Callable[..., Path]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (dt.date(2019, 6, 3), dt.date(2019, 6, 5), 2),  # Mon → Wed
        (dt.date(2019, 9, 30), dt.date(2019, 10, 8), 1),  # National Day week: only 8 Oct
        # Spring Festival 2019: 4–10 Feb off, Sat 2 and Sun 3 Feb were adjusted working days
        (dt.date(2019, 2, 1), dt.date(2019, 2, 11), 3),
        (dt.date(2019, 6, 3), dt.date(2019, 6, 20), 12),  # Dragon Boat Festival, 7 June
        (dt.date(2019, 6, 5), dt.date(2019, 6, 5), 0),
        (dt.date(2019, 6, 5), dt.date(2019, 6, 1), 0),
    ],
)
def test_working_days_follow_the_chinese_calendar(
    start: dt.date, end: dt.date, expected: int
) -> None:
    assert working_days_between(start, end) == expected


def test_weekend_adjusted_working_day() -> None:
    assert is_working_day(dt.date(2019, 10, 12))  # Saturday, worked for National Day
    assert not is_working_day(dt.date(2019, 10, 3))


def test_quality_figures_match_hand_counts(make_delivery: MakeDelivery, warehouse: Path) -> None:
    tables = base_tables(4)
    penalties = tables["admin_penalties"]
    penalties[0].update(decided_on="2019-09-30", published_on="2019-10-08")  # 1 wd: on time
    penalties[1].update(decided_on="2019-06-03", published_on="2019-06-20")  # 12 wd: late
    penalties[2].update(authority="温州市生态环境局", published_on="2019-06-12")  # 7 wd: on time
    penalties.append(dict(penalties[3]))  # duplicate
    penalties.append(penalty(9, make_uscc("9", "1", "330302", "MA777777")))  # orphan
    tables["entities"][0]["town"] = "五马街道"
    ingest_delivery(make_delivery(tables), warehouse)

    report = {t.table: t for t in quality_report(warehouse).tables}
    pen = report["admin_penalties"]
    assert (pen.rows_in, pen.accepted, pen.quarantined) == (6, 4, 2)
    assert pen.duplicate_rate == pytest.approx(1 / 6)
    assert pen.orphan_rate == pytest.approx(1 / 6)
    assert pen.validity == pytest.approx(4 / 6)
    assert pen.timeliness == pytest.approx(3 / 4)
    assert pen.late_publications == 1
    assert pen.timeliness_by_authority == {
        "温州市市场监督管理局": pytest.approx(2 / 3),
        "温州市生态环境局": 1.0,
    }
    ent = report["entities"]
    assert ent.column_completeness["town"] == pytest.approx(1 / 4)
    assert ent.column_completeness["village"] == 0.0
    assert ent.column_completeness["uscc"] == 1.0
    assert ent.timeliness is None
    assert report["lpr"].rows_in == 0
    assert report["lpr"].validity is None


def test_quality_of_one_delivery(make_delivery: MakeDelivery, warehouse: Path) -> None:
    tables = base_tables(3)
    ingest_delivery(make_delivery(tables, delivery_id="one"), warehouse)
    ingest_delivery(
        make_delivery(
            {"admin_penalties": [penalty(50, tables["entities"][0]["uscc"])]}, delivery_id="two"
        ),
        warehouse,
    )
    only_two = {t.table: t for t in quality_report(warehouse, delivery_id="two").tables}
    assert only_two["admin_penalties"].rows_in == 1
    assert only_two["admin_penalties"].accepted == 1
    assert only_two["entities"].rows_in == 0


def test_cli_ingest_json_and_quality(
    make_delivery: MakeDelivery, warehouse: Path, tmp_path: Path
) -> None:
    tables = base_tables(3)
    tables["entities"][1]["industry"] = "Z"
    delivery = make_delivery(tables)
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", str(delivery), "--warehouse", str(warehouse), "--json"])
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    entities = outcome["tables"]["entities"]
    assert (entities["rows_in"], entities["accepted"], entities["quarantined"]) == (3, 2, 1)
    assert outcome["tables"]["entities"]["rules"] == {"code": 1}

    report_path = tmp_path / "quality.json"
    result = runner.invoke(
        app, ["quality", "--warehouse", str(warehouse), "--out", str(report_path)]
    )
    assert result.exit_code == 0, result.output
    written = json.loads(report_path.read_text(encoding="utf-8"))
    entities = next(t for t in written["tables"] if t["table"] == "entities")
    assert entities["validity"] == pytest.approx(2 / 3)
    assert entities["department"] == "温州市市场监督管理局"


def test_cli_names_field_and_rule_on_a_bad_delivery(tmp_path: Path) -> None:
    delivery = tmp_path / "bad"
    delivery.mkdir()
    (delivery / "entities.csv").write_text("uscc\n1\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["ingest", str(delivery), "--warehouse", str(tmp_path / "w.duckdb")]
    )
    assert result.exit_code == 2
    assert "entities.csv: columns:" in result.output
    assert "missing" in result.output
