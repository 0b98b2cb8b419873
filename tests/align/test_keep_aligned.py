"""--keep-aligned (issue 14 §3): after an alignment, each periodic probe re-checks the spread
as the audience hears it and a drift past the target is corrected by at most 1 ms per speaker
per probe (core.align.plan.keep_step, Monitor.keep_aligned). Rooms are simulated with clock
drift (±30-100 ppm over four minutes, a fresh seed each run; BTMON_ALIGN_SEED pins it), probed
through the real analysis; the truth (the room's own latencies with the delays) must end
within target, and no step may move a delay by more than 1 ms."""

from __future__ import annotations

import numpy as np
import pytest

from core.align import plan
from core.align.by_probe import align_by_probe
from core.align.measure import Target as Placed
from core.fleet.events import AlignEvent, Event
from core.monitor import Monitor
from core.probe.runner import Target, run_blocking
from core.sim.room_sim import RoomBackend, RoomSpeaker
from tests.align.rooms import fresh_seed
from tests.fleet.builders import plain_speaker

NOW = 1_800_000_000.0


@pytest.mark.parametrize("count", [3])
async def test_a_drifting_room_is_kept_within_target_in_steps_of_one_ms(count: int) -> None:
    seed = fresh_seed() + count
    rng = np.random.default_rng(seed)
    now = [NOW]
    fleet = [plain_speaker(f"00:00:00:00:02:{n:02X}", f"Speaker {n}", NOW) for n in range(count)]
    truth = {
        s.address: RoomSpeaker(
            latency_ms=float(rng.uniform(40, 250)),
            drift_ppm=float(rng.choice([-1, 1]) * rng.uniform(30, 100)),
            distance_m=float(rng.uniform(2, 12)),
        )
        for s in fleet
    }
    room = RoomBackend(truth, lambda: now[0], seed=seed % 1000)
    outcome, _, _ = align_by_probe(room, room, fleet, record=lambda e: None, clock=lambda: now[0])
    assert outcome.aligned, f"seed {seed}: {outcome.why}"
    monitor = Monitor(sources=[], clock=lambda: now[0])
    published: list[Event] = []
    monitor.listeners.append(published.extend)
    monitor.aligned(
        outcome.event(now[0], "room", [Placed(s.address, s.name, "room") for s in fleet], 5.0)
    )
    assert monitor.alignment is not None
    assert dict(monitor.alignment.delays_ms) == room.delays()

    def truth_spread() -> float:
        arrivals = [room.latency_ms(s.address, now[0]) or 0.0 for s in fleet]
        return max(arrivals) - min(arrivals)

    # Four minutes later the clocks have drifted apart by up to 2 × 100 ppm × 240 s = 48 ms.
    now[0] += 240.0
    drifted = truth_spread()
    targets = [Target(s.address, s.name, i + 1) for i, s in enumerate(fleet)]
    steps = 0
    while True:
        before = room.delays()
        event = run_blocking(room, targets, clock=lambda: now[0])
        kept = await monitor.keep_aligned(event, room, target_ms=5.0)
        if kept is None:
            break
        after = room.delays()
        assert max(abs(after[a] - before[a]) for a in after) <= plan.KEEP_STEP_MS, seed
        assert min(after.values()) >= 0
        assert kept.result == "kept"
        assert monitor.alignment is not None and dict(monitor.alignment.delays_ms) == after
        steps += 1
        now[0] += 1.0  # probes a second apart: the drift itself is negligible meanwhile
        assert steps < 400, f"seed {seed}: no convergence"
    print(
        f"seed {seed}: drifted to {drifted:.1f} ms, {steps} steps of ≤1 ms, "
        f"now {truth_spread():.2f} ms"
    )
    assert truth_spread() <= 5.0 + 1.0, f"seed {seed}: {truth_spread()}"  # 1 ms: the analysis
    assert any(isinstance(e, AlignEvent) and e.result == "kept" for e in published) or steps == 0


def test_keep_step_moves_each_delay_by_at_most_one_ms_and_stops_within_target() -> None:
    rng = np.random.default_rng(fresh_seed())
    for _ in range(500):
        count = int(rng.integers(2, 9))
        delays = {f"s{i}": int(rng.integers(0, 200)) for i in range(count)}
        hidden = {a: 300.0 - d + float(rng.uniform(-40, 40)) for a, d in delays.items()}
        for _step in range(200):
            got = plan.keep_step(hidden, delays, delays_heard=False, target_ms=5.0)
            if got is None:
                break
            moved, spread = got
            assert spread > 5.0
            assert all(abs(moved[a] - delays[a]) <= 1 and moved[a] >= 0 for a in delays)
            delays = moved
        heard = [hidden[a] + delays[a] for a in delays]
        assert max(heard) - min(heard) <= 5.0
    assert plan.keep_step({"a": 100.0}, {"a": 0}, delays_heard=False, target_ms=5.0) is None
    assert (
        plan.keep_step({"a": 100.0, "b": None}, {"a": 0, "b": 3}, delays_heard=True, target_ms=5.0)
        is None
    )
