"""The arithmetic of an alignment, pure: from each speaker's arrival through the fleet output
and the delay its stage adds now, the next delays (the latest speaker gets 0, none negative,
whole milliseconds, bounded), the spread, offsets, and when to stop."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

#: Longest delay a stage may add (ms). Bluetooth codecs differ by up to ~200 ms (SBC 150-200
#: vs aptX LL ~38 ms, DESIGN §1) and a speaker's own buffering adds more; beyond a second
#: the fleet is not mis-timed but broken, and waiting for it is not a fix.
MAX_DELAY_MS: Final = 1000
#: A speaker whose own latency (arrival minus its stage) moved more than this between two
#: rounds is reported: its delay chases a moving target. Measured on PulseAudio 16: a
#: reloaded loopback lands within ~1 ms of its latency_msec alone, up to ~8 ms off when
#: several are reloaded at once, so 15 ms is beyond the stages' own noise.
MOVED_MS: Final = 15.0
#: While rounds are left the loop aims at this fraction of the target: a second measurement
#: of the same fleet differs by up to ~1 ms (measured: the loop's last spread against an
#: independent cross-correlation check, 8 speakers on PulseAudio 16), so a fleet that just
#: makes the target on one measurement may miss it on the next.
AIM_FRACTION: Final = 0.6
#: Default number of measure-and-apply rounds (the first one only measures).
DEFAULT_ROUNDS: Final = 5


def spread(arrivals_ms: Mapping[str, float]) -> float | None:
    """Latest minus earliest arrival (ms); None with no arrival."""
    if not arrivals_ms:
        return None
    return max(arrivals_ms.values()) - min(arrivals_ms.values())


def offsets(arrivals_ms: Mapping[str, float]) -> dict[str, float]:
    """Each arrival minus the fleet's median arrival (ms), as `probe` reports offsets."""
    if not arrivals_ms:
        return {}
    middle = statistics.median(arrivals_ms.values())
    return {address: arrival - middle for address, arrival in arrivals_ms.items()}


@dataclass(frozen=True, slots=True)
class Plan:
    """The delays to apply next (ms per address) and the speakers whose wish was cut to the
    bound (they cannot be aligned: their delay would exceed `MAX_DELAY_MS`)."""

    delays_ms: dict[str, int]
    clamped: tuple[str, ...] = ()


def plan_delays(
    arrivals_ms: Mapping[str, float],
    current_ms: Mapping[str, int],
    *,
    max_delay_ms: int = MAX_DELAY_MS,
) -> Plan:
    """Delays that bring every speaker to the latest one's arrival.

    A speaker heard at `arrival` with delay `d` now would arrive at `arrival - d + d'` with
    delay `d'`; each wants `d' = d + (latest - arrival)`. All are then lowered together until
    the smallest is 0 (adding the same delay everywhere only makes the fleet later), rounded
    to whole ms (PulseAudio's `latency_msec` is an integer) and bounded to [0, max_delay_ms].
    Speakers without an arrival keep their delay."""
    if not arrivals_ms:
        return Plan({address: int(d) for address, d in current_ms.items()})
    latest = max(arrivals_ms.values())
    wanted = {
        address: current_ms.get(address, 0) + (latest - arrival)
        for address, arrival in arrivals_ms.items()
    }
    lowest = min(wanted.values())
    delays: dict[str, int] = {address: int(d) for address, d in current_ms.items()}
    clamped: list[str] = []
    for address, want in wanted.items():
        delay = round(want - lowest)
        if delay > max_delay_ms:
            clamped.append(address)
            delay = max_delay_ms
        delays[address] = max(0, delay)
    return Plan(delays, tuple(sorted(clamped)))


def own_latencies(
    arrivals_ms: Mapping[str, float], delays_ms: Mapping[str, int]
) -> dict[str, float]:
    """Arrival minus the stage's delay: what the speaker's path adds by itself (ms)."""
    return {a: arrival - delays_ms.get(a, 0) for a, arrival in arrivals_ms.items()}


def moved(
    before: Mapping[str, float], after: Mapping[str, float], limit_ms: float = MOVED_MS
) -> dict[str, float]:
    """Speakers whose own latency changed by more than `limit_ms` between two rounds: address
    -> change (ms)."""
    return {
        address: after[address] - before[address]
        for address in before.keys() & after.keys()
        if abs(after[address] - before[address]) > limit_ms
    }


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether to stop after a round, and why (words for the operator when not aligned)."""

    stop: bool
    aligned: bool
    why: str = ""


def judge(
    round_number: int,
    rounds: int,
    spread_ms: float | None,
    target_ms: float,
    *,
    missing: tuple[str, ...] = (),
    clamped: tuple[str, ...] = (),
) -> Verdict:
    """The stop rule: aligned when every speaker was heard and the spread is within
    AIM_FRACTION of the target (within the target at the last round); otherwise stop after
    `rounds` rounds, or at once when a speaker was not heard or its
    delay would exceed the bound (another round cannot fix either)."""
    if missing:
        return Verdict(True, False, f"not heard through the fleet output: {', '.join(missing)}")
    if clamped:
        return Verdict(
            True,
            False,
            f"would need more than {MAX_DELAY_MS} ms of delay: {', '.join(clamped)} "
            "(is that speaker's path broken?)",
        )
    last = round_number >= rounds
    if spread_ms is not None and spread_ms <= (target_ms if last else target_ms * AIM_FRACTION):
        return Verdict(True, True)
    if last:
        shown = "unknown" if spread_ms is None else f"{spread_ms:.1f} ms"
        return Verdict(
            True, False, f"spread still {shown} after {rounds} rounds (target {target_ms:g} ms)"
        )
    return Verdict(False, False)


#: Largest change of one speaker's delay per correction while keeping a fleet aligned (ms):
#: a jump of a millisecond in a stage is not heard as a glitch (the issue's "too small to hear").
KEEP_STEP_MS: Final = 1


def keep_step(
    latencies_ms: Mapping[str, float | None],
    delays_ms: Mapping[str, int],
    *,
    delays_heard: bool,
    target_ms: float,
    step_ms: int = KEEP_STEP_MS,
) -> tuple[dict[str, int], float] | None:
    """The next delays of an aligned fleet that drifted: each aligned speaker's delay moves
    by at most `step_ms` toward the delays that would line it up again (the latest speaker
    gets 0, none negative). `latencies_ms`: a probe's latencies (None: not heard);
    `delays_heard`: whether those include the stages' delays (a probe through the fleet
    output) or not (played to each speaker's sink directly). Returns (delays, the spread as
    the audience hears it now), or None while that spread is within `target_ms` (or fewer
    than two aligned speakers were heard)."""
    heard = {
        a: lat + (0 if delays_heard else delays_ms[a])
        for a, lat in latencies_ms.items()
        if lat is not None and a in delays_ms
    }
    if len(heard) < 2:
        return None
    latest = max(heard.values())
    now = latest - min(heard.values())
    if now <= target_ms:
        return None
    ideal = {a: delays_ms[a] + (latest - arrival) for a, arrival in heard.items()}
    floor = min(ideal.values())
    moved = dict(delays_ms)
    for address, wanted in ideal.items():
        change = round(wanted - floor) - delays_ms[address]
        moved[address] = max(0, delays_ms[address] + max(-step_ms, min(step_ms, change)))
    return moved, now
