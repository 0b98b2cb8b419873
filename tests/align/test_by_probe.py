"""Aligning by probes (core.align.by_probe, the TUI's `A`): a simulated room with hidden
latencies over 40-250 ms drawn from a fresh seed (BTMON_ALIGN_SEED pins it), 2-6 speakers and
one that plays nothing. The room honours the delays applied; its own latencies (the truth,
not the analysis) must end within 5 ms, and the silent speaker is left out and named."""

from __future__ import annotations

import numpy as np
import pytest

from core.align.by_probe import align_by_probe
from core.fleet.events import ProbeEvent
from core.fleet.model import Speaker
from core.sim.room_sim import RoomBackend, RoomSpeaker
from tests.align.rooms import fresh_seed
from tests.fleet.builders import plain_speaker

NOW = 1_800_000_000.0


def speaker(n: int) -> Speaker:
    return plain_speaker(f"00:00:00:00:01:{n:02X}", f"Speaker {n}", NOW)


@pytest.mark.parametrize("count", [2, 4, 6])
def test_the_room_ends_within_target_and_a_silent_speaker_is_left_out(count: int) -> None:
    seed = fresh_seed() + count
    rng = np.random.default_rng(seed)
    fleet = [speaker(n) for n in range(1, count + 2)]
    truth = {
        s.address: RoomSpeaker(
            latency_ms=float(rng.uniform(40, 250)),
            drift_ppm=float(rng.uniform(-20, 20)),
            distance_m=float(rng.uniform(2, 12)),
        )
        for s in fleet[:-1]
    }
    silent = fleet[-1]
    truth[silent.address] = RoomSpeaker(latency_ms=100.0, silent=True)
    room = RoomBackend(truth, lambda: NOW, seed=seed % 1000)
    heard = [s.address for s in fleet[:-1]]
    before = [room.latency_ms(a, NOW) or 0.0 for a in heard]
    probes: list[ProbeEvent] = []
    outcome, targets, left_out = align_by_probe(
        room, room, fleet, record=probes.append, clock=lambda: NOW
    )
    after = [room.latency_ms(a, NOW) or 0.0 for a in heard]
    assert left_out == (silent.name,), f"seed {seed}"
    assert [t.address for t in targets] == heard
    assert outcome.aligned, f"seed {seed}: {outcome.why}"
    assert max(after) - min(after) <= 5.0, f"seed {seed}: {after} (before {before})"
    assert min(outcome.delays_ms.values()) == 0, f"seed {seed}"
    assert room.delays() == outcome.delays_ms
    assert len(probes) == len(outcome.rounds)  # every measurement was a recorded probe


def test_fewer_than_two_heard_is_no_alignment() -> None:
    fleet = [speaker(1), speaker(2)]
    truth = {
        fleet[0].address: RoomSpeaker(latency_ms=80.0),
        fleet[1].address: RoomSpeaker(latency_ms=200.0, silent=True),
    }
    room = RoomBackend(truth, lambda: NOW)
    outcome, _, left_out = align_by_probe(room, room, fleet, record=lambda e: None)
    assert not outcome.aligned and "fewer than two" in outcome.why
    assert left_out == ("Speaker 2",)
    assert room.delays() == {}
