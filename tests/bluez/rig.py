"""Fixtures for the action tests: a fleet where every resync/connect/disconnect path shows, a
Controller on a live Monitor in this process, and the CLI as a subprocess that does not block
the event loop (the fake BlueZ it talks to runs in this process).

Everything runs on a real private dbus-daemon (tests/conftest.py `private_bus`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core.bluez.control import Controller, Timeouts
from core.fleet.events import Event
from core.fleet.model import Speaker
from core.monitor import Monitor
from core.sim.daemon import child_env
from core.sim.fake_bluez import PAGE_TIMEOUT, FakeBluez, SimDevice
from tests.cli.conftest import ROOT, Result
from tests.conftest import FakeService

#: Short limits so that every path ends well within a second at fake speed 50.
FAST = Timeouts(
    call_s=3.0,
    disconnect_s=2.0,
    transport_s=0.5,
    active_s=1.0,
    attempts=3,
    settle_s=0.3,
    retry_s=0.05,
)
#: The same limits as a --config file for the CLI.
FAST_TOML = """[resync]
call_s = 3
disconnect_s = 2
transport_s = 0.5
active_s = 1
attempts = 3
settle_s = 0.3
retry_s = 0.05
"""

PLAYER = "10:00:00:00:00:01"  # streams all along: the fleet is playing
GHOST = "10:00:00:00:00:02"  # connected, transport idle (the illusion)
OFF = "10:00:00:00:00:03"  # switched off: every page times out
ONCE = "10:00:00:00:00:04"  # out of reach on the first page only
DUAL = "10:00:00:00:00:05"  # BlueZ's dual-role regression: Connect brings no A2DP
BOUNCY = "10:00:00:00:00:06"  # connects back by itself right after we drop it
AUTO = "10:00:00:00:00:07"  # bluetoothd reconnects it after a link loss (long page)
DARK = "10:00:00:00:00:08"  # on a powered-off adapter
SLOW = "10:00:00:00:00:09"  # pages for 2 s (at speed 50): time to cancel or restart
QUIET = "10:00:00:00:00:0A"  # connects, but the audio server never streams to it
PLAYER2 = "10:00:00:00:00:0B"  # a second streaming speaker (a drop there is a dropout)
UNKNOWN = "10:00:00:00:00:FF"  # not known to BlueZ


def fleet(fake: FakeBluez) -> None:
    fake.add_adapter("hci0", "B8:27:EB:00:00:01")
    fake.add_adapter("hci1", "00:E0:4C:00:00:02", powered=False)
    off = {"connected": False, "transport_state": None}
    for dev in (
        SimDevice(PLAYER, "Player", codec="AAC"),
        SimDevice(PLAYER2, "Player Two", codec="SBC"),
        SimDevice(GHOST, "Ghost", transport_state="idle"),
        SimDevice(OFF, "Off", connect_failure=PAGE_TIMEOUT, **off),
        SimDevice(ONCE, "Once", connect_failure=PAGE_TIMEOUT, connect_failures=1, **off),
        SimDevice(DUAL, "Dual", a2dp_on_connect=False, **off),
        SimDevice(BOUNCY, "Bouncy", transport_state="idle", returns_after_disconnect_s=0.0),
        SimDevice(AUTO, "Auto", auto_reconnect_s=0.0, connect_delay_s=25.0),
        SimDevice(DARK, "Dark", adapter="hci1", **off),
        SimDevice(SLOW, "Slow", connect_delay_s=100.0, **off),
        SimDevice(QUIET, "Quiet", plays=False, **off),
    ):
        fake.add_device(dev)


@dataclass
class Rig:
    """The fake BlueZ, a running Monitor on the same bus, and a Controller on that Monitor."""

    service: FakeService
    fake: FakeBluez
    monitor: Monitor
    controller: Controller
    events: list[Event] = field(default_factory=list)
    progress: list[tuple[str, str]] = field(default_factory=list)

    def speaker(self, address: str) -> Speaker | None:
        return next((s for s in self.monitor.state.speakers.values() if s.address == address), None)

    def records(self, address: str, kind: str) -> list[dict[str, Any]]:
        out = [e.to_json() for e in self.events if e.type == kind]
        return [r for r in out if r.get("address") == address]

    def steps(self, address: str) -> list[str]:
        return [step for a, step in self.progress if a == address and step]

    def calls(self, address: str) -> list[tuple[str, str]]:
        return [(member, outcome) for a, member, outcome in self.fake.calls if a == address]

    async def act(self, action: str, address: str, timeout: float = 10.0) -> dict[str, Any]:
        """Run an action to its end; its ActionEvent as a §4.2 record."""
        event = await asyncio.wait_for(self.controller.run(action, address), timeout)
        return event.to_json()


@pytest.fixture
async def rig(bluez_service: FakeService) -> AsyncIterator[Callable[..., Awaitable[Rig]]]:
    """`r = await rig()` starts the fake (default: `fleet`), a Monitor and a Controller."""
    tasks: list[asyncio.Task[None]] = []

    async def start(build: Callable[[FakeBluez], None] = fleet, timeouts: Timeouts = FAST) -> Rig:
        fake = await bluez_service.start(build)
        events: list[Event] = []
        monitor = Monitor(bluez_service.address, on_events=events.extend)
        progress: list[tuple[str, str]] = []
        controller = Controller(
            monitor, timeouts=timeouts, on_progress=lambda a, s: progress.append((a, s))
        )
        tasks.append(asyncio.create_task(monitor.run()))
        assert await monitor.wait_ready(5.0), monitor.state.source.detail
        return Rig(bluez_service, fake, monitor, controller, events, progress)

    yield start
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def fast_config_file(directory: Path) -> str:
    """FAST_TOML written as a --config file in `directory`; its path."""
    path = directory / "config.toml"
    path.write_text(FAST_TOML)
    return str(path)


@pytest.fixture
def fast_config(tmp_path: Path) -> str:
    return fast_config_file(tmp_path)


async def cli(*args: str, timeout: float = 20.0, stdin: int | None = None) -> Result:
    """`python -m tui.cli ARGS` without blocking this event loop (the fake BlueZ runs here)."""
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tui.cli",
        *args,
        cwd=ROOT,
        env=child_env(),
        stdin=asyncio.subprocess.DEVNULL if stdin is None else stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.terminate()
        out, err = await proc.communicate()
        pytest.fail(f"btmon-tui {' '.join(args)} ran over {timeout} s: {err.decode()[-1000:]}")
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode(), time.monotonic() - started)


class Running:
    """A CLI subprocess whose stderr is read as it comes (to act at a given progress step)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.err = ""

    @classmethod
    async def start(cls, *args: str, stdin: int | None = None) -> Running:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tui.cli",
            *args,
            cwd=ROOT,
            env=child_env(),
            stdin=asyncio.subprocess.DEVNULL if stdin is None else stdin,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def wait_for_err(self, text: str, timeout: float = 10.0) -> None:
        assert self.proc.stderr is not None
        async with asyncio.timeout(timeout):
            while text not in self.err:
                chunk = await self.proc.stderr.read(256)
                if not chunk:
                    raise AssertionError(f"stderr ended before {text!r}: {self.err}")
                self.err += chunk.decode()

    async def finish(self, timeout: float = 15.0) -> Result:
        started = time.monotonic()
        try:
            out, err = await asyncio.wait_for(self.proc.communicate(), timeout)
        except TimeoutError:
            self.proc.terminate()
            await self.proc.communicate()
            pytest.fail(f"btmon-tui ran over {timeout} s: {self.err[-1000:]}")
        assert self.proc.returncode is not None
        self.err += err.decode()
        return Result(self.proc.returncode, out.decode(), self.err, time.monotonic() - started)


def pty_pair() -> tuple[int, int]:
    """(master, slave) of a new pseudo-terminal: the slave is a tty for the child's stdin."""
    master, slave = os.openpty()
    return master, slave
