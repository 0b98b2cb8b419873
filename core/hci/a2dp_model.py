"""The values and protocol numbers of the A2DP analysis (DESIGN §4.5, §9): per-device counts,
L2CAP channels and links, the HCI/L2CAP/AVDTP codes they are read from, and the starved verdict.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from core.bluez.defs import decode_codec

PSM_AVDTP: Final = 0x0019
CID_SIGNALLING: Final = 0x0001
# HCI events.
EVT_CONNECTION_COMPLETE: Final = 0x03
EVT_DISCONNECTION_COMPLETE: Final = 0x05
EVT_REMOTE_NAME: Final = 0x07
EVT_LE_META: Final = 0x3E
#: LE Meta subevents that open a link: LE Connection Complete, Enhanced v1 and v2 (Core 5.4
#: Vol 4 Part E §7.7.65.1/.10/.10 v2); all start status, handle, role, address type, address.
LE_CONNECTION_COMPLETE: Final = frozenset({0x01, 0x0A, 0x29})
#: Disconnection reasons (Core 5.4 Vol 1 Part F §1.3, the error codes seen on A2DP links).
REASONS: Final[dict[int, str]] = {
    0x05: "Authentication Failure",
    0x08: "Connection Timeout",
    0x13: "Remote User Terminated Connection",
    0x14: "Remote Device Terminated Connection due to Low Resources",
    0x15: "Remote Device Terminated Connection due to Power Off",
    0x16: "Connection Terminated By Local Host",
    0x1F: "Unspecified Error",
    0x22: "LMP/LL Response Timeout",
    0x28: "Instant Passed",
    0x3B: "Unacceptable Connection Parameters",
    0x3D: "Connection Terminated due to MIC Failure",
    0x3E: "Connection Failed to be Established",
}
# L2CAP signalling codes.
L2CAP_CONN_REQ: Final = 0x02
L2CAP_CONN_RSP: Final = 0x03
L2CAP_DISCONN_REQ: Final = 0x06
# AVDTP signal ids and message types.
AVDTP_SET_CONFIGURATION: Final = 0x03
AVDTP_RECONFIGURE: Final = 0x05
AVDTP_START: Final = 0x07
AVDTP_CLOSE: Final = 0x08
AVDTP_SUSPEND: Final = 0x09
AVDTP_ABORT: Final = 0x0A
AVDTP_COMMAND: Final = 0
AVDTP_ACCEPT: Final = 2
# AVDTP packet types (AVDTP 1.3 §8.4.2): one packet, or start/continue/end of a fragmented one.
AVDTP_SINGLE: Final = 0b00
AVDTP_START_PACKET: Final = 0b01
AVDTP_END_PACKET: Final = 0b11
#: A fragmented AVDTP signal longer than this is taken as corruption (the spec's signals are
#: far smaller; bounds memory on garbage).
AVDTP_MAX_SIGNAL: Final = 1 << 16
MEDIA_CODEC: Final = 0x07
#: Disconnections kept (a live analyzer runs for days; a capture rarely has more).
MAX_DISCONNECTIONS: Final = 1000
#: A device is "connected but starved" below this share of the busiest device's packets.
STARVED_SHARE: Final = 0.05
OTHER_DIRECTION: Final = {"tx": "rx", "rx": "tx"}

#: Events the analysis reads (Connection Complete, Disconnection Complete, Remote Name Request
#: Complete, LE Meta); every other event is ignored whatever the state.
EVENTS_USED: Final = frozenset(
    {EVT_CONNECTION_COMPLETE, EVT_DISCONNECTION_COMPLETE, EVT_REMOTE_NAME, EVT_LE_META}
)
#: Problem key (A2dpAnalyzer.problems) of ACL packets on a handle no Connection Complete opened.
NO_CONNECTION: Final = "ACL packets on a handle without Connection Complete (not counted)"
#: Problem key of packets too short for their HCI header.
MALFORMED: Final = "malformed packets skipped"


@dataclass(slots=True)
class Device:
    address: str
    name: str | None = None
    codec: str | None = None
    media_packets_tx: int = 0
    media_packets_rx: int = 0
    media_bytes_tx: int = 0
    streams: int = 0
    max_gap_s: float | None = None
    #: An AVDTP signalling channel was seen: the device speaks A2DP.
    avdtp: bool = False
    last_media: float | None = None

    @property
    def media_packets(self) -> int:
        return self.media_packets_tx + self.media_packets_rx

    def to_json(self) -> dict[str, Any]:
        gap = None if self.max_gap_s is None else round(self.max_gap_s * 1000, 3)
        return {
            "address": self.address,
            "name": self.name,
            "codec": self.codec,
            "media_packets_tx": self.media_packets_tx,
            "media_packets_rx": self.media_packets_rx,
            "media_bytes_tx": self.media_bytes_tx,
            "streams": self.streams,
            "max_gap_ms": gap,
        }


@dataclass(slots=True)
class Channel:
    media: bool
    local_cid: int
    remote_cid: int


@dataclass(slots=True)
class Link:
    device: Device
    #: (direction, frame CID) -> channel: tx frames carry the remote CID, rx the local one.
    channels: dict[tuple[str, int], Channel] = field(default_factory=dict)
    #: (direction of the request, identifier) -> (psm, source CID).
    pending: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    #: (direction of the command, label, signal) -> codec name carried (Set Configuration).
    commands: dict[tuple[str, int, int], str | None] = field(default_factory=dict)
    #: direction -> the L2CAP frame being reassembled.
    partial: dict[str, bytearray] = field(default_factory=dict)
    #: direction -> (label, message type, signal, parameters so far) of a fragmented signal.
    fragments: dict[str, tuple[int, int, int, bytearray]] = field(default_factory=dict)
    #: An LE link: its handle is known, but A2DP never runs on it.
    le: bool = False

    def has_signalling(self) -> bool:
        return any(not channel.media for channel in self.channels.values())


def bd_address(raw: bytes) -> str:
    return ":".join(f"{b:02X}" for b in reversed(raw))


def codec_name(capabilities: bytes) -> str | None:
    """The codec named in AVDTP service capabilities, or None when there is none."""
    offset = 0
    while offset + 2 <= len(capabilities):
        category, length = capabilities[offset], capabilities[offset + 1]
        body = capabilities[offset + 2 : offset + 2 + length]
        offset += 2 + length
        if category == MEDIA_CODEC and len(body) >= 2:
            return decode_codec(body[1], bytes(body[2:]))
    return None


def starved(devices: Iterable[Device]) -> set[str]:
    """Addresses of A2DP devices that got < 5 % of the busiest device's media packets."""
    a2dp = [d for d in devices if d.avdtp or d.streams or d.media_packets]
    busiest = max((d.media_packets for d in a2dp), default=0)
    if busiest == 0 or len(a2dp) < 2:
        return set()
    return {d.address for d in a2dp if d.media_packets < STARVED_SHARE * busiest}
