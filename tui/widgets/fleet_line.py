"""FleetLine: '3 of 7 connected speakers streaming · 4 connected without audio: Bar, …' fitted
to the terminal's width, so the counts and as many names as fit always show."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import Static

from core.eventlog.replay import ReplayMonitor
from core.fleet.describe import at_host, stamp
from core.fleet.model import FleetSnapshot, SourceState
from core.fleet.verdict import LINKED_SILENT
from core.hosts import host_parts
from tui.style import Palette, palette_of

#: Between the parts of the line.
SEPARATOR = "  ·  "


@dataclass(frozen=True, slots=True)
class NamedGroup:
    """Speakers the line names after a label: 'connected without audio' (long form) or
    'silent' (short form, when the names would not fit otherwise)."""

    long: str
    short: str
    names: tuple[str, ...]
    style: str


def fit_names(names: Sequence[str], room: int) -> str:
    """'Bar, Green Room, Patio, Foyer' in `room` cells, else as many as fit plus '+2 more'
    ('' when not even one name fits: the count before it still tells how many)."""
    full = ", ".join(names)
    if cell_len(full) <= room:
        return full
    for shown in range(len(names) - 1, 0, -1):
        text = ", ".join(names[:shown]) + f" +{len(names) - shown} more"
        if cell_len(text) <= room:
            return text
    return ""


def _layout(counts: str, groups: Sequence[NamedGroup], width: int, short: bool) -> list[str]:
    """Each part of the line as text: the counts, then per group 'N label: names', the names
    cut to share the width left (earlier groups first)."""
    parts = [counts]
    used = 1 + cell_len(counts)  # the leading space
    heads = [f"{len(g.names)} {g.short if short else g.long}: " for g in groups]
    for index, (group, head) in enumerate(zip(groups, heads, strict=True)):
        # Keep room for the heads of the groups after this one (their counts must show).
        later = sum(cell_len(SEPARATOR) + cell_len(h) for h in heads[index + 1 :])
        room = width - used - cell_len(SEPARATOR) - cell_len(head) - later
        names = fit_names(group.names, room)
        part = head + names if names else head.rstrip(": ")
        parts.append(part)
        used += cell_len(SEPARATOR) + cell_len(part)
    return parts


def shown_names(parts: Sequence[str]) -> int:
    """How many names a layout shows (counts of '+N more' do not count)."""
    total = 0
    for part in parts[1:]:
        names = part.split(": ", 1)[1] if ": " in part else ""
        listed = names.rsplit(" +", 1)[0] if " more" in names else names
        total += len([n for n in listed.split(", ") if n])
    return total


def fleet_line_parts(
    counts: str, short_counts: str, groups: Sequence[NamedGroup], width: int
) -> list[str]:
    """The line's parts for a `width`-cell line: the long words while everything fits, then
    short labels, then short counts ('3/7 streaming'), keeping whichever shows most names."""
    if width <= 0:  # not laid out yet
        return _layout(counts, groups, 10_000, short=False)
    best: list[str] = []
    best_shown = -1
    for text, short in ((counts, False), (counts, True), (short_counts, True)):
        parts = _layout(text, groups, width, short)
        fits = 1 + cell_len(SEPARATOR.join(parts)) <= width
        shown = shown_names(parts) if fits else -1
        if fits and shown == sum(len(g.names) for g in groups):
            return parts
        if shown > best_shown:
            best, best_shown = parts, shown
    return best or _layout(short_counts, groups, width, short=True)


def replay_banner(monitor: ReplayMonitor, now: float, wall_now: float, palette: Palette) -> Text:
    """'REPLAY 26 Nov 20:03:12 ×20' (or '⏸ PAUSED'): the replay's position, with the day
    unless it is the real today, in reverse video so no one takes it for a live fleet."""
    text = Text(" REPLAY ", style=palette("reverse bold cyan"))
    how = "⏸ PAUSED" if monitor.paused else f"×{monitor.speed:g}"
    text.append(f" {stamp(now, wall_now)} {how}", style="bold")
    return text


class FleetLine(Static):
    """'3 of 6 connected speakers streaming' plus the speakers that are only pretending.

    `banner` (a replay's 'REPLAY 20:03:12 ×20') goes first."""

    _shown: Text | None = None
    _snapshot: FleetSnapshot | None = None
    _banner: Text | None = None

    def show(self, snapshot: FleetSnapshot, banner: Text | None = None) -> None:
        self._snapshot, self._banner = snapshot, banner
        palette = palette_of(self.app)
        text = Text(" ")
        width = self.size.width - 1
        if banner is not None:
            text.append_text(banner)
            text.append(" ")
            width -= banner.cell_len + 1
        if snapshot.source.state != SourceState.CONNECTED:
            text.append("fleet state unknown — see the status bar", style=palette("bold yellow"))
            self._update(text)
            return
        counts = snapshot.counts
        ok = counts.connected > 0 and counts.streaming == counts.connected
        named = {s.address: s.name for s in snapshot.speakers}
        groups = []
        if snapshot.expected_silent:  # config: these must play (first: they matter most)
            expected = tuple(named.get(a, a) for a in snapshot.expected_silent)
            groups.append(NamedGroup("expected but silent", "expected", expected, "bold red"))
        silent = tuple(
            at_host(s.name, s.host)
            for s in snapshot.speakers
            if s.in_fleet and s.verdict in LINKED_SILENT
        )
        if silent:
            groups.append(NamedGroup("connected without audio", "silent", silent, "bold yellow"))
        short_counts = f"{counts.streaming}/{counts.connected} streaming"
        line = counts.line()
        hosts = host_parts(snapshot)
        if hosts:  # per host: 'lab 2/3 streaming', or why it is away
            ok = ok and all(status is None for _, _, status in hosts)
            line += " (" + ", ".join(f"{name} {word}" for name, word, _ in hosts) + ")"
            short = ", ".join(f"{name} {word.split()[0]}" for name, word, _ in hosts)
            short_counts += f" ({short})"
        parts = fleet_line_parts(line, short_counts, groups, width)
        text.append(parts[0], style=palette("bold green" if ok else "bold yellow"))
        for part, group in zip(parts[1:], groups, strict=True):
            head, _, names = part.partition(": ")
            text.append(SEPARATOR)
            text.append(f"{head}: " if names else head)
            text.append(names, style=palette(group.style))
        self._update(text)

    def _update(self, text: Text) -> None:
        if text != self._shown:  # one line, fixed height: no relayout needed
            self._shown = text
            self.update(text, layout=False)

    def on_resize(self) -> None:
        if self._snapshot is not None:
            self.show(self._snapshot, self._banner)
