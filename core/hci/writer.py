"""Write btsnoop files and build HCI packets (for tests and fixtures; DESIGN §9)."""

from __future__ import annotations

import struct
from typing import BinaryIO, Final

from core.hci.btsnoop import (
    _H4,
    DATALINK_H1,
    DATALINK_H4,
    DATALINK_MONITOR,
    DATALINKS,
    EPOCH_OFFSET_US,
    HEADER,
    MAGIC,
    MONITOR_TYPES,
    RECORD,
    VERSION,
    PacketType,
)

_H4_BY_TYPE = {kind: indicator for indicator, kind in _H4.items()}
_MON_BY_TYPE = {value: opcode for opcode, value in MONITOR_TYPES.items()}


class BtsnoopWriter:
    """Append records to a btsnoop stream in one of the three datalinks."""

    def __init__(self, stream: BinaryIO, datalink: int = DATALINK_MONITOR) -> None:
        if datalink not in DATALINKS:
            raise ValueError(f"unsupported datalink {datalink}")
        self.stream = stream
        self.datalink = datalink
        stream.write(HEADER.pack(MAGIC, VERSION, datalink))

    def write(
        self,
        kind: PacketType,
        direction: str,
        data: bytes,
        t: float,
        *,
        index: int = 0,
        drops: int = 0,
    ) -> None:
        """One HCI packet (without H4 indicator); ``direction`` "tx" = host → controller."""
        received = direction == "rx"
        if self.datalink == DATALINK_MONITOR:
            opcode = _MON_BY_TYPE[(kind, direction)]
            flags = (index << 16) | opcode
        elif self.datalink == DATALINK_H4:
            flags = int(received)
            data = bytes([_H4_BY_TYPE[kind]]) + data
        else:
            assert self.datalink == DATALINK_H1
            flags = int(received) | (2 if kind in (PacketType.COMMAND, PacketType.EVENT) else 0)
        timestamp = round(t * 1e6) + EPOCH_OFFSET_US
        self.stream.write(RECORD.pack(len(data), len(data), flags, drops, timestamp))
        self.stream.write(data)


def address_bytes(address: str) -> bytes:
    """AA:BB:CC:DD:EE:FF as HCI sends it (little-endian)."""
    return bytes(int(part, 16) for part in reversed(address.split(":")))


def event(code: int, params: bytes) -> bytes:
    return bytes([code, len(params)]) + params


def connection_complete(handle: int, address: str, status: int = 0) -> bytes:
    return event(0x03, struct.pack("<BH", status, handle) + address_bytes(address) + b"\x01\x00")


def disconnection_complete(handle: int, reason: int = 0x13) -> bytes:
    return event(0x05, struct.pack("<BHB", 0, handle, reason))


def remote_name(address: str, name: str) -> bytes:
    raw = name.encode()[:248].ljust(248, b"\0")
    return event(0x07, b"\x00" + address_bytes(address) + raw)


def l2cap(cid: int, payload: bytes) -> bytes:
    return struct.pack("<HH", len(payload), cid) + payload


def acl(handle: int, frame: bytes, *, mtu: int = 1021, start_flag: int = 0b10) -> list[bytes]:
    """ACL packets carrying one L2CAP frame, fragmented to ``mtu`` bytes."""
    packets = []
    for offset in range(0, max(len(frame), 1), mtu):
        pb = start_flag if offset == 0 else 0b01
        chunk = frame[offset : offset + mtu]
        packets.append(struct.pack("<HH", handle | (pb << 12), len(chunk)) + chunk)
    return packets


def l2cap_signal(code: int, ident: int, data: bytes) -> bytes:
    return l2cap(0x0001, struct.pack("<BBH", code, ident, len(data)) + data)


def connection_request(ident: int, psm: int, source_cid: int) -> bytes:
    return l2cap_signal(0x02, ident, struct.pack("<HH", psm, source_cid))


def connection_response(ident: int, dest_cid: int, source_cid: int, result: int = 0) -> bytes:
    return l2cap_signal(0x03, ident, struct.pack("<HHHH", dest_cid, source_cid, result, 0))


def disconnection_request(ident: int, dest_cid: int, source_cid: int) -> bytes:
    return l2cap_signal(0x06, ident, struct.pack("<HH", dest_cid, source_cid))


def avdtp(label: int, message: int, signal: int, params: bytes = b"") -> bytes:
    """A single-packet AVDTP signal; ``message`` 0 command, 2 accept, 3 reject."""
    return bytes([(label << 4) | message, signal]) + params


def set_configuration(label: int, codec: int, info: bytes, acp: int = 1, int_: int = 1) -> bytes:
    caps = b"\x01\x00" + bytes([0x07, 2 + len(info), 0x00, codec]) + info
    return avdtp(label, 0, 0x03, bytes([acp << 2, int_ << 2]) + caps)


#: struct hci_mon_hdr (linux/net/bluetooth/hci_mon.h): opcode, adapter index, payload length (LE16).
MONITOR_HEADER: Final = struct.Struct("<HHH")


def monitor_datagram(kind: PacketType, direction: str, data: bytes, *, index: int = 0) -> bytes:
    """One datagram as the HCI monitor socket delivers it: hci_mon_hdr + the HCI packet."""
    opcode = _MON_BY_TYPE[(kind, direction)]
    return MONITOR_HEADER.pack(opcode, index, len(data)) + data
