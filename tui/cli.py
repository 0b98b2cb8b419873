"""`btmon-tui` entry point: the TUI by default, headless subcommands for scripts (DESIGN §4.1).

Headless commands never import Textual, so they start fast and run where it is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.events import Event
from core.sim.daemon import DemoUnavailable

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
    return parser


def fail(message: str) -> int:
    print(f"btmon-tui: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.speed <= 0:
        return fail("--speed must be greater than 0")
    if args.command == "watch":
        if args.duration is not None and args.duration < 0:
            return fail("--duration must be 0 or more seconds")
        return _with_source(args, lambda source: _run_watch(args, source))
    return _with_source(args, lambda source: _run_tui(args, source))


@dataclass(frozen=True)
class Source:
    """Where the fleet comes from: a bus, how to name it, and dropout history to start with."""

    bus: str
    label: str = ""
    history: tuple[dict[str, object], ...] = ()


def _with_source(args: argparse.Namespace, run: Callable[[Source], int]) -> int:
    if not args.demo:
        return run(Source(args.bus))
    import time

    from core.sim.demo import DemoFleet
    from core.sim.scenario import seed_history

    fleet = DemoFleet(speed=args.speed)
    try:
        address = fleet.start()
    except DemoUnavailable as exc:
        return fail(str(exc))
    try:
        return run(Source(address, "the demo bus", tuple(seed_history(time.time(), args.speed))))
    finally:
        fleet.stop()


def _run_tui(args: argparse.Namespace, source: Source) -> int:
    from tui.app import make_app

    app = make_app(
        source.bus, bus_label=source.label, include_all=args.include_all, history=source.history
    )

    def hang_up(signum: int, _frame: object) -> None:
        # A closed terminal (SSH drop: SIGHUP) or a kill (SIGTERM) would otherwise end the
        # process at once, skipping the `finally` that stops the demo's dbus-daemon and sim.
        # Wake the app's loop (a plain call would wait for its next wake-up) to exit as `q` does.
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
    return app.return_code or 0


def _run_watch(args: argparse.Namespace, source: Source) -> int:
    try:
        return asyncio.run(_watch(source, args.json, args.duration, args.include_all))
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); stop quietly without a traceback.
        with contextlib.suppress(Exception):
            sys.stdout = None  # type: ignore[assignment]
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

    monitor = Monitor(source.bus, bus_label=source.label, include_all=include_all, on_events=write)
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
