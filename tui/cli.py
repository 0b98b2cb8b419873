"""`btmon-tui` entry point: the TUI by default, headless subcommands for scripts (DESIGN §4.1).

Headless commands never import Textual, so they start fast and run where it is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.events import Event
from core.sim.daemon import DemoUnavailable

if TYPE_CHECKING:
    from core.store import EventStore
    from tui.app import BtmonApp

EPILOG = """\
keys in the TUI: ↑/↓ select · enter details · l event log · a all devices · ? help · q quit

examples:
  btmon-tui                      watch the speakers on this host (BlueZ on the system bus)
  btmon-tui --demo               the built-in demo fleet, no Bluetooth needed
  btmon-tui watch --json         JSON Lines: a snapshot, then one line per change
  btmon-tui watch --json --demo --duration 10
"""


def _add_source_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bus",
        default="system",
        help="D-Bus to find BlueZ on: system (default), session, or an address "
        "such as unix:path=/run/dbus/system_bus_socket",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="start the built-in demo fleet on a private D-Bus (no Bluetooth needed)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="with --demo: run the demo's timeline X times faster",
    )
    parser.add_argument(
        "--db",
        metavar="PATH",
        help="the SQLite event log (TUI default: $XDG_STATE_HOME/btmon-tui/events.sqlite3; "
        "with --demo a temporary file; watch logs only when --db is given)",
    )
    parser.add_argument(
        "--retention",
        type=float,
        default=30.0,
        metavar="DAYS",
        help="delete logged events older than DAYS days (default 30)",
    )
    parser.add_argument(
        "--replay",
        metavar="DB",
        help="play a recorded session from an event log through the TUI (with --speed X)",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        dest="include_all",
        help="show every paired device, not only speakers (A2DP sinks)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="btmon-tui",
        description="Tells connected from really streaming across a fleet of Bluetooth speakers.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_source_args(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    watch = sub.add_parser(
        "watch",
        help="print the fleet and every change (JSON Lines with --json)",
        description="Print a snapshot of the fleet, then one line per change, until "
        "--duration passes or you press Ctrl-C.",
    )
    _add_source_args(watch)
    watch.add_argument("--json", action="store_true", help="JSON Lines per DESIGN §4.2")
    watch.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="stop after S seconds (default: run until interrupted)",
    )
    report = sub.add_parser(
        "report",
        help="dropouts and their periods per speaker, from the event log or a JSON Lines file",
        description="Count each speaker's dropouts in a recording and find their period "
        "(e.g. 'every 4m42s, next at 20:04:42'). Reads the SQLite event log (--db) or the "
        "output of `btmon-tui watch --json` (--events).",
    )
    source = report.add_mutually_exclusive_group(required=True)
    source.add_argument("--db", metavar="PATH", help="the SQLite event log to read")
    source.add_argument("--events", metavar="FILE", help="a JSON Lines file (watch --json output)")
    report.add_argument("--json", action="store_true", help="JSON per DESIGN §4.3")
    report.add_argument(
        "--now",
        type=float,
        metavar="T",
        help="predict the next dropout after Unix time T (default: the end of the recording)",
    )
    return parser


def fail(message: str) -> int:
    print(f"btmon-tui: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, without a traceback.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.speed <= 0:
        return fail("--speed must be greater than 0")
    if args.command == "report":
        return _run_report(args)
    if args.command is None and args.replay:
        return _run_replay(args)
    if args.command == "watch":
        if args.duration is not None and args.duration < 0:
            return fail("--duration must be 0 or more seconds")
        return _with_source(args, lambda source: _run_watch(args, source), log=False)
    return _with_source(args, lambda source: _run_tui(args, source), log=True)


#: Dropout history read from the log at start (days), so periods survive a restart.
HISTORY_DAYS = 7


@dataclass(frozen=True)
class Source:
    """Where the fleet comes from, how to name it, its event log, and history to start with."""

    bus: str
    label: str = ""
    history: tuple[Mapping[str, object], ...] = ()
    log: EventStore | None = None
    #: Why the event log is off (a damaged file), shown to the user; "" when it runs.
    log_error: str = ""


def _open_log(args: argparse.Namespace, *, default: bool) -> tuple[EventStore | None, str]:
    """The event log the command asked for (or its default), opened; or why it is off."""
    from core.store import EventStore, StoreError, default_db_path

    if args.db is None and not default:
        return None, ""
    path = Path(args.db) if args.db else default_db_path()
    store = EventStore(path, retention_days=args.retention)
    try:
        store.open()
    except StoreError as exc:
        return None, f"event log off: {exc}"
    return store, ""


def _with_source(args: argparse.Namespace, run: Callable[[Source], int], *, log: bool) -> int:
    """Start the demo fleet if asked, open the event log, run, and always close both."""
    import tempfile
    import time

    fleet = None
    temp_dir = None
    if args.demo and args.db is None and log:
        # The demo's events are not the user's history: log them to a throw-away file.
        temp_dir = tempfile.TemporaryDirectory(prefix="btmon-tui-demo-")
        args.db = str(Path(temp_dir.name) / "events.sqlite3")
    store, log_error = _open_log(args, default=log)
    try:
        history: list[Mapping[str, object]] = []
        if store is not None:
            since = time.time() - HISTORY_DAYS * 86400
            history.extend(store.read(since=since, types={"dropout"}))
        bus, label = args.bus, ""
        if args.demo:
            from core.sim.demo import DemoFleet
            from core.sim.scenario import seed_history

            fleet = DemoFleet(speed=args.speed)
            try:
                bus, label = fleet.start(), "the demo bus"
            except DemoUnavailable as exc:
                return fail(str(exc))
            seeded = seed_history(time.time(), args.speed)
            history.extend(seeded)
            if store is not None:
                store.append(seeded)
        return run(Source(bus, label, tuple(history), store, log_error))
    finally:
        if fleet is not None:
            fleet.stop()
        if store is not None and not store.close():
            print(f"btmon-tui: warning: {store.status.detail}", file=sys.stderr)
        if temp_dir is not None:
            temp_dir.cleanup()


def _run_report(args: argparse.Namespace) -> int:
    import json

    from core.report import ReportInputError, report_from_db, report_from_jsonl

    try:
        if args.events:
            result = report_from_jsonl(Path(args.events), now=args.now)
        else:
            result = report_from_db(Path(args.db), now=args.now)
    except ReportInputError as exc:
        return fail(str(exc))
    for warning in result.get("warnings", []):
        print(f"btmon-tui: warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
        return 0
    print(report_table(result))
    return 0


def report_table(result: dict[str, object]) -> str:
    """The report as a table in words."""
    from core.describe import age, clock_time

    window = result["window"]
    assert isinstance(window, dict)
    lines = []
    if window.get("start") is not None:
        span = float(window["end"]) - float(window["start"])
        lines.append(
            f"window {clock_time(float(window['start']))} – {clock_time(float(window['end']))} "
            f"({age(span)})"
        )
    speakers = result["speakers"]
    assert isinstance(speakers, list)
    if not speakers:
        lines.append("no dropouts")
        return "\n".join(lines)
    lines.append(f"{'speaker':20} {'address':17} {'drops':>5}  {'period':>8} {'conf':>5}  next")
    for row in speakers:
        period = f"{age(row['period_s'])}" if row["period_s"] else "-"
        conf = f"{row['period_confidence'] * 100:.0f}%" if row["period_s"] else "-"
        nxt = clock_time(row["next_expected"]) if row["next_expected"] else "-"
        name = row.get("name") or ""
        lines.append(
            f"{name[:20]:20} {row['address']:17} {row['dropouts']:>5}  {period:>8} {conf:>5}  {nxt}"
        )
    fleet = result.get("fleet")
    if isinstance(fleet, dict) and fleet.get("dropouts"):
        lines.append(
            f"{fleet['dropouts']} dropouts: {fleet['alone']} alone (speaker firmware?), "
            f"{fleet['together']} together with other speakers (host or interference?)"
        )
    return "\n".join(lines)


def _run_replay(args: argparse.Namespace) -> int:
    from core.replay import ReplayMonitor
    from core.store import EventStore, StoreError
    from tui.app import make_app

    path = Path(args.replay)
    if not path.exists():
        return fail(f"{path} does not exist: pass an event log written by btmon-tui (--db)")
    try:
        records = list(EventStore(path, retention_days=None).read())
    except StoreError as exc:
        return fail(str(exc))
    if not records:
        return fail(f"{path} holds no events to replay")
    monitor = ReplayMonitor(records, label=str(path), speed=args.speed)
    app = make_app("replay", monitor=monitor, include_all=True)
    _run_app(app)
    return app.return_code or 0


def _run_tui(args: argparse.Namespace, source: Source) -> int:
    from tui.app import make_app

    app = make_app(
        source.bus,
        bus_label=source.label,
        include_all=args.include_all,
        history=source.history,
        log=source.log,
        log_error=source.log_error,
    )
    _run_app(app)
    return app.return_code or 0


def _run_app(app: BtmonApp) -> None:
    """Run the TUI; a hang-up or SIGTERM leaves through the same exit path as `q`."""

    def hang_up(signum: int, _frame: object) -> None:
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


def _run_watch(args: argparse.Namespace, source: Source) -> int:
    try:
        return asyncio.run(_watch(source, args.json, args.duration, args.include_all))
    except KeyboardInterrupt:
        return 0


async def _watch(source: Source, as_json: bool, duration: float | None, include_all: bool) -> int:
    from core.bluez.bus import BusUnavailable, open_bus
    from core.describe import clock_time, describe_event
    from core.monitor import Monitor

    try:
        probe = await open_bus(source.bus)
        probe.disconnect()
    except BusUnavailable as exc:
        return fail(str(exc))

    out = sys.stdout
    started = False
    names: dict[str, str] = {}

    def write(events: list[Event]) -> None:
        if not started:
            return
        for event in events:
            data = event.to_json()
            if as_json:
                out.write(event.to_line() + "\n")
            else:
                if data.get("type") == "speaker":
                    names[data["address"]] = data["name"]
                line = describe_event(data, names)
                if line:
                    out.write(f"{clock_time(event.t)}  {line}\n")
        out.flush()

    monitor = Monitor(
        source.bus,
        bus_label=source.label,
        include_all=include_all,
        on_events=write,
        log=source.log,
    )
    if source.log_error:
        print(f"btmon-tui: warning: {source.log_error}", file=sys.stderr)
    monitor.load_history(source.history)
    mirror = monitor.mirror
    task = asyncio.create_task(monitor.run())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)
    deadline = None if duration is None else time.monotonic() + duration
    ready = await mirror.wait_ready(min(3.0, duration) if duration is not None else 3.0)
    snapshot_event = mirror.state.snapshot_event(mirror.clock())
    if as_json:
        out.write(snapshot_event.to_line() + "\n")
    else:
        snap = mirror.snapshot()
        out.write(f"{clock_time(snap.t)}  {snap.counts.line()}\n")
        for s in snap.speakers:
            names[s.address] = s.name
            codec = s.transport.codec if s.transport and s.transport.codec else "-"
            out.write(f"  {s.verdict.value:15} {s.name:20} {s.address}  {s.adapter:5} {codec}\n")
    if not ready:
        status = mirror.state.source
        print(f"btmon-tui: {status.detail}", file=sys.stderr)
        if as_json:
            out.write(
                f'{{"type":"source","t":{mirror.clock()},"state":"{status.state.value}",'
                f'"detail":{_json_str(status.detail)}}}\n'
            )
    out.flush()
    started = True
    try:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    return 0


def _json_str(text: str) -> str:
    import json

    return json.dumps(text)


if __name__ == "__main__":
    raise SystemExit(main())
