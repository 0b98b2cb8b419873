"""Sources behind one interface (core.sources): what a source feeds reaches the fleet, the log
and the listeners; a failing source is shown and the others go on; the Monitor's one ticker
ticks every source; a replay runs with no BlueZ mirror at all; actions find a source's control."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import pytest

import core.bluez.client
from core.bluez.client import BluezMirror
from core.eventlog.replay import ReplayMonitor
from core.fleet.events import Event
from core.fleet.model import SourceState, SourceStatus, Verdict
from core.hci.source import HciSource
from core.monitor import TICK_S, Monitor
from core.sources import DeviceCalls, Devices, Fact, Record, Source, Status
from tests.conftest import wait_for
from tests.dropouts.records import dropout_record, speaker
from tests.fleet.builders import address, make_facts

T0 = 1_790_000_000.0
UP = SourceStatus(SourceState.CONNECTED, "feeding", "test")


class Feeder(Source):
    """An in-test source: feeds the facts it was given, is ready, then fails or waits."""

    def __init__(
        self,
        name: str,
        facts: Iterable[Fact] = (),
        *,
        fail: Exception | None = None,
        control: DeviceCalls | None = None,
    ) -> None:
        self.name = name
        self.facts = list(facts)
        self.fail = fail
        self._control = control
        self._status = SourceStatus(SourceState.CONNECTING, "starting")
        self._ready = asyncio.Event()
        self.ticks: list[float] = []
        self.refreshed = 0

    @property
    def status(self) -> SourceStatus:
        return self._status

    @property
    def control(self) -> DeviceCalls | None:
        return self._control

    async def run(self) -> None:
        for fact in self.facts:
            self.sink.feed(fact)
        self._status = SourceStatus(SourceState.CONNECTED, f"fed {len(self.facts)} facts")
        self._ready.set()
        if self.fail is not None:
            raise self.fail
        await asyncio.Event().wait()

    async def wait_ready(self, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await self._ready.wait()
        except TimeoutError:
            return False
        return True

    def tick(self, now: float) -> None:
        self.ticks.append(now)

    def refresh(self) -> None:
        self.refreshed += 1


class Calls:
    """A control that records the calls it was asked to make."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def call_device(
        self, path: str, member: str, signature: str = "", body: list[object] | None = None
    ) -> None:
        self.calls.append((path, member))


class ListLog:
    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def append(self, events: Iterable[Event | dict[str, Any]]) -> None:
        self.lines.extend(e if isinstance(e, dict) else e.to_json() for e in events)


@pytest.fixture
async def running() -> AsyncIterator[list[asyncio.Task[None]]]:
    """Monitors started with `running.append(create_task(monitor.run()))`, stopped after."""
    tasks: list[asyncio.Task[None]] = []
    yield tasks
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def start(
    running: list[asyncio.Task[None]], sources: Sequence[Source], **kwargs: Any
) -> Monitor:
    monitor = Monitor(sources=sources, clock=lambda: T0, **kwargs)
    running.append(asyncio.create_task(monitor.run()))
    assert await monitor.wait_ready(2.0)
    return monitor


async def test_device_facts_reach_the_snapshot_the_log_and_the_listeners(running) -> None:
    """A source's facts are judged by the Monitor: the row in the snapshot, its events in
    the log and to on_events, and the log's snapshot once the source is ready."""
    log, seen = ListLog(), list[Event]()
    facts = make_facts(1)
    feeder = Feeder("feeder", [Status(UP), Devices({facts.path: facts})])
    monitor = await start(running, [feeder], log=log, on_events=seen.extend)
    await wait_for(lambda: any(line["type"] == "snapshot" for line in log.lines))
    (row,) = monitor.snapshot().speakers
    assert (row.name, row.verdict) == ("Speaker 1", Verdict.STREAMING)
    assert monitor.snapshot().source == UP
    assert [line["type"] for line in log.lines] == ["source", "speaker", "snapshot"]
    assert [e.to_json() for e in seen] == log.lines[:2]
    assert log.lines[-1]["speakers"][0]["address"] == address(1)
    assert monitor.source_statuses() == {"feeder": feeder.status}


async def test_records_are_put_in_place_as_recorded(running) -> None:
    """§4.2 records (what a replay, and a remote host's `watch --json`, deliver): rows as
    they were, not re-judged; dropouts in the history; every line published again."""
    seen = list[Event]()
    rows = [speaker(T0, address(1), "stalled"), speaker(T0, address(2), "streaming")]
    snapshot = {"type": "snapshot", "t": T0, "fleet": {}, "speakers": rows}
    drop = dropout_record(T0 - 30, address(1), end_t=T0 - 25)
    feeder = Feeder("remote", [Record(snapshot), Record(drop)])
    monitor = await start(running, [feeder], on_events=seen.extend)
    await wait_for(lambda: len(seen) == 2)
    snap = monitor.snapshot()
    assert [(s.address, s.verdict) for s in snap.speakers] == [
        (address(1), Verdict.STALLED),
        (address(2), Verdict.STREAMING),
    ]
    assert snap.dropouts[address(1)].count == 1
    assert [e.to_json() for e in seen] == [snapshot, drop]


async def test_a_failing_source_is_shown_and_the_others_go_on(running) -> None:
    """One source's run() raises: its status says so, the operator reads it in the
    warnings, the fleet it fed is no longer trusted; the other source still ticks and
    feeds, and the Monitor keeps running."""
    broken = Feeder("far host", [Status(UP)], fail=RuntimeError("the session was cut"))
    other = Feeder("near host")
    monitor = await start(running, [broken, other])
    await wait_for(lambda: monitor.source_statuses()["far host"].state == SourceState.ERROR)
    assert monitor.source_statuses()["far host"].detail == "far host: the session was cut"
    assert "far host: the session was cut" in monitor.warnings
    assert monitor.state.source.state == SourceState.ERROR  # its speakers are `unknown`
    assert monitor.source_statuses()["near host"].state == SourceState.CONNECTED
    ticks = len(other.ticks)
    await wait_for(lambda: len(other.ticks) > ticks, timeout=3 * TICK_S, message="a tick")
    facts = make_facts(2)
    other.sink.feed(Devices({facts.path: facts}))
    assert [s.address for s in monitor.snapshot().speakers] == [address(2)]
    assert not running[-1].done()


class BrokenCapture:
    """An HCI reader whose capture cannot be read; its status says why and what to do."""

    status = "HCI: cannot read /tmp/none.btsnoop: run `btmon -w /tmp/none.btsnoop`"
    caught_up = False

    async def run(self) -> None:
        raise OSError("cannot read /tmp/none.btsnoop")

    def rates(self, now: float) -> dict[str, Any]:
        return {}


async def test_a_failing_hci_reader_is_one_warning_in_its_own_words(running) -> None:
    feeder = Feeder("BlueZ", [Status(UP)])
    monitor = await start(running, [feeder, HciSource(BrokenCapture())])
    await wait_for(lambda: bool(monitor.warnings))
    assert list(monitor.warnings) == [BrokenCapture.status]
    assert monitor.snapshot().hci_status == BrokenCapture.status
    assert monitor.state.source == UP  # the fleet's own source is not the HCI reader


async def test_one_ticker_ticks_every_source(running) -> None:
    """The Monitor's ticker (core.monitor.TICK_S) is the one clock of periodic work: it ticks
    every source; the BlueZ mirror has no ticker of its own any more."""
    first, second = Feeder("one"), Feeder("two")
    await start(running, [first, second])
    await wait_for(lambda: len(second.ticks) >= 2, timeout=4 * TICK_S, message="two ticks")
    assert len(first.ticks) >= 2
    assert not hasattr(core.bluez.client, "TICK_S")
    assert not hasattr(BluezMirror, "_tick")


async def test_a_replay_builds_no_bluez_mirror(monkeypatch, running) -> None:
    """A replay's one source is the recording: no BlueZ mirror is built, nothing can act."""

    def no_mirror(*args: object, **kwargs: object) -> None:
        raise AssertionError("a replay built a BluezMirror")

    monkeypatch.setattr(BluezMirror, "__init__", no_mirror)
    records = [
        speaker(T0, address(1), "streaming"),
        dropout_record(T0 + 5, address(1), end_t=T0 + 9, t=T0 + 9),
        speaker(T0 + 10, address(1), "connected-idle"),
    ]
    monitor = ReplayMonitor(records, label="a test log", speed=1000)
    running.append(asyncio.create_task(monitor.run()))
    await asyncio.wait_for(monitor.finished.wait(), 5)
    assert monitor.sources == (monitor.recording,)
    assert monitor.bluez is None
    assert (monitor.live, monitor.device_calls) == (False, None)
    snap = monitor.snapshot()
    assert [(s.address, s.verdict) for s in snap.speakers] == [(address(1), Verdict.CONNECTED_IDLE)]
    assert snap.t == T0 + 10  # the recording's clock
    assert snap.dropouts[address(1)].count == 1
    assert "finished" in monitor.source_statuses()["replay"].detail


def test_actions_go_to_the_first_source_with_a_control() -> None:
    calls = Calls()
    watching, acting = Feeder("watching"), Feeder("acting", control=calls)
    assert Monitor(sources=[watching, acting]).device_calls is calls
    assert Monitor(sources=[watching, acting]).live
    alone = Monitor(sources=[Feeder("watching")])
    assert (alone.live, alone.device_calls) == (False, None)


def test_include_all_asks_every_source_again() -> None:
    """Every device or speakers only: the fleet's rule changes and each source feeds its
    devices again."""
    first, second = Feeder("one"), Feeder("two")
    monitor = Monitor(sources=[first, second])
    monitor.set_include_all(True)
    assert monitor.state.include_all
    assert (first.refreshed, second.refreshed) == (1, 1)
    monitor.set_include_all(False)
    assert not monitor.state.include_all
    assert (first.refreshed, second.refreshed) == (2, 2)
