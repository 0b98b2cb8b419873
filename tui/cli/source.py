"""Where a command's fleet comes from, shared by every command that watches one: BlueZ on a
bus or the demo fleet, the config file, the event log with its history, BLE and HCI sources.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.ble import BlePresence, BleScan, adapter_name
from core.config import Config, ConfigError, load_config
from core.eventlog.store import EventStore, StoreError, default_db_path
from core.hci.live import HciLive, HciSourceError, open_monitor_socket
from core.hosts import HostSpec, RemoteHost, default_command
from core.monitor import Monitor
from core.sim.daemon import DemoUnavailable
from core.sim.demo import DemoFleet
from core.sim.scenario import seed_history
from core.sim.scene import DEMO_CAPTURE_LABEL
from core.sim.tempdirs import owned_tempdir
from tui.cli.options import fail

#: Why the TUI will not start without a terminal, and what to use instead.
NEEDS_TERMINAL = (
    "the TUI needs a terminal (stdin and stdout); for scripts use `btmon-tui watch --json` "
    "(add --demo for the demo fleet)"
)


def has_terminal() -> bool:
    """True when the TUI can draw and read keys: both stdin and stdout are terminals."""
    try:
        return os.isatty(sys.stdin.fileno()) and os.isatty(sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # closed or replaced streams
        return False


#: How often the demo probes its simulated room when --probe-every is not given (s).
DEMO_PROBE_EVERY_S = 30.0
#: Dropout history read from the log at start (days), so periods survive a restart.
HISTORY_DAYS = 7
#: What is read from the log at start: dropouts (their periods), probes (the drift panel) and
#: alignments (the delays in place: the drift panel, btmon_speaker_delay_seconds).
HISTORY_TYPES = frozenset({"dropout", "probe", "align"})


@dataclass(frozen=True)
class Source:
    """Where the fleet comes from, how to name it, its event log, and history to start with."""

    bus: str
    label: str = ""
    history: tuple[Mapping[str, object], ...] = ()
    log: EventStore | None = None
    #: Why the event log is off (a damaged file), shown to the user; "" when it runs.
    log_error: str = ""
    #: The config file's settings (--config or the XDG default); None: defaults.
    config: Config | None = None
    #: `--ble ADAPTER` (checked, e.g. "hci1") and `--ble-force`; None: no BLE scanning.
    ble: str | None = None
    ble_force: bool = False
    #: Live HCI media counting: "monitor" (the HCI monitor channel), a growing btsnoop file's
    #: path (--hci-file; the demo's simulated capture), or None.
    hci: str | None = None
    #: How the status bar names the capture (None: its path).
    hci_label: str | None = None
    #: Hosts to watch (`--host`, the config's [hosts.NAME]); () for this machine alone.
    hosts: tuple[HostSpec, ...] = ()
    #: The demo fleet (`--demo`): no audio server of its own.
    demo: bool = False

    @property
    def keeps_delays(self) -> bool:
        """True when a long-running view (the TUI, `watch`) re-applies saved delays as
        speakers reconnect (core.align.keep): this machine's real fleet is in view."""
        return self.local and not self.demo

    @property
    def local(self) -> bool:
        """True when this machine's own BlueZ (or the demo) is part of the view."""
        return not self.hosts or any(host.is_local for host in self.hosts)

    @property
    def remotes(self) -> tuple[HostSpec, ...]:
        return tuple(host for host in self.hosts if not host.is_local)


def read_recording(path: Path) -> tuple[list[Mapping[str, Any]], str]:
    """Every event of a recorded session (--replay), in time order; or why it cannot be
    read, in one line with the fix."""

    if not path.exists():
        return [], f"{path} does not exist: pass an event log written by btmon-tui (--db)"
    try:
        records = list(EventStore(path, retention_days=None).read())
    except StoreError as exc:
        return [], str(exc)
    if not records:
        return [], f"{path} holds no events to replay"
    return sorted(records, key=lambda r: float(r.get("t", 0.0))), ""


def _open_log(args: argparse.Namespace, *, default: bool) -> tuple[EventStore | None, str]:
    """The event log the command asked for (or its default), opened; or why it is off."""

    if args.db is None and not default:
        return None, ""
    path = Path(args.db) if args.db else default_db_path()
    store = EventStore(path, retention_days=args.retention)
    try:
        store.open()
    except StoreError as exc:
        return None, f"event log off: {exc}"
    status = store.status
    # Open but not writable now (read-only, full, no such directory): it keeps trying.
    return store, "" if status.ok else f"event log: {status.detail}"


def _settings(args: argparse.Namespace) -> tuple[Config | None, str | None, str]:
    """The config file and the --ble adapter, checked: (config, adapter, '' or the problem)."""

    try:
        config = load_config(getattr(args, "config", None))
    except ConfigError as exc:
        return None, None, str(exc)
    ble = getattr(args, "ble", None)
    if ble is None:
        if getattr(args, "ble_force", False):
            return None, None, "--ble-force needs --ble ADAPTER (e.g. --ble hci1)"
        return config, None, ""
    try:
        return config, adapter_name(ble), ""
    except ValueError as exc:
        return None, None, str(exc)


def make_monitor(source: Source, *, include_all: bool, **kwargs: Any) -> Monitor:
    """The Monitor for a source, with its config file and BLE scanning (if asked) applied."""

    ble = None
    if source.ble is not None:
        ble = BleScan(BlePresence(source.ble, bus=source.bus), force=source.ble_force)
    if source.hci is not None:
        kwargs["hci"] = (
            HciLive.monitor()
            if source.hci == "monitor"
            else HciLive.follow(Path(source.hci), label=source.hci_label)
        )
    remotes = [RemoteHost(host, include_all=include_all) for host in source.remotes]
    kwargs["sources"] = [*remotes, *kwargs.get("sources", ())]
    return Monitor(
        source.bus if source.local else None,
        bus_label=source.label,
        include_all=include_all,
        log=source.log,
        config=source.config,
        ble=ble,
        **kwargs,
    )


def chosen_hosts(args: argparse.Namespace, config: Config | None) -> tuple[HostSpec, ...]:
    """The hosts to watch: --host (a bare name takes its command from the config's
    [hosts.NAME]); else the config's hosts, for the TUI and `watch` of a live fleet."""
    known = {host.name: host for host in (config.hosts if config is not None else ())}
    given: list[HostSpec] = list(getattr(args, "host", None) or [])
    if given:
        return tuple(
            known.get(host.name, host) if host.command == default_command(host.name) else host
            for host in given
        )
    if args.command in (None, "watch") and not (args.demo or getattr(args, "replay", None)):
        return tuple(known.values())
    return ()


def with_source(
    args: argparse.Namespace,
    run: Callable[[Source], int],
    *,
    log: bool,
    terminal: bool = False,
) -> int:
    """Start the demo fleet if asked, open the event log, run, and always close both;
    `terminal`: refuse (exit 2) without one, once the settings and the demo are checked."""

    fleet = None
    temp_dir = None
    config, ble, problem = _settings(args)
    if problem:
        return fail(problem)
    if getattr(args, "hci", False) and args.command is not None:
        # A headless command cannot show a source that fails later: check it now (exit 2).

        try:
            open_monitor_socket().close()
        except HciSourceError as exc:
            return fail(str(exc))
    if args.demo and args.db is None and log:
        # The demo's events are not the user's history: log them to a throw-away file.
        temp_dir = owned_tempdir("demo")
        args.db = str(temp_dir / "events.sqlite3")
    asked_for_log = args.db is not None and temp_dir is None
    store, log_error = _open_log(args, default=log)
    if log_error and asked_for_log and not log:
        # A script asked for a log: going on without it would lose every event.
        if store is not None:
            store.close(timeout=0.5)
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
        reason = log_error.removeprefix("event log off: ").removeprefix("event log: ")
        if reason.startswith("cannot write"):
            reason = reason.split(" — ")[0] + ": give --db a path you can write to"
        return fail(reason)
    try:
        history: list[Mapping[str, object]] = []
        if store is not None:
            since = time.time() - HISTORY_DAYS * 86400
            try:
                history.extend(store.read(since=since, types=HISTORY_TYPES))
            except StoreError as exc:  # nothing written yet, or unreadable: no history
                if not log_error:
                    log_error = f"event log: {exc}"
        hosts = chosen_hosts(args, config)
        bus, label = args.bus, ""
        hci = "monitor" if getattr(args, "hci", False) else getattr(args, "hci_file", None)
        hci_label = None
        if args.demo:
            fleet = DemoFleet(speed=args.speed)
            try:
                bus, label = fleet.start(), "the demo bus"
            except DemoUnavailable as exc:
                return fail(str(exc))
            seeded = seed_history(time.time(), args.speed)
            history.extend(seeded)
            if store is not None:
                store.append(seeded)
            if getattr(args, "hci_file", None) is None and not getattr(args, "hci", False):
                hci = fleet.hci_file  # the demo's simulated capture, unless asked otherwise
                hci_label = DEMO_CAPTURE_LABEL
        if terminal and not has_terminal():
            return fail(NEEDS_TERMINAL)
        return run(
            Source(
                bus,
                label,
                tuple(history),
                store,
                log_error,
                config=config,
                ble=ble,
                ble_force=bool(getattr(args, "ble_force", False)),
                hci=hci,
                hci_label=hci_label,
                hosts=hosts,
                demo=bool(args.demo),
            )
        )
    finally:
        if fleet is not None:
            fleet.stop()
        if store is not None and not store.close():
            print(f"btmon-tui: warning: {store.status.detail}", file=sys.stderr)
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
