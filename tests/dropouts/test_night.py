"""Dropouts over seeded nights at a venue (tests/dropouts/night.py), a fresh seed every run.

Issue 11: music stopping is no dropout, even staggered over 5 s (§3); one interruption is one
dropout whichever sources saw it (§5); a dropout line's `t` is when its fact happened, so a
stream stays in time order (§2). `report` (which sees the whole log) and the live detector
(fed event by event, ticked every 0.5 s as the Monitor does) must both find the truth. Pin a
failing seed with BTMON_DROPOUT_SEED=<seed>.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.dropouts.detector import DropoutDetector
from core.dropouts.report import build_report, report_from_jsonl
from tests.dropouts.night import VARIANTS, Night, fresh_seed, night, perturbed, run_live
from tests.dropouts.records import A, B, C, speaker

#: Nights per test run (each 3–12 speakers, 3–6 sessions): fast enough for every run.
NIGHTS = 12
SEED = fresh_seed()


def seeds(count: int = NIGHTS) -> list[int]:
    return [SEED + k for k in range(count)]


def held(detector: DropoutDetector, address: str) -> list[tuple[float, str]]:
    return [(round(d.start, 3), d.kind) for d in detector.dropouts(address)]


def truth(n: Night, address: str) -> list[tuple[float, str]]:
    return [(round(s, 3), k) for s, k in n.truth[address]]


def why(n: Night) -> str:
    return f"seed {n.seed} (BTMON_DROPOUT_SEED={n.seed}), {n.notes}"


@pytest.mark.parametrize("seed", seeds())
def test_report_counts_each_speaker_exactly(seed: int) -> None:
    """`report` over the raw lines: every speaker's count and kinds as the truth; no quiet
    speaker (none in truth) with a dropout."""
    n = night(seed)
    rows = {r["address"]: r for r in build_report(n.records)["speakers"]}
    for address in n.addresses:
        row: dict[str, Any] = rows.get(address, {"dropouts": 0, "kinds": {}})
        kinds: dict[str, int] = {}
        for _, kind in n.truth[address]:
            kinds[kind] = kinds.get(kind, 0) + 1
        assert (row["dropouts"], row["kinds"]) == (n.count(address), kinds), (address, why(n))


@pytest.mark.parametrize("seed", seeds())
def test_live_detector_ends_with_the_truth(seed: int) -> None:
    """The same night fed event by event with ticks: after its cancellations the history is
    the truth (starts and kinds); its lines are in time order, every `end` and `cancelled`
    follows its `start`, and the history is what the lines say."""
    n = night(seed, rows=True)
    detector = DropoutDetector()
    lines = run_live(n.records, detector)
    for address in n.addresses:
        assert held(detector, address) == truth(n, address), (address, why(n))
    times = [line["t"] for line in lines]
    assert times == sorted(times), why(n)
    started: set[tuple[str, str, float]] = set()
    standing: set[tuple[str, str, float]] = set()
    for line in lines:
        key = (line["address"], line["kind"], line["start_t"])
        assert line["start_t"] <= line["t"], line
        if line["phase"] == "start":
            started.add(key)
            standing.add(key)
        else:
            assert key in started, (line, why(n))
            if line["phase"] == "cancelled":
                standing.discard(key)
            else:
                assert line["end_t"] == line["t"], line
    assert standing == {(a, d.kind, d.start) for a in n.addresses for d in detector.dropouts(a)}, (
        why(n)
    )
    # The report over those lines (what `watch --json` wrote) says the same.
    recorded = build_report([*n.records, *lines])
    rows = {r["address"]: r["dropouts"] for r in recorded["speakers"]}
    assert rows == {a: n.count(a) for a in n.addresses if n.count(a)}, why(n)


@pytest.mark.parametrize("tick_s", [0.1, 2.0, 7.0])
def test_live_history_does_not_depend_on_the_tick(tick_s: float) -> None:
    """Ticks every 0.1 s, 2 s or 7 s (a busy event loop): silences and stalls are judged as
    of their deadlines, so the history is the same truth."""
    for seed in seeds(3):
        n = night(seed, rows=True)
        detector = DropoutDetector()
        lines = run_live(n.records, detector, tick_s=tick_s)
        for address in n.addresses:
            assert held(detector, address) == truth(n, address), (address, tick_s, why(n))
        times = [line["t"] for line in lines]
        assert times == sorted(times), why(n)


def test_live_detector_fed_every_record() -> None:
    """Every record of the log fed to `observe` (snapshots and transport lines too, as a
    program reading a log might): the same truth."""
    for seed in seeds(4):
        n = night(seed)
        detector = DropoutDetector()
        run_live(n.records, detector, types=None)
        for address in n.addresses:
            assert held(detector, address) == truth(n, address), (address, why(n))


def test_report_without_speaker_rows() -> None:
    """Logs of other writers (transport and device lines only): the same truth."""
    for seed in seeds(4):
        n = night(seed, rows=False)
        rows = {r["address"]: r["dropouts"] for r in build_report(n.records)["speakers"]}
        assert rows == {a: n.count(a) for a in n.addresses if n.count(a)}, why(n)


@pytest.mark.parametrize("variant", VARIANTS[1:])
def test_logs_of_other_writers(variant: str) -> None:
    """No snapshot, speaker rows stamped after their transport line, a link loss without its
    teardown line: the same counts, in report and live."""
    for seed in seeds(4):
        n = perturbed(night(seed), variant)
        rows = {r["address"]: r["dropouts"] for r in build_report(n.records)["speakers"]}
        assert rows == {a: n.count(a) for a in n.addresses if n.count(a)}, why(n)
        if n.notes["rows"]:
            detector = DropoutDetector()
            run_live(n.records, detector)
            live = {a: len(detector.dropouts(a)) for a in n.addresses}
            assert live == {a: n.count(a) for a in n.addresses}, why(n)


# -- §3: music stopping ----------------------------------------------------------------------


def staggered_stop(
    rng_seed: int, speakers: int, spread: float, *, rest_within: float | None = None
) -> list[dict[str, Any]]:
    """Every speaker streaming, then released one by one over `spread` s (the first at 0, the
    last at `spread`, the others in between, or in the last `rest_within` s)."""
    import random

    rng = random.Random(rng_seed)
    addresses = [f"C0:00:00:00:00:{i:02X}" for i in range(speakers)]
    t0 = 1_790_000_000.0
    records = [speaker(t0, a, "streaming") for a in addresses]
    low = 0.0 if rest_within is None else spread - rest_within
    offsets = sorted(rng.uniform(low, spread) for _ in addresses[1:])
    offsets = [0.0, *offsets[:-1], spread] if speakers > 1 else [0.0]
    for a, dt in zip(rng.sample(addresses, speakers), offsets, strict=True):
        records.append(speaker(t0 + 600 + dt, a, "connected-idle"))
    records.sort(key=lambda r: r["t"])
    return records


@pytest.mark.parametrize("spread", [0.0, 1.3, 4.0, 5.0, 5.4])
def test_music_stop_is_no_dropout(spread: float) -> None:
    """Every transport released within `spread` s (≤ 5 s, and 5.4 s: stamped a little late):
    no dropout, live or in report."""
    for k in range(10):
        records = staggered_stop(SEED + k, 3 + (SEED + k) % 10, spread)
        detector = DropoutDetector()
        assert run_live(records, detector) == [], (SEED + k, spread)
        assert build_report(records)["speakers"] == [], (SEED + k, spread)


def test_speaker_idle_while_the_rest_stream_on_is_a_dropout() -> None:
    """The first speaker idle, the last still streaming 5.8 s later (past the 5 s spread and
    its 0.5 s slack): the first has a transport dropout dated from its idle (live and report);
    the others, inside 5 s of the last, none."""
    records = staggered_stop(SEED, 5, 5.8, rest_within=5.0)
    first = min(r["t"] for r in records if r["verdict"] == "connected-idle")
    first_address = next(r["address"] for r in records if r["t"] == first)
    detector = DropoutDetector()
    lines = run_live(records, detector)
    assert [(line["address"], line["phase"], line["start_t"]) for line in lines] == [
        (first_address, "start", first)
    ]
    assert lines[0]["t"] > first + 5.5
    rows = build_report(records)["speakers"]
    assert [(r["address"], r["dropouts"], r["kinds"]) for r in rows] == [
        (first_address, 1, {"transport": 1})
    ]


# -- §5: one interruption, one dropout -----------------------------------------------------------


T0 = 1_790_000_000.0


@pytest.mark.parametrize("probe_first", [True, False])
def test_probe_miss_and_stall_are_one_dropout(probe_first: bool) -> None:
    """A probe misses a speaker and it is (or then becomes) `stalled`: one dropout, live and
    in report, of the kind that saw it first."""
    fleet = [speaker(T0, a, "streaming") for a in (A, B, C)]
    probe = {
        "type": "probe",
        "t": T0 + 10.0,
        "results": [
            {"address": A, "detected": False},
            {"address": B, "detected": True},
            {"address": C, "detected": True},
        ],
    }
    stall = speaker(T0 + (10.4 if probe_first else 9.2), A, "stalled")
    back = speaker(T0 + 30.0, A, "streaming")
    records = sorted([*fleet, probe, stall, back], key=lambda r: r["t"])
    detector = DropoutDetector()
    lines = run_live(records, detector)
    kind = "probe" if probe_first else "stall"
    assert [(line["phase"], line["kind"]) for line in lines] == [("start", kind), ("end", kind)]
    rows = build_report(records)["speakers"]
    assert [(r["address"], r["dropouts"], r["kinds"]) for r in rows] == [(A, 1, {kind: 1})]
    # The Monitor's way: probe_missed with the analysis' end as `now`, then the stalled row.
    live = DropoutDetector()
    for record in fleet:
        live.observe(record, T0)
    (start,) = live.probe_missed(A, T0 + 10.0, T0 + 12.5)
    assert (start.t, start.start_t) == (T0 + 12.5, T0 + 10.0)
    assert live.observe(speaker(T0 + 12.5, A, "stalled"), T0 + 12.5) == []
    assert [d.kind for d in live.dropouts(A)] == ["probe"]


def test_dropouts_of_the_old_detector_are_judged_again(tmp_path: Path) -> None:
    """A log of a version before issue 11 (`dropout` lines without `start_t`, some of them
    music stops it took for dropouts): where raw lines cover them they are judged again, in
    JSON Lines and in the report's records alike; history before the raw lines stands."""
    import random

    from tests.dropouts.records import old_dropout_record

    for seed in seeds(3):
        n = night(seed)
        rng = random.Random(seed)
        first = n.records[0]["t"]
        old = [old_dropout_record(s, a, k) for a in n.addresses for s, k in n.truth[a]]
        # False ones: a `transport` dropout at random moments of random speakers.
        old += [
            old_dropout_record(
                rng.uniform(first, n.records[-1]["t"]), rng.choice(n.addresses), "transport"
            )
            for _ in range(10)
        ]
        history = old_dropout_record(first - 3600, n.addresses[0], "link")
        records = sorted([*n.records, *old, history], key=lambda r: r["t"])
        rows = {r["address"]: r["dropouts"] for r in build_report(records)["speakers"]}
        expected = {a: n.count(a) for a in n.addresses if n.count(a)}
        expected[n.addresses[0]] = expected.get(n.addresses[0], 0) + 1
        assert rows == expected, why(n)
        path = tmp_path / f"old-{seed}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        from_file = report_from_jsonl(path)["speakers"]
        assert {r["address"]: r["dropouts"] for r in from_file} == expected, why(n)
