"""`btmon-tui probe`: play a coded probe on every speaker that streams, record, and report
latency and drift (or list the audio devices). Every bad input ends with exit 2 and one line
saying what is wrong and what to do."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import Any

from core.fleet.events import ProbeEvent
from core.fleet.lookup import find_speaker
from core.fleet.model import SourceState, sync_word
from core.monitor import Monitor
from core.probe import audio
from core.probe.backends import MicBackend
from core.probe.runner import Backend, ProbeFailed, sent_audio
from core.sim.room_sim import RoomBackend
from core.sim.scenario import ROOM
from tui.cli.act import ACTION_READY_S
from tui.cli.options import fail
from tui.cli.source import Source, make_monitor, with_source

#: With an HCI source, `probe` first lets it read this long (s): who gets media, who not.
HCI_SETTLE_S = 1.0


def run(args: argparse.Namespace) -> int:
    if args.list_devices:
        return list_devices()
    return with_source(args, lambda source: _run_probe(args, source), log=False)


def _run_probe(args: argparse.Namespace, source: Source) -> int:

    monitor = make_monitor(source, include_all=args.include_all)
    monitor.load_history(source.history)
    try:
        return asyncio.run(probe_once(args, monitor, ACTION_READY_S))
    except KeyboardInterrupt:
        print("btmon-tui: interrupted", file=sys.stderr)
        return 130


def list_devices() -> int:

    try:
        devices = audio.list_devices(rescan=True)
    except audio.AudioError as exc:
        return fail(str(exc))
    if not devices:
        print("no audio devices: PortAudio found no input or output (is the audio server up?)")
    else:
        print(f"{'#':>3}  {'in':>3} {'out':>3}  {'rate':>6}  name (host API)")
    for d in devices:
        mark = ("<" if d.is_default_input else " ") + (">" if d.is_default_output else " ")
        print(
            f"{d.index:>3}{mark}{d.max_input_channels:>3} {d.max_output_channels:>3}  "
            f"{d.default_samplerate:>6.0f}  {d.name} ({d.host_api})"
        )
    try:
        sinks = audio.list_sinks()
    except audio.AudioError as exc:
        print(f"audio-server sinks: {exc}")
    else:
        if not sinks:
            print("audio-server sinks: none")
        else:
            print("audio-server sinks (a speaker's probe plays on the sink named after it):")
        for sink in sinks:
            print(f"  {sink}")
    return 0


def probe_table(event: ProbeEvent) -> str:

    lines = [f"{'speaker':20} {'address':17} {'arrival':>11} {'latency':>11} {'offset':>10}  sync"]
    for r in event.results:
        if not r.detected:
            lines.append(f"{r.name[:20]:20} {r.address:17} {'NOT HEARD':>11}")
            continue
        lines.append(
            f"{r.name[:20]:20} {r.address:17} {r.arrival_ms or 0:>8.2f} ms "
            f"{r.latency_ms or 0:>8.2f} ms {r.offset_ms or 0:>+7.2f} ms  {sync_word(r.offset_ms)}"
        )
    if event.spread_ms is not None:
        lines.append(f"spread {event.spread_ms:.2f} ms: {sync_word(event.spread_ms)} ")
    lines.append(f"(sound from the {event.source})")
    return "\n".join(lines)


def probe_backend(args: argparse.Namespace, monitor: Monitor) -> Backend:
    """The demo's simulated room, or the microphone the user chose."""
    if args.demo:
        # The demo's own capture tells who gets media; with --hci/--hci-file the room keeps
        # to its truth (Foyer silent until a resync the room cannot see).
        own_capture = not getattr(args, "hci", False) and not getattr(args, "hci_file", None)
        hci = monitor.hci if own_capture else None

        def silent() -> frozenset[str]:
            # A speaker that gets no media on (simulated) HCI makes no sound in the room.
            assert hci is not None
            rates = hci.rates(monitor.clock())
            return frozenset(a for a, rate in rates.items() if rate.pps == 0)

        return RoomBackend(ROOM, monitor.clock, silent=silent if hci is not None else None)

    device: int | str | None = args.input
    if isinstance(device, str) and device.isdigit():
        device = int(device)
    return MicBackend(input_device=device, pulse_source=args.source, sinks=dict(args.sink))


def _chosen_speakers(asked: list[str], speakers: Any) -> tuple[list[str], str]:
    """The addresses `--speaker` names (address, name or alias) that stream now; a speaker
    that does not stream is named with its verdict (a probe would only miss it)."""
    chosen: list[str] = []
    for query in asked:
        speaker, problem = find_speaker(query, speakers)
        if speaker is None:
            return [], problem
        if not sent_audio(speaker):
            return [], (
                f"{speaker.name} ({speaker.address}) is not streaming ({speaker.verdict}): a "
                "probe plays only to speakers whose A2DP transport is active; start playback "
                f"or `btmon-tui resync {speaker.address}`"
            )
        chosen.append(speaker.address)
    return chosen, ""


async def probe_once(args: argparse.Namespace, monitor: Any, ready_s: float) -> int:
    """`btmon-tui probe`: wait for BlueZ, probe, print."""
    running = asyncio.create_task(monitor.run())
    try:
        if not await monitor.wait_ready(ready_s):
            state = monitor.state.source
            detail = state.detail if state.state != SourceState.CONNECTED else "no answer"
            return fail(f"BlueZ did not answer within {ready_s:g} s: {detail}")
        if monitor.hci is not None:
            # The HCI source's first look (media rates over HCI_SETTLE_S) before judging.
            await asyncio.sleep(HCI_SETTLE_S)
        only, problem = _chosen_speakers(args.speaker, monitor.snapshot().speakers)
        if problem:
            return fail(problem)
        try:
            event = await monitor.probe(probe_backend(args, monitor), only, recheck=False)
        except ProbeFailed as exc:
            return fail(str(exc))
        for warning in event.warnings:
            print(f"btmon-tui: warning: {warning}", file=sys.stderr)
        print(event.to_line() if args.json else probe_table(event))
        return 0
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await running
