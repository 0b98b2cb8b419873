"""Bad input through the real stack: every failure is an AudioError that says what to do,
nothing hangs, and the next probe still works."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core.probe.audio import (
    AudioError,
    Output,
    list_devices,
    play_and_record,
    resolve_device,
)
from tests.probe.audio.conftest import PulseServer
from tests.probe.audio.signals import RATE, burst

ROOT = Path(__file__).resolve().parents[2]
CLICK = burst(seed=1)


def probe(*outputs: Output, **kwargs: object) -> object:
    options: dict[str, object] = {"rate": RATE, "source": "room.monitor", "tail_s": 0.05}
    options.update(kwargs)
    return play_and_record(outputs, pre_roll_s=0.05, **options)  # type: ignore[arg-type]


def test_pulse_device_is_listed(pulse: PulseServer) -> None:
    devices = {d.name: d for d in list_devices()}
    assert "pulse" in devices
    pulse_device = devices["pulse"]
    assert pulse_device.host_api == "ALSA"
    assert pulse_device.max_input_channels > 0 and pulse_device.max_output_channels > 0
    assert resolve_device("PULSE", "input") == pulse_device.index
    assert resolve_device(str(pulse_device.index), "output") == pulse_device.index


def test_unknown_input_device_names_the_candidates(pulse: PulseServer) -> None:
    with pytest.raises(AudioError, match=r"no input device matches 'no-such-mic'.*pulse"):
        probe(Output("spk1", None, CLICK), input_device="no-such-mic", source=None)
    with pytest.raises(AudioError, match="no output device with index 999"):
        resolve_device(999, "output")


def test_ambiguous_device_name(pulse: PulseServer) -> None:
    # "pulse" and "default" both contain an "e"
    with pytest.raises(AudioError, match=r"ambiguous .*pulse.*pass the index"):
        resolve_device("e", "input")


def test_unknown_sink(pulse: PulseServer) -> None:
    with pytest.raises(AudioError, match=r"sink no_such_sink not found .*spk1"):
        probe(Output("no_such_sink", None, CLICK))


def test_unknown_source(pulse: PulseServer) -> None:
    with pytest.raises(AudioError, match=r"source nowhere.monitor not found"):
        probe(Output("spk1", None, CLICK), source="nowhere.monitor")


def test_unsupported_rate_names_the_device_rate(pulse: PulseServer) -> None:
    with pytest.raises(AudioError, match=r"does not support 1000000 Hz \(it runs at"):
        probe(Output("spk1", None, CLICK), rate=1_000_000)


@pytest.mark.parametrize("signal", [np.zeros(0), np.full(10, np.nan), np.zeros((10, 2))])
def test_bad_signal(pulse: PulseServer, signal: np.ndarray) -> None:
    with pytest.raises(AudioError, match="non-empty mono float array"):
        probe(Output("spk1", None, signal))


def test_nothing_to_play(pulse: PulseServer) -> None:
    with pytest.raises(AudioError, match="at least one speaker"):
        probe()


def test_timeout_is_an_error_and_streams_are_closed(pulse: PulseServer) -> None:
    started = time.monotonic()
    with pytest.raises(AudioError, match="timed out"):
        probe(Output("spk1", None, np.zeros(RATE * 5)), timeout_s=0.3)
    assert time.monotonic() - started < 2.0
    assert "spk1" not in pulse.pactl("list", "short", "sink-inputs")
    capture = probe(Output("spk1", None, CLICK))  # the next probe works
    assert capture.recording.size > 0  # type: ignore[attr-defined]


def test_sink_unloaded_mid_probe(pulse: PulseServer) -> None:
    module = pulse.add_speaker("spk_gone")
    unload = threading.Timer(0.3, pulse.pactl, ("unload-module", str(module)))
    unload.start()
    started = time.monotonic()
    try:
        with pytest.raises(AudioError, match="spk_gone vanished during the probe"):
            probe(Output("spk_gone", None, np.zeros(RATE)))
    finally:
        unload.join()
    assert time.monotonic() - started < 5.0


def test_source_unloaded_mid_probe(pulse: PulseServer) -> None:
    module = pulse.load("mic", "module-null-sink", "sink_name=mic", "rate=48000")
    unload = threading.Timer(0.3, pulse.pactl, ("unload-module", str(module)))
    unload.start()
    started = time.monotonic()
    try:
        with pytest.raises(
            AudioError, match=r"source mic\.monitor vanished during the probe.*microphone"
        ):
            probe(Output("spk1", None, np.zeros(RATE)), source="mic.monitor")
    finally:
        unload.join()
    assert time.monotonic() - started < 5.0


def run_isolated(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**__import__("os").environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_portaudio_missing() -> None:
    """A fresh interpreter where ctypes cannot find libportaudio (what sounddevice sees
    when libportaudio2 is not installed): the module imports, every call says what to do."""
    code = (
        "import ctypes.util\n"
        "ctypes.util.find_library = lambda name: None\n"
        "from core.probe import audio\n"
        "try:\n"
        "    audio.list_devices()\n"
        "except audio.AudioError as exc:\n"
        "    print(exc)\n"
    )
    done = run_isolated(code)
    assert done.returncode == 0, done.stderr
    assert "PortAudio is not installed" in done.stdout
    assert "apt install libportaudio2" in done.stdout


def test_no_input_device(tmp_path: Path) -> None:
    """No audio server and no sound card (this machine has none): PortAudio lists no device."""
    code = (
        "from core.probe import audio\n"
        "try:\n"
        "    audio.resolve_device(None, 'input')\n"
        "except audio.AudioError as exc:\n"
        "    print(exc)\n"
    )
    done = run_isolated(code, PULSE_SERVER=f"unix:{tmp_path}/none")
    assert done.returncode == 0, done.stderr
    if "no input device" not in done.stdout:
        pytest.skip("this machine has a sound card: PortAudio lists a real input")
    assert "plug in a microphone or pass --input" in done.stdout
