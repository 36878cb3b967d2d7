"""The shared report rendering: templates, the JSON twin, atomic shareable files."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import jinja2
import pytest

from scoring.reports.render import chart, figure, render, write_report


def test_a_report_is_written_with_its_json_twin_readable_by_others(tmp_path: Path) -> None:
    html = render("base.html.j2")
    files = write_report(html, tmp_path / "r" / "report.html", data={"年度": 2020, "rows": 3})
    assert files.html.read_text("utf-8") == html
    assert files.pdf is None
    assert files.data is not None
    assert json.loads(files.data.read_text("utf-8")) == {"年度": 2020, "rows": 3}
    for path in (files.html, files.data):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in files.html.parent.iterdir()) == ["report.html", "report.json"]
    assert str(files) == f"{files.html}, {files.data}"


def test_a_missing_figure_is_an_error_not_an_empty_cell() -> None:
    # the annual template rendered without its report: StrictUndefined refuses
    with pytest.raises(jinja2.UndefinedError):
        render("annual.html.j2")


def test_a_chart_is_an_embedded_png() -> None:
    fig, ax = figure()
    ax.bar(["鹿城区", "瓯海区"], [3, 4])
    markup = str(chart(fig))
    assert markup.startswith('<img class="chart" alt="" src="data:image/png;base64,iVBOR')
