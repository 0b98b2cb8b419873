"""FleetTable: one row per speaker, verdict first, updated cell by cell from snapshots."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message

from core.fleet.describe import VERDICT_LABEL, dropout_cell, short_stamp, timeline
from core.fleet.model import DropoutSummary, FleetSnapshot, Speaker, Verdict
from core.hosts import LOCAL
from tui.style import COLOUR, Palette, palette_of
from tui.widgets.row_table import RowTable

#: Battery percentage below which the cell turns red (a speaker about to die mid-event).
LOW_BATTERY = 20


#: Seconds before an expected dropout from which its countdown turns red.
DUE_SOON_S = 60
#: A running action's step replaces the verdict: '⟳ reconnecting 2/3…'.
STEP_SYMBOL = "⟳"
STEP_STYLE = "bold cyan"
#: The verdict column's width: verdicts and steps ('⟳ waiting for audio…') fit in it.
STEP_WIDTH = 20


def _cell_values(
    speaker: Speaker,
    summary: DropoutSummary | None,
    now: float,
    step: str = "",
    palette: Palette = COLOUR,
) -> dict[str, Text | str]:
    transport = speaker.transport
    battery: Text | str = "-"
    if speaker.battery is not None:
        low = speaker.battery < LOW_BATTERY
        battery = Text(
            f"{speaker.battery}%{'!' if low else ''}", style=palette("bold red") if low else ""
        )
    dropouts: Text | str = dropout_cell(summary, now)
    if summary is not None and summary.next_expected is not None:
        due_soon = summary.next_expected - now <= DUE_SOON_S
        dropouts = Text(str(dropouts), style=palette("bold red" if due_soon else "yellow"))
    grey = palette("bright_black")
    values: dict[str, Text | str] = {
        "verdict": Text(VERDICT_LABEL[speaker.verdict], style=palette.verdict(speaker.verdict)),
        "name": speaker.name,
        "host": speaker.host or LOCAL,
        "address": speaker.address,
        "adapter": speaker.adapter,
        "codec": (transport.codec or "?") if transport else "-",
        "media": media_cell(speaker, palette),
        "delay": f"{transport.delay_ms:.0f} ms" if transport and transport.delay_ms else "-",
        "volume": str(transport.volume) if transport and transport.volume is not None else "-",
        "battery": battery,
        "dropouts": dropouts,
        "timeline": Text(timeline(summary, now), style=palette("red") if summary else grey),
        "changed": short_stamp(speaker.changed_t, now),
    }
    if speaker.verdict == Verdict.UNKNOWN:
        # Last known values, greyed: nothing current is known about this speaker.
        values = {k: v if k == "verdict" else Text(str(v), style=grey) for k, v in values.items()}
    if not speaker.paired:
        # Heard during discovery (--all): someone else's device, outside the fleet counts.
        values["name"] = Text(f"{speaker.name} (unpaired)", style="italic")
    if step:
        values["verdict"] = Text(step_label(step), style=palette(STEP_STYLE))
    return values


def media_cell(speaker: Speaker, palette: Palette = COLOUR) -> Text | str:
    """HCI media packets/s: '71/s'; a stalled speaker's '0/s' in red; '-' when HCI has none."""
    if speaker.media_pps is None:
        return "-"
    label = f"{speaker.media_pps:.0f}/s"
    if speaker.verdict == Verdict.STALLED:
        return Text(label, style=palette("bold red"))
    return label


def step_label(step: str, width: int = STEP_WIDTH) -> str:
    """'⟳ reconnecting 2/3…' in the verdict column's width: a step too long for it keeps its
    first clause ('disconnected; settling…' -> '⟳ disconnected…'), else is cut with '…'."""
    label = f"{STEP_SYMBOL} {step}"
    if len(label) > width and "; " in label:
        label = label.split("; ", 1)[0].rstrip("…") + "…"
    return label if len(label) <= width else label[: width - 1].rstrip(" ;,") + "…"


COLUMNS_WIDE: tuple[tuple[str, str], ...] = (
    ("verdict", "Verdict"),
    ("name", "Name"),
    ("address", "Address"),
    ("adapter", "Adapter"),
    ("codec", "Codec"),
    ("delay", "Delay"),
    ("volume", "Vol"),
    ("battery", "Batt"),
    ("dropouts", "Drops"),
    ("timeline", "Last hour"),
    ("changed", "Changed"),
)
COLUMNS_MEDIUM = tuple(c for c in COLUMNS_WIDE if c[0] not in ("address", "volume", "changed"))
COLUMNS_NARROW = tuple(c for c in COLUMNS_MEDIUM if c[0] not in ("delay", "timeline"))
COLUMNS_MINIMAL = tuple(
    c for c in COLUMNS_NARROW if c[0] in ("verdict", "name", "codec", "dropouts")
)
#: Columns whose content grows later (countdowns, an action's step such as
#: '⟳ waiting for audio…') get a fixed width so the table stays put.
FIXED_WIDTHS = {"verdict": STEP_WIDTH, "dropouts": 15, "timeline": 12}
#: Table widths from which each column set fits (measured with the demo fleet's names).
WIDE = 134
MEDIUM = 99
NARROW = 77


#: The HCI media column ('Media', e.g. '71/s'), shown only when an HCI source runs.
MEDIA_COLUMN = ("media", "Media")
MEDIA_WIDTH = 8


#: The host column ('Host', e.g. 'lab'), shown only when the view has remote hosts.
HOST_COLUMN = ("host", "Host")
HOST_WIDTH = 10


def columns_for(
    width: int, media: bool = False, hosts: bool = False
) -> tuple[tuple[str, str], ...]:
    """The column set that fits a table `width` cells wide (0 = not laid out yet: all);
    `media`: an HCI source runs, so the media column goes after the codec; `hosts`: the
    view has remote hosts, so each row says whose it is, after the name."""
    if hosts:
        narrower = columns_for(max(1, width - HOST_WIDTH) if width else 0, media)
        at = [key for key, _ in narrower].index("name") + 1
        return (*narrower[:at], HOST_COLUMN, *narrower[at:])
    extra = MEDIA_WIDTH if media else 0
    if width == 0 or width >= WIDE + extra:
        columns = COLUMNS_WIDE
    elif width >= MEDIUM + extra:
        columns = COLUMNS_MEDIUM
    else:
        columns = COLUMNS_NARROW if width >= NARROW + extra else COLUMNS_MINIMAL
    if not media:
        return columns
    at = [key for key, _ in columns].index("codec") + 1
    return (*columns[:at], MEDIA_COLUMN, *columns[at:])


class FleetTable(RowTable):
    """The fleet; posts SpeakerSelected when the cursor moves to another speaker.

    A speaker with a running action shows its step instead of its verdict (`show_step`).
    Only the cells that changed are repainted (tui/widgets/row_table.py).
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "open", "Details", show=True)]

    @dataclass
    class SpeakerSelected(Message):
        path: str | None

    @dataclass
    class OpenDetail(Message):
        path: str

    def __init__(
        self,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        #: What each row's cells show now, to touch only the cells that change.
        self._cells: dict[str, dict[str, Text | str]] = {}
        #: The inputs each row was last drawn from (skip rows whose inputs did not change).
        self._row_keys: dict[str, tuple[object, ...]] = {}
        self._order: list[str] = []
        self._columns_shown: tuple[tuple[str, str], ...] = ()
        self._snapshot: FleetSnapshot | None = None
        #: address -> the step of its running action, shown in place of the verdict.
        self._steps: dict[str, str] = {}

    @property
    def selected_path(self) -> str | None:
        if not self._order or self.cursor_row >= len(self._order):
            return None
        return self._order[self.cursor_row]

    @property
    def columns_shown(self) -> tuple[tuple[str, str], ...]:
        """The columns (key, label) the table shows now."""
        return self._columns_shown

    def show(self, snapshot: FleetSnapshot) -> None:
        """Bring the table in line with a snapshot, touching only cells that changed."""
        self._snapshot = snapshot
        columns = columns_for(self.size.width, bool(snapshot.hci_status), bool(snapshot.hosts))
        order = [s.path for s in snapshot.speakers]
        if columns != self._columns_shown or order != self._order:
            self._rebuild(snapshot, columns)
            return
        for speaker in snapshot.speakers:
            self._update_row(speaker, snapshot)

    def show_step(self, address: str, step: str) -> None:
        """Show `step` in place of the speaker's verdict now ('' brings the verdict back),
        without waiting for the next snapshot: a key press must show at once."""
        if step:
            self._steps[address] = step
        else:
            self._steps.pop(address, None)
        snapshot = self._snapshot
        if snapshot is None or self._columns_shown != columns_for(
            self.size.width, bool(snapshot.hci_status), bool(snapshot.hosts)
        ):
            return
        for speaker in snapshot.speakers:
            if speaker.key == address and speaker.path in self._cells:
                self._update_row(speaker, snapshot)

    def _values(self, speaker: Speaker, snapshot: FleetSnapshot) -> dict[str, Text | str]:
        summary = snapshot.dropouts.get(speaker.key)
        step = self._steps.get(speaker.key, "")
        return _cell_values(speaker, summary, snapshot.t, step, palette_of(self.app))

    def _update_row(self, speaker: Speaker, snapshot: FleetSnapshot) -> None:
        summary = snapshot.dropouts.get(speaker.key)
        # What a row's cells depend on; the clock only matters while a countdown runs.
        key = (
            speaker,
            summary,
            self._steps.get(speaker.key, ""),
            int(snapshot.t) if summary is not None else 0,
        )
        if self._row_keys.get(speaker.path) == key and speaker.path in self._cells:
            return
        self._row_keys[speaker.path] = key
        new = self._values(speaker, snapshot)
        old = self._cells.get(speaker.path, {})
        changed = {k: new[k] for k, _label in self._columns_shown if new[k] != old.get(k)}
        # A longer name (a new alias) widens its column instead of being cut.
        self.update_row(speaker.path, changed, fit=("name",))
        self._cells[speaker.path] = new

    def _rebuild(self, snapshot: FleetSnapshot, columns: tuple[tuple[str, str], ...]) -> None:
        selected = self.selected_path
        if columns != self._columns_shown:
            self.set_columns(columns, FIXED_WIDTHS)
            self._columns_shown = columns
        self._cells = {}
        self._row_keys = {}
        rows: list[tuple[str, dict[str, Text | str]]] = []
        for speaker in snapshot.speakers:
            values = self._values(speaker, snapshot)
            rows.append((speaker.path, values))
            self._cells[speaker.path] = values
        self.set_rows(rows)
        self._order = [s.path for s in snapshot.speakers]
        if selected in self._order:
            self.move_cursor(row=self._order.index(selected), animate=False)

    def on_resize(self) -> None:
        if self._snapshot is None:
            return
        columns = columns_for(
            self.size.width, bool(self._snapshot.hci_status), bool(self._snapshot.hosts)
        )
        if columns != self._columns_shown:
            self._rebuild(self._snapshot, columns)

    def on_row_table_row_highlighted(self, event: RowTable.RowHighlighted) -> None:
        event.stop()
        self.post_message(self.SpeakerSelected(self.selected_path))

    def action_open(self) -> None:
        path = self.selected_path
        if path is not None:
            self.post_message(self.OpenDetail(path))

    def on_row_table_row_selected(self, event: RowTable.RowSelected) -> None:
        event.stop()
        self.action_open()
