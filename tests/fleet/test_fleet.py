"""FleetState: facts in, speakers with verdicts and the events of DESIGN §4.2 out; time is data."""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

import pytest

from core.bluez.defs import reason_word
from core.fleet.events import DeviceEvent, Event, SourceEvent, SpeakerEvent, TransportEvent
from core.fleet.model import FleetCounts, SourceState, SourceStatus, Verdict
from core.fleet.state import REASON_GRACE_S, FleetState
from tests.fleet.builders import CONNECTED, WAITING, address, dev_path, make_facts, transport

T0 = 1_700_000_000.0

E = TypeVar("E", bound=Event)


def fleet_with(*ns: int, include_all: bool = False) -> FleetState:
    """A FleetState connected to BlueZ at T0 with streaming speakers number `ns`."""
    fleet = FleetState(include_all=include_all)
    fleet.set_source(CONNECTED, T0)
    fleet.update({dev_path(n): make_facts(n) for n in ns}, T0)
    return fleet


def types(events: list[Event]) -> list[str]:
    """The `type` of each event, in order."""
    return [e.type for e in events]


def only(events: list[Event], kind: type[E]) -> list[E]:
    """The events of one class, in order."""
    return [e for e in events if isinstance(e, kind)]


# -- first sight and no-change ------------------------------------------------------------
def test_new_speaker_emits_one_speaker_event() -> None:
    """A speaker seen for the first time is announced once, with its verdict and time."""
    fleet = FleetState()
    fleet.set_source(CONNECTED, T0)
    events = fleet.update({dev_path(1): make_facts(1)}, T0 + 1)
    assert types(events) == ["speaker"]
    (event,) = events
    assert isinstance(event, SpeakerEvent)
    assert event.t == T0 + 1
    speaker = event.speaker
    assert (speaker.address, speaker.verdict, speaker.changed_t) == (
        address(1),
        Verdict.STREAMING,
        T0 + 1,
    )
    assert fleet.speakers[dev_path(1)] == speaker


def test_nothing_changed_emits_nothing_and_keeps_changed_t() -> None:
    """Re-applying identical facts later is silent: no event, same changed_t, same version."""
    fleet = fleet_with(1)
    version = fleet.version
    assert fleet.update({dev_path(1): make_facts(1)}, T0 + 30) == []
    assert fleet.reclassify(T0 + 60) == []
    assert fleet.speakers[dev_path(1)].changed_t == T0
    assert fleet.version == version


def test_changed_t_moves_only_on_change() -> None:
    """A battery change at T0+5 moves changed_t to T0+5 and emits only a speaker event."""
    fleet = fleet_with(1)
    version = fleet.version
    events = fleet.update({dev_path(1): make_facts(1, battery=42)}, T0 + 5)
    assert types(events) == ["speaker"]
    assert fleet.speakers[dev_path(1)].changed_t == T0 + 5
    assert fleet.speakers[dev_path(1)].battery == 42
    assert fleet.version == version + 1


def test_before_bluez_is_read_every_verdict_is_unknown() -> None:
    """A fresh FleetState is still connecting: it judges nothing (unknown) until told."""
    fleet = FleetState()
    assert fleet.source.state is SourceState.CONNECTING
    fleet.update({dev_path(1): make_facts(1)}, T0)
    assert fleet.speakers[dev_path(1)].verdict is Verdict.UNKNOWN


# -- device events and disconnect reasons ------------------------------------------------
def test_disconnect_emits_device_transport_and_speaker_events() -> None:
    """Connected -> false with the transport gone: device, transport 'absent', speaker."""
    fleet = fleet_with(1)
    events = fleet.update({dev_path(1): make_facts(1, connected=False, transport=None)}, T0 + 10)
    assert types(events) == ["device", "transport", "speaker"]
    device, trans, speaker = events
    assert device == DeviceEvent(T0 + 10, address(1), False, None)
    assert trans == TransportEvent(T0 + 10, address(1), "absent", None)
    assert isinstance(speaker, SpeakerEvent)
    assert speaker.speaker.verdict is Verdict.DISCONNECTED


def test_connect_emits_device_event_without_reason() -> None:
    """Connected false -> true is a device event with connected true and reason null."""
    fleet = FleetState()
    fleet.set_source(CONNECTED, T0)
    fleet.update({dev_path(1): make_facts(1, connected=False, transport=None)}, T0)
    events = fleet.update({dev_path(1): make_facts(1, transport=None)}, T0 + 1)
    assert only(events, DeviceEvent) == [DeviceEvent(T0 + 1, address(1), True, None)]
    assert fleet.speakers[dev_path(1)].verdict is Verdict.NO_A2DP


@pytest.mark.parametrize(
    ("bluez_reason", "word"),
    [
        ("org.bluez.Reason.Timeout", "timeout"),
        ("org.bluez.Reason.Remote", "remote"),
        ("org.bluez.Reason.Local", "local"),
        ("org.bluez.Reason.Authentication", "auth"),
        ("org.bluez.Reason.Suspend", "suspend"),
        ("org.bluez.Reason.Unknown", "unknown"),
        ("org.bluez.Reason.SomethingNew", "unknown"),
        ("", "unknown"),
    ],
)
def test_disconnect_reason_before_connected_false(bluez_reason: str, word: str) -> None:
    """Device1.Disconnected arriving first: the reason word rides on the device event."""
    fleet = fleet_with(1)
    assert fleet.note_disconnect_reason(dev_path(1), reason_word(bluez_reason)) == []
    events = fleet.update({dev_path(1): make_facts(1, connected=False)}, T0 + 3)
    assert only(events, DeviceEvent) == [DeviceEvent(T0 + 3, address(1), False, word)]


def test_disconnect_reason_after_connected_false() -> None:
    """On a BlueZ that sends reasons, a disconnect waits for it, then carries it."""
    fleet = fleet_with(1, 2)
    fleet.note_disconnect_reason(dev_path(1), reason_word("org.bluez.Reason.Remote"))
    fleet.update({dev_path(1): make_facts(1, connected=False)}, T0 + 1)
    # device 2 drops; its reason comes 0.1 s later
    events = fleet.update({dev_path(2): make_facts(2, connected=False)}, T0 + 2)
    assert only(events, DeviceEvent) == []
    assert types(events) == ["speaker"]
    late = fleet.note_disconnect_reason(dev_path(2), reason_word("org.bluez.Reason.Timeout"))
    assert late == [DeviceEvent(T0 + 2, address(2), False, "timeout")]
    assert fleet.expire_reasons(T0 + 10) == []


def test_held_disconnect_released_without_reason_after_grace() -> None:
    """A held disconnect whose reason never comes is released after REASON_GRACE_S, reason null."""
    fleet = fleet_with(1, 2)
    fleet.note_disconnect_reason(dev_path(1), reason_word("org.bluez.Reason.Local"))
    fleet.update({dev_path(1): make_facts(1, connected=False)}, T0 + 1)
    fleet.update({dev_path(2): make_facts(2, connected=False)}, T0 + 2)
    assert fleet.expire_reasons(T0 + 2 + REASON_GRACE_S / 2) == []
    released = fleet.expire_reasons(T0 + 2 + REASON_GRACE_S)
    assert released == [DeviceEvent(T0 + 2, address(2), False, None)]
    assert fleet.expire_reasons(T0 + 100) == []


def test_old_bluez_without_reasons_reports_immediately() -> None:
    """BlueZ < 5.83 never sends Disconnected: the device event is not held back."""
    fleet = fleet_with(1)
    events = fleet.update({dev_path(1): make_facts(1, connected=False)}, T0 + 1)
    assert only(events, DeviceEvent) == [DeviceEvent(T0 + 1, address(1), False, None)]
    assert fleet.expire_reasons(T0 + 100) == []


def test_late_duplicate_reason_does_not_stick_to_next_drop() -> None:
    """Device1 and Bearer both report a drop; the second must not label a later disconnect."""
    fleet = fleet_with(1)
    path = dev_path(1)
    fleet.note_disconnect_reason(path, reason_word("org.bluez.Reason.Timeout"))
    first = fleet.update({path: make_facts(1, connected=False)}, T0 + 1)
    assert only(first, DeviceEvent)[0].reason == "timeout"
    duplicate = fleet.note_disconnect_reason(path, reason_word("org.bluez.Reason.Timeout"))
    assert duplicate == []  # the duplicate sticks to nothing
    fleet.update({path: make_facts(1)}, T0 + 60)
    second = fleet.update({path: make_facts(1, connected=False)}, T0 + 120)
    released = only(second, DeviceEvent) + fleet.expire_reasons(T0 + 121)
    assert released == [DeviceEvent(T0 + 120, address(1), False, None)]


def test_reconnect_while_disconnect_is_held_keeps_event_order() -> None:
    """A quick drop-and-reconnect yields disconnect then connect, in time order, nothing later."""
    fleet = fleet_with(1)
    path = dev_path(1)
    fleet.note_disconnect_reason(
        path, reason_word("org.bluez.Reason.Timeout")
    )  # this BlueZ sends reasons
    fleet.update({path: make_facts(1, connected=False)}, T0 + 1)
    fleet.update({path: make_facts(1)}, T0 + 2)  # earlier drop, reason already used
    stream: list[Event] = []
    stream += fleet.update({path: make_facts(1, connected=False)}, T0 + 3)  # held
    stream += fleet.update({path: make_facts(1)}, T0 + 3.25)  # back within the grace time
    stream += fleet.expire_reasons(T0 + 10)
    device_events = only(stream, DeviceEvent)
    assert [(e.t, e.connected) for e in device_events] == [
        (T0 + 3, False),
        (T0 + 3.25, True),
    ]


# -- transport events ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (transport("idle"), transport("active"), ("active", "SBC")),
        (transport("active"), transport("idle"), ("idle", "SBC")),
        (transport("idle"), transport("pending"), ("pending", "SBC")),
        (transport("active"), transport("broadcasting"), ("broadcasting", "SBC")),
        (transport("active", "SBC"), transport("active", "AAC"), ("active", "AAC")),
        (transport("active"), None, ("absent", None)),
        (None, transport("idle", "aptX LL"), ("idle", "aptX LL")),
    ],
    ids=["starts", "stops", "pending", "broadcasting", "codec-change", "gone", "appears"],
)
def test_transport_events(before: object, after: object, expected: tuple[str, str | None]) -> None:
    """Every transport state or codec change of a connected speaker is one transport event."""
    fleet = FleetState()
    fleet.set_source(CONNECTED, T0)
    fleet.update({dev_path(1): make_facts(1, transport=before)}, T0)
    events = fleet.update({dev_path(1): make_facts(1, transport=after)}, T0 + 1)
    assert types(events) == ["transport", "speaker"]
    assert events[0] == TransportEvent(T0 + 1, address(1), *expected)


def test_transport_volume_change_is_no_transport_event() -> None:
    """A volume change updates the speaker row but is not a transport event."""
    fleet = fleet_with(1)
    louder = replace(transport("active"), volume=127)
    events = fleet.update({dev_path(1): make_facts(1, transport=louder)}, T0 + 1)
    assert types(events) == ["speaker"]
    assert fleet.speakers[dev_path(1)].transport == louder


# -- which devices are speakers, and removal -----------------------------------------------
def test_non_speakers_filtered() -> None:
    """A paired phone (no A2DP sink) is not a row unless include_all is set."""
    phone = make_facts(7, is_speaker=False, name="Phone", transport=None)
    fleet = fleet_with(1)
    assert fleet.update({dev_path(7): phone}, T0 + 1) == []
    assert dev_path(7) not in fleet.speakers
    everything = fleet_with(1, include_all=True)
    events = everything.update({dev_path(7): phone}, T0 + 1)
    assert types(events) == ["speaker"]
    assert everything.speakers[dev_path(7)].is_speaker is False
    # Shown, but the fleet line still counts speakers only (a phone is no speaker).
    assert everything.counts().speakers == 1
    assert everything.counts().connected == 1


def test_device_that_stops_being_a_speaker_is_removed() -> None:
    """When a row's device no longer qualifies, it leaves the table with a final speaker event."""
    fleet = fleet_with(1)
    events = fleet.update({dev_path(1): make_facts(1, is_speaker=False)}, T0 + 4)
    assert types(events) == ["speaker"]
    assert dev_path(1) not in fleet.speakers


def test_removal() -> None:
    """None facts (device removed): one last speaker event saying unpaired and disconnected."""
    fleet = fleet_with(1, 2)
    version = fleet.version
    events = fleet.update({dev_path(1): None}, T0 + 9)
    assert types(events) == ["speaker"]
    (removed,) = only(events, SpeakerEvent)
    gone = removed.speaker
    assert (gone.address, gone.paired, gone.connected, gone.verdict, gone.transport) == (
        address(1),
        False,
        False,
        Verdict.DISCONNECTED,
        None,
    )
    assert gone.changed_t == T0 + 9
    assert list(fleet.speakers) == [dev_path(2)]
    assert fleet.version == version + 1
    assert fleet.reclassify(T0 + 20) == []  # its facts are gone too
    assert fleet.update({dev_path(1): None}, T0 + 10) == []  # removing twice is silent


# -- source availability and time-based verdicts ----------------------------------------
def test_set_source_waiting_makes_every_verdict_unknown_and_back() -> None:
    """BlueZ gone: a source event, then every speaker turns unknown; back: verdicts return."""
    fleet = fleet_with(1, 2)
    fleet.update({dev_path(2): make_facts(2, transport=transport("idle", n=2))}, T0)
    events = fleet.set_source(WAITING, T0 + 1)
    assert types(events) == ["source", "speaker", "speaker"]
    assert events[0] == SourceEvent(T0 + 1, "waiting", WAITING.detail)
    assert {s.verdict for s in fleet.speakers.values()} == {Verdict.UNKNOWN}
    assert fleet.counts().streaming == 0
    assert fleet.set_source(WAITING, T0 + 2) == []  # same status: nothing
    fleet.set_source(CONNECTED, T0 + 3)
    assert {p: s.verdict for p, s in fleet.speakers.items()} == {
        dev_path(1): Verdict.STREAMING,
        dev_path(2): Verdict.CONNECTED_IDLE,
    }


def test_set_source_detail_change_alone_emits_only_source_event() -> None:
    """A new detail text with the same state is a source event but re-judges nothing."""
    fleet = fleet_with(1)
    events = fleet.set_source(SourceStatus(SourceState.CONNECTED, "2 adapter(s)", "system"), T0)
    assert types(events) == ["source"]


def test_reclassify_turns_silent_stream_into_stall() -> None:
    """With HCI data, time passing without media turns streaming into stalled on reclassify."""
    fleet = FleetState()
    fleet.set_source(CONNECTED, T0)
    fleet.update({dev_path(1): make_facts(1, media_pps=300.0, last_media_t=T0)}, T0)
    assert fleet.reclassify(T0 + 0.5) == []
    events = fleet.reclassify(T0 + 1.5)
    assert types(events) == ["speaker"]
    assert fleet.speakers[dev_path(1)].verdict is Verdict.STALLED
    assert fleet.speakers[dev_path(1)].changed_t == T0 + 1.5


# -- counts, fleet line, snapshot ---------------------------------------------------------
def test_counts_and_fleet_line() -> None:
    """5 connected of 6 speakers, 3 streaming: '3 of 5 connected speakers streaming'."""
    fleet = FleetState()
    fleet.set_source(CONNECTED, T0)
    fleet.update(
        {
            dev_path(1): make_facts(1),
            dev_path(2): make_facts(2),
            dev_path(3): make_facts(3, transport=transport("active", n=3, fd=2)),
            dev_path(4): make_facts(4, transport=transport("idle", n=4)),
            dev_path(5): make_facts(5, transport=None),
            dev_path(6): make_facts(6, connected=False, transport=None),
        },
        T0,
    )
    counts = fleet.counts()
    assert counts == FleetCounts(speakers=6, connected=5, streaming=3)
    assert counts.line() == "3 of 5 connected speakers streaming"
    assert counts.to_json() == {"speakers": 6, "connected": 5, "streaming": 3}


@pytest.mark.parametrize(
    ("counts", "line"),
    [
        (FleetCounts(1, 1, 1), "1 of 1 connected speaker streaming"),
        (FleetCounts(1, 1, 0), "0 of 1 connected speaker streaming"),
        (FleetCounts(3, 0, 0), "0 of 0 connected speakers streaming"),
        (FleetCounts(9, 2, 2), "2 of 2 connected speakers streaming"),
    ],
)
def test_fleet_line_grammar(counts: FleetCounts, line: str) -> None:
    """The noun is singular exactly when one speaker is connected."""
    assert counts.line() == line


def test_snapshot_orders_by_adapter_then_name_then_address() -> None:
    """Rows sort by adapter, then name case-insensitively, then address."""
    fleet = FleetState()
    fleet.set_source(CONNECTED, T0)
    fleet.update(
        {
            dev_path(1): make_facts(1, adapter="hci1", name="alpha"),
            dev_path(2): make_facts(2, name="Zed"),
            dev_path(4): make_facts(4, name="bravo"),
            dev_path(3): make_facts(3, name="Bravo"),
        },
        T0,
    )
    snap = fleet.snapshot(T0 + 1)
    assert [(s.adapter, s.name) for s in snap.speakers] == [
        ("hci0", "Bravo"),
        ("hci0", "bravo"),
        ("hci0", "Zed"),
        ("hci1", "alpha"),
    ]
    assert snap.t == T0 + 1
    assert snap.counts == FleetCounts(4, 4, 4)
    assert snap.source == CONNECTED
    assert snap.version == fleet.version


def test_snapshot_version_moves_with_changes_only() -> None:
    """Snapshots taken without a change in between share a version; a change bumps it."""
    fleet = fleet_with(1)
    first = fleet.snapshot(T0 + 1)
    assert fleet.snapshot(T0 + 2).version == first.version
    fleet.update({dev_path(1): make_facts(1, transport=transport("idle"))}, T0 + 3)
    assert fleet.snapshot(T0 + 4).version > first.version


def test_snapshot_event_matches_snapshot() -> None:
    """snapshot_event carries the same counts and rows as snapshot()."""
    fleet = fleet_with(2, 1)
    event = fleet.snapshot_event(T0 + 5)
    snap = fleet.snapshot(T0 + 5)
    assert (event.t, event.counts, event.speakers) == (T0 + 5, snap.counts, snap.speakers)
    assert [s.address for s in event.speakers] == [address(1), address(2)]
