"""Hosts for the remote-host tests: each a separate fleet on its own private dbus-daemon (the
demo's fake BlueZ, in its own process), reached through a wrapper command that stands in for
`ssh HOST btmon-tui` (tests/hosts/test_ssh.py goes through a real sshd where it can).

A host can be taken down: its running btmon-tui processes are killed and, until it is up
again, its command fails the way ssh does when a host is unreachable (exit 255, `ssh: …`)."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.fleet.model import SourceState, Speaker
from core.hosts import HostSpec, RemoteHost
from core.monitor import Monitor
from core.sim.demo import DemoFleet
from core.sim.remote import bring_up, take_down, write_host_script


@dataclass
class Host:
    """One 'host': a fleet on a private bus and the command that runs btmon-tui there."""

    name: str
    fleet: DemoFleet
    folder: Path

    @property
    def script(self) -> Path:
        return self.folder / "btmon-tui"

    @property
    def spec(self) -> HostSpec:
        return HostSpec(self.name, (str(self.script),))

    @property
    def arg(self) -> str:
        """The `--host` value for this host."""
        return f"{self.name}={shlex.quote(str(self.script))}"

    def down(self) -> None:
        """The host goes away: its btmon-tui processes die, and it cannot be reached."""
        take_down(self.folder)

    def up(self) -> None:
        bring_up(self.folder)


def make_host(name: str, folder: Path, speed: float = 1.0) -> Host:
    fleet = DemoFleet(speed=speed, hci=False)
    bus = fleet.start()
    write_host_script(name, bus, folder)
    return Host(name, fleet, folder)


@pytest.fixture
def two_hosts(tmp_path: Path) -> Iterator[tuple[Host, Host]]:
    """Hosts `lab` and `foyer`: the demo fleet each, on separate buses and processes."""
    hosts: list[Host] = []
    try:
        for name in ("lab", "foyer"):
            hosts.append(make_host(name, tmp_path / name))
        yield hosts[0], hosts[1]
    finally:
        for host in hosts:
            host.down()
            host.fleet.stop()


@contextlib.asynccontextmanager
async def watching(*hosts: HostSpec) -> AsyncIterator[tuple[Monitor, list[dict[str, Any]]]]:
    """A Monitor of these hosts, running, and every line it publishes (as JSON), until the
    block ends."""
    monitor = Monitor(sources=[RemoteHost(host) for host in hosts])
    seen: list[dict[str, Any]] = []
    monitor.listeners.append(lambda events: seen.extend(e.to_json() for e in events))
    task = asyncio.create_task(monitor.run())
    try:
        yield monitor, seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def of_host(monitor: Monitor, name: str) -> list[Speaker]:
    return [s for s in monitor.state.speakers.values() if s.host == name]


def host_source(monitor: Monitor, name: str) -> RemoteHost:
    return next(s for s in monitor.sources if isinstance(s, RemoteHost) and s.name == name)


async def until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Wait for `check` (polled every 50 ms); the seconds it took. Fails after `timeout`
    (a bound for a hung test, not a speed claim)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not check():
        if loop.time() - start > timeout:
            pytest.fail(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(0.05)
    return loop.time() - start


def connected(monitor: Monitor, name: str) -> bool:
    return host_source(monitor, name).status.state == SourceState.CONNECTED
