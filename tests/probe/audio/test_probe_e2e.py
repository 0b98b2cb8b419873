"""A probe end to end through a real audio server (issue 6): the fleet from a BlueZ double,
each speaker's coded probe on the PulseAudio sink named after its address (as BlueZ sinks
are), the room monitor as the microphone, the real analysis, latencies and offsets."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from core.monitor import Monitor
from core.probe.backends import MicBackend
from core.probe.runner import Recording, Target
from core.sim.scenario import DEFAULT_FLEET, STALLED
from tests.cli.conftest import run_cli
from tests.probe.audio.conftest import PulseServer

#: The demo speakers that play, and the extra latency (s) each one's "speaker" adds: the
#: test pads its probe with this much silence, so the offsets have a known truth.
PLAYING = ("00:1A:7D:DA:71:01", "00:1A:7D:DA:71:02", "00:1A:7D:DA:71:03")
LATENCY_S = {PLAYING[0]: 0.0, PLAYING[1]: 0.007, PLAYING[2]: 0.023}
#: The audio path's own error, measured in test_roundtrip.py (median 0.07 ms, max 1.8 ms).
BOUND_MS = 2.5


def pulse_sink(address: str) -> str:
    """PulseAudio's name for a Bluetooth speaker's A2DP sink."""
    return f"bluez_sink.{address.replace(':', '_')}.a2dp_sink"


@pytest.fixture(scope="module")
def bluetooth_sinks(pulse: PulseServer) -> Iterator[PulseServer]:
    """Sinks named like BlueZ's, mixed into the room; Foyer's is muted: it takes the audio
    and nothing comes out (a stalled speaker)."""
    for address in (*PLAYING, STALLED):
        pulse.add_speaker(pulse_sink(address))
    pulse.pactl("set-sink-mute", pulse_sink(STALLED), "1")
    yield pulse
    for address in (*PLAYING, STALLED):
        index = pulse.modules.pop(pulse_sink(address), None)
        if index is not None:
            pulse.pactl("unload-module", str(index))


class SlowSpeakers(MicBackend):
    """The microphone backend, with each speaker's latency played as leading silence."""

    def capture(self, targets: Sequence[Target], signals: np.ndarray, rate: int) -> Recording:
        leads = [round(LATENCY_S.get(t.address, 0.0) * rate) for t in targets]
        longest = max(leads)
        padded = np.stack(
            [
                np.concatenate([np.zeros(lead), signals[t.index - 1], np.zeros(longest - lead)])
                for t, lead in zip(targets, leads, strict=True)
            ]
        )
        return super().capture(targets, padded, rate)


async def test_probe_through_pulseaudio_finds_each_speakers_latency(
    bluetooth_sinks: PulseServer, demo_bus: str
) -> None:
    monitor = Monitor(demo_bus)
    import asyncio

    running = asyncio.create_task(monitor.run())
    try:
        assert await monitor.wait_ready(10)
        event = await monitor.probe(SlowSpeakers(pulse_source="room.monitor"))
    finally:
        running.cancel()
    results = {r.address: r for r in event.results}
    # Every speaker whose transport is active.
    assert set(results) == {d.address for d in DEFAULT_FLEET if d.transport_state == "active"}
    assert results[STALLED].detected is False
    assert event.source == "microphone"
    for address, lead in LATENCY_S.items():
        result = results[address]
        assert result.detected, result
        assert result.latency_ms == pytest.approx(lead * 1000, abs=BOUND_MS), result
    order = sorted(LATENCY_S, key=lambda a: results[a].latency_ms or 0.0)
    assert order == list(PLAYING)
    assert event.spread_ms == pytest.approx(23.0, abs=BOUND_MS)
    # The speaker not heard is stalled and has its dropout, as in the demo.
    speaker = next(s for s in monitor.snapshot().speakers if s.address == STALLED)
    assert speaker.verdict.value == "stalled"


def test_probe_command_through_pulseaudio(bluetooth_sinks: PulseServer, demo_bus: str) -> None:
    result = run_cli(
        "probe", "--bus", demo_bus, "--source", "room.monitor", "--json",
        timeout=60, env=bluetooth_sinks.env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    event = json.loads(result.stdout.splitlines()[-1])
    heard = {r["address"]: r for r in event["results"] if r["detected"]}
    assert set(heard) == set(PLAYING)
    for address in PLAYING:  # no extra latency here: the null sinks add none
        assert abs(heard[address]["latency_ms"]) < BOUND_MS, heard[address]


def test_probe_command_names_a_missing_sink(pulse: PulseServer, demo_bus: str) -> None:
    """A speaker that streams per BlueZ but whose sink the audio server does not have: exit
    2 naming it (here a --sink mapping to a sink that does not exist)."""
    result = run_cli(
        "probe", "--bus", demo_bus, "--source", "room.monitor", "--speaker", "Stage Left",
        "--sink", "00:1A:7D:DA:71:01=no_such_sink", timeout=60, env=pulse.env,
    )  # fmt: skip
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "sink no_such_sink not found on the audio server" in result.stderr


def test_probe_command_plays_on_the_sinks_it_is_told(pulse: PulseServer, demo_bus: str) -> None:
    """--sink ADDRESS=SINK routes a speaker whose sink is not named after its address."""
    result = run_cli(
        "probe", "--bus", demo_bus, "--source", "room.monitor", "--json",
        "--speaker", "00:1A:7D:DA:71:01", "--sink", "00:1A:7D:DA:71:01=spk2",
        timeout=60, env=pulse.env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (heard,) = json.loads(result.stdout.splitlines()[-1])["results"]
    assert heard["detected"] and abs(heard["latency_ms"]) < BOUND_MS
    bad = run_cli("probe", "--demo", "--sink", "nonsense", timeout=30)
    assert bad.returncode == 2 and "ADDRESS=SINK" in bad.stderr
