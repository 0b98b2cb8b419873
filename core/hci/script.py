"""Scripted A2DP sessions written as btsnoop records, with the truth known in advance.

One builder serves the offline tests, the live-source tests and the demo's simulated HCI source
(core.sim.hci_sim): connect, open the AVDTP channels, configure a codec, start, send media,
suspend, close, disconnect, each as the HCI packets a real host and speaker exchange.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from core.hci import writer as w
from core.hci.btsnoop import DATALINK_MONITOR, PacketType
from core.hci.writer import BtsnoopWriter

#: An arbitrary start time for scripts (Unix s, 2026-11-27).
T0: Final = 1_795_772_900.0
#: SBC 44.1 kHz joint stereo, 16 blocks, 8 subbands, loudness, bitpool 2–53 (A2DP spec §4.3).
SBC_INFO: Final = bytes([0x21, 0x15, 2, 53])
#: AAC MPEG-2 LC, 44.1 kHz, stereo, VBR, 320 kbit/s (A2DP spec §4.5).
AAC_INFO: Final = bytes([0x80, 0x01, 0x8C, 0x84, 0xE2, 0x00])
#: Vendor codecs: vendor id (LE32) and codec id (LE16) as BlueZ's a2dp-codecs.h names them,
#: then one configuration byte (44.1 kHz stereo for aptX family; 44.1 kHz for LDAC).
_VENDOR: Final[dict[str, tuple[int, int, int]]] = {
    "aptX": (0x004F, 0x0001, 0x22),
    "aptX HD": (0x00D7, 0x0024, 0x22),
    "aptX LL": (0x000A, 0x0002, 0x22),
    "LDAC": (0x012D, 0x00AA, 0x20),
}
#: L2CAP dynamic CIDs run from 0x0040 to 0xFFFF (Core spec Vol 3 Part A §2.1).
_FIRST_CID: Final = 0x0040
_LAST_CID: Final = 0xFFEF


def codec_config(name: str) -> tuple[int, bytes]:
    """(A2DP codec type, codec information) for a codec name as decode_codec spells it."""
    if name == "SBC":
        return 0x00, SBC_INFO
    if name == "AAC":
        return 0x02, AAC_INFO
    if name in _VENDOR:
        vendor, codec, config = _VENDOR[name]
        return 0xFF, vendor.to_bytes(4, "little") + codec.to_bytes(2, "little") + bytes([config])
    raise ValueError(f"unknown codec {name!r} (known: SBC, AAC, {', '.join(_VENDOR)})")


@dataclass
class Link:
    handle: int
    address: str
    #: CIDs as (host's local, device's remote).
    signalling: tuple[int, int] = (0, 0)
    media: tuple[int, int] = (0, 0)
    label: int = 0


@dataclass
class Session:
    """Writes a scripted capture into :attr:`stream`; :attr:`t` is the time of the next packet."""

    datalink: int = DATALINK_MONITOR
    t: float = T0
    index: int = 0
    mtu: int = 1021
    stream: io.BytesIO = field(default_factory=io.BytesIO)
    links: dict[int, Link] = field(default_factory=dict)
    ident: int = 0
    next_cid: int = _FIRST_CID

    def __post_init__(self) -> None:
        self.writer = BtsnoopWriter(self.stream, self.datalink)

    def drain(self) -> bytes:
        """The bytes written since the last drain (the header first), and forget them."""
        data = self.stream.getvalue()
        self.stream.seek(0)
        self.stream.truncate()
        return data

    # --- raw packets ---
    def tick(self, seconds: float = 0.001) -> None:
        self.t += seconds

    def event(self, data: bytes) -> None:
        self.writer.write(PacketType.EVENT, "rx", data, self.t, index=self.index)

    def command(self, data: bytes) -> None:
        self.writer.write(PacketType.COMMAND, "tx", data, self.t, index=self.index)

    def acl(self, direction: str, handle: int, frame: bytes, mtu: int | None = None) -> None:
        for packet in w.acl(handle, frame, mtu=mtu or self.mtu):
            self.writer.write(PacketType.ACL, direction, packet, self.t, index=self.index)

    # --- a session ---
    def connect(self, handle: int, address: str, name: str | None = None) -> Link:
        self.command(bytes([0x05, 0x04, 0]))  # Create Connection (body irrelevant)
        self.event(w.connection_complete(handle, address))
        if name is not None:
            self.event(w.remote_name(address, name))
        link = self.links[handle] = Link(handle, address)
        return link

    def l2cap_open(
        self, handle: int, *, host_asks: bool = True, psm: int = 0x19
    ) -> tuple[int, int]:
        self.ident = self.ident % 255 + 1
        local, remote = self.next_cid, self.next_cid + 0x10
        self.next_cid = self.next_cid + 1 if self.next_cid < _LAST_CID else _FIRST_CID
        if host_asks:
            self.acl("tx", handle, w.connection_request(self.ident, psm, local))
            self.acl("rx", handle, w.connection_response(self.ident, remote, local, result=1))
            self.acl("rx", handle, w.connection_response(self.ident, remote, local))
        else:
            self.acl("rx", handle, w.connection_request(self.ident, psm, remote))
            self.acl("tx", handle, w.connection_response(self.ident, local, remote))
        return local, remote

    def open_a2dp(self, handle: int, *, host_asks: bool = True) -> None:
        link = self.links[handle]
        link.signalling = self.l2cap_open(handle, host_asks=host_asks)

    def signal(self, handle: int, direction: str, data: bytes) -> None:
        link = self.links[handle]
        local, remote = link.signalling
        self.acl(direction, handle, w.l2cap(remote if direction == "tx" else local, data))

    def exchange(
        self, handle: int, signal: int, params: bytes = b"", *, accept: bool = True
    ) -> None:
        """Host command, device answer (accept or reject)."""
        link = self.links[handle]
        link.label = (link.label + 1) % 16
        self.signal(handle, "tx", w.avdtp(link.label, 0, signal, params))
        self.tick()
        self.signal(handle, "rx", w.avdtp(link.label, 2 if accept else 3, signal, b""))

    def configure(self, handle: int, codec: int, info: bytes, *, host_asks: bool = True) -> None:
        link = self.links[handle]
        link.label = (link.label + 1) % 16
        command = w.set_configuration(link.label, codec, info)
        self.signal(handle, "tx", command)
        self.signal(handle, "rx", w.avdtp(link.label, 2, 0x03))
        link.media = self.l2cap_open(handle, host_asks=host_asks)

    def start(self, handle: int) -> None:
        self.exchange(handle, 0x07, bytes([1 << 2]))

    def suspend(self, handle: int) -> None:
        self.exchange(handle, 0x09, bytes([1 << 2]))

    def close(self, handle: int) -> None:
        self.exchange(handle, 0x08, bytes([1 << 2]))
        link = self.links[handle]
        local, remote = link.media
        self.acl("tx", handle, w.disconnection_request(200, remote, local))

    def media(self, handle: int, size: int = 600, direction: str = "tx") -> None:
        local, remote = self.links[handle].media
        payload = bytes([0x80, 0x60]) + bytes(size - 2)
        self.acl(direction, handle, w.l2cap(remote if direction == "tx" else local, payload))

    def disconnect(self, handle: int) -> None:
        self.event(w.disconnection_complete(handle))
        del self.links[handle]

    def save(self, path: Path) -> Path:
        path.write_bytes(self.stream.getvalue())
        return path


def seed_case(datalink: int = DATALINK_MONITOR, *, mtu: int = 1021) -> Session:
    """Two speakers on one adapter: Stage Left gets 2,843 media packets, Stage Right 17."""
    s = Session(datalink, mtu=mtu)
    s.connect(0x0001, "00:1A:7D:DA:71:01", "Stage Left")
    s.connect(0x0002, "00:1A:7D:DA:71:02", "Stage Right")
    for handle, codec, info in ((1, 0x00, SBC_INFO), (2, 0x02, AAC_INFO)):
        s.open_a2dp(handle)
        s.configure(handle, codec, info)
        s.start(handle)
    for i in range(2843):
        s.tick(0.02)
        s.media(1, 700)
        if i % 167 == 0 and i // 167 < 17:
            s.media(2, 500)
    return s
