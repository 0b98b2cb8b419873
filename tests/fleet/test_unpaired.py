"""Unpaired devices are not the fleet (DESIGN §3; issue 11 §1), on seeded random fleets.

During discovery bluetoothd creates Device1 objects with Paired=false for everything it hears
(a neighbour's speaker, a phone pairing nearby) and removes them ~30 s after they go quiet.
Whatever they do, they never enter the fleet line, the counts, dropouts or snapshots; --all
lists them (paired=false) outside the counts, and one that gets paired joins.
"""

from __future__ import annotations

import random
from dataclasses import replace

from core.dropouts.detector import DropoutDetector
from core.fleet.model import Verdict
from core.fleet.state import FleetState
from core.monitor import _fleet_only
from tests.fleet.builders import CONNECTED, dev_path, make_facts, transport
from tests.seeds import fresh_seed

T0 = 1_700_000_000.0
STATES = ("active", "idle", "pending", None)


def _random_facts(rng: random.Random, n: int, *, paired: bool):  # type: ignore[no-untyped-def]
    connected = rng.random() < 0.7
    state = rng.choice(STATES) if connected else None
    return make_facts(
        n,
        paired=paired,
        connected=connected,
        transport=transport(state, n=n) if state else None,
        is_speaker=rng.random() < 0.9,
    )


def test_unpaired_devices_never_count_on_seeded_fleets() -> None:
    seed = fresh_seed()
    rng = random.Random(seed)
    for case in range(40):
        ours = rng.randint(1, 8)
        neighbours = rng.randint(1, 6)
        fleet, everything = FleetState(), FleetState(include_all=True)
        detector = DropoutDetector()
        for state in (fleet, everything):
            state.set_source(CONNECTED, T0)
        now = T0
        paired = {n: True for n in range(1, ours + 1)}
        paired.update({n: False for n in range(50, 50 + neighbours)})
        present = set(paired)
        for step in range(60):
            now += rng.uniform(0.2, 4.0)
            changed = {}
            for n in rng.sample(sorted(paired), k=rng.randint(1, len(paired))):
                if not paired[n] and rng.random() < 0.2:
                    # Quiet for ~30 s: bluetoothd removes it (or it comes back).
                    changed[dev_path(n)] = (
                        None if n in present else _random_facts(rng, n, paired=False)
                    )
                    present ^= {n}
                    continue
                if n not in present:
                    continue
                changed[dev_path(n)] = _random_facts(rng, n, paired=paired[n])
            fleet.update(changed, now)
            detector.observe_events(_fleet_only(everything.update(changed, now)), now)
            detector.tick(now)
            why = f"seed {seed}, case {case}, step {step}"
            listed = {s.address: s for s in fleet.snapshot(now).speakers}
            assert all(s.paired and s.is_speaker for s in listed.values()), why
            in_fleet = [s for s in everything.speakers.values() if s.paired and s.is_speaker]
            counts = everything.counts()
            assert counts == fleet.counts(), why
            assert counts.speakers == len(in_fleet), why
            assert counts.streaming == sum(1 for s in in_fleet if s.verdict == Verdict.STREAMING), (
                why
            )
            unpaired = {s.address for s in everything.speakers.values() if not s.paired}
            assert not unpaired & set(listed), why
            assert not any(detector.dropouts(a) for a in unpaired), why
        # A neighbour gets paired: it joins the fleet and the counts.
        newcomer = 50
        facts = replace(_random_facts(rng, newcomer, paired=True), is_speaker=True)
        fleet.update({dev_path(newcomer): facts}, now + 1)
        assert any(s.path == dev_path(newcomer) for s in fleet.speakers.values()), seed


def test_unpaired_streaming_neighbour_is_no_dropout_when_it_stops() -> None:
    """A neighbour's speaker streaming and then stopping while ours play is not our dropout."""
    everything = FleetState(include_all=True)
    everything.set_source(CONNECTED, T0)
    detector = DropoutDetector()
    events = everything.update(
        {dev_path(1): make_facts(1), dev_path(9): make_facts(9, paired=False)}, T0
    )
    detector.observe_events(_fleet_only(events), T0)
    idle = make_facts(9, paired=False, transport=transport("idle", n=9))
    detector.observe_events(_fleet_only(everything.update({dev_path(9): idle}, T0 + 1)), T0 + 1)
    gone = everything.update({dev_path(9): None}, T0 + 2)
    detector.observe_events(_fleet_only(gone), T0 + 2)
    assert detector.tick(T0 + 30) == []
    assert detector.dropouts("AA:BB:CC:DD:EE:09") == []
    assert everything.counts().line() == "1 of 1 connected speaker streaming"
