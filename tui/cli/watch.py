"""`btmon-tui watch`: the fleet, then one line per change (JSON Lines with --json); with
--replay, a recorded session's lines again."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from pathlib import Path
from typing import TextIO

from core.bluez.bus import BusUnavailable, open_bus
from core.eventlog.replay import MAX_PAUSE_S, recorded_names
from core.fleet.describe import clock_time, describe_event
from core.fleet.events import Event, SnapshotEvent
from core.fleet.model import FleetCounts, SourceState
from core.hosts import LOCAL
from core.metrics import MetricsError, MetricsServer, on_loop
from core.monitor import Monitor
from tui.cli.options import fail
from tui.cli.source import Source, make_monitor, read_recording, with_source


def run(args: argparse.Namespace) -> int:
    if args.replay:
        return replay_watch(args)
    metrics = None
    if args.metrics is not None:
        # Bound before the demo or BlueZ start: a port in use fails at once (exit 2).
        try:
            metrics = MetricsServer(args.metrics)
        except MetricsError as exc:
            return fail(str(exc))
    try:
        return with_source(args, lambda source: run_watch(args, source, metrics), log=False)
    finally:
        if metrics is not None:
            metrics.close()


#: How long `watch` waits for BlueZ to answer before its first snapshot (s); --duration
#: counts from that snapshot on, so `--duration 0` still prints a complete one.
READY_S = 3.0
#: How long the first snapshot may wait for the HCI source's first say, so that no speaker
#: is called streaming on its account before it spoke (s; covers HCI_FIRST_SAY_S and the
#: 1 s a watched link gets before it counts as stalled).
SETTLE_S = 4.0
#: How long `watch --host …` waits for every host's first snapshot or first failure (s).
HOSTS_READY_S = READY_S + SETTLE_S + 8.0
#: How long `watch --ble` waits for BLE scanning to start or be refused (bleak's own
#: call timeout is 5 s; this leaves it room).
BLE_DECISION_S = 6.0


def run_watch(args: argparse.Namespace, source: Source, metrics: MetricsServer | None) -> int:

    try:
        return asyncio.run(_watch(source, args.json, args.duration, args.include_all, metrics))
    except KeyboardInterrupt:
        return 0


async def _watch(
    source: Source,
    as_json: bool,
    duration: float | None,
    include_all: bool,
    metrics: MetricsServer | None = None,
) -> int:

    if source.local:
        try:
            probe = await open_bus(source.bus)
            probe.disconnect()
        except BusUnavailable as exc:
            return fail(str(exc))

    out = sys.stdout
    started = False
    names: dict[str, str] = {}
    hosts = bool(source.hosts)

    def write(events: list[Event]) -> None:
        if not started:
            return
        for event in events:
            data = event.to_json()
            if hosts:  # every line says whose it is
                data.setdefault("host", LOCAL)
            if as_json:
                out.write(_line(data) if hosts else event.to_line())
                out.write("\n")
            else:
                if data.get("type") == "speaker":
                    names[data["address"]] = data["name"]
                line = describe_event(data, names)
                if line:
                    where = f"{data['host']}: " if hosts else ""
                    out.write(f"{clock_time(event.t)}  {where}{line}\n")
        out.flush()

    monitor = make_monitor(
        source, include_all=include_all, on_events=write, keep_delays=source.keeps_delays
    )
    if source.log_error:
        print(f"btmon-tui: warning: {source.log_error}", file=sys.stderr)
    monitor.load_history(source.history)
    task = asyncio.create_task(monitor.run())
    if metrics is not None:
        metrics.serve(on_loop(monitor, asyncio.get_running_loop()))
        print(f"btmon-tui: metrics on {metrics.url}", file=sys.stderr)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)
    # A host's first snapshot waits for its own BlueZ and HCI (READY_S + SETTLE_S there),
    # and an unreachable host takes ssh's ConnectTimeout to say so.
    ready = await monitor.wait_ready(HOSTS_READY_S if source.remotes else READY_S)
    if ready:
        settle_until = time.monotonic() + SETTLE_S
        while not monitor.media_settled() and time.monotonic() < settle_until:
            await asyncio.sleep(0.1)
    if ready and monitor.ble is not None:
        # A refused --ble is bad input (exit 2); a scan bleak cannot run is only a warning.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(BLE_DECISION_S):
                await monitor.ble.decided.wait()
        if monitor.ble.state == "refused":
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            return fail(monitor.ble.status)
        if monitor.ble.state == "error":
            print(f"btmon-tui: warning: {monitor.ble.status}", file=sys.stderr)
    if ready and monitor.hci is not None and not monitor.hci.caught_up:
        # Asked for, but it has not spoken (no capture file yet, a stalled btmon -w).
        print(f"btmon-tui: warning: {monitor.hci.status}", file=sys.stderr)
    snapshot_event = monitor.state.snapshot_event(monitor.clock())
    if hosts:
        _host_snapshots(monitor, source, as_json, out)
    elif as_json:
        out.write(snapshot_event.to_line() + "\n")
    else:
        snap = monitor.snapshot()
        out.write(f"{clock_time(snap.t)}  {snap.counts.line()}\n")
        for s in snap.speakers:
            names[s.address] = s.name
            codec = s.transport.codec if s.transport and s.transport.codec else "-"
            out.write(f"  {s.verdict.value:15} {s.name:20} {s.address}  {s.adapter:5} {codec}\n")
    if not ready and source.local:
        status = monitor.state.source
        print(f"btmon-tui: {status.detail}", file=sys.stderr)
        if as_json:
            out.write(
                f'{{"type":"source","t":{monitor.clock()},"state":"{status.state.value}",'
                f'"detail":{_json_str(status.detail)}}}\n'
            )
    out.flush()
    started = True
    deadline = None if duration is None else time.monotonic() + duration
    try:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout)
    finally:
        if metrics is not None:
            metrics.close()  # no scrape may wait on a loop that is going away
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    return 0


def _line(data: dict[str, object]) -> str:
    return json.dumps(data, separators=(",", ":"))


def _host_snapshots(monitor: Monitor, source: Source, as_json: bool, out: TextIO) -> None:
    """`watch --host …` starts with a snapshot per host (its speakers, its counts), each
    followed by its status when it is not connected (unreachable, older, lost)."""
    t = monitor.clock()
    speakers = monitor.state.snapshot(t).speakers
    statuses = monitor.source_statuses()
    for host in source.hosts:
        name = None if host.is_local else host.name
        own = tuple(s for s in speakers if s.host == name)
        event = SnapshotEvent(t, FleetCounts.of(own), own)
        status = monitor.state.source if host.is_local else statuses.get(host.name)
        if as_json:
            data = event.to_json()
            for speaker in data["speakers"]:
                speaker["host"] = host.name
            out.write(_line({**data, "host": host.name}) + "\n")
            if status is not None and status.state != SourceState.CONNECTED:
                line = {"type": "source", "t": t, "state": status.state.value}
                out.write(_line({**line, "detail": status.detail, "host": host.name}) + "\n")
            continue
        out.write(f"{clock_time(t)}  {host.name}: {event.counts.line()}\n")
        if status is not None and status.state != SourceState.CONNECTED:
            out.write(f"  {status.detail}\n")
        for s in own:
            codec = s.transport.codec if s.transport and s.transport.codec else "-"
            out.write(f"  {s.verdict.value:15} {s.name:20} {s.address}  {s.adapter:5} {codec}\n")


def _json_str(text: str) -> str:

    return json.dumps(text)


def replay_watch(args: argparse.Namespace) -> int:
    """`watch --replay DB`: the recorded session's lines again, in time order, paced by
    --speed (a quiet stretch waits at most MAX_PAUSE_S), for --duration seconds or to the end."""

    records, problem = read_recording(Path(args.replay))
    if problem:
        return fail(problem)
    out = sys.stdout
    names = recorded_names(records)  # as the TUI's replay: every recorded name from the start
    stop_at = None if args.duration is None else time.monotonic() + args.duration
    previous = float(records[0]["t"])
    try:
        for record in records:
            t = float(record["t"])
            wait = min(max(0.0, t - previous) / args.speed, MAX_PAUSE_S)
            if stop_at is not None and time.monotonic() + wait > stop_at:
                break
            time.sleep(wait)
            previous = t
            if args.json:
                out.write(json.dumps(dict(record), separators=(",", ":")) + "\n")
            else:
                line = describe_event(dict(record), names)
                if line:
                    out.write(f"{clock_time(t)}  {line}\n")
            out.flush()
    except KeyboardInterrupt:
        return 0
    return 0
