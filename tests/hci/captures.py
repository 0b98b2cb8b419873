"""Captures with known truth and the two reference readers (tshark, `btmon -a`) for them.

The cross-check test and bench/hci_speed.py share these: every scenario is a scripted capture
(tests/hci/session.py) whose counts are known in advance, and the reference functions turn what
tshark and btmon print into the same per-device quantities that `snoop` reports.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from core.bluez.defs import decode_codec
from core.hci import writer as w
from core.hci.btsnoop import DATALINK_H1, DATALINK_H4, DATALINK_MONITOR
from tests.hci.session import AAC_INFO, SBC_INFO, Session, seed_case

ROOT: Final = Path(__file__).resolve().parents[2]
#: Where `make btmon` unpacks btmon when the bluez package is not installed (Makefile).
LOCAL_BTMON: Final = ROOT / ".tools" / "bin" / "btmon"
LEFT, RIGHT = "00:1A:7D:DA:71:01", "00:1A:7D:DA:71:02"
LE_PEER, LE_PEER_2 = "5C:F3:70:A1:B2:C3", "5C:F3:70:A1:B2:C4"


def btmon_path() -> str | None:
    """btmon on PATH, else the project-local copy (`make btmon`), else None."""
    found = shutil.which("btmon")
    if found is None and LOCAL_BTMON.exists():
        found = str(LOCAL_BTMON)
    return found


# --- scenarios ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scenario:
    """A scripted capture. ``btmon_exact``: no frames go to a closed channel's CID (btmon -a
    does not follow L2CAP disconnection, so there it counts more than tshark and snoop)."""

    name: str
    build: Callable[[], Session]
    btmon_exact: bool = True


def _stream(s: Session, handle: int, address: str, codec: int, info: bytes) -> None:
    s.connect(handle, address, f"speaker {handle}")
    s.open_a2dp(handle)
    s.configure(handle, codec, info)
    s.start(handle)


def interleaved() -> Session:
    """Two handles, both directions, ACL fragments of four frames interleaved."""
    s = Session(mtu=300)
    for handle, address in ((1, LEFT), (2, RIGHT)):
        _stream(s, handle, address, 0x00, SBC_INFO)
    for _ in range(20):
        s.tick(0.01)
        for handle in (1, 2):
            link = s.links[handle]
            tx = w.acl(handle, w.l2cap(link.media[1], bytes(900)), mtu=300)
            rx = w.acl(handle, w.l2cap(link.media[0], bytes(450)), mtu=100)
            for step in range(max(len(tx), len(rx))):
                for direction, packets in (("tx", tx), ("rx", rx)):
                    if step < len(packets):
                        s.writer.write(w.PacketType.ACL, direction, packets[step], s.t)
    return s


def cycles() -> Session:
    """Three Start/Suspend cycles, then a rejected Start (first failing SEID 1, error 0x31
    BAD_STATE, AVDTP 1.3 §8.15.3)."""
    s = Session()
    _stream(s, 1, LEFT, 0x02, AAC_INFO)
    for cycle in range(3):
        if cycle:
            s.start(1)
        for _ in range(100):
            s.tick(0.02)
            s.media(1)
        s.suspend(1)
        s.tick(30.0)
    s.signal(1, "tx", w.avdtp(9, 0, 0x07, bytes([1 << 2])))
    s.signal(1, "rx", w.avdtp(9, 3, 0x07, bytes([1 << 2, 0x31])))
    return s


def vendor(vendor_id: int, codec_id: int, info: bytes) -> Callable[[], Session]:
    """One speaker on a vendor codec; ``info`` = the configuration after the vendor header."""

    def build() -> Session:
        s = Session(DATALINK_H4)
        config = struct.pack("<IH", vendor_id, codec_id) + info
        _stream(s, 0x0042, LEFT, 0xFF, config)
        for _ in range(30):
            s.tick(0.02)
            s.media(0x0042, 800)
        return s

    return build


def source_rx() -> Session:
    """The speaker opens both channels and sends media (an A2DP source), H1 datalink."""
    s = Session(DATALINK_H1)
    s.connect(3, LEFT)
    s.open_a2dp(3, host_asks=False)
    s.configure(3, 0x00, SBC_INFO, host_asks=False)
    s.start(3)
    for _ in range(70):
        s.tick(0.02)
        s.media(3, 300, direction="rx")
    return s


def handle_reuse() -> Session:
    """Close (with a frame sent after the channel's disconnection), disconnect, handle reused."""
    s = Session()
    _stream(s, 1, LEFT, 0x00, SBC_INFO)
    for _ in range(10):
        s.media(1)
    s.close(1)
    s.media(1)
    s.disconnect(1)
    _stream(s, 1, RIGHT, 0x02, AAC_INFO)
    for _ in range(12):
        s.media(1)
    return s


def two_adapters() -> Session:
    """hci0 and hci1 both use handle 1 (monitor datalink only)."""
    s = Session()
    _stream(s, 1, LEFT, 0x00, SBC_INFO)
    s.media(1)
    s.index = 1
    s.links.pop(1)
    _stream(s, 1, RIGHT, 0x00, SBC_INFO)
    for _ in range(5):
        s.media(1)
    return s


def fragmented_avdtp() -> Session:
    """Set Configuration (with a long vendor codec) split into AVDTP start/continue/end packets
    in both directions, its accept fragmented too, then a single-packet Start."""
    s = Session()
    s.connect(1, LEFT)
    s.open_a2dp(1)
    link = s.links[1]
    link.label = 5
    config = struct.pack("<IH", 0x12D, 0xAA) + bytes(range(40))
    command = w.set_configuration(5, 0xFF, config)
    _signal_fragments(s, 1, "tx", command, 16)
    _signal_fragments(s, 1, "rx", w.avdtp(5, 2, 0x03, bytes(30)), 12)
    link.media = s.l2cap_open(1)
    s.start(1)
    for _ in range(25):
        s.tick(0.02)
        s.media(1, 660)
    return s


def _signal_fragments(s: Session, handle: int, direction: str, single: bytes, size: int) -> None:
    """One single-packet AVDTP signal re-sent as start/continue/end packets of ``size`` bytes."""
    label, message, signal, params = single[0] >> 4, single[0] & 3, single[1], single[2:]
    chunks = [params[i : i + size] for i in range(0, len(params), size)]
    assert len(chunks) >= 2, "a fragmented signal has a start and an end packet"
    for number, chunk in enumerate(chunks):
        if number == 0:
            head = bytes([(label << 4) | (0b01 << 2) | message, len(chunks), signal])
        else:
            packet = 0b11 if number == len(chunks) - 1 else 0b10
            head = bytes([(label << 4) | (packet << 2) | message])
        s.signal(handle, direction, head + chunk)


def le_links() -> Session:
    """LE links (Enhanced and v1 LE Connection Complete) next to a streaming BR/EDR speaker;
    an LE handle takes a BR/EDR handle's number after it disconnected, and carries ATT and
    LE signalling on CIDs that equal the BR/EDR media CIDs."""
    s = Session()
    _stream(s, 1, LEFT, 0x00, SBC_INFO)
    enhanced = struct.pack("<BBHBB", 0x0A, 0, 0x0040, 0, 1) + w.address_bytes(LE_PEER)
    s.event(w.event(0x3E, enhanced + bytes(12) + struct.pack("<HHHB", 24, 0, 72, 0)))
    media_cid = s.links[1].media[1]
    for i in range(40):
        s.tick(0.02)
        s.media(1, 700)
        s.acl("tx", 0x0040, w.l2cap(0x0004, bytes([0x52, 0x2A, 0x00]) + bytes(i % 20)))
        s.acl("rx", 0x0040, w.l2cap(media_cid, bytes(30)), mtu=27)
    s.disconnect(1)
    legacy = struct.pack("<BBHBB", 0x01, 0, 0x0001, 1, 0) + w.address_bytes(LE_PEER_2)
    s.event(w.event(0x3E, legacy + struct.pack("<HHHB", 24, 0, 72, 0)))
    for _ in range(10):
        s.acl("tx", 0x0001, w.l2cap(media_cid, bytes(500)))
        s.acl("rx", 0x0001, w.l2cap(0x0005, bytes([0x14, 1, 10, 0]) + bytes(10)))
    s.event(w.disconnection_complete(0x0001, 0x08))
    s.event(w.disconnection_complete(0x0040, 0x16))
    return s


def abort_restart() -> Session:
    """Stream, Abort, media channel released, a new configuration and a second stream."""
    s = Session()
    _stream(s, 1, LEFT, 0x00, SBC_INFO)
    for _ in range(50):
        s.tick(0.02)
        s.media(1)
    s.exchange(1, 0x0A, bytes([1 << 2]))
    local, remote = s.links[1].media
    s.acl("tx", 1, w.disconnection_request(201, remote, local))
    s.configure(1, 0x02, AAC_INFO)
    s.start(1)
    for _ in range(30):
        s.tick(0.02)
        s.media(1)
    s.event(w.disconnection_complete(1, 0x13))
    return s


def fleet(minutes: float = 0.5, speakers: int = 4, datalink: int = DATALINK_MONITOR) -> Session:
    """``speakers`` speakers streaming SBC (one AAC) at 43 frames/s with Number of Completed
    Packets events, as a phone or PC sends them; the last speaker is starved."""
    s = Session(datalink)
    for handle in range(1, speakers + 1):
        codec, info = (0x02, AAC_INFO) if handle == 2 else (0x00, SBC_INFO)
        _stream(s, handle, f"00:1A:7D:DA:72:{handle:02X}", codec, info)
    for i in range(int(minutes * 60 * 43)):
        s.tick(0.0232)  # 1024 samples of 44.1 kHz per frame
        for handle in range(1, speakers + 1):
            if handle < speakers or i % 50 == 0:
                s.media(handle, 663 if handle != 2 else 850)
        if i % 2:
            counts = b"".join(struct.pack("<HH", h, 2) for h in range(1, speakers + 1))
            s.event(w.event(0x13, bytes([speakers]) + counts))
    return s


SCENARIOS: Final[list[Scenario]] = [
    Scenario("seed-monitor", lambda: seed_case(DATALINK_MONITOR)),
    Scenario("seed-h4", lambda: seed_case(DATALINK_H4)),
    Scenario("seed-h1", lambda: seed_case(DATALINK_H1)),
    Scenario("seed-fragmented-acl", lambda: seed_case(mtu=64)),
    Scenario("seed-fragmented-acl-h4", lambda: seed_case(DATALINK_H4, mtu=100)),
    Scenario("interleaved-fragments", interleaved),
    Scenario("start-suspend-cycles", cycles),
    # Configurations as BlueZ's a2dp-codecs.h lays them out: aptX one byte (frequency,
    # channel mode), aptX HD that plus 4 reserved, aptX LL 2, LDAC 2 (frequency, mode).
    Scenario("aptx", vendor(0x4F, 0x0001, b"\x22")),
    Scenario("aptx-hd", vendor(0xD7, 0x0024, b"\x22" + bytes(4))),
    Scenario("aptx-ll", vendor(0x0A, 0x0002, b"\x22\x00")),
    Scenario("ldac", vendor(0x12D, 0x00AA, b"\x04\x01")),
    Scenario("unknown-vendor", vendor(0x1234, 0x0042, b"\x3c\x01")),
    Scenario("source-rx-h1", source_rx),
    Scenario("handle-reuse", handle_reuse, btmon_exact=False),
    Scenario("two-adapters", two_adapters),
    Scenario("fragmented-avdtp", fragmented_avdtp),
    Scenario("le-links", le_links),
    Scenario("abort-restart", abort_restart),
    Scenario("fleet-h4", lambda: fleet(0.2, datalink=DATALINK_H4)),
]


# --- tshark -------------------------------------------------------------------------------


@dataclass(slots=True)
class Reference:
    """What a reference tool says about one remote device."""

    media_packets_tx: int = 0
    media_packets_rx: int = 0
    streams: int = 0
    codec: str | None = None
    commands: dict[tuple[str, int, int], str | None] = field(default_factory=dict)


TSHARK_FIELDS: Final = (
    "bthci_acl.chandle",
    "hci_mon.adapter_id",
    "hci_mon.opcode",
    "hci_h4.direction",
    "hci_h1.direction",
    "bthci_acl.src.bd_addr",
    "bthci_acl.dst.bd_addr",
    "btavdtp.signal_id",
    "btavdtp.message_type",
    "btavdtp.transaction",
    "btavdtp.packet_type",
    "btavdtp.media_codec_audio_type",
    "btavdtp.codec.vendor.vendor_id",
    "btavdtp.codec.vendor.codec_id",
    "bthci_evt.code",
    "bthci_evt.connection_handle",
    "bthci_evt.status",
    "bthci_evt.reason",
    "_ws.malformed",
)
#: Frames the cross-check needs: AVDTP (signalling and media), Disconnection Complete, and
#: whatever tshark finds malformed (a scripted capture must have none).
TSHARK_FILTER: Final = "btavdtp || bthci_evt.code == 0x05 || _ws.malformed"


@dataclass(slots=True)
class TsharkView:
    #: Per remote address (upper case).
    devices: dict[str, Reference]
    #: (handle, reason) of every successful Disconnection Complete, in capture order.
    disconnections: list[tuple[int, int]]
    #: Frames tshark calls malformed.
    malformed: int


def tshark_command(tshark: str, path: Path) -> list[str]:
    fields = [arg for name in TSHARK_FIELDS for arg in ("-e", name)]
    return [tshark, "-r", str(path), "-Y", TSHARK_FILTER, "-T", "fields", *fields]


def tshark_view(tshark: str, path: Path) -> TsharkView:
    """Per remote address: AVDTP media frames by direction (frames without an AVDTP
    signalling header), accepted Starts, the codec of the accepted Set Configuration or
    Reconfigure; Disconnection Completes; malformed frames."""
    done = subprocess.run(
        tshark_command(tshark, path), capture_output=True, text=True, check=True, timeout=300
    )
    devices: dict[str, Reference] = defaultdict(Reference)
    disconnections = []
    malformed = 0
    for line in done.stdout.splitlines():
        row = dict(zip(TSHARK_FIELDS, line.split("\t"), strict=True))
        if row["_ws.malformed"]:
            malformed += 1
            continue
        if row["bthci_evt.code"] == "0x05":
            if row["bthci_evt.status"] not in ("", "0x00"):
                continue
            reason = row.get("bthci_evt.reason") or "0"
            disconnections.append((int(row["bthci_evt.connection_handle"], 16), int(reason, 0)))
            continue
        sent = (row["hci_mon.opcode"], row["hci_h4.direction"], row["hci_h1.direction"])
        tx = sent in (("4", "", ""), ("", "0x00", ""), ("", "", "0"))
        address = row["bthci_acl.dst.bd_addr" if tx else "bthci_acl.src.bd_addr"].upper()
        device = devices[address]
        if not row["btavdtp.packet_type"]:  # no signalling header: a media frame
            if tx:
                device.media_packets_tx += 1
            else:
                device.media_packets_rx += 1
            continue
        if not row["btavdtp.signal_id"]:  # continue/end of a fragmented signal
            continue
        signal, message = int(row["btavdtp.signal_id"], 0), int(row["btavdtp.message_type"], 0)
        label = int(row["btavdtp.transaction"], 0)
        direction = "tx" if tx else "rx"
        if message == 0 and signal in (0x03, 0x05):
            device.commands[(direction, label, signal)] = _tshark_codec(row)
        elif message == 2:
            other = "rx" if tx else "tx"
            codec = device.commands.pop((other, label, signal), None)
            if codec is not None:
                device.codec = codec
            if signal == 0x07:
                device.streams += 1
    return TsharkView(dict(devices), disconnections, malformed)


def _tshark_codec(row: dict[str, str]) -> str | None:
    if not row["btavdtp.media_codec_audio_type"]:
        return None
    codec = int(row["btavdtp.media_codec_audio_type"].split(",")[0], 0)
    info = b""
    if codec == 0xFF and row["btavdtp.codec.vendor.vendor_id"]:
        vendor_id = int(row["btavdtp.codec.vendor.vendor_id"].split(",")[0], 0)
        codec_id = int(row["btavdtp.codec.vendor.codec_id"].split(",")[0], 0)
        info = struct.pack("<IH", vendor_id, codec_id)
    return decode_codec(codec, info)


# --- btmon -a -------------------------------------------------------------------------------


@dataclass(slots=True)
class BtmonConnection:
    """One "Found ... connection" block of `btmon -a`."""

    kind: str
    handle: int
    address: str = ""
    rx_packets: int = 0
    tx_packets: int = 0
    #: (direction, CID) -> frames, in the order btmon lists the channels.
    frames: dict[tuple[str, int], int] = field(default_factory=dict)
    #: (direction, CID) of the channels btmon saw opened for PSM 25 (AVDTP), in order.
    avdtp: list[tuple[str, int]] = field(default_factory=list)

    def media(self, direction: str) -> int:
        """Frames sent in ``direction`` to AVDTP media CIDs: every PSM 25 channel after the
        first (signalling) one. btmon files a channel opened for PSM 25 under the direction
        that named the CID, so frames *to* that CID travel the other way."""
        other = {"tx": "rx", "rx": "tx"}[direction]
        named = [cid for way, cid in self.avdtp if way == other]
        return sum(self.frames.get((direction, cid), 0) for cid in named[1:])


def btmon_connections(btmon: str, path: Path) -> list[BtmonConnection]:
    done = subprocess.run(
        [btmon, "-a", str(path)], capture_output=True, text=True, check=True, timeout=120
    )
    connections: list[BtmonConnection] = []
    channel: tuple[str, int] | None = None
    for raw in done.stdout.splitlines():
        line = raw.strip()
        words = line.split()
        if (
            line.startswith("Found ")
            and line.endswith(tuple("0123456789"))
            and "connection" in line
        ):
            connections.append(BtmonConnection(words[1], int(words[-1])))
            channel = None
        elif not connections:
            continue
        elif line.startswith("Address:"):
            connections[-1].address = words[1]
        elif line.startswith("Found ") and "L2CAP channel" in line:
            channel = ("tx" if words[1] == "TX" else "rx", int(words[-1]))
        elif channel is None and line.endswith(("RX packets", "TX packets")):
            setattr(connections[-1], f"{words[1].lower()}_packets", int(words[0]))
        elif channel is not None and line == "PSM 25":
            connections[-1].avdtp.append(channel)
        elif channel is not None and line.endswith(" packets") and len(words) == 2:
            connections[-1].frames[channel] = int(words[0])
    return connections


def btmon_media(connections: list[BtmonConnection]) -> dict[str, Counter[str]]:
    """Per BR/EDR address: media frames tx and rx summed over its connections."""
    media: dict[str, Counter[str]] = defaultdict(Counter)
    for connection in connections:
        if connection.kind == "BR-ACL":
            for direction in ("tx", "rx"):
                media[connection.address][direction] += connection.media(direction)
    return dict(media)
