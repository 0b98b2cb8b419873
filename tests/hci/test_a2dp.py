"""Scripted captures with known truth through the reader and the A2DP analysis."""

from __future__ import annotations

import io
import random
import struct
import time
from pathlib import Path

import pytest

from core.hci import writer as w
from core.hci.a2dp import analyze, snoop_table
from core.hci.btsnoop import (
    DATALINK_H1,
    DATALINK_H4,
    DATALINK_MONITOR,
    EPOCH_OFFSET_US,
    BtsnoopError,
    BtsnoopReader,
    PacketType,
)
from core.hci.writer import BtsnoopWriter
from tests.hci import captures
from tests.hci.session import AAC_INFO, SBC_INFO, T0, Session, seed_case

LEFT, RIGHT = "00:1A:7D:DA:71:01", "00:1A:7D:DA:71:02"
DATALINKS = [DATALINK_H1, DATALINK_H4, DATALINK_MONITOR]


def by_address(result: dict) -> dict[str, dict]:
    return {d["address"]: d for d in result["devices"]}


# --- the reader ---------------------------------------------------------------------------


@pytest.mark.parametrize("datalink", DATALINKS)
def test_reader_round_trips_type_direction_and_time(datalink: int) -> None:
    stream = io.BytesIO()
    out = BtsnoopWriter(stream, datalink)
    out.write(PacketType.COMMAND, "tx", b"\x05\x04\x00", T0)
    out.write(PacketType.EVENT, "rx", b"\x0e\x01\x01", T0 + 0.5)
    out.write(PacketType.ACL, "tx", b"\x01\x20\x00\x00", T0 + 1.25)
    out.write(PacketType.ACL, "rx", b"\x01\x20\x00\x00", T0 + 2)
    stream.seek(0)
    reader = BtsnoopReader(stream)
    records = list(reader)
    assert reader.datalink == datalink and reader.records == 4 and not reader.warnings
    assert [(r.type, r.direction) for r in records] == [
        (PacketType.COMMAND, "tx"),
        (PacketType.EVENT, "rx"),
        (PacketType.ACL, "tx"),
        (PacketType.ACL, "rx"),
    ]
    assert records[2].data == b"\x01\x20\x00\x00"
    assert records[2].time == pytest.approx(T0 + 1.25, abs=1e-6)


def test_epoch_offset_is_1970() -> None:
    stream = io.BytesIO()
    BtsnoopWriter(stream, DATALINK_H4)
    stream.write(struct.pack(">IIIIq", 1, 1, 0, 0, EPOCH_OFFSET_US) + b"\x04")
    stream.seek(0)
    (record,) = BtsnoopReader(stream)
    assert record.time == 0.0


@pytest.mark.parametrize(
    ("head", "words"),
    [
        (b"", "not a btsnoop file"),
        (b"btsnoop\0" + struct.pack(">II", 2, 1002), "version 2"),
        (b"btsnoop\0" + struct.pack(">II", 1, 1000), "datalink 1000"),
        (b"PK\x03\x04 not a capture at all", "not a btsnoop file"),
    ],
)
def test_bad_headers_are_refused(head: bytes, words: str) -> None:
    with pytest.raises(BtsnoopError, match=words):
        BtsnoopReader(io.BytesIO(head))


# --- the seed case ------------------------------------------------------------------------


@pytest.mark.parametrize("datalink", DATALINKS)
def test_seed_case_two_speakers_one_starved(tmp_path: Path, datalink: int) -> None:
    session = seed_case(datalink)
    result = analyze(session.save(tmp_path / "seed.btsnoop"))
    assert result["datalink"] == datalink and result["warnings"] == []
    devices = by_address(result)
    left, right = devices[LEFT], devices[RIGHT]
    assert left == {
        "address": LEFT,
        "name": "Stage Left",
        "codec": "SBC",
        "media_packets_tx": 2843,
        "media_packets_rx": 0,
        "media_bytes_tx": 2843 * 700,
        "streams": 1,
        "max_gap_ms": pytest.approx(20.0, abs=0.01),
    }
    assert right["codec"] == "AAC" and right["name"] == "Stage Right"
    assert (right["media_packets_tx"], right["media_bytes_tx"], right["streams"]) == (
        17,
        17 * 500,
        1,
    )
    assert right["max_gap_ms"] == pytest.approx(167 * 20.0, abs=0.01)
    assert result["starved"] == [RIGHT]
    assert result["duration_s"] == pytest.approx(session.t - T0, abs=1e-5)
    table = snoop_table(result)
    right_line = next(line for line in table.splitlines() if line.startswith(RIGHT))
    assert "connected but starved" in right_line
    assert "starved" not in next(line for line in table.splitlines() if line.startswith(LEFT))


def test_seed_case_fragmented_acl(tmp_path: Path) -> None:
    """A small ACL MTU splits every media frame (and the signalling) into several fragments."""
    result = analyze(seed_case(mtu=64).save(tmp_path / "frag.btsnoop"))
    devices = by_address(result)
    assert devices[LEFT]["media_packets_tx"] == 2843
    assert devices[LEFT]["media_bytes_tx"] == 2843 * 700
    assert devices[RIGHT]["media_packets_tx"] == 17
    assert result["records"] > 2843 * 11


def test_interleaved_fragments_of_two_handles_and_both_directions(tmp_path: Path) -> None:
    s = Session()
    for handle, address in ((1, LEFT), (2, RIGHT)):
        s.connect(handle, address)
        s.open_a2dp(handle)
        s.configure(handle, 0x00, SBC_INFO)
        s.start(handle)
    frames = {}
    for handle in (1, 2):
        link = s.links[handle]
        frames[(handle, "tx")] = w.acl(handle, w.l2cap(link.media[1], bytes(900)), mtu=300)
        frames[(handle, "rx")] = w.acl(handle, w.l2cap(link.media[0], bytes(450)), mtu=100)
    for step in range(5):
        for (_handle, direction), packets in frames.items():
            if step < len(packets):
                s.writer.write(PacketType.ACL, direction, packets[step], s.t)
        s.tick(0.01)
    result = analyze(s.save(tmp_path / "interleaved.btsnoop"))
    for address in (LEFT, RIGHT):
        d = by_address(result)[address]
        assert (d["media_packets_tx"], d["media_packets_rx"], d["media_bytes_tx"]) == (1, 1, 900)
    assert result["warnings"] == []


def test_start_suspend_cycles_count_streams_and_gaps_only_inside_a_stream(tmp_path: Path) -> None:
    s = Session()
    s.connect(1, LEFT, "Bar")
    s.open_a2dp(1)
    s.configure(1, 0x02, AAC_INFO)
    for cycle in range(3):
        s.start(1)
        for i in range(100):
            s.tick(0.3 if (cycle, i) == (1, 50) else 0.02)
            s.media(1)
        s.suspend(1)
        s.tick(30.0)  # paused on purpose: not a gap
    s.exchange(1, 0x07, bytes([4]), accept=False)  # a rejected Start does not count
    result = analyze(s.save(tmp_path / "cycles.btsnoop"))
    (bar,) = result["devices"]
    assert bar["streams"] == 3
    assert bar["media_packets_tx"] == 300
    assert bar["max_gap_ms"] == pytest.approx(300.0, abs=0.01)
    assert bar["codec"] == "AAC"


@pytest.mark.parametrize(
    ("vendor", "codec_id", "name"),
    [
        (0x4F, 0x0001, "aptX"),
        (0xD7, 0x0024, "aptX HD"),
        (0x0A, 0x0002, "aptX LL"),
        (0x12D, 0x00AA, "LDAC"),
        (0x1234, 0x0042, "vendor 1234:0042"),
    ],
)
def test_vendor_codecs(tmp_path: Path, vendor: int, codec_id: int, name: str) -> None:
    s = Session(DATALINK_H4)
    s.connect(0x0042, LEFT)
    s.open_a2dp(0x0042)
    s.configure(0x0042, 0xFF, struct.pack("<IH", vendor, codec_id) + b"\x3c\x01")
    s.start(0x0042)
    s.media(0x0042)
    (device,) = analyze(s.save(tmp_path / "vendor.btsnoop"))["devices"]
    assert device["codec"] == name and device["media_packets_tx"] == 1


def test_device_initiated_channels_and_rx_media(tmp_path: Path) -> None:
    """The speaker opens both L2CAP channels (CIDs swap roles) and sends media (a source)."""
    s = Session(DATALINK_H1)
    s.connect(3, LEFT)
    s.open_a2dp(3, host_asks=False)
    s.configure(3, 0x00, SBC_INFO, host_asks=False)
    s.start(3)
    for _ in range(7):
        s.tick(0.02)
        s.media(3, 300, direction="rx")
    (device,) = analyze(s.save(tmp_path / "source.btsnoop"))["devices"]
    assert (device["media_packets_tx"], device["media_packets_rx"]) == (0, 7)
    assert device["media_bytes_tx"] == 0 and device["streams"] == 1


def test_disconnection_frees_the_handle_for_the_next_device(tmp_path: Path) -> None:
    s = Session()
    s.connect(1, LEFT)
    s.open_a2dp(1)
    s.configure(1, 0x00, SBC_INFO)
    s.start(1)
    s.media(1)
    s.close(1)
    s.media(1)  # after Close and the channel's disconnection: not media any more
    s.disconnect(1)
    s.connect(1, RIGHT)  # the controller reuses the handle
    s.open_a2dp(1)
    s.configure(1, 0x02, AAC_INFO)
    s.start(1)
    s.media(1)
    s.media(1)
    result = analyze(s.save(tmp_path / "reuse.btsnoop"))
    devices = by_address(result)
    assert devices[LEFT]["media_packets_tx"] == 1 and devices[LEFT]["codec"] == "SBC"
    assert devices[RIGHT]["media_packets_tx"] == 2 and devices[RIGHT]["codec"] == "AAC"


def test_acl_before_connection_complete_is_a_warning(tmp_path: Path) -> None:
    s = Session()
    s.acl("tx", 9, w.l2cap(0x41, bytes(10)))
    result = analyze(s.save(tmp_path / "midway.btsnoop"))
    assert result["devices"] == []
    assert any("without Connection Complete" in x for x in result["warnings"])


def test_monitor_adapters_have_separate_handles(tmp_path: Path) -> None:
    s = Session(DATALINK_MONITOR)
    s.connect(1, LEFT)
    s.open_a2dp(1)
    s.configure(1, 0x00, SBC_INFO)
    s.start(1)
    s.index = 1
    s.links.pop(1)
    s.connect(1, RIGHT)  # same handle number on hci1
    s.open_a2dp(1)
    s.configure(1, 0x00, SBC_INFO)
    s.start(1)
    s.media(1)
    devices = by_address(analyze(s.save(tmp_path / "two-adapters.btsnoop")))
    assert devices[RIGHT]["media_packets_tx"] == 1
    assert devices[LEFT]["media_packets_tx"] == 0


# --- broken input ---------------------------------------------------------------------------


def test_truncated_files_yield_what_was_read_and_a_warning(tmp_path: Path) -> None:
    data = seed_case().stream.getvalue()
    full = analyze(seed_case().save(tmp_path / "full.btsnoop"))
    path = tmp_path / "cut.btsnoop"
    for cut in (len(data) - 1, len(data) - 30, len(data) // 2, 16 + 10, 16 + 24 + 2):
        path.write_bytes(data[:cut])
        result = analyze(path)
        assert result["records"] < full["records"]
        assert any(x.startswith("truncated") for x in result["warnings"]), cut
    path.write_bytes(data[: len(data) // 2])
    half = by_address(analyze(path))
    assert 1000 < half[LEFT]["media_packets_tx"] < 2843


def test_header_only_file_is_an_empty_capture(tmp_path: Path) -> None:
    path = tmp_path / "empty.btsnoop"
    path.write_bytes(b"btsnoop\0" + struct.pack(">II", 1, 2001))
    result = analyze(path)
    assert (result["records"], result["duration_s"], result["devices"]) == (0, None, [])
    assert result["warnings"] == []


def test_random_bytes_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "random.bin"
    path.write_bytes(random.Random(7).randbytes(50_000))
    with pytest.raises(BtsnoopError, match="not a btsnoop file"):
        analyze(path)


def test_random_bytes_after_a_valid_header_never_raise(tmp_path: Path) -> None:
    rng = random.Random(11)
    path = tmp_path / "noise.btsnoop"
    for datalink in DATALINKS:
        path.write_bytes(b"btsnoop\0" + struct.pack(">II", 1, datalink) + rng.randbytes(20_000))
        result = analyze(path)
        assert result["warnings"]


def test_impossible_record_length_stops_with_a_warning(tmp_path: Path) -> None:
    s = Session()
    s.connect(1, LEFT)
    s.stream.write(struct.pack(">IIIIq", 1 << 30, 1 << 30, 3, 0, 0))
    result = analyze(s.save(tmp_path / "huge.btsnoop"))
    assert result["records"] == 2
    assert any("corrupt record 3" in x for x in result["warnings"])


def test_fuzzed_captures_finish_quickly_without_exceptions(tmp_path: Path) -> None:
    """300 seeded mutations (byte flips, overwrites, cuts) of a valid capture."""
    s = Session(DATALINK_H4, mtu=200)
    for handle, address in ((1, LEFT), (2, RIGHT)):
        s.connect(handle, address, "x")
        s.open_a2dp(handle)
        s.configure(handle, 0xFF, struct.pack("<IH", 0x12D, 0xAA) + b"\x3c\x01")
        s.start(handle)
    for _ in range(40):
        s.tick(0.02)
        s.media(1, 500)
        s.media(2, 300, direction="rx")
    s.suspend(1)
    s.close(2)
    s.disconnect(1)
    original = s.stream.getvalue()
    rng = random.Random(20261127)
    path = tmp_path / "fuzz.btsnoop"
    slowest = 0.0
    for _ in range(300):
        data = bytearray(original)
        for _ in range(rng.randint(1, 12)):
            position = rng.randrange(16, len(data))
            if rng.random() < 0.5:
                data[position] ^= 1 << rng.randrange(8)
            else:
                data[position] = rng.randrange(256)
        if rng.random() < 0.2:
            del data[rng.randrange(16, len(data)) :]
        path.write_bytes(bytes(data))
        started = time.monotonic()
        result = analyze(path)
        slowest = max(slowest, time.monotonic() - started)
        assert result["records"] >= 0
        assert all(isinstance(x, str) for x in result["warnings"])
        snoop_table(result)
    assert slowest < 1.0


# --- fragmented signals, LE, Abort, disconnections ---------------------------------------


@pytest.mark.parametrize("size", [3, 6, 10])
def test_fragmented_avdtp_signals_are_reassembled(tmp_path: Path, size: int) -> None:
    """The vendor and codec ids straddle AVDTP continue packets when ``size`` is small."""
    s = Session()
    s.connect(1, LEFT)
    s.open_a2dp(1)
    command = w.set_configuration(5, 0xFF, struct.pack("<IH", 0x12D, 0xAA) + b"\x04\x01")
    captures._signal_fragments(s, 1, "tx", command, size)
    captures._signal_fragments(s, 1, "rx", w.avdtp(5, 2, 0x03, bytes(7)), 4)
    s.links[1].media = s.l2cap_open(1)
    s.start(1)
    s.media(1)
    result = analyze(s.save(tmp_path / "fragmented.btsnoop"))
    (device,) = result["devices"]
    assert (device["codec"], device["streams"], device["media_packets_tx"]) == ("LDAC", 1, 1)
    assert result["warnings"] == []


def test_avdtp_continue_without_start_is_a_warning(tmp_path: Path) -> None:
    s = Session()
    s.connect(1, LEFT)
    s.open_a2dp(1)
    s.signal(1, "tx", bytes([(3 << 4) | (0b11 << 2), 1, 2, 3]))
    result = analyze(s.save(tmp_path / "orphan.btsnoop"))
    assert any("without a start" in x for x in result["warnings"])


def test_le_handles_are_known_but_not_a2dp_devices(tmp_path: Path) -> None:
    result = analyze(captures.le_links().save(tmp_path / "le.btsnoop"))
    assert [d["address"] for d in result["devices"]] == [LEFT]
    assert result["devices"][0]["media_packets_tx"] == 40
    assert result["warnings"] == []
    assert [d["link"] for d in result["disconnections"]] == ["BR/EDR", "LE", "LE"]


def test_abort_ends_a_stream_and_a_new_configuration_streams_again(tmp_path: Path) -> None:
    result = analyze(captures.abort_restart().save(tmp_path / "abort.btsnoop"))
    (device,) = result["devices"]
    assert (device["streams"], device["media_packets_tx"], device["codec"]) == (2, 80, "AAC")
    assert result["disconnections"] == [
        {
            "address": LEFT,
            "handle": 1,
            "link": "BR/EDR",
            "reason": 0x13,
            "reason_text": "Remote User Terminated Connection",
        }
    ]
