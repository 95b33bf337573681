"""Geometry of the activity charts: stacked day columns and horizontal bars, in SVG user units.

Plain data in, rectangles and labels out; no ORM and no markup. ``audit/_chart_days.svg`` and
``audit/_chart_bars.svg`` draw them as inline SVG, where the template engine escapes every
label. Colours are presentation attributes (``fill=``), which the service's CSP allows, unlike
``style=``.
"""

from __future__ import annotations

import dataclasses
import datetime
import math

# Okabe and Ito's palette: told apart with any common colour blindness.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#f0e442")
OTHER_COLOUR = "#999999"
FAILURE_COLOUR = "#d55e00"

WIDTH = 720
DAY_CHART_HEIGHT = 200
AXIS_WIDTH = 40  # room for the value labels left of the plot
DATE_ROW = 20  # room for the date labels under it
BAR_ROW = 22
BAR_LABEL_WIDTH = 220
COUNT_WIDTH = 60


@dataclasses.dataclass(frozen=True)
class Segment:
    """One part of a day's column: what it counts, and how many."""

    label: str
    count: int
    colour: str


@dataclasses.dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str  # the tooltip, and what a screen reader says

    def __post_init__(self):
        # A tenth of a unit is below a pixel; shorter attributes make a lighter page.
        for name in ("x", "y", "width", "height"):
            object.__setattr__(self, name, round(getattr(self, name), 1))


@dataclasses.dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str


@dataclasses.dataclass(frozen=True)
class DayChart:
    width: int
    height: int
    rects: list[Rect]
    value_labels: list[Label]
    date_labels: list[Label]
    baseline_y: float


@dataclasses.dataclass(frozen=True)
class BarRow:
    label: Label
    rect: Rect
    count: Label


@dataclasses.dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    rows: list[BarRow]


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2 or 5 times a power of ten at or above ``value``: a round top for
    the value axis."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)


def day_chart(days: list[tuple[datetime.date, list[Segment]]]) -> DayChart:
    """Columns for ``days`` (oldest first), each stacked bottom-up from its segments."""
    plot_height = DAY_CHART_HEIGHT - DATE_ROW - 10
    plot_width = WIDTH - AXIS_WIDTH
    baseline = DAY_CHART_HEIGHT - DATE_ROW
    top = nice_ceiling(max((sum(s.count for s in segments) for _, segments in days), default=0))
    slot = plot_width / max(len(days), 1)
    rects = []
    for index, (day, segments) in enumerate(days):
        y = baseline
        for segment in segments:
            height = plot_height * segment.count / top
            y -= height
            title = f"{day:%Y-%m-%d}, {segment.label}: {segment.count}"
            x = AXIS_WIDTH + index * slot + 1
            rects.append(Rect(x, y, slot - 2, height, segment.colour, title))
    value_labels = [
        Label(AXIS_WIDTH - 4, baseline - plot_height * f, str(int(top * f))) for f in (0, 0.5, 1)
    ]
    # One date a week: thirty would overlap.
    date_labels = [
        Label(AXIS_WIDTH + (index + 0.5) * slot, DAY_CHART_HEIGHT - 5, f"{day:%m-%d}")
        for index, (day, _) in enumerate(days)
        if (len(days) - 1 - index) % 7 == 0
    ]
    return DayChart(WIDTH, DAY_CHART_HEIGHT, rects, value_labels, date_labels, baseline)


def bar_chart(items: list[tuple[str, int]], colour: str = PALETTE[0]) -> BarChart:
    """One labelled horizontal bar per (label, count), longest for the largest count."""
    largest = max((count for _, count in items), default=1)
    room = WIDTH - BAR_LABEL_WIDTH - COUNT_WIDTH
    rows = []
    for index, (label, count) in enumerate(items):
        y = index * BAR_ROW
        length = max(room * count / largest, 1)
        rows.append(
            BarRow(
                label=Label(BAR_LABEL_WIDTH - 8, y + 15, label),
                rect=Rect(BAR_LABEL_WIDTH, y + 3, length, BAR_ROW - 6, colour, f"{label}: {count}"),
                count=Label(BAR_LABEL_WIDTH + length + 6, y + 15, str(count)),
            )
        )
    return BarChart(WIDTH, max(len(items), 1) * BAR_ROW, rows)
