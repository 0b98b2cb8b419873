"""Event types of DESIGN §4.2 and their JSON Lines codec (also the SQLite payload)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from core.fleet.model import Alignment, FleetCounts, Speaker, SpeakerProbe


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event; `t` is Unix time in seconds."""

    type: ClassVar[str] = "event"
    t: float

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_line(self) -> str:
        """One JSON Lines record (no trailing newline)."""
        return json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class SnapshotEvent(Event):
    """The whole fleet at once: first line of `watch --json`."""

    type: ClassVar[str] = "snapshot"
    counts: FleetCounts
    speakers: tuple[Speaker, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "t": self.t,
            "fleet": self.counts.to_json(),
            "speakers": [s.to_json() for s in self.speakers],
        }


@dataclass(frozen=True, slots=True)
class SpeakerEvent(Event):
    """A speaker's row changed (any field)."""

    type: ClassVar[str] = "speaker"
    speaker: Speaker

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "t": self.t, **self.speaker.to_json()}


@dataclass(frozen=True, slots=True)
class DeviceEvent(Event):
    """Device1.Connected changed; `reason` from Device1.Disconnected where BlueZ sends it."""

    type: ClassVar[str] = "device"
    address: str
    connected: bool
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "t": self.t,
            "address": self.address,
            "connected": self.connected,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class TransportEvent(Event):
    """The A2DP transport of a speaker changed state, appeared, or went `absent`."""

    type: ClassVar[str] = "transport"
    address: str
    state: str
    codec: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "t": self.t,
            "address": self.address,
            "state": self.state,
            "codec": self.codec,
        }


@dataclass(frozen=True, slots=True)
class DropoutEvent(Event):
    """An interruption of a speaker's audio the operator did not cause (DESIGN §4.3).

    `t` is when the fact the line reports happened, so the lines of one stream stay in time
    order: for `phase` "start" the moment the dropout was established (a transport loss is
    held until the fleet has shown it is no music stop, so this may be seconds after the
    audio stopped), for "end" the moment the speaker streamed again (`end_t`), for
    "cancelled" the moment a started dropout was retracted (a music stop, an operator's
    action). `start_t` is when the audio stopped, in every phase; readers identify a dropout
    by (address, kind, start_t), and take `start_t` = `t` on records written before it
    existed.
    """

    type: ClassVar[str] = "dropout"
    address: str
    kind: str
    duration_s: float | None = None
    phase: str = "start"
    end_t: float | None = None
    #: Other speakers that dropped within a few seconds of this one (host or interference).
    together_with: tuple[str, ...] = ()
    #: When the audio stopped (None: `t`, as on records of versions before it existed).
    start_t: float | None = None
    #: Why a dropout was cancelled, in words (only on "cancelled" lines).
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": self.type,
            "t": self.t,
            "address": self.address,
            "kind": self.kind,
            "phase": self.phase,
            "start_t": self.t if self.start_t is None else self.start_t,
            "end_t": self.end_t,
            "duration_s": self.duration_s,
            "together_with": list(self.together_with),
        }
        if self.detail is not None:
            data["detail"] = self.detail
        return data


def dropout_start_t(record: Mapping[str, Any]) -> float:
    """When a recorded dropout began: `start_t`, or `t` on records written before it existed."""
    start = record.get("start_t")
    if isinstance(start, int | float) and not isinstance(start, bool):
        return float(start)
    return float(record.get("t", 0.0))


@dataclass(frozen=True, slots=True)
class SourceEvent(Event):
    """The BlueZ source changed state (BlueZ appeared, vanished, or an error). Extension of §4.2."""

    type: ClassVar[str] = "source"
    state: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "t": self.t, "state": self.state, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class ActionEvent(Event):
    """An operator action (resync, connect, disconnect, probe) and how it ended.

    `detail` is what BlueZ said (e.g. `br-connection-page-timeout`), `message` the outcome in
    an operator's words. `result` is "ok" or "error"; progress steps are not logged.
    """

    type: ClassVar[str] = "action"
    address: str
    action: str
    result: str
    detail: str | None = None
    message: str = ""
    duration_s: float | None = None
    #: The remote host it ran on (`--host`), None for this machine.
    host: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "t": self.t,
            "address": self.address,
            "action": self.action,
            "result": self.result,
            "detail": self.detail,
            "message": self.message,
            "duration_s": self.duration_s,
        } | ({"host": self.host} if self.host is not None else {})


@dataclass(frozen=True, slots=True)
class ProbeEvent(Event):
    """A microphone probe: per speaker its arrival, latency and offset (DESIGN §4.2).

    `t` is when its result was known (the analysis ended), so a stream's lines stay in time
    order; `played_t` is when the probe sounded (None on records of versions before it)."""

    type: ClassVar[str] = "probe"
    results: tuple[SpeakerProbe, ...]
    spread_ms: float | None = None
    #: "microphone" or "simulated room" (the demo).
    source: str = "microphone"
    #: Warnings of the analysis (clipping, a silent recording…).
    warnings: tuple[str, ...] = ()
    #: When the probe signals were emitted (Unix s); None: `t` (older records).
    played_t: float | None = None

    @property
    def played(self) -> float:
        """When the probe sounded: `played_t`, or `t` on records written before it existed."""
        return self.t if self.played_t is None else self.played_t

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "t": self.t,
            "results": [r.to_json() for r in self.results],
            "spread_ms": None if self.spread_ms is None else round(self.spread_ms, 3),
            "source": self.source,
            "warnings": list(self.warnings),
            "played_t": self.played,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProbeEvent:
        results = data.get("results")
        spread = data.get("spread_ms")
        warnings = data.get("warnings")
        played = data.get("played_t")
        return cls(
            float(data.get("t", 0.0)),
            tuple(SpeakerProbe.from_json(r) for r in results if isinstance(r, dict))
            if isinstance(results, list)
            else (),
            float(spread) if isinstance(spread, int | float) else None,
            str(data.get("source", "microphone")),
            tuple(str(w) for w in warnings) if isinstance(warnings, list) else (),
            float(played) if isinstance(played, int | float) else None,
        )


def _number(value: Any) -> float | None:
    """A JSON number as float; None for anything else (bool included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@dataclass(frozen=True, slots=True)
class AlignResult:
    """One speaker's part of an alignment (DESIGN §4.2 `align` results).

    `delay_ms`: the delay its stage adds now (integer ms: the server's resolution);
    `offset_before_ms` / `offset_after_ms`: its arrival through the fleet output minus the
    fleet's median arrival, before the first and after the last round (None: not heard);
    `latency_before_ms`: its arrival before, from the emission (None: not heard)."""

    address: str
    delay_ms: int
    offset_before_ms: float | None
    offset_after_ms: float | None
    name: str = ""
    latency_before_ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "name": self.name or self.address,
            "delay_ms": self.delay_ms,
            "latency_before_ms": _ms(self.latency_before_ms),
            "offset_before_ms": _ms(self.offset_before_ms),
            "offset_after_ms": _ms(self.offset_after_ms),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlignResult:
        delay = _number(data.get("delay_ms"))
        address = str(data.get("address", ""))
        return cls(
            address=address,
            delay_ms=round(delay) if delay is not None else 0,
            offset_before_ms=_number(data.get("offset_before_ms")),
            offset_after_ms=_number(data.get("offset_after_ms")),
            name=str(data.get("name") or address),
            latency_before_ms=_number(data.get("latency_before_ms")),
        )


@dataclass(frozen=True, slots=True)
class AlignEvent(Event):
    """An alignment of the fleet output (`btmon-tui align`): per speaker the delay applied
    and its offset before and after, and the fleet's spread before and after (DESIGN §4.2).

    `sink` is the fleet output's sink name, where the player plays; `rounds` counts the
    measure-and-apply rounds; `result` is "aligned", "not-aligned", "dry-run" or "reset",
    `detail` says why when not aligned."""

    type: ClassVar[str] = "align"
    sink: str
    results: tuple[AlignResult, ...]
    spread_before_ms: float | None
    spread_after_ms: float | None
    rounds: int
    target_ms: float | None = None
    result: str = "aligned"
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "t": self.t,
            "sink": self.sink,
            "results": [r.to_json() for r in self.results],
            "spread_before_ms": _ms(self.spread_before_ms),
            "spread_after_ms": _ms(self.spread_after_ms),
            "rounds": self.rounds,
            "target_ms": self.target_ms,
            "result": self.result,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlignEvent:
        results = data.get("results")
        rounds = _number(data.get("rounds"))
        return cls(
            float(data.get("t", 0.0)),
            str(data.get("sink", "")),
            tuple(AlignResult.from_json(r) for r in results if isinstance(r, dict))
            if isinstance(results, list)
            else (),
            _number(data.get("spread_before_ms")),
            _number(data.get("spread_after_ms")),
            round(rounds) if rounds is not None else 0,
            _number(data.get("target_ms")),
            str(data.get("result", "aligned")),
            str(data.get("detail", "")),
        )

    def applied(self) -> Alignment | None:
        """What this alignment left in place: each result's delay, or none after a reset;
        None when it changed nothing (a dry run, or one that stopped before applying
        anything without aligning: the delays of the alignment before stay)."""
        if self.result == "reset":
            return Alignment(self.t, self.result)
        if self.result == "dry-run" or (self.result != "aligned" and self.rounds == 0):
            return None
        return Alignment(
            self.t,
            self.result,
            {r.address: r.delay_ms for r in self.results},
            _ms(self.spread_before_ms),  # as its line says (the log, the toast)
            _ms(self.spread_after_ms),
            self.detail,
            {r.address: r.name for r in self.results if r.name},
        )


@dataclass(frozen=True, slots=True)
class RawEvent(Event):
    """An event of a type this version does not model (dropout, probe, action…): kept verbatim."""

    payload: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dict(self.payload)


def event_address(event: Event) -> str | None:
    """The speaker an event is about, without building its JSON (hot path of the UI)."""
    if isinstance(event, SpeakerEvent):
        return event.speaker.address
    if isinstance(event, RawEvent):
        address = event.payload.get("address")
        return address if isinstance(address, str) else None
    address = getattr(event, "address", None)
    return address if isinstance(address, str) else None


def event_host(event: Event) -> str | None:
    """The remote host an event came from (`--host`), None for this machine's."""
    if isinstance(event, SpeakerEvent):
        return event.speaker.host
    if isinstance(event, ActionEvent):
        return event.host
    if isinstance(event, RawEvent):
        host = event.payload.get("host")
        return str(host) if host and host != "local" else None
    return None


def event_type(event: Event) -> str:
    """The §4.2 `type` of an event (a RawEvent carries it in its payload)."""
    if isinstance(event, RawEvent):
        return str(event.payload.get("type", ""))
    return event.type


class EventDecodeError(ValueError):
    """A JSON Lines record that is not an event."""


def decode_line(line: str) -> dict[str, Any]:
    """Parse one JSON Lines record into a dict with at least `type` (str) and `t` (number)."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise EventDecodeError(f"not JSON: {exc.msg} at column {exc.colno}") from exc
    if not isinstance(obj, dict):
        raise EventDecodeError("not a JSON object")
    if not isinstance(obj.get("type"), str):
        raise EventDecodeError("missing string field 'type'")
    t = obj.get("t")
    if not isinstance(t, int | float) or isinstance(t, bool):
        raise EventDecodeError("missing numeric field 't'")
    return obj
