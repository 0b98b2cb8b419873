"""`btmon-tui resync|connect|disconnect SPEAKER`: one action on one speaker, its progress in
words and, with --json, its `action` event as the last line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time

from core.bluez.bus import BusUnavailable, describe_bus, open_bus
from core.bluez.control import Controller, Timeouts
from core.fleet.events import ActionEvent
from core.fleet.lookup import find_speaker, malformed_address
from core.fleet.model import SourceState
from core.monitor import Monitor
from tui.cli.options import fail
from tui.cli.source import Source, make_monitor, with_source


def run(args: argparse.Namespace) -> int:
    problem = check_action_args(args)
    if problem:
        return fail(problem)
    return with_source(args, lambda source: run_action(args, source), log=False)


#: How long an action waits for BlueZ's first answer before it counts as absent.
ACTION_READY_S = 5.0


def check_action_args(args: argparse.Namespace) -> str:
    """What is wrong with an action's arguments before anything starts; '' when nothing."""

    if not args.address.strip():
        return "no speaker given: write its address (AA:BB:CC:DD:EE:FF) or its name"
    if malformed_address(args.address):
        return (
            f"{args.address!r} is not a Bluetooth address: write it as AA:BB:CC:DD:EE:FF, "
            "or give the speaker's name (see `btmon-tui watch`)"
        )
    if args.command == "disconnect" and not args.yes and not sys.stdin.isatty():
        return "disconnect asks first, but there is no terminal to ask on: add --yes"
    return ""


def run_action(args: argparse.Namespace, source: Source) -> int:

    try:
        return asyncio.run(_act(args, source))
    except KeyboardInterrupt:
        print("btmon-tui: interrupted", file=sys.stderr)
        return 130


async def _act(args: argparse.Namespace, source: Source) -> int:
    """resync/connect/disconnect ADDRESS: progress in words, the action event with --json."""

    try:
        probe = await open_bus(source.bus)
        probe.disconnect()
    except BusUnavailable as exc:
        return fail(str(exc))
    monitor = make_monitor(source, include_all=args.include_all)
    running = asyncio.create_task(monitor.run())
    try:
        return await _act_on(args, source, monitor)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await running


async def _act_on(args: argparse.Namespace, source: Source, monitor: Monitor) -> int:

    out = sys.stderr if args.json else sys.stdout
    if source.log_error:
        print(f"btmon-tui: warning: {source.log_error}", file=sys.stderr)
    # --timeout counts from now, but not the time a person takes to answer the question.
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    limit = ACTION_READY_S if args.timeout is None else min(ACTION_READY_S, args.timeout)
    ready_by = time.monotonic() + limit
    state = monitor.state
    where = source.label or describe_bus(source.bus)
    while not await monitor.wait_ready(0.05):
        if state.source.state in (SourceState.WAITING, SourceState.ERROR):
            return fail(state.source.detail.split("; waiting")[0])
        if time.monotonic() >= ready_by:
            return fail(f"BlueZ on {where} did not answer within {limit:g} s")
    speaker, problem = find_speaker(args.address, state.speakers.values())
    if speaker is None:
        return fail(f"{problem} (on {where}; `btmon-tui watch` lists them)")
    address = speaker.address
    label = f"{speaker.name} ({address})"
    if args.command == "disconnect" and not args.yes:
        asked = time.monotonic()
        answer = await _ask(f"Disconnect {label}? [y/N] ")
        deadline = None if deadline is None else deadline + time.monotonic() - asked
        if answer.strip().lower() not in ("y", "yes"):
            print(f"{label}: not disconnected", file=out)
            if args.json:
                no = ActionEvent(
                    time.time(),
                    address,
                    "disconnect",
                    "error",
                    "declined",
                    "not disconnected: the answer was no",
                )
                print(no.to_line())
            return 1

    def progress(_address: str, step: str) -> None:
        if step:
            print(f"{label}: {step}", file=out, flush=True)

    timeouts = source.config.timeouts if source.config is not None else Timeouts()
    controller = Controller(monitor, timeouts=timeouts, on_progress=progress)
    task = controller.start(args.command, address)
    assert task is not None  # nothing else acts on this speaker in this process
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)
    stopper = asyncio.create_task(stop.wait())
    left = None if deadline is None else max(0.0, deadline - time.monotonic())
    await asyncio.wait({task, stopper}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if not task.done():
        if stop.is_set():
            controller.cancel(address, "interrupted", "interrupted: btmon-tui was told to stop")
        else:
            controller.cancel(address, "timeout", f"did not finish within {args.timeout:g} s")
    event = await task
    if event.result == "ok":
        print(f"{label}: {args.command} ok — {event.message}", file=out)
    else:
        why = f" ({event.detail})" if event.detail else ""
        print(f"btmon-tui: {args.command} {label} failed: {event.message}{why}", file=sys.stderr)
    if args.json:
        print(event.to_line())
    sys.stdout.flush()
    if event.result == "ok":
        return 0
    return 2 if event.detail in ("unknown-address", "no-bluez") else 1


async def _ask(prompt: str) -> str:
    """One line typed on the terminal (stdin), read without blocking the event loop."""

    sys.stderr.write(prompt)
    sys.stderr.flush()
    loop = asyncio.get_running_loop()
    line: asyncio.Future[str] = loop.create_future()
    fd = sys.stdin.fileno()

    def readable() -> None:
        if not line.done():
            line.set_result(os.read(fd, 1024).decode(errors="replace"))

    loop.add_reader(fd, readable)
    try:
        return await line
    finally:
        loop.remove_reader(fd)
