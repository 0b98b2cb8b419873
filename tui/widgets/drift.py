"""DriftPanel: what the microphone heard — each speaker's offset against the 15 ms and 40 ms
lines, its latency, its clock drift rate, and the offsets' history as a plot — and the last
alignment: when, the spread before and after, the delay each speaker got."""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from core.fleet.describe import age, stamp
from core.fleet.model import ECHO_MS, TIGHT_MS, Alignment, DriftSummary, sync_word
from core.probe.plot import braille_plot
from tui.style import COLOUR, Palette, palette_of

#: Offsets drawn on the bar, ms each side of the fleet's median (beyond: an arrow at the end).
BAR_RANGE_MS = 60.0
BAR_WIDTH = 25
#: Colours of the speakers' series in the plot (and their marker in the table).
SERIES_STYLES = ("cyan", "magenta", "green", "yellow", "blue", "bright_red", "white", "bright_cyan")
SYNC_STYLES = {"tight": "green", "loose": "yellow", "echo": "bold red", "not heard": "bold red"}
#: A speaker the probe did not hear: its mark on the bar and before its sync word.
NOT_HEARD_MARK = "✗"
#: Plot size in cells; the x axis spans the probes kept in the history.
PLOT_HEIGHT = 8
PLOT_MIN_WIDTH = 20


def offset_bar(
    offset_ms: float | None,
    width: int = BAR_WIDTH,
    palette: Palette = COLOUR,
    not_heard: bool = False,
) -> Text:
    """'┆····╎···●│····╎····┆': the offset against ±15 ms (╎) and ±40 ms (┆); a speaker the
    probe did not hear has ✗ in the middle instead."""
    half = width // 2
    scale = half / BAR_RANGE_MS

    def column(ms: float) -> int:
        return half + round(ms * scale)

    cells = ["·"] * (2 * half + 1)
    styles = ["bright_black"] * len(cells)
    cells[half] = "│"
    for ms, mark, style in ((TIGHT_MS, "╎", "green"), (ECHO_MS, "┆", "red")):
        for side in (-1, 1):
            cells[column(side * ms)], styles[column(side * ms)] = mark, style
    if offset_ms is not None:
        if abs(offset_ms) > BAR_RANGE_MS:
            at, mark = (0, "◀") if offset_ms < 0 else (len(cells) - 1, "▶")
        else:
            at, mark = column(offset_ms), "●"
        cells[at], styles[at] = mark, SYNC_STYLES[sync_word(offset_ms)]
    elif not_heard:
        cells[half], styles[half] = NOT_HEARD_MARK, SYNC_STYLES["not heard"]
    text = Text()
    for char, style in zip(cells, styles, strict=True):
        text.append(char, style=palette(style))
    return text


def _ms(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.1f} ms" if signed else f"{value:.1f} ms"


def results_table(summary: DriftSummary, palette: Palette = COLOUR) -> Table:
    table = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold")
    table.add_column("", no_wrap=True)
    table.add_column("Speaker", no_wrap=True, max_width=16)
    table.add_column("Offset", justify="right", no_wrap=True)
    table.add_column(f"-{BAR_RANGE_MS:.0f}  ±15 ±40 ms  +{BAR_RANGE_MS:.0f}", no_wrap=True)
    table.add_column("Latency", justify="right", no_wrap=True)
    table.add_column("Sync", no_wrap=True)
    table.add_column("Drift", justify="right", no_wrap=True)
    for index, result in enumerate(summary.results):
        word = sync_word(result.offset_ms) if result.detected else "not heard"
        rate = summary.drift_ppm.get(result.address)
        label = word.upper() if word in ("echo", "not heard") else word
        if not result.detected:
            label = f"{NOT_HEARD_MARK} {label}"
        table.add_row(
            Text("●", style=palette(SERIES_STYLES[index % len(SERIES_STYLES)])),
            result.name,
            _ms(result.offset_ms, signed=True) if result.detected else "—",
            offset_bar(
                result.offset_ms if result.detected else None,
                palette=palette,
                not_heard=not result.detected,
            ),
            _ms(result.latency_ms),
            Text(label, palette(SYNC_STYLES[word])),
            f"{rate:+.0f} ppm" if rate is not None else "…",
        )
    return table


def alignment_line(
    alignment: Alignment,
    now: float,
    palette: Palette = COLOUR,
    names: Mapping[str, str] | None = None,
) -> Text:
    """'aligned 14:02:11: spread 144.4 → 0.4 ms', 'not aligned 14:02:11: spread 144.4 →
    30.2 ms (why)' or 'delays removed 14:02:11: …' (`btmon-tui align --reset`); then the
    delay each speaker's stage adds, largest first ('added delay: Sub Bass +142 ms · Stage
    Left +3 ms · …'), as wrapping text (a column would not fit beside the probe's at 80 columns).
    `names`: address -> name, where the alignment does not say (older records)."""
    when = stamp(alignment.t, now)
    if alignment.result == "reset":
        return Text(
            f" delays removed {when} (align --reset): the speakers play without added delay",
            style=palette("bright_black"),
        )
    text = Text(" ")
    if alignment.result == "aligned":
        text.append(f"aligned {when}", style=palette("bold green"))
    else:
        text.append(f"not aligned {when}", style=palette("bold red"))
    before = "?" if alignment.spread_before_ms is None else f"{alignment.spread_before_ms:.1f}"
    after = "?" if alignment.spread_after_ms is None else f"{alignment.spread_after_ms:.1f}"
    text.append(f": spread {before} → {after} ms")
    if alignment.result != "aligned" and alignment.detail:
        text.append(f" ({alignment.detail})", style=palette("bright_black"))
    names = names or {}
    delays = [
        f"{alignment.names.get(a) or names.get(a) or a} +{d} ms"
        for a, d in sorted(alignment.delays_ms.items(), key=lambda item: -item[1])
    ]
    if delays:
        text.append("\n added delay: ", style="bold")
        text.append(" · ".join(delays))
    return text


def history_plot(
    summary: DriftSummary, width: int, height: int = PLOT_HEIGHT, palette: Palette = COLOUR
) -> Text:
    """Each speaker's offset over time (its colour), with the ±15 and ±40 ms lines."""
    order = [r.address for r in summary.results]
    series = [list(summary.history.get(a, ())) for a in order]
    times = [t for s in series for t, _ in s]
    span = max(times) - min(times) if times else 0.0
    label = f"offset (ms), last {age(span)}" if span > 0 else "offset (ms)"
    if not times:
        return Text("no history yet", style=palette("italic bright_black"))
    # The same ±60 ms as the bars, so the 15/40 ms lines stay apart; an offset beyond it
    # runs along the edge (its exact value is in the table).
    half = BAR_RANGE_MS
    axis = 7
    rows = braille_plot(
        series,
        width=max(PLOT_MIN_WIDTH, width - axis),
        height=height,
        x_range=(min(times), max(max(times), min(times) + 1.0)),
        y_range=(-half, half),
        guides=(-ECHO_MS, -TIGHT_MS, TIGHT_MS, ECHO_MS),
    )
    text = Text(f"{label}\n", style="bold")
    for number, row in enumerate(rows):
        edge = {0: f"≥{half:+.0f} ", height - 1: f"≤{-half:+.0f} "}
        text.append(edge.get(number, "       ").rjust(7), palette("bright_black"))
        for cell in row:
            if cell.series is not None:
                text.append(cell.char, palette(SERIES_STYLES[cell.series % len(SERIES_STYLES)]))
            elif cell.guide is not None:
                guide = "red" if abs(cell.guide) >= ECHO_MS else "green"
                # Without colour the guides stay quiet: the series are what to read.
                text.append(cell.char, "bright_black" if palette.no_color else guide)
            else:
                text.append(cell.char)
        if number < height - 1:
            text.append("\n")
    return text


def headline(
    summary: DriftSummary | None, probing: str, now: float, palette: Palette = COLOUR
) -> Text:
    text = Text("Drift ", style="bold")
    if probing:
        text.append(f" {probing}", style=palette("bold cyan"))
        return text
    if summary is None or not summary.results:
        text.append(" no probe yet: press p to probe the speakers that play")
        if summary is not None and summary.problem:
            text.append(f"\n last probe failed: {summary.problem}", style=palette("bold red"))
        return text
    text.append(f" probe at {stamp(summary.t, now)} ({age(now - summary.t)} ago, {summary.source})")
    if summary.spread_ms is not None:
        word = sync_word(summary.spread_ms)
        text.append("  ·  spread ")
        text.append(f"{summary.spread_ms:.1f} ms {word.upper()}", style=palette(SYNC_STYLES[word]))
        limit = {"tight": f"≤ {TIGHT_MS:.0f}", "loose": f"≤ {ECHO_MS:.0f}"}.get(
            word, f"> {ECHO_MS:.0f}"
        )
        text.append(f" ({limit} ms)", style=palette("bright_black"))
    missing = [r.name for r in summary.results if not r.detected]
    if missing:
        text.append(f"  ·  {NOT_HEARD_MARK} not heard: ", style="")
        text.append(", ".join(missing), style=palette("bold red"))
    if summary.problem:
        text.append(f"\n last probe failed: {summary.problem}", style=palette("bold red"))
    return text


class DriftPanel(Static):
    """The drift panel under the fleet table (shown once a probe ran or runs)."""

    _shown: object = None

    def show(
        self,
        summary: DriftSummary | None,
        probing: str,
        now: float,
        alignment: Alignment | None = None,
    ) -> None:
        key = (summary, probing, int(now) // 10, self.size.width, alignment)
        if key == self._shown:
            return
        self._shown = key
        palette = palette_of(self.app)
        parts: list[object] = [headline(summary, probing, now, palette)]
        if alignment is not None:
            names = {r.address: r.name for r in summary.results} if summary else {}
            parts.append(alignment_line(alignment, now, palette, names))
        if summary is not None and summary.results:
            table = results_table(summary, palette)
            left = 16 + 10 + BAR_WIDTH + 10 + 10 + 10 + 8
            width = self.size.width - left - 4
            if width >= PLOT_MIN_WIDTH + 7:
                grid = Table.grid(padding=(0, 2))
                grid.add_column(no_wrap=True)
                grid.add_column(no_wrap=True)
                grid.add_row(table, history_plot(summary, width, palette=palette))
                parts.append(grid)
            else:
                parts.append(table)
        self.update(Group(*parts))  # type: ignore[arg-type]
