"""The arithmetic of an alignment (pure): delays, stop rule, moved speakers, the loop with a
simulated fleet, and the `align` event's JSON shape (DESIGN §4.2)."""

from __future__ import annotations

import json

from core.align import plan
from core.align.loop import align
from core.align.measure import Target
from core.fleet.events import AlignEvent, AlignResult

A, B, C = "00:00:00:00:00:01", "00:00:00:00:00:02", "00:00:00:00:00:03"
TARGETS = [Target(A, "Left", "s1"), Target(B, "Right", "s2"), Target(C, "Sub", "s3")]


def test_the_latest_speaker_gets_no_delay_and_none_is_negative() -> None:
    proposal = plan.plan_delays({A: 100.0, B: 240.4, C: 180.6}, {})
    assert proposal.delays_ms == {A: 140, B: 0, C: 60}
    assert proposal.clamped == ()


def test_a_correction_keeps_the_delays_in_place_and_lowers_them_together() -> None:
    # With delays 140/0/60 the fleet still misses by a few ms: each moves by its residual,
    # then all are lowered until the smallest is 0.
    proposal = plan.plan_delays({A: 243.0, B: 240.0, C: 241.2}, {A: 140, B: 0, C: 60})
    assert proposal.delays_ms == {A: 137, B: 0, C: 59}


def test_delays_are_whole_ms_and_bounded() -> None:
    proposal = plan.plan_delays({A: 0.0, B: 1500.0}, {}, max_delay_ms=1000)
    assert proposal.delays_ms == {A: 1000, B: 0}
    assert proposal.clamped == (A,)
    assert all(isinstance(d, int) for d in proposal.delays_ms.values())


def test_spread_offsets_and_moved() -> None:
    arrivals = {A: 100.0, B: 110.0, C: 130.0}
    assert plan.spread(arrivals) == 30.0
    assert plan.spread({}) is None
    assert plan.offsets(arrivals) == {A: -10.0, B: 0.0, C: 20.0}
    assert plan.moved({A: 100.0, B: 50.0}, {A: 101.0, B: 80.0}) == {B: 30.0}


def test_stop_rule() -> None:
    assert plan.judge(1, 5, 2.9, 5.0) == plan.Verdict(True, True)
    assert plan.judge(1, 5, 4.0, 5.0) == plan.Verdict(False, False)  # aims lower first
    assert plan.judge(5, 5, 4.0, 5.0) == plan.Verdict(True, True)
    assert plan.judge(1, 5, 9.0, 5.0) == plan.Verdict(False, False)
    last = plan.judge(5, 5, 9.0, 5.0)
    assert last.stop and not last.aligned and "9.0 ms after 5 rounds" in last.why
    missing = plan.judge(0, 5, 1.0, 5.0, missing=("Sub (C)",))
    assert missing.stop and not missing.aligned and "not heard" in missing.why


class SimulatedFleet:
    """Each speaker's own latency plus its stage's delay, with a fresh error at each reload
    (PulseAudio's loopbacks land a few ms off), and optionally a speaker that moves."""

    def __init__(self, own: dict[str, float], errors: list[float], moves: float = 0.0) -> None:
        self.own = own
        self.errors = errors
        self.moves = moves
        self.landed: dict[str, float] = dict.fromkeys(own, 0.0)
        self.applied: list[dict[str, int]] = []

    def measure(self, targets: object, delays: dict[str, int]) -> dict[str, float | None]:
        if self.applied and self.moves:
            self.own[C] += self.moves
        return {a: self.own[a] + self.landed[a] for a in self.own}

    def apply(self, delays: dict[str, int]) -> None:
        before = self.applied[-1] if self.applied else {}
        for address, delay in delays.items():
            if before.get(address, 0) != delay:  # only a changed stage is reloaded
                self.landed[address] = delay + self.errors.pop(0)
        self.applied.append(dict(delays))


def test_the_loop_corrects_the_residual_until_within_target() -> None:
    fleet = SimulatedFleet(
        {A: 100.0, B: 240.0, C: 180.0}, errors=[-8.0, 5.0, 0.3, -0.2, 0.1, 0.2, 0.1, 0.0]
    )
    rounds = []
    outcome = align(
        TARGETS, {}, measure=fleet.measure, apply=fleet.apply, target_ms=5.0,
        on_round=lambda step, verdict, planned: rounds.append(step.spread_ms),
    )  # fmt: skip
    assert outcome.aligned, outcome.why
    assert 2 <= outcome.applied_rounds <= 3 and rounds[0] == 140.0 and rounds[-1] <= 5.0
    event = outcome.event(1.0, "btmon_fleet", TARGETS, 5.0)
    assert event.spread_before_ms == 140.0 and event.rounds == outcome.applied_rounds
    assert [r.delay_ms for r in event.results] == [outcome.delays_ms[t.address] for t in TARGETS]


def test_the_loop_stops_after_n_rounds_and_names_a_speaker_that_moved() -> None:
    fleet = SimulatedFleet({A: 100.0, B: 240.0, C: 180.0}, errors=[0.0] * 20, moves=40.0)
    outcome = align(TARGETS, {}, measure=fleet.measure, apply=fleet.apply, rounds=3)
    assert not outcome.aligned and outcome.applied_rounds == 3
    assert "after 3 rounds" in outcome.why and "moved" in outcome.why and C in outcome.why


def test_a_dry_run_plans_and_applies_nothing() -> None:
    fleet = SimulatedFleet({A: 100.0, B: 240.0, C: 180.0}, errors=[])
    outcome = align(TARGETS, {}, measure=fleet.measure, apply=fleet.apply, dry_run=True)
    assert fleet.applied == [] and outcome.planned_ms == {A: 140, B: 0, C: 60}
    assert outcome.event(1.0, "btmon_fleet", TARGETS, 5.0, "dry-run").results[0].delay_ms == 140


def test_a_speaker_not_heard_stops_the_loop() -> None:
    def measure(targets: object, delays: dict[str, int]) -> dict[str, float | None]:
        return {A: 100.0, B: None, C: 180.0}

    outcome = align(TARGETS, {}, measure=measure, apply=lambda d: None)
    assert not outcome.aligned and "Right (00:00:00:00:00:02)" in outcome.why


def test_the_align_event_keeps_its_json_shape() -> None:
    event = AlignEvent(
        1765000000.5,
        "btmon_fleet",
        (AlignResult(A, 140, -70.0, 0.4, "Left", 100.0), AlignResult(B, 0, 70.0, -0.3, "Right")),
        140.0,
        0.7,
        2,
        5.0,
    )
    line = event.to_line()
    assert json.loads(line) == {
        "type": "align",
        "t": 1765000000.5,
        "sink": "btmon_fleet",
        "results": [
            {"address": A, "name": "Left", "delay_ms": 140, "latency_before_ms": 100.0,
             "offset_before_ms": -70.0, "offset_after_ms": 0.4},
            {"address": B, "name": "Right", "delay_ms": 0, "latency_before_ms": None,
             "offset_before_ms": 70.0, "offset_after_ms": -0.3},
        ],
        "spread_before_ms": 140.0,
        "spread_after_ms": 0.7,
        "rounds": 2,
        "target_ms": 5.0,
        "result": "aligned",
        "detail": "",
    }  # fmt: skip
    assert AlignEvent.from_json(json.loads(line)) == event
