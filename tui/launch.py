"""The Textual app started from the command line: live (`btmon-tui`, `--demo`) or a replay of
an event log (`--replay`). Kept outside tui/cli/ because it is the one command that loads
Textual; tui/cli/main.py imports it only when no subcommand is given."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import threading
from pathlib import Path
from typing import Final

from core.eventlog.replay import ReplayMonitor
from core.eventlog.store import EventStore
from core.metrics import MetricsError, MetricsServer
from core.sim.tempdirs import remove_own
from tui.app import BtmonApp, make_app
from tui.cli.options import fail
from tui.cli.probe import probe_backend
from tui.cli.source import (
    DEMO_PROBE_EVERY_S,
    NEEDS_TERMINAL,
    Source,
    has_terminal,
    make_monitor,
    read_recording,
    with_source,
)

#: After a hang-up or SIGTERM the app leaves as `q` does. If that has not ended the process
#: within this many seconds, the event log is flushed and the process ends anyway: Textual's
#: shutdown can block for good on a terminal that is gone (seen once in an SSH-drop test under
#: load: the main thread waiting for room in the output queue of a writer that no longer
#: drained it). The demo's children end with it (PR_SET_PDEATHSIG); its temporary folders are
#: removed first.
HANG_UP_GRACE_S: Final = 10.0
#: How long that last resort waits for the event log's writer.
HANG_UP_FLUSH_S: Final = 2.0


def run(args: argparse.Namespace) -> int:
    if args.replay:
        return _run_replay(args)
    return with_source(args, lambda source: _run_tui(args, source), log=True, terminal=True)


def _run_replay(args: argparse.Namespace) -> int:

    path = Path(args.replay)
    records, problem = read_recording(path)
    if problem:
        return fail(problem)
    if not has_terminal():
        return fail(NEEDS_TERMINAL)
    monitor = ReplayMonitor(records, label=str(path), speed=args.speed)
    app = make_app("replay", monitor=monitor, include_all=True)
    _run_app(app)
    return app.return_code or 0


def _run_tui(args: argparse.Namespace, source: Source) -> int:

    monitor = make_monitor(source, include_all=args.include_all, keep_delays=source.keeps_delays)
    metrics = None
    if args.metrics is not None:
        try:
            metrics = MetricsServer(args.metrics)
        except MetricsError as exc:  # the fleet view still runs: a warning, not an exit
            monitor.warnings.append(f"{exc} (metrics off)")
    app = make_app(
        source.bus,
        bus_label=source.label,
        include_all=args.include_all,
        history=source.history,
        log=source.log,
        log_error=source.log_error,
        monitor=monitor,
        timeouts=source.config.timeouts if source.config is not None else None,
        probe_backend=probe_backend(args, monitor),
        # The demo probes its simulated room every 30 s, so the drift panel fills by itself.
        probe_every_s=args.probe_every or (DEMO_PROBE_EVERY_S if args.demo else None),
        metrics=metrics,
        keep_aligned=args.keep_aligned,
    )
    try:
        _run_app(app, source.log)
    finally:
        if metrics is not None:  # closed as the app unmounts; here also when it never ran
            metrics.close()
    return app.return_code or 0


def _run_app(
    app: BtmonApp, log: EventStore | None = None, *, grace_s: float = HANG_UP_GRACE_S
) -> None:
    """Run the TUI; a hang-up or SIGTERM leaves through the same exit path as `q`, and ends
    the process within `grace_s` even if that path blocks (`log` flushed first)."""
    last_resort: list[threading.Timer] = []

    def give_up(signum: int) -> None:
        if log is not None:
            log.flush(HANG_UP_FLUSH_S)
        remove_own()  # the demo's bus, capture and log folders (its children end with us)
        os._exit(128 + signum)

    def hang_up(signum: int, _frame: object) -> None:
        if not last_resort:
            timer = threading.Timer(grace_s, give_up, args=(signum,))
            timer.daemon = True
            timer.start()
            last_resort.append(timer)
        # A closed terminal (SSH drop: SIGHUP) or a kill (SIGTERM) would otherwise end the
        # process at once, skipping the `finally` that stops the demo's dbus-daemon and sim
        # and closes the event log. Wake the app's loop to exit as `q` does.
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # the app is not running yet or any more
            raise SystemExit(128 + signum) from None
        loop.call_soon_threadsafe(lambda: app.exit(return_code=128 + signum))

    previous = {sig: signal.signal(sig, hang_up) for sig in (signal.SIGHUP, signal.SIGTERM)}
    try:
        app.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
