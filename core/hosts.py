"""Remote hosts (`--host NAME[=COMMAND]`): another machine's fleet, read from its own
`btmon-tui watch --json` (over SSH by default) and fed to this Monitor as §4.2 records.

A RemoteHost is a Source: every line its host prints becomes a `Record` tagged with
`"host": NAME`, so its speakers are put in place as that host judged them, its dropouts go
to this machine's history under `NAME/ADDRESS` (core.fleet.model.host_key), and every line
is published again with its host. A host that cannot be reached, loses its session or runs
a btmon-tui too old to answer is shown as such (its status, a `source` line, its speakers
`unknown`), and is tried again with backoff; nothing else stops. Actions on its speakers run
`COMMAND resync ADDRESS --json` there (RemoteActions).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shlex
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Protocol

from core.fleet.events import ActionEvent, Event
from core.fleet.model import FleetCounts, FleetSnapshot, SourceState, SourceStatus, host_key
from core.sources import Record, Shown, Source

#: `--host local`: this machine's own BlueZ, next to the remote hosts.
LOCAL: Final = "local"
#: What a host's name may be (it labels rows, metrics and log lines).
NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
#: The default command for host NAME: `ssh NAME btmon-tui`, never asking for a password
#: (there is no terminal to ask on), giving up on a dead network within seconds, and
#: noticing a session that went silent (no answer to 2 keep-alives 5 s apart).
SSH_OPTIONS: Final = (
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=5",
    "-o",
    "ServerAliveInterval=5",
    "-o",
    "ServerAliveCountMax=2",
)
#: Waits between tries to reach a host that is away (s): the last one repeats, so a host
#: that is back is reached again within 8 s plus the time it takes to answer.
BACKOFF_S: Final = (0.5, 1.0, 2.0, 4.0, 8.0)
#: The longest line a host may print (a snapshot of a few hundred speakers is ~100 kB).
LINE_LIMIT: Final = 16 * 1024 * 1024
#: Lines of a host's stderr kept to say why it ended.
STDERR_KEPT: Final = 5
#: How long a host's watch gets to end after SIGTERM before it is killed (s).
STOP_GRACE_S: Final = 2.0


class HostError(ValueError):
    """A `--host` value or `[hosts.NAME]` table that cannot be used, in one sentence."""


@dataclass(frozen=True, slots=True)
class HostSpec:
    """One host: its name and the command line that runs btmon-tui there (empty: this
    machine, `--host local`)."""

    name: str
    command: tuple[str, ...] = ()

    @property
    def is_local(self) -> bool:
        return not self.command

    def argv(self, *args: str) -> list[str]:
        """The command line that runs `btmon-tui ARGS…` on this host."""
        return [*self.command, *args]

    @property
    def shown(self) -> str:
        """The command as a person would type it (status lines, errors)."""
        return shlex.join(self.command)


def parse_host(text: str) -> HostSpec:
    """`NAME` (reached as `ssh NAME btmon-tui`), `NAME=COMMAND` (a command line that runs
    btmon-tui there: `ssh -p 2222 pi@lab /opt/btmon/bin/btmon-tui`, a wrapper script) or
    `local` (this machine). Raises HostError with what is wrong and how to write it."""
    name, sep, command = text.partition("=")
    name = name.strip()
    if not NAME_RE.match(name):
        raise HostError(
            f"--host {text!r}: {name!r} is not a host name (letters, digits, '.', '_', '-'); "
            "write NAME or NAME='COMMAND THAT RUNS btmon-tui THERE'"
        )
    if not sep:
        return HostSpec(name) if name == LOCAL else HostSpec(name, default_command(name))
    return host_with_command(name, command, f"--host {text!r}")


def host_with_command(name: str, command: str, where: str) -> HostSpec:
    """Host `name` reached by the command line `command` (from --host or the config file)."""
    if name == LOCAL:
        raise HostError(f"{where}: {LOCAL!r} is this machine; it takes no command")
    try:
        argv = tuple(shlex.split(command))
    except ValueError as exc:
        raise HostError(f"{where}: cannot read the command ({exc})") from None
    if not argv:
        raise HostError(f"{where}: the command is empty; write NAME alone for `ssh NAME btmon-tui`")
    return HostSpec(name, argv)


def default_command(name: str) -> tuple[str, ...]:
    return ("ssh", *SSH_OPTIONS, name, "btmon-tui")


def check_hosts(hosts: Sequence[HostSpec]) -> str:
    """What is wrong with a list of hosts ('' when nothing): each name once."""
    seen: set[str] = set()
    for host in hosts:
        if host.name in seen:
            return f"host {host.name!r} is given twice: give each host one name"
        seen.add(host.name)
    return ""


def why_ended(spec: HostSpec, code: int | None, stderr: Sequence[str], heard: bool) -> str:
    """Why a host's session ended, in words, with what to do."""
    last = next((line for line in reversed(stderr) if line.strip()), "").strip()
    said = f": {last}" if last else ""
    text = " ".join(stderr).lower()
    if "invalid choice" in text or "unrecognized arguments" in text:
        return (
            f"{spec.name} runs an older btmon-tui that cannot `watch --json` for this one{said}"
            f" — update it on {spec.name}"
        )
    if code == 127 or "command not found" in text or "no such file or directory" in text:
        return (
            f"btmon-tui was not found on {spec.name}{said} — install it there, or give its "
            f"path: --host {spec.name}='ssh {spec.name} /path/to/btmon-tui'"
        )
    via_ssh = bool(spec.command) and spec.command[0].endswith("ssh")
    if code == 255 and (via_ssh or any(line.startswith("ssh:") for line in stderr)):
        what = "the SSH session was lost" if heard else "unreachable"
        return f"{spec.name}: {what}{said} — check the network and `{spec.shown} --version`"
    if heard:
        return f"{spec.name}: its watch ended (exit {code}){said}"
    return f"{spec.name}: `{spec.shown} watch --json` failed (exit {code}){said}"


class RemoteHost(Source):
    """Host `spec`'s fleet, read from its `watch --json` and fed as records."""

    remote = True

    def __init__(
        self,
        spec: HostSpec,
        *,
        include_all: bool = False,
        backoff: Sequence[float] = BACKOFF_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.include_all = include_all
        self.backoff = tuple(backoff)
        self.clock = clock
        self._status = SourceStatus(SourceState.CONNECTING, f"{spec.name}: connecting…")
        #: Set once the first try ended either way (a snapshot, or a reason it failed).
        self._decided = asyncio.Event()
        #: The last speaker object its host sent, by address (they turn `unknown` when the
        #: host goes away).
        self._speakers: dict[str, dict[str, Any]] = {}
        #: Sessions that reached their first snapshot (tests and benches read it).
        self.sessions = 0
        #: Lines that were not §4.2 records (skipped, counted).
        self.bad_lines = 0
        self._proc: asyncio.subprocess.Process | None = None
        #: Why the host was last away ("" while it answers): said once, not per try.
        self._reason = ""

    @property
    def status(self) -> SourceStatus:
        return self._status

    def view(self, snapshot: FleetSnapshot) -> FleetSnapshot:
        return replace(snapshot, hosts=(*snapshot.hosts, (self.name, self._status)))

    async def wait_ready(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._decided.wait()
        return self._decided.is_set()

    async def run(self) -> None:
        tries = 0
        while True:
            heard, reason = await self._session()
            tries = 0 if heard else tries + 1
            wait = self.backoff[min(tries, len(self.backoff) - 1)] if self.backoff else 1.0
            self._lost(reason, f"{reason}; trying again in {wait:g} s")
            self._decided.set()
            await asyncio.sleep(wait)

    # -- one session -------------------------------------------------------------------------
    async def _session(self) -> tuple[bool, str]:
        """Run the host's watch until it ends: (whether it sent its snapshot, why it ended)."""
        args = ["watch", "--json"] + (["--all"] if self.include_all else [])
        argv = self.spec.argv(*args)
        self._set(SourceState.CONNECTING, f"{self.name}: connecting ({self.spec.shown})…")
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # no terminal: ssh cannot ask for a password on ours
                limit=LINE_LIMIT,
            )
        except OSError as exc:
            return False, f"{self.name}: cannot run {argv[0]!r} here ({exc.strerror or exc})"
        self._proc = proc
        assert proc.stdout is not None and proc.stderr is not None
        stderr: deque[str] = deque(maxlen=STDERR_KEPT)
        errors = asyncio.create_task(_collect(proc.stderr, stderr))
        heard = False
        try:
            while line := await proc.stdout.readline():
                data = _record(line)
                if data is None:
                    if not heard:
                        shown = line.decode(errors="replace").strip()[:80]
                        return False, (
                            f"{self.name}: its btmon-tui did not answer with `watch --json` "
                            f"lines (older, or something else printed {shown!r}) — update it "
                            f"on {self.name}"
                        )
                    self.bad_lines += 1
                    continue
                if not heard:
                    if data.get("type") != "snapshot":
                        continue  # a warning line before the snapshot: wait for it
                    heard = True
                    self.sessions += 1
                    self._connected(data)
                    self._take(data)
                    self._decided.set()  # its first full state is in
                    continue
                self._take(data)
            code = await proc.wait()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(errors, 1.0)
            return heard, why_ended(self.spec, code, list(stderr), heard)
        except ValueError:  # a line longer than LINE_LIMIT
            return heard, f"{self.name}: a line longer than {LINE_LIMIT} bytes; reconnecting"
        finally:
            errors.cancel()
            await _stop(proc)
            self._proc = None

    def _connected(self, snapshot: Mapping[str, Any]) -> None:
        self._reason = ""
        fleet = snapshot.get("fleet") or {}
        count = fleet.get("speakers", 0) if isinstance(fleet, dict) else 0
        self._set(
            SourceState.CONNECTED,
            f"{self.name}: connected, {count} speaker{'s' if count != 1 else ''}",
            publish=True,
        )

    def _take(self, data: dict[str, Any]) -> None:
        """One line of the host's watch: tagged with the host, remembered, fed."""
        data["host"] = self.name
        kind = data.get("type")
        if kind == "snapshot":
            speakers = [s for s in data.get("speakers") or [] if isinstance(s, dict)]
            for speaker in speakers:
                speaker["host"] = self.name
            data["speakers"] = speakers
            # The host's fleet now: what it no longer lists is gone from the view.
            gone = set(self._speakers) - {str(s.get("address")) for s in speakers}
            for address in gone:
                self._speakers.pop(address)
            self._speakers.update({str(s.get("address")): s for s in speakers})
        elif kind == "speaker" and isinstance(data.get("address"), str):
            self._speakers[data["address"]] = {
                k: v for k, v in data.items() if k not in ("type", "t")
            }
        self.sink.feed(Record(data))

    def _lost(self, reason: str, detail: str) -> None:
        """The host is away: its speakers are `unknown` (what they do now is not known); a
        `source` line when the reason is new (not one per try)."""
        now = self.clock()
        self._set(SourceState.ERROR, detail, publish=reason != self._reason)
        self._reason = reason
        for address, speaker in sorted(self._speakers.items()):
            if speaker.get("verdict") == "unknown":
                continue
            speaker = {**speaker, "verdict": "unknown", "media_pps": None, "host": self.name}
            self._speakers[address] = speaker
            self.sink.feed(Record({"type": "speaker", "t": now, **speaker}))

    def _set(self, state: SourceState, detail: str, *, publish: bool = False) -> None:
        self._status = SourceStatus(state, detail)
        if publish:  # a `source` line for scripts and the log: this host's state changed
            record = {"type": "source", "t": self.clock(), "state": state.value}
            self.sink.feed(Record({**record, "detail": detail, "host": self.name}))
        else:
            self.sink.feed(Shown())  # the status bar shows it


def host_parts(snapshot: FleetSnapshot) -> list[tuple[str, str, SourceStatus | None]]:
    """Per host of a view of several hosts: (name, 'N/M streaming' or why it is away, its
    status when it is away). [] without remote hosts. This machine is `local` when any of
    its speakers shows."""
    if not snapshot.hosts:
        return []
    parts: list[tuple[str, str, SourceStatus | None]] = []
    local = [s for s in snapshot.speakers if s.host is None]
    if local:
        counts = FleetCounts.of(local)
        parts.append((LOCAL, f"{counts.streaming}/{counts.connected} streaming", None))
    for name, status in snapshot.hosts:
        if status.state == SourceState.CONNECTED:
            counts = FleetCounts.of(s for s in snapshot.speakers if s.host == name)
            parts.append((name, f"{counts.streaming}/{counts.connected} streaming", None))
        else:
            word = "connecting…" if status.state == SourceState.CONNECTING else "away"
            parts.append((name, word, status))
    return parts


def shown_status(snapshot: FleetSnapshot) -> SourceStatus:
    """The status bar's word in a view of several hosts: the first host that is away (an
    error before one still connecting), else the fleet's own status."""
    away = [status for _, status in snapshot.hosts if status.state != SourceState.CONNECTED]
    away.sort(key=lambda status: status.state != SourceState.ERROR)
    if snapshot.source.state != SourceState.CONNECTED or not away:
        watching = snapshot.source.detail.startswith("watching ")
        if snapshot.hosts and snapshot.source.state == SourceState.CONNECTED and not watching:
            names = ", ".join(name for name, _ in snapshot.hosts)
            return replace(snapshot.source, detail=f"{snapshot.source.detail} · hosts: {names}")
        return snapshot.source
    more = f" (+{len(away) - 1} more away)" if len(away) > 1 else ""
    return replace(away[0], detail=away[0].detail + more)


def _record(line: bytes) -> dict[str, Any] | None:
    """A §4.2 record (a JSON object with a `type` and a numeric `t`), or None."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        return None
    if not isinstance(data.get("t"), int | float) or isinstance(data.get("t"), bool):
        return None
    return data


async def _collect(stream: asyncio.StreamReader, into: deque[str]) -> None:
    while line := await stream.readline():
        into.append(line.decode(errors="replace").rstrip())


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """End a host's command (and what it started): SIGTERM, then SIGKILL after a grace;
    its pipes are closed here, not left to the garbage collector after the loop ended."""
    try:
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
        except (TimeoutError, asyncio.CancelledError):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.shield(proc.wait())
    finally:
        transport = getattr(proc, "_transport", None)  # asyncio keeps it private
        if transport is not None:
            transport.close()


# -- actions on a host's speakers ----------------------------------------------------------------

ProgressSink = Callable[[str, str], None]


class RemoteActions:
    """Resync, connect or disconnect a speaker of one host by running `COMMAND ACTION
    ADDRESS --json` there: its progress lines become steps, its last line the action's
    event (published here, tagged with the host). One action per speaker at a time."""

    def __init__(
        self,
        spec: HostSpec,
        publish: Callable[[list[Event]], None],
        *,
        clock: Callable[[], float] = time.time,
        on_progress: ProgressSink | None = None,
    ) -> None:
        self.spec = spec
        self.publish = publish
        self.clock = clock
        self.on_progress = on_progress
        #: address -> the step the running action is at (shown in the table).
        self.steps: dict[str, str] = {}
        self._tasks: dict[str, asyncio.Task[ActionEvent]] = {}
        self._cancel_why: dict[str, tuple[str, str]] = {}

    def busy(self, address: str) -> bool:
        task = self._tasks.get(address.upper())
        return task is not None and not task.done()

    def start(self, action: str, address: str) -> asyncio.Task[ActionEvent] | None:
        address = address.upper()
        if self.busy(address):
            return None
        task = asyncio.get_running_loop().create_task(self.run(action, address))
        self._tasks[address] = task
        return task

    def cancel(
        self, address: str, detail: str = "cancelled", message: str = "cancelled by the operator"
    ) -> bool:
        task = self._tasks.get(address.upper())
        if task is None or task.done():
            return False
        self._cancel_why[address.upper()] = (detail, message)
        task.cancel()
        return True

    async def run(self, action: str, address: str) -> ActionEvent:
        """Run the action on the host to its end; its event is published and returned."""
        started = time.monotonic()
        argv = self.spec.argv(
            action, address, "--json", *(["--yes"] if action == "disconnect" else [])
        )
        self._step(address, f"{action} on {self.spec.name}…")
        result: tuple[str, str | None, str] = ("error", "host-unreachable", "")
        stderr: deque[str] = deque(maxlen=STDERR_KEPT)
        last: dict[str, Any] | None = None
        proc: asyncio.subprocess.Process | None = None
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
            assert proc.stdout is not None and proc.stderr is not None
            steps = asyncio.create_task(self._steps(address, proc.stderr, stderr))
            async for line in proc.stdout:
                data = _record(line)
                if data is not None and data.get("type") == "action":
                    last = data
            code = await proc.wait()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(steps, 1.0)
            if last is not None:
                result = (str(last.get("result")), last.get("detail"), str(last.get("message", "")))
            else:
                result = (
                    "error",
                    "host-unreachable",
                    why_ended(self.spec, code, list(stderr), False),
                )
        except OSError as exc:
            result = (
                "error",
                "host-unreachable",
                f"cannot run {argv[0]!r} here ({exc.strerror or exc})",
            )
        except asyncio.CancelledError:
            why = self._cancel_why.pop(address, ("cancelled", "cancelled by the operator"))
            result = ("error", *why)
        finally:
            if proc is not None:
                await _stop(proc)
            self.steps.pop(address, None)
            self._step(address, "")
        outcome, detail, message = result
        event = ActionEvent(
            self.clock(),
            address,
            action,
            outcome if outcome in ("ok", "error") else "error",
            detail,
            message,
            round(time.monotonic() - started, 2),
            host=self.spec.name,
        )
        self.publish([event])
        return event

    async def _steps(self, address: str, stream: asyncio.StreamReader, into: deque[str]) -> None:
        """The host's progress lines (`Name (ADDRESS): step`) as steps."""
        while line := await stream.readline():
            text = line.decode(errors="replace").rstrip()
            into.append(text)
            head, sep, step = text.partition("): ")
            if sep and address in head and not text.startswith("btmon-tui:"):
                self._step(address, step)

    def _step(self, address: str, step: str) -> None:
        if step:
            self.steps[address] = step
        if self.on_progress is not None:
            self.on_progress(address, step)


class Acting(Protocol):
    """What runs actions on speakers (core.bluez.control.Controller, RemoteActions)."""

    on_progress: ProgressSink | None

    @property
    def steps(self) -> dict[str, str]:
        """address -> the step its running action is at."""

    def busy(self, address: str) -> bool: ...

    def start(self, action: str, address: str) -> asyncio.Task[ActionEvent] | None: ...

    def cancel(
        self, address: str, detail: str = "cancelled", message: str = "cancelled by the operator"
    ) -> bool: ...


class ActionRouter:
    """Actions in a fleet of several hosts, by speaker key (Speaker.key: `lab/ADDRESS` for
    host lab's, the bare address for this machine's): each goes to its speaker's host.
    Same face as the Controller, keyed the same way (steps, progress)."""

    def __init__(self, local: Acting | None, remotes: Mapping[str, Acting]) -> None:
        self.local = local
        self.remotes = dict(remotes)
        self._on_progress: ProgressSink | None = None

    def _for(self, key: str) -> tuple[Acting | None, str]:
        host, sep, address = key.rpartition("/")
        if not sep:
            return self.local, key
        return self.remotes.get(host), address

    @property
    def on_progress(self) -> ProgressSink | None:
        return self._on_progress

    @on_progress.setter
    def on_progress(self, sink: ProgressSink | None) -> None:
        self._on_progress = sink
        if self.local is not None:
            self.local.on_progress = sink
        for name, acting in self.remotes.items():
            acting.on_progress = None if sink is None else _keyed(name, sink)

    @property
    def steps(self) -> dict[str, str]:
        out = dict(self.local.steps) if self.local is not None else {}
        for name, acting in self.remotes.items():
            out.update({host_key(name, a): step for a, step in acting.steps.items()})
        return out

    def busy(self, key: str) -> bool:
        acting, address = self._for(key)
        return acting is not None and acting.busy(address)

    def start(self, action: str, key: str) -> asyncio.Task[ActionEvent] | None:
        acting, address = self._for(key)
        return None if acting is None else acting.start(action, address)

    def cancel(
        self, key: str, detail: str = "cancelled", message: str = "cancelled by the operator"
    ) -> bool:
        acting, address = self._for(key)
        return acting is not None and acting.cancel(address, detail, message)


def _keyed(host: str, sink: ProgressSink) -> ProgressSink:
    return lambda address, step: sink(host_key(host, address), step)


def route_actions(
    local: Acting | None,
    hosts: Sequence[RemoteHost],
    publish: Callable[[list[Event]], None],
    clock: Callable[[], float] = time.time,
) -> Acting | None:
    """Where the app's actions go: `local` alone without hosts; else a router sending each
    to its speaker's host by the speaker's key."""
    if not hosts:
        return local
    remotes: dict[str, Acting] = {
        host.name: RemoteActions(host.spec, publish, clock=clock) for host in hosts
    }
    return ActionRouter(local, remotes)
