"""Small read-only panels: the status bar, the speaker detail, the event log."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import RichLog, Static

from core.fleet.describe import (
    VERDICT_LABEL,
    age,
    describe_event,
    period_sentence,
    plural,
    stamp,
    timeline,
)
from core.fleet.events import Event, SpeakerEvent, event_address, event_host, event_type
from core.fleet.model import (
    VERDICT_MEANING,
    DriftSummary,
    DropoutSummary,
    SourceState,
    SourceStatus,
    Speaker,
    sync_word,
)
from tui.style import COLOUR, Palette, palette_of


class StatusBar(Static):
    """What the BlueZ source is doing, and what to do when it is not working."""

    _shown: Text | None = None

    def show(
        self, status: SourceStatus, warnings: int, log_problem: str = "", hci: str = ""
    ) -> None:
        text = Text(" ")
        label = {
            SourceState.CONNECTED: "OK",
            SourceState.CONNECTING: "…",
            SourceState.WAITING: "WAITING",
            SourceState.ERROR: "ERROR",
        }[status.state]
        palette = palette_of(self.app)
        text.append(f"{label} ", style=palette(f"reverse {palette.source(status.state)}"))
        text.append(f" {status.detail}")
        if hci:
            text.append(f"  ·  {hci}")
        if warnings:
            text.append(f"  ({plural(warnings, 'warning')} in the log)", style=palette("yellow"))
        if log_problem:
            # Monitoring goes on; the operator must know the history is not being kept.
            # First line, so a long source line cannot push it out of sight.
            log_line = Text(" ")
            log_line.append("LOG ", style=palette("reverse bold red"))
            log_line.append(f" {log_problem}\n")
            text = log_line + text
        if text != self._shown:  # its height follows the text, so this one relayouts
            self._shown = text
            self.update(text)


def speaker_details(
    speaker: Speaker,
    now: float,
    drift: DriftSummary | None = None,
    palette: Palette = COLOUR,
) -> Table:
    """The detail grid for one speaker."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    verdict = Text(VERDICT_LABEL[speaker.verdict], style=palette.verdict(speaker.verdict))
    grid.add_row("Speaker", f"{speaker.name}  {speaker.address}")
    grid.add_row("Verdict", verdict)
    grid.add_row("", Text(VERDICT_MEANING[speaker.verdict], style="italic"))
    if speaker.host:
        grid.add_row("Host", f"{speaker.host} (its own btmon-tui watch; actions run there)")
    grid.add_row("Adapter", speaker.adapter)
    if speaker.group:
        grid.add_row("Group", speaker.group)
    grid.add_row(
        "Paired / linked",
        f"{'yes' if speaker.paired else 'no'} / {'yes' if speaker.connected else 'no'}",
    )
    transport = speaker.transport
    if transport is None:
        grid.add_row("A2DP transport", "none")
    else:
        grid.add_row("A2DP transport", f"{transport.state}, {transport.codec or 'unknown codec'}")
        delay = f"{transport.delay_ms:.0f} ms" if transport.delay_ms is not None else "-"
        volume = f"{transport.volume} of 127" if transport.volume is not None else "-"
        grid.add_row("Delay / volume", f"{delay} / {volume}")
    if speaker.media_pps is not None:  # an HCI source counts its A2DP media packets
        grid.add_row("HCI media", f"{speaker.media_pps:.0f} packets/s")
    probe = probe_line(speaker.address, drift, now, palette)
    if probe is not None:
        grid.add_row("Probe", probe)
    grid.add_row(
        "Battery", f"{speaker.battery}%" if speaker.battery is not None else "not reported"
    )
    if speaker.ble_seen is not None:  # --ble heard it advertise
        heard = f"{speaker.rssi} dBm, advertising" if speaker.rssi is not None else "silent"
        grid.add_row("BLE", f"{heard} (last seen {stamp(speaker.ble_seen, now)})")
    grid.add_row(
        "Last change seen",
        f"{stamp(speaker.changed_t, now)} ({age(now - speaker.changed_t)} ago)",
    )
    return grid


def probe_line(
    address: str, drift: DriftSummary | None, now: float, palette: Palette = COLOUR
) -> Text | None:
    """What the latest probe heard of this speaker, or None when it was not probed."""
    if drift is None:
        return None
    result = next((r for r in drift.results if r.address == address), None)
    if result is None:
        return None
    when = f" ({stamp(drift.t, now)})"
    if not result.detected or result.latency_ms is None or result.offset_ms is None:
        return Text(f"✗ NOT HEARD by the last probe{when}", style=palette("bold red"))
    word = sync_word(result.offset_ms)
    text = Text(f"latency {result.latency_ms:.1f} ms, offset {result.offset_ms:+.1f} ms ")
    text.append(word, style=palette({"tight": "green", "loose": "yellow"}.get(word, "bold red")))
    rate = drift.drift_ppm.get(address)
    if rate is not None:
        text.append(f", drift {rate:+.0f} ppm")
    text.append(when)
    return text


def dropout_details(summary: DropoutSummary | None, now: float, palette: Palette = COLOUR) -> Group:
    """Period, countdown, the last hour as a strip, and the latest dropouts with durations."""
    if summary is None:
        return Group(Text("Dropouts", style="bold underline"), Text("none seen", style="italic"))
    strip = Text(timeline(summary, now, width=24), style=palette("red"))
    lines = [
        Text("Dropouts", style="bold underline"),
        Text(f"{plural(summary.count, 'dropout')} seen; {period_sentence(summary, now)}"),
        Text("last hour ") + strip + Text(" now"),
    ]
    for start, kind, duration in list(summary.recent)[-6:][::-1]:
        lasted = f"{duration:.1f} s" if duration is not None else "still out"
        lines.append(Text(f"  {stamp(start, now)}  {kind:9}  {lasted}"))
    return Group(*lines)


class DetailPanel(Static):
    """The selected speaker and its recent events (side panel on wide terminals)."""

    _shown_key: tuple[object, ...] | None = None
    #: False where CSS fixes its size (the side panel: no relayout needed); True where its
    #: height follows its content (the detail screen, which scrolls it).
    layout_on_update = False

    def show(
        self,
        speaker: Speaker | None,
        events: Iterable[Event],
        now: float,
        dropouts: DropoutSummary | None = None,
        drift: DriftSummary | None = None,
    ) -> None:
        if speaker is None:
            self.update(Text("No speaker selected", style="italic"), layout=False)
            return
        recent: list[str] = []
        last_event = None
        for event in reversed(events if isinstance(events, Sequence) else list(events)):
            # Cheap filters first: speaker rows make no line, other speakers' events no match.
            if event_type(event) == "speaker" or event_address(event) != speaker.address:
                continue
            if event_host(event) != speaker.host:  # the same address on another host
                continue
            data = event.to_json()
            last_event = last_event or event
            line = describe_event(data, {speaker.address: speaker.name})
            if line:
                recent.append(f"{stamp(event.t, now)} {line}")
                if len(recent) == 8:
                    break
        recent.reverse()
        # Redraw only when something shown changed ("Ns ago" moves once a second).
        key = (speaker, dropouts, id(last_event), int(now), drift)
        if key == self._shown_key:
            return
        self._shown_key = key
        history = Text(
            "\n".join(recent) if recent else "none since btmon-tui started",
            style="" if recent else "italic",
        )
        palette = palette_of(self.app)
        self.update(
            layout=self.layout_on_update,
            content=Group(
                speaker_details(speaker, now, drift, palette),
                Text(""),
                dropout_details(dropouts, now, palette),
                Text(""),
                Text("Recent events", style="bold underline"),
                history,
            ),
        )


def log_style(data: dict[str, object]) -> str:
    """Bold red for what needs the operator (a dropout, a failed action), red for a lost link
    or a dropout's end, green for an action that worked, yellow for one the operator
    cancelled, italic for a dropout retracted (it was not one after all)."""
    kind = data.get("type")
    if kind == "action":
        if data.get("result") == "ok":
            return "green"
        return "yellow" if data.get("detail") == "cancelled" else "bold red"
    if kind == "dropout":
        phase = data.get("phase")
        return {"cancelled": "italic", "end": "red"}.get(str(phase), "bold red")
    if kind == "device" and not data.get("connected"):
        return "red"
    return ""


def names_in(events: Iterable[Event]) -> dict[str, str]:
    """Address -> name from the speaker rows and snapshots among `events`."""
    names: dict[str, str] = {}
    for event in events:
        if isinstance(event, SpeakerEvent):
            names[event.speaker.address] = event.speaker.name
            continue
        if event_type(event) not in ("speaker", "snapshot"):
            continue
        data = event.to_json()
        rows = data.get("speakers") if data.get("type") == "snapshot" else [data]
        for row in rows or ():
            if isinstance(row, dict) and row.get("address") and row.get("name"):
                names[str(row["address"])] = str(row["name"])
    return names


class EventLog(RichLog):
    """Human lines for every event worth reading, newest at the bottom."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_lines=2000, wrap=False, markup=False, **kwargs)  # type: ignore[arg-type]
        self.names: dict[str, str] = {}

    def add(self, events: Sequence[Event], now: float) -> None:
        """A line per event worth one, stamped with its time (and day, when not `now`'s)."""
        # Names first: a batch may carry a dropout before the snapshot naming its speaker.
        self.names.update(names_in(events))
        palette = palette_of(self.app)
        for event in events:
            if isinstance(event, SpeakerEvent):  # the bulk under load: no line
                continue
            data = event.to_json()
            if data.get("type") in ("speaker", "snapshot"):
                continue
            line = describe_event(data, self.names)
            if line:
                text = Text(f"{stamp(event.t, now)} {line}", style=palette(log_style(data)))
                self.write(text)

    def warn(self, text: str, now: float) -> None:
        self.write(Text(f"{stamp(now, now)} warning: {text}", style=palette_of(self.app)("yellow")))
