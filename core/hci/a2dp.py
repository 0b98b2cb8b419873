"""The A2DP truth of a btsnoop capture, per remote device (DESIGN §4.5, §9).

HCI Connection Complete gives handle → address (Remote Name Request Complete the name); ACL
fragments are reassembled per handle and direction into L2CAP frames; L2CAP Connection
Request/Response for PSM 0x19 opens AVDTP channels (the first on a link carries signalling,
the next ones media); AVDTP Set Configuration gives the codec and accepted Starts count as
``streams``. A media packet is one complete L2CAP frame on a media channel; ``tx`` = host →
device. Malformed packets are counted and reported as warnings, never raised.
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
from core.hci.btsnoop import DATALINKS, BtsnoopError, BtsnoopReader, PacketType, Record

PSM_AVDTP: Final = 0x0019
CID_SIGNALLING: Final = 0x0001
# HCI events.
EVT_CONNECTION_COMPLETE: Final = 0x03
EVT_DISCONNECTION_COMPLETE: Final = 0x05
EVT_REMOTE_NAME: Final = 0x07
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
MEDIA_CODEC: Final = 0x07
#: A device is "connected but starved" below this share of the busiest device's packets.
STARVED_SHARE: Final = 0.05
_OTHER: Final = {"tx": "rx", "rx": "tx"}


@dataclass
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


@dataclass
class Channel:
    media: bool
    local_cid: int
    remote_cid: int


@dataclass
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

    def has_signalling(self) -> bool:
        return any(not channel.media for channel in self.channels.values())


class A2dpAnalyzer:
    """Feed records; read :attr:`devices` (by address) and :meth:`warnings`."""

    def __init__(self) -> None:
        self.devices: dict[str, Device] = {}
        self.names: dict[str, str] = {}
        self.links: dict[tuple[int, int], Link] = {}
        self.problems: Counter[str] = Counter()

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
                address = _address(params[3:9])
                self.links[(record.index, handle & 0x0FFF)] = Link(self.device(address))
        elif code == EVT_DISCONNECTION_COMPLETE and len(params) >= 4:
            status, handle = struct.unpack_from("<BH", params)
            if status == 0:
                link = self.links.pop((record.index, handle & 0x0FFF), None)
                if link is not None:
                    link.device.last_media = None
        elif code == EVT_REMOTE_NAME and len(params) >= 7 and params[0] == 0:
            address = _address(params[1:7])
            name = params[7:].split(b"\0", 1)[0].decode("utf-8", "replace")
            if name:
                self.names[address] = name
                if address in self.devices:
                    self.devices[address].name = name

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
            elif code == L2CAP_DISCONN_REQ and len(body) >= 4:
                dest, source = struct.unpack_from("<HH", body)
                # The sender's destination is the receiver's CID.
                local = dest if direction == "rx" else source
                remote = source if direction == "rx" else dest
                link.channels.pop(("rx", local), None)
                link.channels.pop(("tx", remote), None)

    # --- AVDTP --------------------------------------------------------------------------

    def _avdtp(self, link: Link, direction: str, data: bytes) -> None:
        if len(data) < 2:
            return
        label, packet, message = data[0] >> 4, (data[0] >> 2) & 0x3, data[0] & 0x3
        if packet == 0b00:  # single packet
            signal, params = data[1] & 0x3F, data[2:]
        elif packet == 0b01 and len(data) >= 3:  # start of a fragmented signal
            signal, params = data[2] & 0x3F, data[3:]
        else:
            return
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
        first = last = None
        deadline = None if time_limit_s is None else time.monotonic() + time_limit_s
        warnings: list[str] = []
        try:
            for record in reader:
                if first is None:
                    first = record.time
                last = record.time
                analyzer.feed(record)
                if deadline is not None and time.monotonic() > deadline:
                    warnings.append(f"stopped after {time_limit_s:g} s of reading")
                    break
        except OSError as exc:
            warnings.append(f"read error after {reader.records} records: {exc}")
    duration = None if first is None or last is None else round(last - first, 6)
    return {
        "file": str(path),
        "datalink": reader.datalink,
        "records": reader.records,
        "duration_s": duration,
        "devices": [d.to_json() for d in analyzer.devices.values()],
        "warnings": reader.warnings + warnings + analyzer.warnings(),
        "starved": sorted(starved(analyzer.devices.values())),
    }


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
