"""`btmon-tui` entry point: the TUI by default, headless subcommands for scripts (DESIGN §4.1).

Headless commands never import Textual, so they start fast and run where it is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui import options
from tui.cli_act import ACTION_READY_S, check_action_args, run_action
from tui.cli_probe import (
    add_input_args,
    add_probe_commands,
    list_devices,
    probe_backend,
    probe_once,
    run_analyze,
    run_probe_signal,
)
from tui.cli_watch import replay_watch, run_watch
from tui.source import (
    DEMO_PROBE_EVERY_S,
    NEEDS_TERMINAL,
    Source,
    fail,
    has_terminal,
    make_monitor,
    read_recording,
    with_source,
)

if TYPE_CHECKING:
    from tui.app import BtmonApp

EPILOG = """\
keys in the TUI: ↑/↓ select · enter details · r resync · R resync all silent · c connect
  d disconnect · esc cancel an action · p probe (drift) · l event log · a all devices
  ? help · q quit

examples:
  btmon-tui                      watch the speakers on this host (BlueZ on the system bus)
  btmon-tui --demo               the built-in demo fleet, no Bluetooth needed
  btmon-tui watch --json         JSON Lines: a snapshot, then one line per change
  btmon-tui watch --json --demo --duration 10
  btmon-tui resync F4:4E:FD:10:22:04 --demo   reconnect the demo's ghost-connected speaker
  btmon-tui report --db ~/.local/state/btmon-tui/events.sqlite3   dropouts and their periods
  btmon-tui --replay events.sqlite3 --speed 20                     replay a recorded session
  btmon-tui --hci-file /tmp/hci.btsnoop   count media packets from `sudo btmon -w /tmp/hci.btsnoop`
  btmon-tui --probe-every 5m --input "USB Mic"   probe the drift every 5 minutes
  btmon-tui probe --json                  play, record and analyse one probe now
  btmon-tui snoop capture.btsnoop         media packets per speaker in a capture
"""

#: Actions on one speaker: name -> (help line, description).
ACTION_HELP = {
    "resync": (
        "disconnect and reconnect one speaker until it streams again",
        "Disconnect the speaker, reconnect it and wait until its A2DP stream runs again. "
        "Exit 0 when done (also when bluetoothd reconnected it by itself), 1 when it failed "
        "(the reason is printed), 2 on bad input.",
    ),
    "connect": (
        "connect one paired speaker and wait for its A2DP stream",
        "Connect a paired speaker (retrying when it does not answer) and wait for A2DP. "
        "Exit 0 when done, 1 when it failed (the reason is printed), 2 on bad input.",
    ),
    "disconnect": (
        "disconnect one speaker (asks first; --yes for scripts)",
        "Disconnect a speaker; this is not recorded as a dropout. Asks first on a terminal; "
        "without one, --yes is required. Exit 0 when done, 1 when it failed, 2 on bad input.",
    ),
}


def _add_source_args(parser: argparse.ArgumentParser, nested: bool = True) -> None:
    """The options that say where the fleet comes from; they count before or after the
    subcommand (tui/options.py)."""

    def add(*flags: str, **kwargs: Any) -> None:
        options.add(parser, nested, *flags, **kwargs)

    add(
        "--bus",
        default="system",
        help="D-Bus to find BlueZ on: system (default), session, or an address "
        "such as unix:path=/run/dbus/system_bus_socket",
    )
    add(
        "--demo",
        action="store_true",
        help="start the built-in demo fleet on a private D-Bus (no Bluetooth needed)",
    )
    add(
        "--speed",
        type=float,
        default=1.0,
        help=f"with --demo or --replay: run the timeline X times faster (at most "
        f"{options.MAX_SPEED:g})",
    )
    add(
        "--db",
        metavar="PATH",
        help="the SQLite event log (TUI default: $XDG_STATE_HOME/btmon-tui/events.sqlite3; "
        "with --demo a temporary file; watch, probe and actions log only when --db is given, "
        "and exit 2 when it cannot be written)",
    )
    add(
        "--retention",
        type=float,
        default=30.0,
        metavar="DAYS",
        help="delete logged events older than DAYS days (default 30)",
    )
    add(
        "--replay",
        metavar="DB",
        help="play a recorded session from an event log (the TUI, or `watch`), with --speed X",
    )
    add(
        "--all",
        action="store_true",
        dest="include_all",
        help="show every paired device, not only speakers (A2DP sinks), and unpaired "
        "devices heard nearby (marked, never counted)",
    )
    add(
        "--config",
        metavar="PATH",
        help="speaker aliases, groups, who must stream, resync timeouts (TOML; default "
        "$XDG_CONFIG_HOME/btmon-tui/config.toml when it exists)",
    )
    add(
        "--ble",
        metavar="ADAPTER",
        help="also scan for BLE advertisements on ADAPTER (e.g. hci1) to show RSSI and presence; "
        "refused on an adapter that streams A2DP (audio would stutter)",
    )
    add("--ble-force", action="store_true", help="with --ble: scan even while the adapter streams")
    hci = parser.add_mutually_exclusive_group()
    options.add(
        hci,
        nested,
        "--hci",
        action="store_true",
        help="count each speaker's A2DP media packets on the HCI monitor channel (as btmon "
        "does; needs CAP_NET_RAW): shows packets/s and the `stalled` verdict",
    )
    options.add(
        hci,
        nested,
        "--hci-file",
        metavar="PATH",
        help="the same from a growing capture: run `btmon -w PATH` (as root) and point here",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = options.Parser(
        prog="btmon-tui",
        description="Tells connected from really streaming across a fleet of Bluetooth speakers.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _add_source_args(parser, nested=False)
    add_input_args(parser, nested=False)
    parser.add_argument(
        "--probe-every",
        metavar="DURATION",
        type=duration,
        help="probe the speakers that play every DURATION (e.g. 5m, 90s; default: only on p)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    watch = sub.add_parser(
        "watch",
        help="print the fleet and every change (JSON Lines with --json)",
        description="Print a snapshot of the fleet, then one line per change, until "
        "--duration passes or you press Ctrl-C.",
    )
    _add_source_args(watch)
    watch.add_argument(
        "--json", action="store_true", help="JSON Lines: a snapshot, then one event per line"
    )
    watch.add_argument(
        "--duration",
        type=options.duration_arg,
        default=None,
        metavar="S",
        help="stop S seconds after the first snapshot (e.g. 30, 90s, 5m; default: run until "
        "interrupted)",
    )
    report = sub.add_parser(
        "report",
        help="dropouts and their periods per speaker, from the event log or a JSON Lines file",
        description="Count each speaker's dropouts in a recording and find their period "
        "(e.g. 'every 4m42s, next at 20:04:42'). Reads the SQLite event log (--db) or the "
        "output of `btmon-tui watch --json` (--events).",
    )
    source = report.add_mutually_exclusive_group()
    options.add(source, True, "--db", metavar="PATH", help="the SQLite event log to read")
    source.add_argument("--events", metavar="FILE", help="a JSON Lines file (watch --json output)")
    report.add_argument("--json", action="store_true", help="JSON (dropouts and periods)")
    report.add_argument(
        "--now",
        type=options.unix_time,
        metavar="T",
        help="predict the next dropout after time T (Unix seconds or '2026-12-06 20:15'; "
        "default: the end of the recording)",
    )
    report.add_argument(
        "--since",
        type=options.unix_time,
        metavar="T",
        help="only events from T on (Unix seconds or a local date/time like '2026-12-06 20:00')",
    )
    report.add_argument(
        "--until", type=options.unix_time, metavar="T", help="only events before T (as --since)"
    )
    snoop = sub.add_parser(
        "snoop",
        help="A2DP truth per device from a btsnoop capture (btmon -w, Android, tshark)",
        description="Read a btsnoop file and count each device's A2DP media packets, codec and "
        "Starts; flags a device that is connected but starved. Exit 0, 2 on bad input.",
    )
    snoop.add_argument("file", metavar="FILE", help="the btsnoop capture")
    snoop.add_argument("--json", action="store_true", help="JSON: per-device media counts")
    add_probe_commands(sub, _add_source_args)
    for action, (summary, description) in ACTION_HELP.items():
        act = sub.add_parser(action, help=summary, description=description)
        act.add_argument(
            "address",
            metavar="SPEAKER",
            help="the speaker: its address (AA:BB:CC:DD:EE:FF), name or alias",
        )
        _add_source_args(act)
        act.add_argument(
            "--json",
            action="store_true",
            help="print the action event (JSON) as the last line; progress goes to stderr",
        )
        act.add_argument(
            "--timeout",
            type=options.positive_seconds,
            metavar="S",
            help="give up after S seconds in all (e.g. 30, 2m)",
        )
        if action == "disconnect":
            act.add_argument(
                "--yes", action="store_true", help="do not ask first (needed without a terminal)"
            )
    return parser


def duration(text: str) -> float:
    """--probe-every: '5m', '90s', '1h', '300' (seconds); at least 10 s between probes."""
    return options.seconds(text, least=10.0, what="a time between probes")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("btmon-tui")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


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
    problem = options.merge(args) or options.check(args)
    if problem:
        return fail(problem)
    if args.command == "report":
        return _run_report(args)
    if args.command == "snoop":
        return _run_snoop(args)
    if args.command == "probe-signal":
        return run_probe_signal(args)
    if args.command == "analyze":
        return run_analyze(args)
    if args.command == "probe":
        if args.list_devices:
            return list_devices()
        return with_source(args, lambda source: _run_probe(args, source), log=False)
    if args.command is None and args.replay:
        return _run_replay(args)
    if args.command == "watch":
        if args.replay:
            return replay_watch(args)
        return with_source(args, lambda source: run_watch(args, source), log=False)
    if args.command in ACTION_HELP:
        problem = check_action_args(args)
        if problem:
            return fail(problem)
        return with_source(args, lambda source: run_action(args, source), log=False)
    return with_source(args, lambda source: _run_tui(args, source), log=True, terminal=True)


def _run_report(args: argparse.Namespace) -> int:
    import json

    from core.report import ReportInputError, report_from_db, report_from_jsonl

    if not (args.events or args.db):
        return fail("report needs --db PATH (the event log) or --events FILE (watch --json)")
    if args.since is not None and args.until is not None and args.until <= args.since:
        return fail("--until must be later than --since")
    window = {"since": args.since, "until": args.until}
    try:
        if args.events:
            result = report_from_jsonl(Path(args.events), now=args.now, **window)
        else:
            result = report_from_db(Path(args.db), now=args.now, **window)
    except ReportInputError as exc:
        return fail(str(exc))
    for warning in result.get("warnings", []):
        print(f"btmon-tui: warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
        return 0
    print(report_table(result))
    return 0


def _run_snoop(args: argparse.Namespace) -> int:
    import json

    from core.hci.a2dp import analyze, snoop_table
    from core.hci.btsnoop import BtsnoopError

    try:
        result = analyze(Path(args.file))
    except BtsnoopError as exc:
        return fail(str(exc))
    for warning in result["warnings"]:
        print(f"btmon-tui: warning: {warning}", file=sys.stderr)
    print(json.dumps(result) if args.json else snoop_table(result))
    return 0


def report_table(result: dict[str, object], now: float | None = None) -> str:
    """The report as a table in words; times carry their date when not from today."""
    import time

    from core.describe import age, plural, stamp

    today = time.time() if now is None else now
    window = result["window"]
    assert isinstance(window, dict)
    lines = []
    if window.get("start") is not None:
        span = float(window["end"]) - float(window["start"])
        lines.append(
            f"window {stamp(float(window['start']), today)} – "
            f"{stamp(float(window['end']), today)} ({age(span)})"
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
        nxt = stamp(row["next_expected"], today) if row["next_expected"] else "-"
        name = row.get("name") or ""
        lines.append(
            f"{name[:20]:20} {row['address']:17} {row['dropouts']:>5}  {period:>8} {conf:>5}  {nxt}"
        )
    fleet = result.get("fleet")
    if isinstance(fleet, dict) and fleet.get("dropouts"):
        lines.append(
            f"{plural(fleet['dropouts'], 'dropout')}: {fleet['alone']} alone (speaker "
            f"firmware?), {fleet['together']} together with other speakers (host or "
            "interference?)"
        )
    return "\n".join(lines)


def _run_replay(args: argparse.Namespace) -> int:
    from core.replay import ReplayMonitor
    from tui.app import make_app

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
    from tui.app import make_app

    monitor = make_monitor(source, include_all=args.include_all)
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
    )
    _run_app(app)
    return app.return_code or 0


def _run_app(app: BtmonApp) -> None:
    """Run the TUI; a hang-up or SIGTERM leaves through the same exit path as `q`."""
    import asyncio

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


def _run_probe(args: argparse.Namespace, source: Source) -> int:
    import asyncio

    monitor = make_monitor(source, include_all=args.include_all)
    monitor.load_history(source.history)
    try:
        return asyncio.run(probe_once(args, monitor, ACTION_READY_S))
    except KeyboardInterrupt:
        print("btmon-tui: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
