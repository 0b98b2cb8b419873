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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from dbus_next.aio import MessageBus

from core.bluez.client import BluezMirror
from core.events import Event
from core.sim.daemon import PrivateBus
from core.sim.fake_bluez import FakeBluez
from core.sim.objtree import ObjectTree

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


class MirrorRun:
    """A BluezMirror running as a task, with every event it emitted kept in `events`."""

    def __init__(self, mirror: BluezMirror, task: asyncio.Task[None], events: list[Event]):
        self.mirror = mirror
        self.task = task
        self.events = events

    def speaker(self, address: str):  # type: ignore[no-untyped-def]
        return next((s for s in self.mirror.snapshot().speakers if s.address == address), None)

    def verdicts(self) -> dict[str, str]:
        return {s.address: s.verdict.value for s in self.mirror.snapshot().speakers}


@pytest.fixture
async def start_mirror() -> AsyncIterator[Callable[..., Awaitable[MirrorRun]]]:
    """`run = await start_mirror(address)` starts a mirror; it is stopped after the test."""
    runs: list[MirrorRun] = []

    async def start(address: str, *, wait_ready: bool = True, **kwargs: object) -> MirrorRun:
        events: list[Event] = []
        mirror = BluezMirror(address, on_events=events.extend, **kwargs)  # type: ignore[arg-type]
        task = asyncio.create_task(mirror.run())
        run = MirrorRun(mirror, task, events)
        runs.append(run)
        if wait_ready:
            assert await mirror.wait_ready(5.0), mirror.state.source.detail
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
