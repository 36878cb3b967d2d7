"""The shared report rendering: templates, the JSON twin, atomic shareable files."""

from __future__ import annotations

import json
import stat
import warnings
from pathlib import Path

import jinja2
import pytest
from matplotlib import font_manager

from scoring.reports.render import (
    chart,
    cjk_font,
    figure,
    register_new_fonts,
    render,
    write_report,
)


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


def _cjk_files() -> list[str]:
    names = ("CJK", "WenQuanYi", "wqy", "SimHei")
    return [p for p in font_manager.findSystemFonts() if any(n in Path(p).name for n in names)]


def test_chinese_chart_text_finds_a_cjk_font_missing_from_matplotlibs_cache() -> None:
    """A CJK font installed after matplotlib cached its font list is still used."""
    files = {str(Path(p).resolve()) for p in _cjk_files()}
    if not files:
        pytest.skip("no CJK font installed (Debian: fonts-noto-cjk; .ci/run installs it)")
    manager = font_manager.fontManager
    # the state of a cache written before the font was installed: no CJK face listed
    stale = [f for f in manager.ttflist if str(Path(f.fname).resolve()) in files]
    manager.ttflist = [f for f in manager.ttflist if f not in stale]
    register_new_fonts.cache_clear()
    try:
        font = cjk_font()
        assert font is not None
        fig, ax = figure()
        ax.set_title("鹿城区 龙湾区 黑名单 餐饮")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a missing glyph is a UserWarning
            chart(fig)
    finally:
        register_new_fonts.cache_clear()
        known = {f.fname for f in manager.ttflist}
        manager.ttflist.extend(f for f in stale if f.fname not in known)
