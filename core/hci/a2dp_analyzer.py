"""The A2DP truth of HCI records, fed one at a time (DESIGN §4.5, §9).

HCI Connection Complete gives handle → address (Remote Name Request Complete the name); ACL
fragments are reassembled per handle and direction into L2CAP frames; L2CAP Connection
Request/Response for PSM 0x19 opens AVDTP channels (the first on a link carries signalling,
the next ones media); AVDTP Set Configuration gives the codec and accepted Starts count as
``streams``. A media packet is one complete L2CAP frame on a media channel; ``tx`` = host →
device. LE links (LE Connection Complete, v1 and enhanced) are tracked so their handles are never
taken for BR/EDR ones, but carry no A2DP. Malformed packets are counted and reported as
warnings, never raised.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable, Collection
from typing import Any, Final

from core.hci.a2dp_model import (
    AVDTP_ABORT,
    AVDTP_ACCEPT,
    AVDTP_CLOSE,
    AVDTP_COMMAND,
    AVDTP_END_PACKET,
    AVDTP_MAX_SIGNAL,
    AVDTP_RECONFIGURE,
    AVDTP_SET_CONFIGURATION,
    AVDTP_SINGLE,
    AVDTP_START,
    AVDTP_START_PACKET,
    AVDTP_SUSPEND,
    CID_SIGNALLING,
    EVENTS_USED,
    EVT_CONNECTION_COMPLETE,
    EVT_DISCONNECTION_COMPLETE,
    EVT_LE_META,
    EVT_REMOTE_NAME,
    L2CAP_CONN_REQ,
    L2CAP_CONN_RSP,
    L2CAP_DISCONN_REQ,
    LE_CONNECTION_COMPLETE,
    MALFORMED,
    MAX_DISCONNECTIONS,
    NO_CONNECTION,
    OTHER_DIRECTION,
    PSM_AVDTP,
    REASONS,
    Channel,
    Device,
    Link,
    bd_address,
    codec_name,
)
from core.hci.btsnoop import PacketType, Record

#: ``on_media(address, direction, t)``: called once per media packet, in capture order.
MediaHook = Callable[[str, str, float], None]
#: ACL packet boundary flag of a continuation fragment (Core 5.4 Vol 4 Part E §5.4.2); every
#: other value starts an L2CAP frame.
ACL_CONTINUATION: Final = 0b01


class A2dpAnalyzer:
    """Feed records; read :attr:`devices` (by address) and :meth:`warnings`.

    ``on_media`` (address, direction, t) hears every media packet as it is counted."""

    def __init__(self, on_media: MediaHook | None = None) -> None:
        self.on_media = on_media
        self.devices: dict[str, Device] = {}
        self.names: dict[str, str] = {}
        self.links: dict[tuple[int, int], Link] = {}
        self.problems: Counter[str] = Counter()
        #: Disconnection Complete events in capture order (address, handle, reason).
        self.disconnections: list[dict[str, Any]] = []
        #: Bumped whenever links, channels, or whether a link is in the middle of an L2CAP
        #: frame, change: what the fast path of analyze() learned depends on exactly these.
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
            self.problems[MALFORMED] += 1

    # --- HCI events ---------------------------------------------------------------------

    def _event(self, record: Record) -> None:
        data = record.data
        if len(data) < 2:
            self.problems[MALFORMED] += 1
            return
        code, params = data[0], data[2 : 2 + data[1]]
        if code == EVT_CONNECTION_COMPLETE and len(params) >= 11:
            status, handle = struct.unpack_from("<BH", params)
            if status == 0 and params[9] == 0x01:  # ACL links only (0x00 = SCO)
                self._connect(record.index, handle, Link(self.device(bd_address(params[3:9]))))
        elif code == EVT_LE_META and len(params) >= 12 and params[0] in LE_CONNECTION_COMPLETE:
            status, handle = struct.unpack_from("<BH", params, 1)
            if status == 0:  # an LE peer is not an A2DP device: kept out of `devices`
                self._connect(record.index, handle, Link(Device(bd_address(params[6:12])), le=True))
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
            address = bd_address(params[1:7])
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
            self.problems[MALFORMED] += 1
            return
        head, length = struct.unpack_from("<HH", data)
        handle, boundary = head & 0x0FFF, (head >> 12) & 0x3
        link = self.links.get((record.index, handle))
        if link is None:
            self.problems[NO_CONNECTION] += 1
            return
        if link.le:
            return
        payload = data[4 : 4 + length]
        direction, partials = record.direction, link.partial
        was_reassembling = bool(partials)  # a change bumps the generation
        partial = partials.get(direction)
        if boundary != ACL_CONTINUATION:  # a start (flushable, non-flushable or complete)
            if partial:
                self.problems["incomplete L2CAP frames dropped"] += 1
            partial = partials[direction] = bytearray(payload)
        elif partial is None:
            self.problems["ACL continuation fragments without a start (dropped)"] += 1
            return
        else:
            partial += payload
        size = int.from_bytes(partial[0:2], "little") + 4 if len(partial) >= 4 else 0
        if size == 0 or len(partial) < size:
            if not was_reassembling:
                self.generation += 1
            return
        del partials[direction]
        if was_reassembling != bool(partials):
            self.generation += 1
        self._l2cap(link, direction, record.time, bytes(partial[:size]))

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
                key = (OTHER_DIRECTION[direction], ident)
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
                codec = codec_name(params[2:])
            elif signal == AVDTP_RECONFIGURE:
                codec = codec_name(params[1:])
            if len(link.commands) > 64:  # unanswered commands: keep memory bounded
                link.commands.clear()
            link.commands[(direction, label, signal)] = codec
            return
        if message != AVDTP_ACCEPT:
            return
        codec = link.commands.pop((OTHER_DIRECTION[direction], label, signal), None)
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
        if self.on_media is not None:
            self.on_media(device.address, direction, t)

    # --- what the fast path of analyze() may skip or count without feeding ---------------

    @staticmethod
    def ignores(record: Record) -> bool:
        """True when :meth:`feed` does nothing with ``record`` whatever the state: commands,
        SCO/ISO/other records, and events other than :data:`EVENTS_USED`."""
        if record.type is PacketType.EVENT:
            return len(record.data) >= 2 and record.data[0] not in EVENTS_USED
        return record.type is not PacketType.ACL

    @staticmethod
    def whole_frame(record: Record) -> tuple[int, int] | None:
        """(handle, CID) when ``record`` is one whole L2CAP frame in one ACL packet, not on the
        signalling channel: only such a record can be a media packet :meth:`feed` counts alone.
        """
        data = record.data
        if record.type is not PacketType.ACL or len(data) < 8:
            return None
        head, acl_length, l2cap_length, cid = struct.unpack_from("<HHHH", data)
        if (
            (head >> 12) & 0x3 == ACL_CONTINUATION
            or cid == CID_SIGNALLING
            or not len(data) - 4 == acl_length == l2cap_length + 4
        ):
            return None
        return head & 0x0FFF, cid

    def media_device(self, record: Record, frame: tuple[int, int]) -> Device | None:
        """The device when :meth:`feed` would only count ``record``, a :meth:`whole_frame`
        ``frame``, as one media packet of ``len(record.data) - 8`` bytes: it is on a media
        channel of a BR/EDR link that is reassembling nothing."""
        handle, cid = frame
        link = self.links.get((record.index, handle))
        if link is None or link.le or link.partial:
            return None
        channel = link.channels.get((record.direction, cid))
        return link.device if channel is not None and channel.media else None

    def warnings(self, leave_out: Collection[str] = ()) -> list[str]:
        """One line per kind of problem, with its count; ``leave_out``: problem keys (such as
        :data:`NO_CONNECTION`) a caller reports in its own words."""
        return [
            f"{what}: {count}"
            for what, count in sorted(self.problems.items())
            if what not in leave_out
        ]
