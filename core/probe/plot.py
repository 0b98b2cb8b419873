"""A small braille line plot for the terminal (the drift panel's history): pure, so it is
tested without a screen. Each character cell holds 2 x 4 dots; a cell belongs to the last
series that drew in it, and horizontal guide lines (±15 ms, ±40 ms) fill empty cells."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

#: Unicode braille: dot (column, row) -> bit, rows top to bottom (U+2800 block layout).
_DOTS: Final = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
_BRAILLE: Final = 0x2800


@dataclass(frozen=True, slots=True)
class Cell:
    """One character of the plot: the character, and which series (or guide) drew it."""

    char: str
    series: int | None = None
    guide: float | None = None


def braille_plot(
    series: Sequence[Sequence[tuple[float, float]]],
    *,
    width: int,
    height: int,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    guides: Sequence[float] = (),
) -> list[list[Cell]]:
    """Rows (top first) of `width` cells: each series as connected braille dots."""
    width, height = max(1, width), max(1, height)
    bits = [[0] * width for _ in range(height)]
    owner: list[list[int | None]] = [[None] * width for _ in range(height)]
    x0, x1 = x_range
    y0, y1 = y_range
    x_span = (x1 - x0) or 1.0
    y_span = (y1 - y0) or 1.0
    dots_w, dots_h = width * 2, height * 4

    def dot(index: int, dx: int, dy: int) -> None:
        if 0 <= dx < dots_w and 0 <= dy < dots_h:
            row, col = dy // 4, dx // 2
            bits[row][col] |= _DOTS[dy % 4][dx % 2]
            owner[row][col] = index

    def to_dots(x: float, y: float) -> tuple[int, int]:
        dx = round((x - x0) / x_span * (dots_w - 1))
        clamped = min(max(y, y0), y1)
        dy = round((y1 - clamped) / y_span * (dots_h - 1))
        return dx, dy

    for index, points in enumerate(series):
        previous: tuple[int, int] | None = None
        for x, y in points:
            current = to_dots(x, y)
            if previous is None:
                dot(index, *current)
            else:
                _line(previous, current, functools.partial(dot, index))
            previous = current

    guide_rows: dict[int, float] = {}
    for value in guides:
        if y0 <= value <= y1:
            guide_rows[to_dots(0.0, value)[1] // 4] = value
    rows: list[list[Cell]] = []
    for r in range(height):
        row: list[Cell] = []
        for c in range(width):
            if bits[r][c]:
                row.append(Cell(chr(_BRAILLE + bits[r][c]), owner[r][c]))
            elif r in guide_rows:
                row.append(Cell("┄", None, guide_rows[r]))
            else:
                row.append(Cell(" "))
        rows.append(row)
    return rows


def _line(a: tuple[int, int], b: tuple[int, int], put: Callable[[int, int], None]) -> None:
    """Bresenham between two dot positions."""
    (x0, y0), (x1, y1) = a, b
    dx, dy = abs(x1 - x0), -abs(y1 - y0)
    sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
    err = dx + dy
    while True:
        put(x0, y0)
        if (x0, y0) == (x1, y1):
            return
        e2 = 2 * err
        if e2 >= dy:
            err += dy
            x0 += sx
        if e2 <= dx:
            err += dx
            y0 += sy
