"""Rendering of reports: Jinja templates, charts as images, HTML and PDF files.

A report is one self-contained HTML file (charts are embedded PNG images, styles inline) so
that it can be mailed or archived as it is, and optionally a PDF of the same page printed by
WeasyPrint. Files are written atomically: a reader sees the old report or the new one.

Chinese text in charts and in the PDF needs a CJK font on the machine (Debian:
``fonts-noto-cjk``); without one the glyphs show as boxes, and `cjk_font` says so.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import io
import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import matplotlib

matplotlib.use("Agg")  # no display: charts are files
import matplotlib.pyplot as plt
from markupsafe import Markup

logger = logging.getLogger(__name__)

#: fonts tried in order for chart text; the first one installed is used
CJK_FONTS = ("Noto Sans CJK SC", "Noto Serif CJK SC", "WenQuanYi Zen Hei", "SimHei")


def cjk_font() -> str | None:
    """The CJK font charts will use, or None when the machine has none.

    Matplotlib lists the system's fonts once and caches the list; a CJK font installed
    after that (e.g. ``fonts-noto-cjk`` by a CI job on a machine where matplotlib had run)
    is not in it. So when no CJK font is listed, the system's font files missing from the
    list are registered first (`register_new_fonts`), once per process.

    Examples
    --------
    >>> cjk_font() is None or cjk_font() in CJK_FONTS
    True
    """
    from matplotlib import font_manager  # noqa: PLC0415 - only when a chart is drawn

    def listed() -> str | None:
        names = {f.name for f in font_manager.fontManager.ttflist}
        return next((name for name in CJK_FONTS if name in names), None)

    found = listed()
    if found is None and register_new_fonts():
        found = listed()
    return found


@functools.cache
def register_new_fonts() -> int:
    """Register the system font files matplotlib's cached font list lacks; how many.

    Done once per process: the scan costs a few milliseconds per new file.
    """
    from matplotlib import font_manager  # noqa: PLC0415 - only when a chart is drawn

    known = {Path(f.fname).resolve() for f in font_manager.fontManager.ttflist}
    added = 0
    for path in font_manager.findSystemFonts():
        if Path(path).resolve() in known:
            continue
        try:
            font_manager.fontManager.addfont(path)
        except (OSError, RuntimeError, ValueError) as error:  # an unreadable font file
            logger.debug("font %s not registered: %s", path, error)
            continue
        added += 1
    if added:
        logger.info("registered %d system font files missing from matplotlib's cache", added)
    return added


def chart(fig: Any, *, dpi: int = 130) -> Markup:
    """Embed a matplotlib figure as an ``<img>`` (PNG, base64) and close the figure."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return Markup(f'<img class="chart" alt="" src="data:image/png;base64,{data}">')


def png(data: bytes) -> Markup:
    """Embed PNG bytes (e.g. a chart of `models.charts`) as an ``<img>``."""
    encoded = base64.b64encode(data).decode("ascii")
    return Markup(f'<img class="chart" alt="" src="data:image/png;base64,{encoded}">')


def figure(width: float = 6.0, height: float = 3.4, ncols: int = 1) -> tuple[Any, Any]:
    """A new figure and axes in the house style, with a CJK font for labels when installed."""
    font = cjk_font()
    plt.rcParams["font.sans-serif"] = [*([font] if font else []), "DejaVu Sans"]
    plt.rcParams["axes.unicode_minus"] = False
    plt.rcParams["axes.spines.top"] = plt.rcParams["axes.spines.right"] = False
    return plt.subplots(1, ncols, figsize=(width, height))


def number(value: Any, digits: int = 0) -> str:
    """A count or amount with thousands separators; a dash for a missing value.

    >>> number(1234567), number(0.12345, 3), number(None)
    ('1,234,567', '0.123', '—')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def percent(value: Any, digits: int = 1) -> str:
    """A share as a percentage; a dash when it does not apply.

    >>> percent(0.1234), percent(None)
    ('12.3%', '—')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}%}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("scoring.reports", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,  # a missing figure is an error, not an empty cell
        trim_blocks=True,
        lstrip_blocks=True,
    )
    filters: dict[str, Callable[..., str]] = {"number": number, "percent": percent}
    env.filters.update(filters)
    return env


_ENV: jinja2.Environment | None = None


def render(template: str, **context: Any) -> str:
    """Render a report template (``templates/<template>``) to an HTML string."""
    global _ENV  # noqa: PLW0603 - one environment per process, built on first use
    if _ENV is None:
        _ENV = _environment()
    context.setdefault("generated_at", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))
    return _ENV.get_template(template).render(**context)


@dataclass(frozen=True)
class ReportFiles:
    """Where a report was written."""

    html: Path
    pdf: Path | None = None
    data: Path | None = None

    def __str__(self) -> str:
        return ", ".join(str(p) for p in (self.html, self.pdf, self.data) if p is not None)


def write_report(
    html: str, out: Path, *, pdf: bool = False, data: Mapping[str, Any] | None = None
) -> ReportFiles:
    """Write ``html`` to ``out``, each atomically: with a PDF beside it when ``pdf``, and
    the report's figures as JSON beside it when ``data`` is given (the readable twin)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    _atomic(out, html.encode("utf-8"))
    twin = None
    if data is not None:
        twin = out.with_suffix(".json")
        text = json.dumps(data, ensure_ascii=False, indent=1, default=str)
        _atomic(twin, text.encode("utf-8"))
    if not pdf:
        return ReportFiles(out, None, twin)
    import weasyprint  # noqa: PLC0415 - slow import, only for PDFs

    if cjk_font() is None:
        logger.warning("no CJK font installed: Chinese text in the PDF shows as boxes")
    target = out.with_suffix(".pdf")
    _atomic(target, weasyprint.HTML(string=html, base_url=str(out.parent)).write_pdf())
    return ReportFiles(out, target, twin)


def _atomic(target: Path, data: bytes | None) -> None:
    if data is None:  # pragma: no cover - write_pdf() without a target returns bytes
        raise TypeError("no document to write")
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # a report is for sharing (mkstemp makes it private)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
