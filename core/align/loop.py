"""The align loop: measure every speaker through the fleet output, plan, apply, measure
again, correct the residual, until the spread is within target or the rounds run out.

Measuring and applying are passed in (the real ones: `FleetMic.arrivals` and
`stages.apply`), and so is the clock: the loop itself only decides, and reports each round
through `on_round`. BLOCKING when its callables are: run it from a thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from core.align import plan
from core.align.measure import Target
from core.fleet.events import AlignEvent, AlignResult

#: address -> arrival through the fleet output (ms), None when not heard.
Measure = Callable[[Sequence[Target], dict[str, int]], dict[str, "float | None"]]
#: address -> delay (ms) to apply.
Apply = Callable[[dict[str, int]], None]


@dataclass(frozen=True, slots=True)
class Round:
    """One measurement: the delays in place, what was heard, the spread; `number` 0 is the
    measurement before anything was applied."""

    number: int
    delays_ms: dict[str, int]
    arrivals_ms: dict[str, float | None]
    spread_ms: float | None


@dataclass
class Outcome:
    """How an alignment ended: every round, the delays in place, and the verdict."""

    rounds: list[Round] = field(default_factory=list)
    delays_ms: dict[str, int] = field(default_factory=dict)
    aligned: bool = False
    why: str = ""
    moved: dict[str, float] = field(default_factory=dict)
    planned_ms: dict[str, int] = field(default_factory=dict)

    @property
    def applied_rounds(self) -> int:
        return max(0, len(self.rounds) - 1)

    def event(
        self, t: float, sink: str, targets: Sequence[Target], target_ms: float, result: str = ""
    ) -> AlignEvent:
        """The §4.2 `align` event of this outcome."""
        first = self.rounds[0] if self.rounds else None
        last = self.rounds[-1] if self.rounds else None
        before = plan.offsets(_heard(first.arrivals_ms)) if first else {}
        after = plan.offsets(_heard(last.arrivals_ms)) if last else {}
        shown = self.planned_ms or self.delays_ms
        results = tuple(
            AlignResult(
                address=t_.address,
                delay_ms=shown.get(t_.address, 0),
                offset_before_ms=before.get(t_.address),
                offset_after_ms=after.get(t_.address),
                name=t_.name,
                latency_before_ms=first.arrivals_ms.get(t_.address) if first else None,
            )
            for t_ in targets
        )
        return AlignEvent(
            t,
            sink,
            results,
            first.spread_ms if first else None,
            last.spread_ms if last else None,
            self.applied_rounds,
            target_ms,
            result or ("aligned" if self.aligned else "not-aligned"),
            self.why,
        )


def _heard(arrivals: Mapping[str, float | None]) -> dict[str, float]:
    return {a: v for a, v in arrivals.items() if v is not None}


def align(
    targets: Sequence[Target],
    current_ms: Mapping[str, int],
    *,
    measure: Measure,
    apply: Apply,
    target_ms: float = 5.0,
    rounds: int = plan.DEFAULT_ROUNDS,
    dry_run: bool = False,
    on_round: Callable[[Round, plan.Verdict, dict[str, int]], None] | None = None,
) -> Outcome:
    """Measure -> plan -> apply -> measure … (at most `rounds` applies). `dry_run`: measure
    once and plan, apply nothing (`planned_ms` holds what would be applied)."""
    outcome = Outcome(delays_ms={t.address: current_ms.get(t.address, 0) for t in targets})
    own_before: dict[str, float] | None = None
    number = 0
    while True:
        arrivals = measure(targets, dict(outcome.delays_ms))
        heard = _heard(arrivals)
        missing = tuple(
            sorted(f"{t.name} ({t.address})" for t in targets if t.address not in heard)
        )
        step = Round(number, dict(outcome.delays_ms), dict(arrivals), plan.spread(heard))
        outcome.rounds.append(step)
        own = plan.own_latencies(heard, outcome.delays_ms)
        if own_before is not None:
            outcome.moved.update(plan.moved(own_before, own))
        own_before = own
        proposal = plan.plan_delays(heard, outcome.delays_ms)
        verdict = plan.judge(
            number,
            0 if dry_run else rounds,
            step.spread_ms,
            target_ms,
            missing=missing,
            clamped=proposal.clamped,
        )
        if on_round is not None:
            on_round(step, verdict, proposal.delays_ms)
        if dry_run:
            outcome.planned_ms = proposal.delays_ms
        if verdict.stop:
            outcome.aligned = verdict.aligned
            outcome.why = verdict.why
            if not verdict.aligned and outcome.moved:
                shifts = ", ".join(f"{a} {d:+.1f} ms" for a, d in sorted(outcome.moved.items()))
                outcome.why += f"; a speaker moved between rounds ({shifts})"
            return outcome
        apply(proposal.delays_ms)
        outcome.delays_ms = dict(proposal.delays_ms)
        number += 1
