"""`probe-signal`, `analyze` and `probe` as subprocesses (DESIGN §4.1, §4.4): results against
recordings with known truth, and every bad input ending with exit 2 and one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.probe.room import Room, SpeakerPath, render
from core.probe.signals import ProbeSet, load_reference
from core.probe.wavio import write_wav
from core.sim.scenario import DEFAULT_FLEET, ROOM, STALLED
from tests.cli.conftest import Result, run_cli
from tests.conftest import IN_CI, require_binary

RATE = 48_000
#: Known direct-path arrivals (s) of three speakers, 1 ms apart for two of them.
TRUTH_S = (0.1203, 0.1213, 0.1871)


def one_error_line(result: Result) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr_lines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("btmon-tui: error: ")
    return lines[0]


@pytest.fixture(scope="module")
def probe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("probes")
    result = run_cli("probe-signal", "--speakers", "3", "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def room_recording(probes: ProbeSet, present: tuple[bool, ...] = (True, True, True)) -> np.ndarray:
    rng = np.random.default_rng(5)
    paths = tuple(
        SpeakerPath(delay_s=t, gain=0.1, reflections=((0.006, 0.12), (0.02, 0.05)), present=p)
        for t, p in zip(TRUTH_S, present, strict=True)
    )
    room = Room(paths=paths, noise_snr_db=10.0, music_db=None, diffuse_tail_s=0.2, duration_s=1.6)
    return render(room, probes, rng)


def test_probe_signal_writes_equal_length_mono_wavs_and_the_design(probe_dir: Path) -> None:
    files = sorted(probe_dir.glob("probe_*.wav"))
    assert [f.name for f in files] == ["probe_01.wav", "probe_02.wav", "probe_03.wav"]
    lengths = set()
    for file in files:
        header = WavHeader(file)
        assert header.channels() == 1 and header.rate() == RATE
        lengths.add(header.frames())
    assert len(lengths) == 1
    design = json.loads((probe_dir / "probe.json").read_text())
    assert design["rate"] == RATE
    assert design["length"] == lengths.pop()


class WavHeader:
    """The canonical RIFF/WAVE header fields, read by hand (independent of our reader)."""

    def __init__(self, path: Path) -> None:
        self.data = path.read_bytes()
        assert self.data[:4] == b"RIFF" and self.data[8:16] == b"WAVEfmt "

    def channels(self) -> int:
        return int.from_bytes(self.data[22:24], "little")

    def rate(self) -> int:
        return int.from_bytes(self.data[24:28], "little")

    def frames(self) -> int:
        at = self.data.index(b"data")
        size = int.from_bytes(self.data[at + 4 : at + 8], "little")
        width = int.from_bytes(self.data[34:36], "little") // 8
        return size // (width * self.channels())


def test_analyze_finds_each_direct_path_in_a_room_recording(
    probe_dir: Path, tmp_path: Path
) -> None:
    probes = load_reference(probe_dir)
    rec = tmp_path / "rec.wav"
    write_wav(rec, room_recording(probes), RATE)
    result = run_cli("analyze", str(rec), "--reference", str(probe_dir), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["rate"] == RATE
    arrivals = [s["arrival_ms"] for s in data["speakers"]]
    assert [s["index"] for s in data["speakers"]] == [1, 2, 3]
    assert all(s["detected"] for s in data["speakers"])
    assert np.allclose(arrivals, [t * 1000 for t in TRUTH_S], atol=0.05), arrivals
    assert data["spread_ms"] == pytest.approx((TRUTH_S[2] - TRUTH_S[0]) * 1000, abs=0.1)
    table = run_cli("analyze", str(rec), "--reference", str(probe_dir))
    assert table.returncode == 0 and "spread" in table.stdout


def test_analyze_reports_an_absent_speaker_as_not_detected(probe_dir: Path, tmp_path: Path) -> None:
    probes = load_reference(probe_dir)
    rec = tmp_path / "rec.wav"
    write_wav(rec, room_recording(probes, present=(True, False, True)), RATE)
    data = json.loads(run_cli("analyze", str(rec), "--reference", str(probe_dir), "--json").stdout)
    assert [s["detected"] for s in data["speakers"]] == [True, False, True]


def test_a_stereo_recording_is_analysed_on_its_first_channel_with_a_warning(
    probe_dir: Path, tmp_path: Path
) -> None:
    probes = load_reference(probe_dir)
    mono = room_recording(probes)
    rec = tmp_path / "stereo.wav"
    write_wav(rec, np.stack([mono, np.zeros_like(mono)], axis=1), RATE)
    result = run_cli("analyze", str(rec), "--reference", str(probe_dir), "--json")
    assert result.returncode == 0, result.stderr
    assert "2 channels" in result.stderr and "--channel" in result.stderr
    assert all(s["detected"] for s in json.loads(result.stdout)["speakers"])
    second = run_cli("analyze", str(rec), "--reference", str(probe_dir), "--channel", "2", "--json")
    assert not any(s["detected"] for s in json.loads(second.stdout)["speakers"])


def test_a_silent_recording_says_so(probe_dir: Path, tmp_path: Path) -> None:
    rec = tmp_path / "silent.wav"
    write_wav(rec, np.zeros(RATE * 2), RATE)
    result = run_cli("analyze", str(rec), "--reference", str(probe_dir), "--json")
    assert result.returncode == 0
    assert not any(s["detected"] for s in json.loads(result.stdout)["speakers"])
    assert "silent" in result.stderr


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: p, "no such file"),
        (lambda p: (p.write_text("not audio at all\n"), p)[1], "not a WAV"),
        (lambda p: (p.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt "), p)[1], "trunc"),
    ],
    ids=["missing", "not-wav", "truncated"],
)
def test_bad_recordings_end_with_one_clear_line(
    probe_dir: Path, tmp_path: Path, make: object, words: str
) -> None:
    rec = make(tmp_path / "rec.wav")  # type: ignore[operator]
    line = one_error_line(run_cli("analyze", str(rec), "--reference", str(probe_dir)))
    assert words.lower() in line.lower(), line


def test_a_recording_at_another_rate_than_the_reference_is_refused(
    probe_dir: Path, tmp_path: Path
) -> None:
    rec = tmp_path / "8k.wav"
    write_wav(rec, np.zeros(8000), 8000)
    line = one_error_line(run_cli("analyze", str(rec), "--reference", str(probe_dir)))
    assert "8000" in line and "48000" in line


def test_a_missing_reference_is_refused(tmp_path: Path) -> None:
    rec = tmp_path / "rec.wav"
    write_wav(rec, np.zeros(RATE), RATE)
    one_error_line(run_cli("analyze", str(rec), "--reference", str(tmp_path / "nothing")))


def test_probe_signal_refuses_a_silly_count(tmp_path: Path) -> None:
    line = one_error_line(run_cli("probe-signal", "--speakers", "0", "--out", str(tmp_path)))
    assert "--speakers" in line


def test_probe_in_the_demo_hears_the_room_and_misses_the_stalled_speaker() -> None:
    require_binary("dbus-daemon", "dbus")
    result = run_cli("probe", "--demo", "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    event = json.loads(result.stdout.splitlines()[-1])
    assert event["type"] == "probe" and event["source"] == "simulated room"
    results = {r["address"]: r for r in event["results"]}
    playing = {d.address for d in DEFAULT_FLEET if d.connected and d.transport_state == "active"}
    assert set(results) == playing
    assert results[STALLED]["detected"] is False
    for address, speaker in ROOM.items():
        if speaker.silent or address not in playing:
            continue
        # Latency = the room's latency + the acoustic path; the clock drifts only µs here.
        expected = speaker.latency_ms + speaker.distance_m / 343.0 * 1000
        assert results[address]["latency_ms"] == pytest.approx(expected, abs=0.5)
    offsets = {a: r["offset_ms"] for a, r in results.items() if r["detected"]}
    assert min(offsets.values()) < -100  # the aptX LL sub plays far ahead: an echo
    human = run_cli("probe", "--demo", timeout=60)
    assert human.returncode == 0 and "NOT HEARD" in human.stdout and "echo" in human.stdout


def test_probe_without_bluez_is_bad_input(tmp_path: Path) -> None:
    line = one_error_line(
        run_cli("probe", "--bus", f"unix:path={tmp_path}/no-such-bus", timeout=30)
    )
    assert "bus" in line.lower()


def test_probe_list_devices_lists_portaudio_devices() -> None:
    result = run_cli("probe", "--list-devices", timeout=30)
    if result.returncode == 2 and not IN_CI:  # no PortAudio: the line says how to install it
        assert "PortAudio" in one_error_line(result)
        return
    assert result.returncode == 0, result.stderr
    # A table, or (no device at all) a sentence instead of an empty table.
    first = result.stdout.splitlines()[0]
    assert "name (host API)" in first or first.startswith("no audio devices:"), first


def test_probe_of_a_speaker_that_does_not_stream_says_so() -> None:
    """Issue 12 §11: `probe --speaker` on the demo's idle Bar said NOT HEARD; it names the
    speaker's verdict and what to do. Names work where addresses do."""
    require_binary("dbus-daemon", "dbus")
    result = run_cli("probe", "--demo", "--speaker", "bar", timeout=60)
    assert result.returncode == 2, result
    (line,) = result.stderr_lines()
    assert "Bar (F4:4E:FD:10:22:04) is not streaming (connected-idle)" in line
    assert "resync" in line
    heard = run_cli("probe", "--demo", "--json", "--speaker", "sub bass", timeout=60)
    assert heard.returncode == 0, heard.stderr
    (result_row,) = json.loads(heard.stdout.splitlines()[-1])["results"]
    assert result_row["name"] == "Sub Bass" and result_row["detected"] is True
