"""Server-side SVG bar charts for the usage panel: no script, no CDN, readable without CSS.

Every bar carries a ``<title>`` (shown on hover and read by screen readers) and every chart has
a text alternative, so the numbers are never only in the picture.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from workspace.billing.selectors import Series

# Distinguishable in light and dark themes and for the common colour-vision deficiencies
# (Okabe-Ito order).
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#999999",
)


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10.0 * magnitude


def axis_steps(peak: float, unit: Callable[[float], str]) -> int:
    """How many intervals the value axis gets: the most (up to 4) whose labels all differ.

    Four even steps of a small peak print the same label twice once the unit rounds them (a
    count axis of 0, 0.25, 0.5, 0.75, 1 reads "0, 0, 0, 1, 1"). A unit that rounds to whole
    numbers (counts, cents) also gets only whole ticks, so no gridline sits at 1.25 saying "1".
    """
    whole = unit(0.5) in (unit(0.0), unit(1.0))
    for steps in (4, 2, 1):
        values = [peak * tick / steps for tick in range(steps + 1)]
        labels = [unit(value) for value in values]
        if len(set(labels)) != len(labels):
            continue
        if whole and any(abs(value - round(value)) > 1e-9 for value in values):
            continue
        return steps
    return 1


def stacked_bars(
    *,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    unit: Callable[[float], str],
    width: int = 880,
    height: int = 240,
) -> SafeString:
    """Vertical bars, one per label, stacked by series, with a legend."""
    left, bottom, top = 64, 28, 10
    plot_w, plot_h = width - left - 8, height - bottom - top
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    peak = _nice_max(max(totals, default=0))
    slot = plot_w / max(1, len(labels))
    bar = max(1.0, slot * 0.8)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMinYMin meet">'
    ]
    steps = axis_steps(peak, unit)
    for tick in range(steps + 1):
        value = peak * tick / steps
        y = top + plot_h - plot_h * tick / steps
        parts.append(
            f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(unit(value))}</text>'
        )
    label_every = max(1, round(len(labels) / 12))
    for i, label in enumerate(labels):
        x = left + i * slot + (slot - bar) / 2
        y = top + plot_h
        for index, s in enumerate(series):
            value = s.values[i]
            if value <= 0:
                continue
            h = plot_h * value / peak
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[index % len(PALETTE)]}"><title>{escape(label)} · '
                f"{escape(s.name)}: {escape(unit(value))}</title></rect>"
            )
        if i % label_every == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - 10}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    parts.append("</svg>")
    return mark_safe("".join(parts) + legend(series))  # noqa: S308 (every value is escaped)


def legend(series: Sequence[Series]) -> str:
    items = "".join(
        format_html(
            # A class per colour (billing/usage_panel.css): the CSP allows no style attribute.
            '<li><span class="swatch swatch-{}"></span>{}</li>',
            i % len(PALETTE),
            s.name,
        )
        for i, s in enumerate(series)
    )
    return f'<ul class="chart-legend">{items}</ul>' if items else ""


def horizontal_bars(
    *,
    title: str,
    rows: Sequence[tuple[str, float]],
    unit: Callable[[float], str],
    width: int = 430,
    row_height: int = 22,
) -> SafeString:
    """One labelled horizontal bar per row, largest first as given."""
    label_w, value_w = 150, 80
    height = max(row_height, row_height * len(rows)) + 4
    peak = max((value for _, value in rows), default=0) or 1
    span = width - label_w - value_w
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(title)}">'
    ]
    for i, (label, value) in enumerate(rows):
        y = i * row_height + 2
        w = max(0.0, span * value / peak)
        short = label if len(label) <= 22 else label[:21] + "…"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{escape(short)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_height - 7}" '
            f'fill="{PALETTE[0]}"><title>{escape(label)}: {escape(unit(value))}</title></rect>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}">{escape(unit(value))}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (every value is escaped)
