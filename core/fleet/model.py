"""Immutable domain values: adapters, A2DP transports, speakers, the fleet snapshot."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final


class Verdict(StrEnum):
    """The per-speaker truth of DESIGN §3, from best to worst."""

    STREAMING = "streaming"
    STALLED = "stalled"
    CONNECTED_IDLE = "connected-idle"
    PENDING = "pending"
    NO_A2DP = "no-a2dp"
    DISCONNECTED = "disconnected"
    UNKNOWN = "unknown"


#: One sentence per verdict, shown in the detail view and `?` help.
VERDICT_MEANING: dict[Verdict, str] = {
    Verdict.STREAMING: "connected and its A2DP transport is active: it gets audio",
    Verdict.STALLED: "transport active but no media is flowing: it is silent",
    Verdict.CONNECTED_IDLE: "linked, A2DP transport idle: shows Connected but gets no audio",
    Verdict.PENDING: "A2DP transport is starting (pending)",
    Verdict.NO_A2DP: "linked without any A2DP transport (only HFP/AVRCP): gets no audio",
    Verdict.DISCONNECTED: "paired but not connected",
    Verdict.UNKNOWN: "no data: BlueZ is not running or the adapter is off",
}


@dataclass(frozen=True, slots=True)
class Adapter:
    """A local Bluetooth controller (org.bluez.Adapter1)."""

    path: str
    name: str
    address: str | None = None
    alias: str | None = None
    powered: bool | None = None


#: MediaTransport1 states in which audio is sent to the speaker (broadcasting: BlueZ 5.78+).
SENDING_STATES: Final = frozenset({"active", "broadcasting"})


@dataclass(frozen=True, slots=True)
class Transport:
    """The A2DP media transport BlueZ set up towards a speaker (org.bluez.MediaTransport1)."""

    path: str
    state: str
    codec: str | None = None
    delay_ms: float | None = None
    volume: int | None = None

    @property
    def sending(self) -> bool:
        """Audio is sent over it (active or broadcasting), heard or not."""
        return self.state in SENDING_STATES

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "codec": self.codec,
            "delay_ms": self.delay_ms,
            "volume": self.volume,
        }


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """What BlueZ (and, later, HCI and probes) says about one device, before judging it."""

    path: str
    address: str
    name: str
    adapter: str
    adapter_powered: bool | None
    paired: bool
    connected: bool
    is_speaker: bool
    transport: Transport | None
    battery: int | None = None
    #: Media packets per second from HCI, None when no HCI source runs.
    media_pps: float | None = None
    #: Unix time of the last A2DP media packet seen on HCI, None when unknown.
    last_media_t: float | None = None
    #: True when the most recent probe did not hear this speaker (and HCI has not shown
    #: media flowing since: the fresher, stronger source wins).
    probe_missed: bool = False
    #: True while the HCI source's word on this stream is still to come: the source has not
    #: caught up with the present yet, or no media packet has passed since the stream began.
    awaiting_media: bool = False


@dataclass(frozen=True, slots=True)
class Speaker:
    """One row of the fleet table: facts plus the verdict, as of `changed_t`."""

    path: str
    address: str
    name: str
    adapter: str
    paired: bool
    connected: bool
    is_speaker: bool
    verdict: Verdict
    transport: Transport | None
    battery: int | None
    media_pps: float | None
    last_dropout: float | None
    period_s: float | None
    #: Unix time of the last change of anything shown for this speaker.
    changed_t: float
    #: The operator's group for it (config file), None when it has none.
    group: str | None = None
    #: Last BLE advertisement RSSI (dBm) while present (`--ble`), else None.
    rssi: int | None = None
    #: Unix time of its last BLE advertisement (`--ble`), None when never seen.
    ble_seen: float | None = None
    #: The host it is paired with (`--host NAME`), None for this machine's own BlueZ.
    host: str | None = None

    @property
    def key(self) -> str:
        """What tells it apart in a fleet of several hosts (a speaker may be paired with two):
        its address, prefixed with its host's name for a remote one (`lab/AA:BB:…`)."""
        return host_key(self.host, self.address)

    @property
    def in_fleet(self) -> bool:
        """Counted in the fleet (DESIGN §3): a paired (or bonded) audio sink. Devices that
        bluetoothd creates during discovery (Paired=false) are someone else's."""
        return self.is_speaker and self.paired

    @classmethod
    def from_json(cls, data: Mapping[str, Any], t: float) -> Speaker:
        """A Speaker from its §4.2 object (a replayed log); unknown fields are ignored."""
        transport = data.get("transport")
        address = str(data.get("address", ""))
        adapter = str(data.get("adapter", ""))
        verdict = data.get("verdict")
        host = data.get("host")
        host = str(host) if host else None
        return cls(
            path=f"{host or 'replay'}/{adapter}/{address}",
            address=address,
            name=str(data.get("name") or address),
            adapter=adapter,
            paired=bool(data.get("paired", True)),
            connected=bool(data.get("connected", False)),
            is_speaker=True,
            verdict=Verdict(str(verdict))
            if verdict in Verdict._value2member_map_
            else Verdict.UNKNOWN,
            transport=Transport(
                path="",
                state=str(transport.get("state")),
                codec=transport.get("codec"),
                delay_ms=transport.get("delay_ms"),
                volume=transport.get("volume"),
            )
            if isinstance(transport, dict)
            else None,
            battery=data.get("battery"),
            media_pps=data.get("media_pps"),
            last_dropout=data.get("last_dropout"),
            period_s=data.get("period_s"),
            changed_t=t,
            host=host,
        )

    def to_json(self) -> dict[str, Any]:
        """The Speaker object of DESIGN §4.2."""
        return {
            "address": self.address,
            "name": self.name,
            "adapter": self.adapter,
            "paired": self.paired,
            "connected": self.connected,
            "verdict": self.verdict.value,
            "transport": self.transport.to_json() if self.transport else None,
            "battery": self.battery,
            "media_pps": self.media_pps,
            "last_dropout": self.last_dropout,
            "period_s": self.period_s,
        } | ({"host": self.host} if self.host is not None else {})


def host_key(host: str | None, address: str) -> str:
    """A speaker's key in a fleet of several hosts: `lab/AA:BB:…`, or the bare address on
    this machine (Speaker.key; dropouts of remote speakers are kept under it)."""
    return f"{host}/{address}" if host else address


class SourceState(StrEnum):
    """What a source (BlueZ, HCI, BLE, a replay) is doing, for the status bar and `source`
    events."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    WAITING = "waiting"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """A source's state with a human sentence (what is wrong and what to do)."""

    state: SourceState
    detail: str
    bus: str = ""


@dataclass(frozen=True, slots=True)
class FleetCounts:
    """The numbers behind the fleet line."""

    speakers: int
    connected: int
    streaming: int

    @classmethod
    def of(cls, speakers: Iterable[Speaker]) -> FleetCounts:
        """The counts of these speakers (the fleet's, or one host's): paired speakers only;
        one whose state is unknown is not counted as connected."""
        fleet = [s for s in speakers if s.in_fleet]
        return cls(
            speakers=len(fleet),
            connected=sum(1 for s in fleet if s.connected and s.verdict != Verdict.UNKNOWN),
            streaming=sum(1 for s in fleet if s.verdict == Verdict.STREAMING),
        )

    def to_json(self) -> dict[str, int]:
        return {"speakers": self.speakers, "connected": self.connected, "streaming": self.streaming}

    def line(self) -> str:
        """'3 of 5 connected speakers streaming', the fleet line of DESIGN §3."""
        noun = "speaker" if self.connected == 1 else "speakers"
        return f"{self.streaming} of {self.connected} connected {noun} streaming"


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    """Everything the UI shows at one instant; rendered on a timer, never mutated."""

    t: float
    speakers: tuple[Speaker, ...]
    adapters: tuple[Adapter, ...]
    source: SourceStatus
    counts: FleetCounts = field(default_factory=lambda: FleetCounts(0, 0, 0))
    #: Bumped on every change, so a renderer can skip identical snapshots cheaply.
    version: int = 0
    #: Dropout history per speaker address (only speakers that ever dropped).
    dropouts: Mapping[str, DropoutSummary] = field(default_factory=dict)
    #: Addresses the config expects to stream that are silent while others stream.
    expected_silent: tuple[str, ...] = ()
    #: What BLE presence scanning (`--ble`) is doing, in words; "" when it was not asked for.
    ble_status: str = ""
    #: What the live HCI source (`--hci`, `--hci-file`) is doing; "" when there is none.
    hci_status: str = ""
    #: Microphone probes: the latest one and the drift history; None before the first.
    drift: DriftSummary | None = None
    #: What a running probe is doing ("" when none runs).
    probing: str = ""
    #: Each remote host's name and status (`--host`), in the order given; () without hosts.
    hosts: tuple[tuple[str, SourceStatus], ...] = ()
    #: The last alignment of the fleet output (`align`, `A`); None before the first.
    alignment: Alignment | None = None


@dataclass(frozen=True, slots=True)
class DropoutSummary:
    """What the UI shows about one speaker's dropouts."""

    count: int
    last: float | None
    period_s: float | None
    #: 0..1; 0 when there is no period.
    confidence: float
    next_expected: float | None
    #: (start, kind, duration_s or None while still out), oldest first, at most the last 50.
    recent: tuple[tuple[float, str, float | None], ...] = ()
    #: A different period seen earlier (firmware update, new venue), if any.
    previous_period_s: float | None = None
    #: How many of `count` were of each kind (link, transport, probe): the metrics' counter.
    kinds: Mapping[str, int] = field(default_factory=dict)


#: DESIGN §1: a "professional" tight target for the offset between speakers (ms).
TIGHT_MS: Final = 15.0
#: DESIGN §1: above this offset listeners hear two speakers as an echo (ms).
ECHO_MS: Final = 40.0


def sync_word(offset_ms: float | None) -> str:
    """'tight' (≤ 15 ms), 'loose' (≤ 40 ms), 'echo' (> 40 ms), or 'not heard' (no offset)."""
    if offset_ms is None:
        return "not heard"
    size = abs(offset_ms)
    if size <= TIGHT_MS:
        return "tight"
    return "loose" if size <= ECHO_MS else "echo"


@dataclass(frozen=True, slots=True)
class SpeakerProbe:
    """What one probe heard of one speaker (DESIGN §4.2 `probe` results)."""

    address: str
    name: str
    detected: bool
    #: Where its probe's direct path starts in the recording (ms).
    arrival_ms: float | None = None
    #: Arrival minus the moment its probe left the host: the speaker's latency (ms).
    latency_ms: float | None = None
    #: Latency minus the fleet's median latency (ms): this speaker's drift.
    offset_ms: float | None = None
    snr_db: float | None = None
    level_dbfs: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "name": self.name,
            "detected": self.detected,
            "arrival_ms": _round(self.arrival_ms, 3),
            "latency_ms": _round(self.latency_ms, 3),
            "offset_ms": _round(self.offset_ms, 3),
            "snr_db": _round(self.snr_db, 1),
            "level_dbfs": _round(self.level_dbfs, 1),
            "sync": sync_word(self.offset_ms) if self.detected else "not heard",
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SpeakerProbe:
        def number(key: str) -> float | None:
            value = data.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            return float(value)

        address = str(data.get("address", ""))
        return cls(
            address=address,
            name=str(data.get("name") or address),
            detected=bool(data.get("detected", number("arrival_ms") is not None)),
            arrival_ms=number("arrival_ms"),
            latency_ms=number("latency_ms"),
            offset_ms=number("offset_ms"),
            snr_db=number("snr_db"),
            level_dbfs=number("level_dbfs"),
        )


@dataclass(frozen=True, slots=True)
class DriftSummary:
    """What the drift panel shows: the latest probe and each speaker's history."""

    #: When the latest probe ran, and what it heard.
    t: float
    results: tuple[SpeakerProbe, ...]
    #: Max minus min latency over the speakers heard (ms), None when fewer than two.
    spread_ms: float | None
    #: Address -> ((t, offset_ms), ...) oldest first, for the plot.
    history: Mapping[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)
    #: Address -> clock drift rate from repeated probes (ppm), absent until enough probes.
    drift_ppm: Mapping[str, float] = field(default_factory=dict)
    #: Where the sound came from: "microphone" or "simulated room" (the demo).
    source: str = "microphone"
    #: What went wrong with the latest probe ("" when it ran).
    problem: str = ""


@dataclass(frozen=True, slots=True)
class Alignment:
    """The last alignment of the fleet output (an `align` event that applied or removed
    delays): what the drift panel says about it and btmon_speaker_delay_seconds exports."""

    #: When it ended (Unix s).
    t: float
    #: "aligned", "not-aligned" (delays applied, spread still over target) or "reset" (every
    #: delay removed).
    result: str
    #: Address -> the delay its stage adds (whole ms); empty after a reset. A speaker left
    #: out of the alignment has none.
    delays_ms: Mapping[str, int] = field(default_factory=dict)
    spread_before_ms: float | None = None
    spread_after_ms: float | None = None
    #: Why it did not align, in words ("" when it did).
    detail: str = ""
    #: Address -> the speaker's name then.
    names: Mapping[str, str] = field(default_factory=dict)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
