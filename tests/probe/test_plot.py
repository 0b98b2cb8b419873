"""The braille plot of the drift panel: points land where their values say."""

from __future__ import annotations

from core.probe.plot import braille_plot


def dots(rows: list[list[object]]) -> list[tuple[int, int]]:
    return [
        (r, c)
        for r, row in enumerate(rows)
        for c, cell in enumerate(row)
        if getattr(cell, "series", None) is not None
    ]


def test_a_rising_line_goes_from_bottom_left_to_top_right() -> None:
    rows = braille_plot(
        [[(0.0, -10.0), (1.0, 10.0)]], width=10, height=5, x_range=(0, 1), y_range=(-10, 10)
    )
    drawn = dots(rows)
    assert (4, 0) in drawn and (0, 9) in drawn
    assert all(row[c].series == 0 for r, c in drawn for row in [rows[r]])


def test_guides_fill_empty_cells_on_their_row_only() -> None:
    rows = braille_plot(
        [[(0.0, -9.0), (1.0, -9.0)]],
        width=8,
        height=4,
        x_range=(0, 1),
        y_range=(-10, 10),
        guides=(10.0,),
    )
    assert all(cell.char == "┄" and cell.guide == 10.0 for cell in rows[0])
    assert all(cell.guide is None for cell in rows[1])


def test_values_beyond_the_range_are_clamped_to_the_edge() -> None:
    rows = braille_plot(
        [[(0.0, 500.0), (1.0, 500.0)]], width=6, height=3, x_range=(0, 1), y_range=(-10, 10)
    )
    assert {r for r, _ in dots(rows)} == {0}


def test_two_series_keep_their_own_cells() -> None:
    rows = braille_plot(
        [[(0.0, 8.0), (1.0, 8.0)], [(0.0, -8.0), (1.0, -8.0)]],
        width=6,
        height=4,
        x_range=(0, 1),
        y_range=(-10, 10),
    )
    assert {rows[r][c].series for r, c in dots(rows) if r == 0} == {0}
    assert {rows[r][c].series for r, c in dots(rows) if r == 3} == {1}
