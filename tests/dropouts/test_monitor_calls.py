"""Where core.monitor hands the detector what only it sees: an operator's action (issue 11:
old BlueZ says no `local`, the action record does) and a probe's misses (stamped when the
analysis ended, dated from the probe)."""

from __future__ import annotations

from core.fleet.events import ActionEvent, DropoutEvent, Event
from core.monitor import Monitor
from tests.dropouts.records import A, B, device, speaker

T0 = 1_790_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def monitor() -> tuple[Monitor, Clock, list[Event]]:
    clock = Clock()
    seen: list[Event] = []
    mon = Monitor("unix:path=/nonexistent", clock=clock, on_events=seen.extend)
    for address in (A, B):
        mon.detector.observe(speaker(T0, address, "streaming"), T0)
    return mon, clock, seen


def dropouts(events: list[Event]) -> list[tuple[str, str, float]]:
    return [(e.phase, e.kind, e.start_t or e.t) for e in events if isinstance(e, DropoutEvent)]


def test_a_resync_on_old_bluez_is_no_dropout() -> None:
    """The resync's disconnect (no reason: old BlueZ) looked like a link loss; its action
    record, published when it ends, retracts it: a `cancelled` line, an empty history."""
    mon, clock, seen = monitor()
    at = T0 + 100
    mon.detector.observe(speaker(at, A, "no-a2dp"), at)
    (start,) = mon.detector.observe(device(at + 0.0004, A, False, None), at + 0.0004)
    assert (start.phase, start.kind) == ("start", "link")
    mon.detector.observe(speaker(at + 3, A, "streaming"), at + 3)
    clock.now = at + 4
    mon.publish([ActionEvent(at + 4, A, "resync", "ok", None, "streaming again", 4.3)])
    assert dropouts(seen) == [("cancelled", "link", at)]
    assert mon.detector.dropouts(A) == []
    assert mon.dropout_summaries(clock.now) == {}


def test_an_action_long_after_a_dropout_leaves_it() -> None:
    """A real dropout the operator then resyncs: it began before the action, it stays."""
    mon, clock, seen = monitor()
    at = T0 + 100
    mon.detector.observe(speaker(at, A, "no-a2dp"), at)
    mon.detector.observe(device(at + 0.0004, A, False, "timeout"), at + 0.0004)
    clock.now = at + 30
    mon.publish([ActionEvent(at + 30, A, "resync", "ok", None, "", 5.0)])
    assert dropouts(seen) == []
    assert [d.start for d in mon.detector.dropouts(A)] == [at]
