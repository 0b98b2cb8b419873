"""The A2DP truth of a btsnoop capture, per remote device (DESIGN §4.5, §9).

HCI Connection Complete gives handle → address (Remote Name Request Complete the name); ACL
fragments are reassembled per handle and direction into L2CAP frames; L2CAP Connection
Request/Response for PSM 0x19 opens AVDTP channels (the first on a link carries signalling,
the next ones media); AVDTP Set Configuration gives the codec and accepted Starts count as
``streams``. A media packet is one complete L2CAP frame on a media channel; ``tx`` = host →
device. LE links (LE Connection Complete, v1 and enhanced) are tracked so their handles are never
taken for BR/EDR ones, but carry no A2DP. Malformed packets are counted and reported as
warnings, never raised. :func:`analyze` counts the common case (a whole media frame in one ACL
packet) straight from the read buffer and hands every other record to :meth:`A2dpAnalyzer.feed`.
"""

from __future__ import annotations

import struct
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from core.bluez.defs import decode_codec
from core.hci.btsnoop import (
    DATALINK_H4,
    DATALINK_MONITOR,
    DATALINKS,
    EPOCH_OFFSET_US,
    MON_ACL_RX,
    MON_ACL_TX,
    RECORD,
    BtsnoopError,
    BtsnoopReader,
    PacketType,
    Record,
)

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
_OTHER: Final = {"tx": "rx", "rx": "tx"}


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


class A2dpAnalyzer:
    """Feed records; read :attr:`devices` (by address) and :meth:`warnings`."""

    def __init__(self) -> None:
        self.devices: dict[str, Device] = {}
        self.names: dict[str, str] = {}
        self.links: dict[tuple[int, int], Link] = {}
        self.problems: Counter[str] = Counter()
        #: Disconnection Complete events in capture order (address, handle, reason).
        self.disconnections: list[dict[str, Any]] = []
        #: Bumped whenever links or channels change (the fast path re-reads them then).
        self.generation = 0

    def device(self, address: str) -> Device:
        found = self.devices.get(address)
        if found is None:
            found = self.devices[address] = Device(address, self.names.get(address))
        return found

    def feed(self, record: Record) -> None:
        try:
            if record.type is PacketType.EVENT:
                self._event(record)
            elif record.type is PacketType.ACL:
                self._acl(record)
        except (IndexError, struct.error, ValueError):
            self.problems["malformed packets skipped"] += 1

    # --- HCI events ---------------------------------------------------------------------

    def _event(self, record: Record) -> None:
        data = record.data
        if len(data) < 2:
            self.problems["malformed packets skipped"] += 1
            return
        code, params = data[0], data[2 : 2 + data[1]]
        if code == EVT_CONNECTION_COMPLETE and len(params) >= 11:
            status, handle = struct.unpack_from("<BH", params)
            if status == 0 and params[9] == 0x01:  # ACL links only (0x00 = SCO)
                self._connect(record.index, handle, Link(self.device(_address(params[3:9]))))
        elif code == EVT_LE_META and len(params) >= 12 and params[0] in LE_CONNECTION_COMPLETE:
            status, handle = struct.unpack_from("<BH", params, 1)
            if status == 0:  # an LE peer is not an A2DP device: kept out of `devices`
                self._connect(record.index, handle, Link(Device(_address(params[6:12])), le=True))
        elif code == EVT_DISCONNECTION_COMPLETE and len(params) >= 4:
            status, handle, reason = struct.unpack_from("<BHB", params)
            if status == 0:
                link = self.links.pop((record.index, handle & 0x0FFF), None)
                self.generation += 1
                if link is not None:
                    link.device.last_media = None
                    self.disconnections.append(
                        {
                            "address": link.device.address,
                            "handle": handle & 0x0FFF,
                            "link": "LE" if link.le else "BR/EDR",
                            "reason": reason,
                            "reason_text": REASONS.get(reason, f"error 0x{reason:02x}"),
                        }
                    )
                    del self.disconnections[:-MAX_DISCONNECTIONS]
        elif code == EVT_REMOTE_NAME and len(params) >= 7 and params[0] == 0:
            address = _address(params[1:7])
            name = params[7:].split(b"\0", 1)[0].decode("utf-8", "replace")
            if name:
                self.names[address] = name
                if address in self.devices:
                    self.devices[address].name = name

    def _connect(self, index: int, handle: int, link: Link) -> None:
        self.links[(index, handle & 0x0FFF)] = link
        self.generation += 1

    # --- ACL and L2CAP ------------------------------------------------------------------

    def _acl(self, record: Record) -> None:
        data = record.data
        if len(data) < 4:
            self.problems["malformed packets skipped"] += 1
            return
        head, length = struct.unpack_from("<HH", data)
        handle, boundary = head & 0x0FFF, (head >> 12) & 0x3
        link = self.links.get((record.index, handle))
        if link is None:
            self.problems["ACL packets on a handle without Connection Complete (not counted)"] += 1
            return
        if link.le:
            return
        payload = data[4 : 4 + length]
        direction = record.direction
        partial = link.partial.get(direction)
        if boundary != 0b01:  # a start (flushable, non-flushable or complete)
            if partial:
                self.problems["incomplete L2CAP frames dropped"] += 1
            partial = link.partial[direction] = bytearray(payload)
        elif partial is None:
            self.problems["ACL continuation fragments without a start (dropped)"] += 1
            return
        else:
            partial += payload
        if len(partial) < 4:
            return
        size = int.from_bytes(partial[0:2], "little") + 4
        if len(partial) < size:
            return
        frame = bytes(partial[:size])
        del link.partial[direction]
        self._l2cap(link, direction, record.time, frame)

    def _l2cap(self, link: Link, direction: str, t: float, frame: bytes) -> None:
        cid = int.from_bytes(frame[2:4], "little")
        payload = frame[4:]
        if cid == CID_SIGNALLING:
            self._signalling(link, direction, payload)
            return
        channel = link.channels.get((direction, cid))
        if channel is None:
            return
        if channel.media:
            self._media(link.device, direction, t, len(payload))
        else:
            self._avdtp(link, direction, payload)

    def _signalling(self, link: Link, direction: str, data: bytes) -> None:
        offset = 0
        while offset + 4 <= len(data):
            code, ident, length = struct.unpack_from("<BBH", data, offset)
            body = data[offset + 4 : offset + 4 + length]
            offset += 4 + length
            if code == L2CAP_CONN_REQ and len(body) >= 4:
                psm, source = struct.unpack_from("<HH", body)
                link.pending[(direction, ident)] = (psm, source)
            elif code == L2CAP_CONN_RSP and len(body) >= 6:
                dest, source, result = struct.unpack_from("<HHH", body)
                key = (_OTHER[direction], ident)
                if result == 1:  # pending: a final response follows
                    continue
                request = link.pending.pop(key, None)
                if request is None or result != 0 or request[0] != PSM_AVDTP:
                    continue
                if direction == "rx":  # the host asked: its CID is the source
                    channel = Channel(link.has_signalling(), source, dest)
                else:  # the device asked: the host's CID is in the response
                    channel = Channel(link.has_signalling(), dest, source)
                if not channel.media:
                    link.device.avdtp = True
                link.channels[("tx", channel.remote_cid)] = channel
                link.channels[("rx", channel.local_cid)] = channel
                self.generation += 1
            elif code == L2CAP_DISCONN_REQ and len(body) >= 4:
                dest, source = struct.unpack_from("<HH", body)
                # The sender's destination is the receiver's CID.
                local = dest if direction == "rx" else source
                remote = source if direction == "rx" else dest
                link.channels.pop(("rx", local), None)
                link.channels.pop(("tx", remote), None)
                self.generation += 1

    # --- AVDTP --------------------------------------------------------------------------

    def _avdtp(self, link: Link, direction: str, data: bytes) -> None:
        if len(data) < 2:
            return
        label, packet, message = data[0] >> 4, (data[0] >> 2) & 0x3, data[0] & 0x3
        if packet == AVDTP_SINGLE:
            self._signal(link, direction, label, message, data[1] & 0x3F, data[2:])
            return
        fragments = link.fragments
        if packet == AVDTP_START_PACKET:  # then: number of packets, signal id, parameters
            if direction in fragments:
                self.problems["fragmented AVDTP signals cut short (dropped)"] += 1
            if len(data) >= 3:
                fragments[direction] = (label, message, data[2] & 0x3F, bytearray(data[3:]))
            return
        pending = fragments.get(direction)
        if pending is None or pending[0] != label:
            self.problems["AVDTP continue/end packets without a start (dropped)"] += 1
            return
        pending[3].extend(data[1:])
        if packet == AVDTP_END_PACKET:
            del fragments[direction]
            self._signal(link, direction, label, pending[1], pending[2], bytes(pending[3]))
        elif len(pending[3]) > AVDTP_MAX_SIGNAL:
            del fragments[direction]
            self.problems["fragmented AVDTP signals cut short (dropped)"] += 1

    def _signal(
        self, link: Link, direction: str, label: int, message: int, signal: int, params: bytes
    ) -> None:
        device = link.device
        if message == AVDTP_COMMAND:
            codec = None
            if signal == AVDTP_SET_CONFIGURATION:
                codec = _codec(params[2:])
            elif signal == AVDTP_RECONFIGURE:
                codec = _codec(params[1:])
            if len(link.commands) > 64:  # unanswered commands: keep memory bounded
                link.commands.clear()
            link.commands[(direction, label, signal)] = codec
            return
        if message != AVDTP_ACCEPT:
            return
        codec = link.commands.pop((_OTHER[direction], label, signal), None)
        if signal in (AVDTP_SET_CONFIGURATION, AVDTP_RECONFIGURE) and codec:
            device.codec = codec
        elif signal == AVDTP_START:
            device.streams += 1
            device.last_media = None
        elif signal in (AVDTP_SUSPEND, AVDTP_CLOSE, AVDTP_ABORT):
            device.last_media = None

    def _media(self, device: Device, direction: str, t: float, size: int) -> None:
        if direction == "tx":
            device.media_packets_tx += 1
            device.media_bytes_tx += size
        else:
            device.media_packets_rx += 1
        if device.last_media is not None:
            gap = t - device.last_media
            if device.max_gap_s is None or gap > device.max_gap_s:
                device.max_gap_s = gap
        device.last_media = t

    def warnings(self) -> list[str]:
        return [f"{what}: {count}" for what, count in sorted(self.problems.items())]


def _address(raw: bytes) -> str:
    return ":".join(f"{b:02X}" for b in reversed(raw))


def _codec(capabilities: bytes) -> str | None:
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


def analyze(path: Path, *, time_limit_s: float | None = None) -> dict[str, Any]:
    """The §4.5 JSON for one capture. Raises BtsnoopError for input that is not a capture.

    ``time_limit_s`` stops reading (with a warning) after that much wall-clock time."""
    try:
        stream = path.open("rb")
    except FileNotFoundError:
        raise BtsnoopError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BtsnoopError(f"{path}: is a directory, not a btsnoop file") from None
    except OSError as exc:
        raise BtsnoopError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with stream:
        try:
            reader = BtsnoopReader(stream)
        except BtsnoopError as exc:
            raise BtsnoopError(f"{path}: {exc}") from None
        except OSError as exc:
            raise BtsnoopError(f"{path}: cannot read: {exc.strerror or exc}") from None
        analyzer = A2dpAnalyzer()
        warnings: list[str] = []
        try:
            span = _scan(reader, analyzer, time_limit_s, warnings)
        except OSError as exc:
            span = None
            warnings.append(f"read error after {reader.records} records: {exc}")
    duration = None if span is None else round((span[1] - span[0]) / 1e6, 6)
    return {
        "file": str(path),
        "datalink": reader.datalink,
        "records": reader.records,
        "duration_s": duration,
        "devices": [d.to_json() for d in analyzer.devices.values()],
        "disconnections": analyzer.disconnections,
        "warnings": reader.warnings + warnings + analyzer.warnings(),
        "starved": sorted(starved(analyzer.devices.values())),
    }


#: ACL header (handle+flags, length) followed by the L2CAP header (length, CID).
_ACL_L2CAP: Final = struct.Struct("<HHHH")
#: Packet boundary flags that start an L2CAP frame on BR/EDR (Core Vol 4 Part E §5.4.2).
_STARTS: Final = (0b00, 0b10)


def _media_keys(analyzer: A2dpAnalyzer, datalink: int) -> dict[tuple[int, int, int], Any]:
    """(record flags, ACL handle word, L2CAP CID) of media frames -> (device, tx, the link's
    frames being reassembled)."""
    keys: dict[tuple[int, int, int], Any] = {}
    for (index, handle), link in analyzer.links.items():
        for (direction, cid), channel in link.channels.items():
            if not channel.media or link.le:
                continue
            tx = direction == "tx"
            if datalink == DATALINK_MONITOR:
                flags = (index << 16) | (MON_ACL_TX if tx else MON_ACL_RX)
            else:  # H4 (the indicator byte joins the flags) or H1: bit 0 = received
                flags = (0 if tx else 1) | (0x200 if datalink == DATALINK_H4 else 0)
            for boundary in _STARTS:
                keys[(flags, handle | (boundary << 12), cid)] = (link.device, tx, link.partial)
    return keys


def _scan(
    reader: BtsnoopReader,
    analyzer: A2dpAnalyzer,
    time_limit_s: float | None,
    warnings: list[str],
) -> tuple[int, int] | None:
    """Feed the whole capture; returns the first and last timestamps (µs), None when empty.

    A record that is one whole L2CAP frame on a known media channel, with nothing being
    reassembled on its link, is counted here exactly as :meth:`A2dpAnalyzer._media` would;
    every other record goes through :meth:`A2dpAnalyzer.feed`."""
    h4 = reader.datalink == DATALINK_H4
    offset = RECORD.size + (1 if h4 else 0)
    shortest = offset - RECORD.size + 8  # ACL and L2CAP headers
    overhead = offset - RECORD.size + 4  # H4 indicator and ACL header
    header = _ACL_L2CAP.unpack_from
    keys = _media_keys(analyzer, reader.datalink)
    generation = analyzer.generation
    deadline = None if time_limit_s is None else time.monotonic() + time_limit_s
    first = timestamp = None
    for buffer, start, included, flags, timestamp in reader.raw():
        if first is None:
            first = timestamp
        if included >= shortest:
            handle, acl_length, l2cap_length, cid = header(buffer, start + offset)
            if h4:  # the indicator byte is part of the key
                hit = keys.get((flags | (buffer[start + RECORD.size] << 8), handle, cid))
            else:
                hit = keys.get((flags, handle, cid))
            if (
                hit is not None
                and not hit[2]
                and acl_length == l2cap_length + 4
                and included == overhead + acl_length
            ):  # the body of A2dpAnalyzer._media, inlined: this is the hot path
                device = hit[0]
                t = (timestamp - EPOCH_OFFSET_US) / 1e6
                if hit[1]:
                    device.media_packets_tx += 1
                    device.media_bytes_tx += l2cap_length
                else:
                    device.media_packets_rx += 1
                last = device.last_media
                if last is not None and (device.max_gap_s is None or t - last > device.max_gap_s):
                    device.max_gap_s = t - last
                device.last_media = t
                continue
        analyzer.feed(reader.record(buffer, start, flags, timestamp))
        if analyzer.generation != generation:
            keys, generation = _media_keys(analyzer, reader.datalink), analyzer.generation
        if deadline is not None and time.monotonic() > deadline:
            warnings.append(f"stopped after {time_limit_s:g} s of reading")
            break
    if first is None or timestamp is None:
        return None
    return first, timestamp


def snoop_table(result: dict[str, Any]) -> str:
    """The capture in words: one line per device, with the starved verdict."""
    duration = result["duration_s"]
    span = "-" if duration is None else f"{duration:.1f} s"
    lines = [
        f"{result['file']}: {DATALINKS.get(result['datalink'], '?')} "
        f"(datalink {result['datalink']}), {result['records']} records, {span}"
    ]
    devices = result["devices"]
    if not devices:
        lines.append("no connections in the capture")
        return "\n".join(lines)
    hungry = set(result.get("starved", ()))
    lines.append(
        f"{'address':17} {'name':18} {'codec':8} {'media tx':>8} {'rx':>5} {'MB tx':>7} "
        f"{'starts':>6} {'max gap':>8}  verdict"
    )
    for row in devices:
        gap = "-" if row["max_gap_ms"] is None else f"{row['max_gap_ms']:.0f} ms"
        media = row["media_packets_tx"] + row["media_packets_rx"]
        if row["address"] in hungry:
            verdict = "connected but starved"
        elif media:
            verdict = "streamed"
        else:
            verdict = "no media"
        name = (row["name"] or "")[:18]
        lines.append(
            f"{row['address']:17} {name:18} {row['codec'] or '-':8} "
            f"{row['media_packets_tx']:>8} {row['media_packets_rx']:>5} "
            f"{row['media_bytes_tx'] / 1e6:>7.2f} {row['streams']:>6} {gap:>8}  {verdict}"
        )
    return "\n".join(lines)
