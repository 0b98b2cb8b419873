"""The fast path of analyze() (core.hci.fast_scan) against feeding every record, the media
hook and the problem keys of A2dpAnalyzer."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from core.hci import fast_scan
from core.hci import writer as w
from core.hci.a2dp import NO_CONNECTION, A2dpAnalyzer, analyze
from core.hci.btsnoop import (
    DATALINK_H1,
    DATALINK_H4,
    DATALINK_MONITOR,
    BtsnoopReader,
    PacketType,
    Record,
)
from core.hci.fast_scan import scan
from tests.hci import captures
from tests.hci.captures import SCENARIOS, Scenario
from tests.hci.session import T0

DATALINKS = [DATALINK_H1, DATALINK_H4, DATALINK_MONITOR]


def slow_analysis(path: Path) -> tuple[list[dict], list[str], int]:
    """Every record through A2dpAnalyzer.feed (what the live source does)."""
    with path.open("rb") as stream:
        reader = BtsnoopReader(stream)
        analyzer = A2dpAnalyzer()
        for record in reader:
            analyzer.feed(record)
    devices = [d.to_json() for d in analyzer.devices.values()]
    return devices, reader.warnings + analyzer.warnings(), reader.records


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_fast_path_equals_feeding_every_record(tmp_path: Path, scenario: Scenario) -> None:
    path = scenario.build().save(tmp_path / "capture.btsnoop")
    result = analyze(path)
    assert (result["devices"], result["warnings"], result["records"]) == slow_analysis(path)
    assert any(d["media_packets_tx"] + d["media_packets_rx"] for d in result["devices"])


@pytest.mark.parametrize("window", [fast_scan.WINDOW, 4096])
@pytest.mark.parametrize("datalink", DATALINKS)
def test_fast_path_equals_feeding_every_record_on_fuzzed_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, datalink: int, window: int
) -> None:
    """Random bytes anywhere (lengths, flags, timestamps, handles, CIDs) and cut-short files:
    the windowed walk (4 KiB windows: records straddle many window ends), its learned keys and
    its bulk media counting agree with feed()."""
    monkeypatch.setattr(fast_scan, "WINDOW", window)
    original = captures.fleet(0.05, datalink=datalink).stream.getvalue()
    rng = random.Random(424242 + datalink)
    path = tmp_path / "fuzz.btsnoop"
    for case in range(60):
        data = bytearray(original)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(16, len(data))] = rng.randrange(256)
        if case % 5 == 0:
            del data[rng.randrange(16, len(data)) :]
        path.write_bytes(bytes(data))
        result = analyze(path)
        assert (result["devices"], result["warnings"], result["records"]) == slow_analysis(path)


def test_the_fast_path_feeds_only_what_it_cannot_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a fleet capture almost every record is a media packet or an ignored event: the walk
    counts those itself, so what it feeds (connections, signalling) does not grow with the
    capture's length."""
    fed: list[Record] = []
    feed = A2dpAnalyzer.feed
    monkeypatch.setattr(A2dpAnalyzer, "feed", lambda self, r: (fed.append(r), feed(self, r))[1])
    counts = []
    for minutes in (0.1, 0.2):
        fed.clear()
        result = analyze(captures.fleet(minutes).save(tmp_path / f"fleet-{minutes}.btsnoop"))
        media = sum(d["media_packets_tx"] + d["media_packets_rx"] for d in result["devices"])
        assert media > 0.8 * result["records"]
        assert all(r.type is not PacketType.EVENT or r.data[0] != 0x13 for r in fed)
        counts.append((len(fed), result["records"]))
    assert counts[0][0] == counts[1][0] and counts[1][1] > 1.8 * counts[0][1]


class Unseekable(io.BytesIO):
    """A pipe, as far as the fast path can tell."""

    def seekable(self) -> bool:
        return False


def test_a_stream_that_cannot_seek_gives_the_same_result(tmp_path: Path) -> None:
    path = captures.interleaved().save(tmp_path / "capture.btsnoop")
    streamed = Unseekable(path.read_bytes())  # every record through BtsnoopReader.raw
    reader, analyzer, warnings = BtsnoopReader(streamed), A2dpAnalyzer(), []
    span = scan(reader, streamed, analyzer, None, warnings)
    result = analyze(path)
    assert [d.to_json() for d in analyzer.devices.values()] == result["devices"]
    assert reader.records == result["records"] and not warnings
    assert span is not None and (span[1] - span[0]) / 1e6 == result["duration_s"]


def test_a_time_limit_stops_reading_with_a_warning(tmp_path: Path) -> None:
    path = captures.fleet(0.05).save(tmp_path / "fleet.btsnoop")
    result = analyze(path, time_limit_s=0.0)
    assert "stopped after 0 s of reading" in result["warnings"]
    assert result["records"] < analyze(path)["records"]


def test_on_media_hears_every_media_packet_in_order(tmp_path: Path) -> None:
    heard: list[tuple[str, str, float]] = []
    analyzer = A2dpAnalyzer(on_media=lambda *packet: heard.append(packet))
    with captures.interleaved().save(tmp_path / "capture.btsnoop").open("rb") as stream:
        for record in BtsnoopReader(stream):
            analyzer.feed(record)
    assert heard and [t for _, _, t in heard] == sorted(t for _, _, t in heard)
    for device in analyzer.devices.values():
        assert sum(1 for a, d, _ in heard if (a, d) == (device.address, "tx")) == (
            device.media_packets_tx
        )
        assert sum(1 for a, d, _ in heard if (a, d) == (device.address, "rx")) == (
            device.media_packets_rx
        )
        assert max(t for a, _, t in heard if a == device.address) == device.last_media


def test_acl_on_an_unknown_handle_is_a_problem_with_a_stable_key() -> None:
    analyzer = A2dpAnalyzer()
    analyzer.feed(Record(T0, "tx", PacketType.ACL, w.acl(7, w.l2cap(0x0041, bytes(10)))[0]))
    assert analyzer.problems == {NO_CONNECTION: 1}
    assert analyzer.warnings() == [f"{NO_CONNECTION}: 1"]
    assert analyzer.warnings(leave_out={NO_CONNECTION}) == []
