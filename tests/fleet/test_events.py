"""Events: the JSON shapes of DESIGN §4.2 (field names are a contract) and decode_line's errors."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from core.fleet.events import (
    DeviceEvent,
    EventDecodeError,
    RawEvent,
    SnapshotEvent,
    SourceEvent,
    SpeakerEvent,
    TransportEvent,
    decode_line,
)
from core.fleet.model import FleetCounts, Speaker, Verdict
from tests.fleet.builders import SPEAKER_KEYS, sample_speaker

T = 1_700_000_123.5
ADDR = "AA:BB:CC:DD:EE:01"


BASE_SPEAKER = sample_speaker(T, ADDR)


def speaker(**changes: Any) -> Speaker:
    """A streaming speaker row; keyword arguments override fields."""
    return replace(BASE_SPEAKER, **changes)


def test_speaker_json_has_exactly_the_documented_fields() -> None:
    """Speaker.to_json: DESIGN's keys and values; path, is_speaker and changed_t stay internal."""
    assert speaker().to_json() == {
        "address": ADDR,
        "name": "Küche",
        "adapter": "hci0",
        "paired": True,
        "connected": True,
        "verdict": "streaming",
        "transport": {"state": "active", "codec": "aptX LL", "delay_ms": 38.5, "volume": 100},
        "battery": 55,
        "media_pps": 312.5,
        "last_dropout": T - 282.0,
        "period_s": 282.1,
    }


def test_speaker_json_without_transport() -> None:
    """No A2DP transport is `"transport": null`, and the verdict is its string value."""
    data = speaker(transport=None, verdict=Verdict.NO_A2DP, battery=None).to_json()
    assert set(data) == SPEAKER_KEYS
    assert data["transport"] is None
    assert data["verdict"] == "no-a2dp"
    assert data["battery"] is None


def test_speaker_event_shape() -> None:
    """{"type":"speaker","t":…, …Speaker}."""
    data = SpeakerEvent(T, speaker()).to_json()
    assert set(data) == {"type", "t"} | SPEAKER_KEYS
    assert (data["type"], data["t"], data["address"]) == ("speaker", T, ADDR)


def test_snapshot_event_shape() -> None:
    """{"type":"snapshot","t":…,"fleet":{speakers,connected,streaming},"speakers":[Speaker…]}."""
    rows = (speaker(), speaker(address="AA:BB:CC:DD:EE:02", verdict=Verdict.CONNECTED_IDLE))
    data = SnapshotEvent(T, FleetCounts(5, 4, 3), rows).to_json()
    assert set(data) == {"type", "t", "fleet", "speakers"}
    assert data["type"] == "snapshot"
    assert data["t"] == T
    assert data["fleet"] == {"speakers": 5, "connected": 4, "streaming": 3}
    assert [s["verdict"] for s in data["speakers"]] == ["streaming", "connected-idle"]
    assert all(set(s) == SPEAKER_KEYS for s in data["speakers"])


@pytest.mark.parametrize("reason", ["timeout", None])
def test_device_event_shape(reason: str | None) -> None:
    """{"type":"device","t","address","connected","reason"}; no reason is null, not absent."""
    assert DeviceEvent(T, ADDR, False, reason).to_json() == {
        "type": "device",
        "t": T,
        "address": ADDR,
        "connected": False,
        "reason": reason,
    }


def test_transport_event_shape() -> None:
    """{"type":"transport","t","address","state","codec"}, including the 'absent' state."""
    assert TransportEvent(T, ADDR, "active", "SBC").to_json() == {
        "type": "transport",
        "t": T,
        "address": ADDR,
        "state": "active",
        "codec": "SBC",
    }
    assert TransportEvent(T, ADDR, "absent").to_json()["codec"] is None


def test_source_event_shape() -> None:
    """The source event (an extension of §4.2) carries state and detail."""
    assert SourceEvent(T, "waiting", "BlueZ left the bus").to_json() == {
        "type": "source",
        "t": T,
        "state": "waiting",
        "detail": "BlueZ left the bus",
    }


def test_raw_event_is_verbatim() -> None:
    """An event type this version does not model is written back exactly as read."""
    payload = {"type": "dropout", "t": T, "address": ADDR, "kind": "link", "duration_s": None}
    event = RawEvent(T, payload)
    assert event.to_json() == payload
    assert event.to_json() is not payload  # a copy: callers cannot mutate the event


def test_to_line_is_one_compact_utf8_json_line() -> None:
    """to_line: a single line, compact separators, non-ASCII kept, and it decodes back."""
    event = SpeakerEvent(T, speaker())
    line = event.to_line()
    assert "\n" not in line
    assert ", " not in line and '": ' not in line
    assert "Küche" in line
    assert json.loads(line) == event.to_json()
    assert decode_line(line) == event.to_json()


def test_decode_line_accepts_int_and_float_t_and_keeps_unknown_fields() -> None:
    """`t` may be an int or a float; unknown fields are kept for readers to ignore."""
    assert decode_line('{"type":"device","t":17,"extra":[1]}') == {
        "type": "device",
        "t": 17,
        "extra": [1],
    }
    assert decode_line('{"type":"probe","t":1.5}')["t"] == 1.5


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not JSON"),
        ('{"type": "device", "t": 1', "not JSON"),
        ("", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('"speaker"', "not a JSON object"),
        ("3.5", "not a JSON object"),
        ('{"t": 1}', "'type'"),
        ('{"type": 5, "t": 1}', "'type'"),
        ('{"type": null, "t": 1}', "'type'"),
        ('{"type": "device"}', "'t'"),
        ('{"type": "device", "t": null}', "'t'"),
        ('{"type": "device", "t": "1700000000"}', "'t'"),
        ('{"type": "device", "t": true}', "'t'"),
        ('{"type": "device", "t": false}', "'t'"),
    ],
    ids=[
        "garbage",
        "truncated",
        "empty",
        "array",
        "string",
        "number",
        "no-type",
        "numeric-type",
        "null-type",
        "no-t",
        "null-t",
        "string-t",
        "true-t",
        "false-t",
    ],
)
def test_decode_line_errors(line: str, message: str) -> None:
    """Each malformed record raises EventDecodeError (a ValueError) naming what is wrong."""
    with pytest.raises(EventDecodeError, match=message):
        decode_line(line)
    assert issubclass(EventDecodeError, ValueError)


def test_event_type_names() -> None:
    """The `type` strings are the contract's names."""
    assert [cls.type for cls in (SnapshotEvent, SpeakerEvent, DeviceEvent, TransportEvent)] == [
        "snapshot",
        "speaker",
        "device",
        "transport",
    ]
