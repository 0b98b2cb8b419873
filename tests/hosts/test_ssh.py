"""Remote hosts reached through a real `ssh` to a private `sshd` on localhost: the merged watch,
an action and a lost SSH session, end to end over the same transport as a real fleet.

The "remote" side of each ssh session runs the host's wrapper (tests/hosts/conftest.py):
this repository's btmon-tui on that host's private bus. sshd (openssh-server) is started
by the test as the current user on a free port; without it the tests skip locally and fail
under CI=true (tests.conftest.require_binary)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.fleet.model import SourceState, Verdict
from core.hosts import HostSpec, RemoteActions
from tests.cli.conftest import run_cli
from tests.conftest import DEMO_VERDICTS, require_binary
from tests.hosts.conftest import (
    Host,
    connected,
    host_source,
    make_host,
    of_host,
    until,
    watching,
)

pytestmark = pytest.mark.dbus

#: A bound for a hung test (fleets and ssh sessions starting on 2 busy cores), not a speed claim.
START_S = 30.0
ADDRESS = "00:1A:7D:DA:71:01"  # Stage Left: streaming in the demo fleet

SSHD_CONFIG = """\
ListenAddress 127.0.0.1
Port {port}
HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile {authorized}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
UseDNS no
LogLevel INFO
"""


def _sshd_path() -> str:
    """sshd lives in /usr/sbin, which a user's PATH may leave out."""
    found = shutil.which("sshd") or shutil.which("sshd", path="/usr/sbin:/usr/local/sbin:/sbin")
    return found or require_binary("sshd", "openssh-server")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tree(root: int) -> list[int]:
    """`root` and every process below it (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


class Sshd:
    """A private sshd on 127.0.0.1:`port` that lets in one key; `ssh(…)` is the client's
    command line (no password, no host-key prompt, no known_hosts written)."""

    def __init__(self, folder: Path) -> None:
        self.binary = _sshd_path()
        keygen = require_binary("ssh-keygen", "openssh-client")
        self.client = require_binary("ssh", "openssh-client")
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.port = _free_port()
        self.key = folder / "client_key"
        host_key = folder / "host_key"
        for key in (host_key, self.key):
            subprocess.run(
                [keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                check=True,
                stdin=subprocess.DEVNULL,
            )
        authorized = folder / "authorized_keys"
        authorized.write_text(Path(f"{self.key}.pub").read_text())
        self.config = folder / "sshd_config"
        self.config.write_text(
            SSHD_CONFIG.format(
                port=self.port,
                host_key=host_key,
                pid_file=folder / "sshd.pid",
                authorized=authorized,
            )
        )
        self.log = folder / "sshd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def ssh(self, *remote: str) -> str:
        """The command line (one string, as --host takes it) that runs `remote` over ssh."""
        return shlex.join(
            [
                self.client,
                *("-F", "/dev/null", "-p", str(self.port), "-i", str(self.key)),
                *("-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no"),
                *("-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"),
                *("-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR"),
                "127.0.0.1",
                *remote,
            ]
        )

    def sessions(self) -> int:
        """Logins sshd let in so far (its log says each)."""
        return self.log.read_text().count("Accepted publickey for ")

    def start(self) -> None:
        # The privilege separation directory (a system sshd's unit creates it; only root can).
        with contextlib.suppress(OSError):
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-D", "-e", "-f", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + 10.0
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"sshd exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            if time.monotonic() > deadline:
                pytest.fail(f"sshd is not listening on {self.port}: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def crash(self) -> None:
        """sshd and every session it runs (their shells, the btmon-tui they started) die at
        once, as when the host loses power: the client sees its connection end, then refused."""
        if self.proc is None:
            return
        for pid in _tree(self.proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(5)
        self.proc = None


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    server = Sshd(tmp_path / "sshd")
    server.start()
    try:
        yield server
    finally:
        server.crash()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Host]:
    host = make_host("lab", tmp_path / "lab")
    try:
        yield host
    finally:
        host.down()
        host.fleet.stop()


def via_ssh(sshd: Sshd, host: Host) -> HostSpec:
    return HostSpec(host.name, tuple(shlex.split(sshd.ssh(str(host.script)))))


def test_watch_over_ssh_merges_with_another_host_every_line_tagged(
    sshd: Sshd, lab: Host, tmp_path: Path
) -> None:
    foyer = make_host("foyer", tmp_path / "foyer")
    try:
        result = run_cli(
            *("watch", "--json", "--duration", "3"),
            *("--host", f"lab={sshd.ssh(str(lab.script))}", "--host", foyer.arg),
            timeout=90,
        )
    finally:
        foyer.down()
        foyer.fleet.stop()
    assert result.returncode == 0, result.stderr
    print(f"\nwatch --duration 3 over ssh took {result.seconds:.1f} s")
    lines = result.json_lines()
    snapshots = {line["host"]: line for line in lines if line["type"] == "snapshot"}
    assert set(snapshots) == {"lab", "foyer"}, lines[:3]
    for name, snapshot in snapshots.items():
        assert {s["address"]: s["verdict"] for s in snapshot["speakers"]} == DEMO_VERDICTS, name
        assert {s["host"] for s in snapshot["speakers"]} == {name}
    assert all(line.get("host") in ("lab", "foyer") for line in lines), lines
    assert not [line for line in lines if line["type"] == "source" and line["state"] == "error"]
    assert sshd.sessions() >= 1, "lab was not reached through sshd"


async def test_an_action_runs_over_ssh(sshd: Sshd, lab: Host) -> None:
    published: list = []  # type: ignore[type-arg]
    spec = via_ssh(sshd, lab)
    event = await asyncio.wait_for(
        RemoteActions(spec, published.extend).run("resync", ADDRESS), START_S
    )
    assert (event.result, event.host, event.address) == ("ok", "lab", ADDRESS), event
    assert published == [event]
    assert sshd.sessions() == 1


async def test_a_lost_ssh_session_shows_unknown_says_unreachable_and_comes_back(
    sshd: Sshd, lab: Host
) -> None:
    async with watching(via_ssh(sshd, lab)) as (monitor, seen):
        await until(lambda: connected(monitor, "lab"), START_S, "lab up over ssh")
        assert {s.address: s.verdict.value for s in of_host(monitor, "lab")} == DEMO_VERDICTS
        assert sshd.sessions() == 1

        sshd.crash()  # the session ends under the watch, and sshd no longer answers
        await until(
            lambda: all(s.verdict == Verdict.UNKNOWN for s in of_host(monitor, "lab")),
            START_S,
            "lab's speakers unknown",
        )
        lost = [line for line in seen if line.get("type") == "source" and line.get("host") == "lab"]
        assert lost and lost[-1]["state"] == "error", lost
        assert "the SSH session was lost" in lost[-1]["detail"], lost[-1]
        refused = f"connect to host 127.0.0.1 port {sshd.port}: Connection refused"
        await until(
            lambda: refused in host_source(monitor, "lab").status.detail,
            START_S,
            f"lab unreachable (it says {host_source(monitor, 'lab').status.detail!r})",
        )
        status = host_source(monitor, "lab").status
        assert status.state == SourceState.ERROR
        assert "lab: unreachable: ssh: " + refused in status.detail, status.detail
        assert all(s.verdict == Verdict.UNKNOWN for s in of_host(monitor, "lab"))
        print(f"\nlab over ssh, lost: {lost[-1]['detail']}\nthen: {status.detail}")

        sshd.start()
        took = await until(lambda: connected(monitor, "lab"), START_S, "lab back over ssh")
        await until(
            lambda: {s.address: s.verdict.value for s in of_host(monitor, "lab")} == DEMO_VERDICTS,
            START_S,
            "lab's verdicts back",
        )
        print(f"lab reached again over ssh {took:.1f} s after sshd was back")
        assert host_source(monitor, "lab").sessions == 2
        assert sshd.sessions() == 2


async def test_a_host_reached_over_ssh_is_ready(sshd: Sshd, lab: Host) -> None:
    async with watching(via_ssh(sshd, lab)) as (monitor, _):
        await until(lambda: connected(monitor, "lab"), START_S, "lab up over ssh")
        assert await host_source(monitor, "lab").wait_ready(1.0)
