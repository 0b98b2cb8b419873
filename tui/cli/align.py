"""`btmon-tui align`: set each streaming speaker's delay in the fleet output (`btmon_fleet`)
from what the microphone hears, round by round, until the fleet's spread is within target;
`--reset` removes every delay stage and the fleet output; `--dry-run` measures and shows
what it would apply. Exit 0 aligned, 1 not (with why), 2 bad input; on failure no module of
this run stays loaded."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Sequence
from typing import Any

from core.align import keep, plan, stages
from core.align.by_probe import FleetOutput
from core.align.loop import Outcome, Round
from core.align.measure import Target
from core.align.server import ServerAlign, server_targets
from core.align.stages import AlignError
from core.fleet.describe import describe_align
from core.fleet.events import AlignEvent
from core.fleet.model import SourceState
from core.monitor import Monitor
from core.probe.runner import ProbeFailed, sent_audio
from tui.cli.act import ACTION_READY_S
from tui.cli.options import fail
from tui.cli.probe import HCI_SETTLE_S, probe_backend
from tui.cli.source import Source, make_monitor, with_source


def run(args: argparse.Namespace) -> int:
    if args.reset:
        return reset(args)
    return with_source(args, lambda source: _run_align(args, source), log=False)


def reset(args: argparse.Namespace) -> int:
    """Unload every delay stage and the fleet output (modules btmon-tui did not load stay)."""
    try:
        removed = stages.reset(remove_fleet=True)
    except AlignError as exc:
        return fail(str(exc))
    keep.forget()  # nothing to re-apply when a speaker reconnects
    print(
        f"removed {len(removed)} module(s): the speakers play without added delay"
        if removed
        else "nothing to remove: no delay stage or fleet output of btmon-tui is loaded",
        file=sys.stderr if args.json else sys.stdout,
    )
    if args.json:
        print(
            AlignEvent(time.time(), stages.FLEET_SINK, (), None, None, 0, None, "reset").to_line()
        )
    return 0


def _run_align(args: argparse.Namespace, source: Source) -> int:
    monitor = make_monitor(source, include_all=args.include_all)
    if args.demo:
        try:
            return asyncio.run(_align_demo(args, monitor))
        except KeyboardInterrupt:
            print("btmon-tui: interrupted", file=sys.stderr)
            return 130
    try:
        speakers, problem = asyncio.run(_streaming(monitor))
        if problem:
            return fail(problem)
        targets, problem = _targets(speakers, dict(args.sink))
        if problem:
            return fail(problem)
        return align_targets(args, targets)
    except KeyboardInterrupt:
        print("btmon-tui: interrupted", file=sys.stderr)
        return 130


async def _align_demo(args: argparse.Namespace, monitor: Monitor) -> int:
    """The demo has no audio server: its simulated room is the fleet output (it honours the
    delays) and the microphone (a probe per round, all speakers at once)."""
    running = asyncio.create_task(monitor.run())
    try:
        if not await monitor.wait_ready(ACTION_READY_S):
            return fail(f"BlueZ did not answer within {ACTION_READY_S:g} s")
        if monitor.hci is not None:
            await asyncio.sleep(HCI_SETTLE_S)  # who gets media, who not
        room = probe_backend(args, monitor)
        assert isinstance(room, FleetOutput)

        def progress(step: Round, verdict: plan.Verdict, planned: dict[str, int]) -> None:
            shown = "?" if step.spread_ms is None else f"{step.spread_ms:.1f} ms"
            what = "before" if step.number == 0 else f"after round {step.number}"
            print(f"align: spread {what}: {shown}", file=sys.stderr, flush=True)

        if args.dry_run:
            return fail("--dry-run needs an audio server; the demo's room applies at once")
        try:
            event, left_out = await monitor.align(
                room, room, target_ms=args.target_ms, rounds=args.rounds, on_round=progress
            )
        except ProbeFailed as exc:
            return fail(str(exc))
        if left_out:
            print(f"align: not heard, left out: {', '.join(left_out)}", file=sys.stderr)
        print(event.to_line() if args.json else describe_align(event.to_json()))
        if event.result == "aligned":
            return 0
        return _failed(f"not aligned: {event.detail}")
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await running


async def _streaming(monitor: Any) -> tuple[list[Any], str]:
    """The speakers whose A2DP transport carries audio now, or the problem in words."""
    running = asyncio.create_task(monitor.run())
    try:
        if not await monitor.wait_ready(ACTION_READY_S):
            state = monitor.state.source
            detail = state.detail if state.state != SourceState.CONNECTED else "no answer"
            return [], f"BlueZ did not answer within {ACTION_READY_S:g} s: {detail}"
        playing = [s for s in monitor.snapshot().speakers if sent_audio(s)]
        if not playing:
            return [], (
                "nothing is streaming: align needs speakers whose A2DP transport is active; "
                "start playback to btmon_fleet (or any sink) first"
            )
        return playing, ""
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await running


def _targets(speakers: Sequence[Any], mapped: dict[str, str]) -> tuple[list[Target], str]:
    """Each streaming speaker with its audio-server sink, or the problem in words."""
    try:
        return server_targets(speakers, mapped), ""
    except AlignError as exc:
        return [], str(exc)


def align_targets(args: argparse.Namespace, targets: Sequence[Target]) -> int:
    """Set up the fleet output and stages, run the loop, print; undo this run's modules on
    failure (and after a dry run)."""
    device: int | str | None = args.input
    if isinstance(device, str) and device.isdigit():
        device = int(device)

    def applying(delays: dict[str, int]) -> None:
        for target in targets:
            print(f"  {target.name}: delay {delays[target.address]} ms", file=sys.stderr)

    def progress(step: Round, verdict: plan.Verdict, planned: dict[str, int]) -> None:
        shown = "?" if step.spread_ms is None else f"{step.spread_ms:.1f} ms"
        what = "before" if step.number == 0 else f"after round {step.number}"
        print(f"align: spread {what}: {shown}", file=sys.stderr, flush=True)

    job = ServerAlign(
        targets,
        input_device=device,
        source=args.source,
        target_ms=args.target_ms,
        rounds=args.rounds,
        dry_run=args.dry_run,
        on_round=progress,
        on_apply=applying,
        on_start=lambda line: print(f"align: {line}", file=sys.stderr),
    )
    try:
        outcome = job.run()
    except AlignError as exc:
        return fail(str(exc)) if exc.bad_input else _failed(str(exc))
    if job.saved_problem:
        print(f"btmon-tui: warning: {job.saved_problem}", file=sys.stderr)
    result = "dry-run" if args.dry_run else ""
    event = outcome.event(time.time(), stages.FLEET_SINK, targets, args.target_ms, result)
    print(event.to_line() if args.json else table(event, outcome, targets))
    if args.dry_run or outcome.aligned:
        return 0
    return _failed(f"not aligned: {outcome.why}")


def _failed(message: str) -> int:
    print(f"btmon-tui: {message}", file=sys.stderr)
    return 1


def table(event: AlignEvent, outcome: Outcome, targets: Sequence[Target]) -> str:
    """The operator's view: per speaker latency before, delay, offset before and after."""

    def ms(value: float | None, sign: bool = False) -> str:
        if value is None:
            return "not heard"
        return f"{value:+.1f} ms" if sign else f"{value:.1f} ms"

    lines = [
        f"{'speaker':20} {'sink':28} {'latency':>10} {'delay':>8} {'offset':>10} {'after':>10}"
    ]
    for result, target in zip(event.results, targets, strict=True):
        lines.append(
            f"{result.name[:20]:20} {target.sink[:28]:28} {ms(result.latency_before_ms):>10} "
            f"{result.delay_ms:>5} ms {ms(result.offset_before_ms, True):>10} "
            f"{ms(result.offset_after_ms, True):>10}"
        )
    before = "?" if event.spread_before_ms is None else f"{event.spread_before_ms:.1f} ms"
    after = "?" if event.spread_after_ms is None else f"{event.spread_after_ms:.1f} ms"
    if event.result == "dry-run":
        lines.append(f"spread {before}; the delays above would be applied (dry run: nothing was)")
    else:
        state = "aligned" if outcome.aligned else "NOT aligned"
        lines.append(
            f"spread {before} -> {after} in {event.rounds} round(s): {state} "
            f"(target {event.target_ms:g} ms); play to {event.sink}"
        )
    return "\n".join(lines)
