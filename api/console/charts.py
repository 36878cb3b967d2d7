"""Charts as inline SVG, drawn on the server (no JavaScript library, nothing from a CDN).

Each function returns an SVG document fragment sized by its ``viewBox``, so it scales with
the page: a phone-width screen shows the same chart smaller.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

#: one colour per supervision class / a neutral one for other bars
CLASS_COLOURS = {"A": "#2e7d32", "B": "#7cb342", "C": "#f9a825", "D": "#c62828"}
BAR = "#1565c0"
RISK = "#c62828"
RELIEF = "#2e7d32"


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.2f}"


def bars(
    items: Sequence[tuple[str, float]], *, title: str, colours: dict[str, str] | None = None,
    width: int = 640, row: int = 26, label_width: int = 170, show_title: bool = True,
) -> str:  # fmt: skip
    """Horizontal bars, one per ``(label, value)``, longest value the full width.

    ``title`` is the chart's accessible name; ``show_title`` also draws it above the bars.
    """
    pad = 8
    head = 28 if show_title else 4
    height = row * max(len(items), 1) + head + 6
    top = max((v for _, v in items), default=0.0) or 1.0
    scale = (width - label_width - 70) / top
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
    ]
    if show_title:
        parts.append(f'<text x="{pad}" y="18" class="chart-title">{escape(title)}</text>')
    for i, (label, value) in enumerate(items):
        y = head + i * row
        colour = (colours or {}).get(label, BAR)
        length = max(value * scale, 0.0)
        parts.append(
            f'<text x="{label_width - pad}" y="{y + row * 0.65:.1f}" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<rect x="{label_width}" y="{y + 4}" width="{length:.1f}" height="{row - 8}" '
            f'fill="{colour}"><title>{escape(label)}: {_number(value)}</title></rect>'
            f'<text x="{label_width + length + 6:.1f}" y="{y + row * 0.65:.1f}">'
            f"{_number(value)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def stacked(
    groups: Sequence[tuple[str, dict[str, int]]], keys: Sequence[str], *, title: str,
    width: int = 640, row: int = 26,
) -> str:  # fmt: skip
    """One 100% bar per group, split by ``keys`` (e.g. supervision classes), with a legend."""
    label_width, pad = 170, 8
    height = row * max(len(groups), 1) + 60
    inner = width - label_width - 20
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<text x="{pad}" y="18" class="chart-title">{escape(title)}</text>',
    ]
    for i, (label, counts) in enumerate(groups):
        y = 28 + i * row
        total = sum(counts.values()) or 1
        x = float(label_width)
        parts.append(
            f'<text x="{label_width - pad}" y="{y + row * 0.65:.1f}" text-anchor="end">'
            f"{escape(label)}</text>"
        )
        for key in keys:
            share = counts.get(key, 0) / total
            length = share * inner
            colour = CLASS_COLOURS.get(key, BAR)
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 4}" width="{length:.1f}" height="{row - 8}" '
                f'fill="{colour}"><title>{escape(label)} {escape(key)}: '
                f"{counts.get(key, 0):,} ({share:.1%})</title></rect>"
            )
            x += length
    legend_y = 28 + len(groups) * row + 14
    for j, key in enumerate(keys):
        x = label_width + j * 70
        parts.append(
            f'<rect x="{x}" y="{legend_y - 10}" width="12" height="12" '
            f'fill="{CLASS_COLOURS.get(key, BAR)}"/><text x="{x + 16}" y="{legend_y}">'
            f"{escape(key)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def contributions(items: Sequence[tuple[str, float]], *, title: str, width: int = 640) -> str:
    """The reasons as bars of their log-odds contribution (SHAP): what raised the risk."""
    return bars(
        [(label, round(value, 3)) for label, value in items], title=title,
        colours={label: RISK for label, _ in items}, width=width + 200, label_width=370,
        show_title=False,
    )  # fmt: skip
