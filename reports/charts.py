"""Inline SVG charts for the daily report: geometry only, drawn by the template.

Two kinds are needed (bars per day for two series, horizontal bars per host). They are
computed here as plain numbers and rendered by a Jinja macro, so every label goes
through Jinja's autoescaping and the chart carries no script and no external
reference: the report stays one self-contained file that a mail client shows as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Bar:
    x: float
    y: float
    w: float
    h: float
    value: float
    label: str
    series: int


@dataclass
class Chart:
    width: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    # (x, y, text, anchor) tick and axis labels.
    labels: list[tuple[float, float, str, str]] = field(default_factory=list)
    gridlines: list[tuple[float, str]] = field(default_factory=list)
    legend: list[tuple[int, str]] = field(default_factory=list)
    title: str = ""


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    for m in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if v <= m:
            return float(m)
    return float(v)


def daily_bars(days: list[str], series: list[tuple[str, list[int]]], *, title: str,
               width: int = 720, height: int = 220) -> Chart:
    """Grouped bars: one group per day, one bar per series."""
    left, right, top, bottom = 36, 8, 24, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    top_v = _nice_max(max((max(vals, default=0) for _, vals in series), default=0))
    chart = Chart(width, height, title=title, legend=[(i, name) for i, (name, _) in enumerate(series)])
    n = max(len(days), 1)
    group_w = plot_w / n
    bar_w = max(group_w * 0.8 / max(len(series), 1), 1.0)
    for k in range(5):
        v = top_v * k / 4
        y = top + plot_h - plot_h * k / 4
        chart.gridlines.append((y, f"{v:g}"))
    for i, day in enumerate(days):
        gx = left + i * group_w + group_w * 0.1
        for s, (name, vals) in enumerate(series):
            v = vals[i] if i < len(vals) else 0
            h = plot_h * v / top_v
            chart.bars.append(Bar(gx + s * bar_w, top + plot_h - h, bar_w, h, v, f"{day} {name}: {v}", s))
        if i % 5 == 0 or i == n - 1:
            chart.labels.append((left + i * group_w + group_w / 2, height - bottom + 14, day[5:], "middle"))
    return chart


def host_bars(rows: list[tuple[str, float]], *, title: str, width: int = 720) -> Chart:
    """Horizontal bars of a rate in [0, 1] per name (compliance per host)."""
    left, right, top, row_h = 180, 60, 24, 22
    height = top + row_h * max(len(rows), 1) + 10
    chart = Chart(width, height, title=title)
    plot_w = width - left - right
    for i, (name, rate) in enumerate(rows):
        y = top + i * row_h
        w = plot_w * max(0.0, min(rate, 1.0))
        chart.bars.append(Bar(left, y + 3, w, row_h - 6, rate, f"{name}: {rate:.0%}", 0))
        short = name if len(name) <= 26 else name[:25] + "…"
        chart.labels.append((left - 6, y + row_h / 2 + 4, short, "end"))
        chart.labels.append((left + w + 6, y + row_h / 2 + 4, f"{rate:.0%}", "start"))
    return chart
