"""Actions without a screen or a bus: the outcome's words, the step's label, what `R` picks, and
the queue that runs a bulk resync two at a time."""

from __future__ import annotations

import asyncio
from typing import Any

from core.fleet.describe import describe_event
from core.fleet.model import FleetCounts, FleetSnapshot, SourceState, SourceStatus, Speaker, Verdict
from tui.actions import QUEUED, ActionQueue, needs_resync
from tui.widgets.fleet_table import step_label

BAR = "F4:4E:FD:10:22:04"


def action(**fields: Any) -> dict[str, Any]:
    return {"type": "action", "t": 0.0, "address": BAR, "action": "resync", **fields}


def test_outcomes_read_as_the_issue_words_them() -> None:
    names = {BAR: "Bar"}
    ok = action(result="ok", detail=None, message="streaming again", duration_s=2.71)
    assert describe_event(ok, names) == "Bar: resync ok — streaming again (2.7 s)"
    failed = action(
        result="error",
        detail="br-connection-page-timeout",
        message="the speaker did not answer: is it on and in range?",
        duration_s=5.2,
    )
    assert describe_event(failed, names) == (
        "Bar: resync failed — the speaker did not answer: is it on and in range? "
        "(br-connection-page-timeout)"
    )
    cancelled = action(
        result="error", detail="cancelled", message="cancelled by the operator", duration_s=1.25
    )
    assert describe_event(cancelled, names) == "Bar: resync cancelled after 1.2 s"
    # A record from an older log: no message, no duration.
    assert describe_event(action(result="error", detail="timeout"), names) == (
        "Bar: resync failed — no reason given (timeout)"
    )


def test_step_labels_fit_the_verdict_column() -> None:
    assert step_label("reconnecting 2/3…") == "⟳ reconnecting 2/3…"
    assert step_label("waiting for audio…") == "⟳ waiting for audio…"
    assert step_label("disconnected; settling…") == "⟳ disconnected…"
    long = step_label("BlueZ is connecting it by itself right now…")
    assert len(long) == 20 and long.endswith("…")


def speaker(name: str, verdict: Verdict) -> Speaker:
    return Speaker(
        path=f"/org/bluez/hci0/dev_{name}",
        address=name,
        name=name,
        adapter="hci0",
        paired=True,
        connected=verdict != Verdict.DISCONNECTED,
        is_speaker=True,
        verdict=verdict,
        transport=None,
        battery=None,
        media_pps=None,
        last_dropout=None,
        period_s=None,
        changed_t=0.0,
    )


def snapshot(*speakers: Speaker) -> FleetSnapshot:
    status = SourceStatus(SourceState.CONNECTED, "ok", "test")
    return FleetSnapshot(0.0, speakers, (), status, FleetCounts(0, 0, 0))


def test_resync_all_picks_silent_speakers_only_while_others_stream() -> None:
    fleet = [
        speaker("A", Verdict.STREAMING),
        speaker("B", Verdict.CONNECTED_IDLE),
        speaker("C", Verdict.NO_A2DP),
        speaker("D", Verdict.STALLED),
        speaker("E", Verdict.DISCONNECTED),
        speaker("F", Verdict.PENDING),
        speaker("G", Verdict.UNKNOWN),
    ]
    assert [s.name for s in needs_resync(snapshot(*fleet))] == ["B", "C", "D"]
    # Nothing plays: idle is normal, there is nothing to bring back.
    assert needs_resync(snapshot(*fleet[1:])) == []


class FakeController:
    """Controller stand-in: each action is a future the test finishes by hand."""

    def __init__(self) -> None:
        self.steps: dict[str, str] = {}
        self.ends: dict[str, asyncio.Future[None]] = {}
        self.cancelled: list[str] = []

    def busy(self, address: str) -> bool:
        return address in self.ends and not self.ends[address].done()

    def start(self, action: str, address: str) -> asyncio.Task[None] | None:
        if self.busy(address):
            return None
        self.ends[address] = asyncio.get_running_loop().create_future()
        self.steps[address] = "disconnecting…"
        return asyncio.get_running_loop().create_task(self._run(address))

    async def _run(self, address: str) -> None:
        await self.ends[address]
        self.steps.pop(address, None)

    def cancel(self, address: str, message: str = "") -> bool:
        self.cancelled.append(address)
        return self.busy(address)

    def finish(self, address: str) -> None:
        self.ends[address].set_result(None)


async def test_queue_runs_two_at_a_time_in_order_and_skips_the_recovered() -> None:
    controller = FakeController()
    changed: list[str] = []
    recovered = {"D"}
    queue = ActionQueue(
        controller,  # type: ignore[arg-type]
        changed.append,
        wanted=lambda _action, address: address not in recovered,
    )
    assert queue.enqueue("resync", ["A", "B", "C", "D", "E"]) == ["A", "B", "C", "D", "E"]
    assert list(queue.running) == ["A", "B"]
    assert queue.step("A") == "disconnecting…" and queue.step("C") == QUEUED
    assert not queue.start("resync", "C"), "a queued speaker is busy"

    # esc on a queued row: it leaves the queue and never starts.
    assert queue.cancel("C") == "queued"
    controller.finish("A")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    # D recovered while waiting: skipped; E takes the free slot.
    assert list(queue.running) == ["B", "E"]
    assert not queue.queued
    assert queue.step("A") == ""
    controller.finish("B")
    controller.finish("E")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not queue.running
    assert set(changed) == {"A", "B", "C", "D", "E"}
    assert "C" not in controller.ends and "D" not in controller.ends
