"""Shared fixtures: a real private dbus-daemon, the fake BlueZ on it, and the live mirror.

A test that needs a missing component skips on a developer's machine, but fails under
CI=true (DESIGN §10): CI must prove the whole stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping

import pytest
from dbus_next.aio import MessageBus

from core.bluez.client import BluezMirror
from core.fleet.events import Event
from core.fleet.model import FleetSnapshot, Speaker
from core.fleet.state import FleetState
from core.monitor import TICK_S
from core.sim.daemon import PrivateBus
from core.sim.demo import DemoFleet
from core.sim.fake_bluez import FakeBluez
from core.sim.objtree import ObjectTree
from core.sources import Fact, Source, Warn, apply_to_fleet

IN_CI = os.environ.get("CI", "").lower() == "true"

#: The demo fleet's verdicts at start, by address (DESIGN §7), written out as known truth.
DEMO_VERDICTS: dict[str, str] = {
    "00:1A:7D:DA:71:01": "streaming",
    "00:1A:7D:DA:71:02": "streaming",
    "00:1A:7D:DA:71:03": "streaming",
    "F4:4E:FD:10:22:04": "connected-idle",
    "F4:4E:FD:10:22:05": "no-a2dp",
    "F4:4E:FD:10:22:06": "disconnected",
    "F4:4E:FD:10:22:07": "pending",
    "5C:F3:70:99:00:08": "unknown",
    # BlueZ says it streams; only the demo's HCI capture shows it stalled (DEMO_HCI_VERDICTS).
    "F4:4E:FD:10:22:0A": "streaming",
}
#: The demo's verdicts when its simulated HCI capture is read (`btmon-tui --demo`).
DEMO_HCI_VERDICTS: dict[str, str] = {**DEMO_VERDICTS, "F4:4E:FD:10:22:0A": "stalled"}


@pytest.fixture(autouse=True)
def _own_state_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test gets its own $XDG_STATE_HOME (inherited by the commands it runs): the
    default event log and the saved delays (core.align.keep) are never the user's."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


def require_binary(name: str, package: str) -> str:
    """Path of `name`; skip (locally) or fail (under CI=true) when it is missing."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found (Debian package {package}; `make setup` installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def private_bus() -> Iterator[str]:
    """Address of a fresh dbus-daemon that only this test uses."""
    require_binary("dbus-daemon", "dbus-daemon")
    with PrivateBus() as address:
        yield address


class FakeService:
    """The in-process fake bluetoothd; `stop()`/`start()` simulate a bluetoothd restart."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.bus: MessageBus | None = None
        self.fake: FakeBluez | None = None

    async def start(
        self, build: Callable[[FakeBluez], None] | None = None, speed: float = 50.0
    ) -> FakeBluez:
        self.bus = await MessageBus(bus_address=self.address).connect()
        self.fake = FakeBluez(ObjectTree(self.bus), speed=speed)
        if build is not None:
            build(self.fake)
        await self.bus.request_name("org.bluez")
        return self.fake

    async def stop(self) -> None:
        if self.bus is not None:
            self.bus.disconnect()
            with contextlib.suppress(Exception):
                await self.bus.wait_for_disconnect()
        self.bus = None
        self.fake = None


@pytest.fixture
async def bluez_service(private_bus: str) -> AsyncIterator[FakeService]:
    """A FakeService on the private bus, not yet started (call `await svc.start(build)`)."""
    service = FakeService(private_bus)
    yield service
    await service.stop()


class FleetOnly:
    """A source's sink with nothing behind it but a FleetState (no dropout detector, no
    log, no other source): the fleet facts it feeds, their events in `events`, its warnings.
    `run(source)` runs the source with the Monitor's re-judging tick."""

    def __init__(self, *, include_all: bool = False, clock: Callable[[], float] = time.time):
        self.state = FleetState(include_all=include_all)
        self.clock = clock
        self.events: list[Event] = []
        self.warnings: list[str] = []
        self.source: Source | None = None

    def feed(self, fact: Fact) -> None:
        if isinstance(fact, Warn):
            self.warnings.append(fact.text)
        else:
            self.events.extend(apply_to_fleet(self.state, fact, self.clock()))

    @property
    def speakers(self) -> Mapping[str, Speaker]:
        return self.state.speakers

    async def fleet_ready(self, timeout: float) -> bool:
        return self.source is None or await self.source.wait_ready(timeout)

    def snapshot(self) -> FleetSnapshot:
        return self.state.snapshot(self.clock())

    def set_include_all(self, include_all: bool) -> None:
        self.state.include_all = include_all
        if self.source is not None:
            self.source.refresh()

    async def run(self, source: Source) -> None:
        self.source = source
        source.attach(self)
        ticker = asyncio.create_task(self._tick())
        try:
            await source.run()
        finally:
            ticker.cancel()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            now = self.clock()
            self.events.extend(self.state.reclassify(now) + self.state.expire_reasons(now))


class MirrorRun:
    """A BluezMirror running as a task into a FleetOnly (`fleet`), with every event the
    fleet emitted kept in `events`."""

    def __init__(self, mirror: BluezMirror, fleet: FleetOnly, task: asyncio.Task[None]):
        self.mirror = mirror
        self.fleet = fleet
        self.task = task
        self.events = fleet.events

    def speaker(self, address: str):  # type: ignore[no-untyped-def]
        return next((s for s in self.fleet.snapshot().speakers if s.address == address), None)

    def verdicts(self) -> dict[str, str]:
        return {s.address: s.verdict.value for s in self.fleet.snapshot().speakers}


@pytest.fixture
async def start_mirror() -> AsyncIterator[Callable[..., Awaitable[MirrorRun]]]:
    """`run = await start_mirror(address)` starts a mirror; it is stopped after the test."""
    runs: list[MirrorRun] = []

    async def start(
        address: str, *, wait_ready: bool = True, include_all: bool = False
    ) -> MirrorRun:
        mirror = BluezMirror(address)
        fleet = FleetOnly(include_all=include_all)
        task = asyncio.create_task(fleet.run(mirror))
        run = MirrorRun(mirror, fleet, task)
        runs.append(run)
        if wait_ready:
            assert await mirror.wait_ready(5.0), fleet.state.source.detail
        return run

    yield start
    for run in runs:
        run.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await run.task


async def wait_for(
    predicate: Callable[[], bool], timeout: float = 5.0, message: str = "condition"
) -> float:
    """Poll until predicate() is true; return the seconds it took; fail after `timeout`."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


@pytest.fixture
def demo_bus() -> Iterator[str]:
    """The demo's fake BlueZ on a private bus, without its HCI capture (the speakers whose
    transport is active are the ones a probe or an align plays to)."""
    require_binary("dbus-daemon", "dbus")
    fleet = DemoFleet(hci=False)
    try:
        yield fleet.start()
    finally:
        fleet.stop()
