"""The probe commands (DESIGN §4.1, §4.4): `probe-signal`, `analyze` and `probe`.

Headless: numpy, the DSP and PortAudio load only when a command needs them. Every bad input
(missing or non-WAV file, wrong rate, no PortAudio, no microphone) ends with exit 2 and one line
saying what is wrong and what to do.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui import options
from tui.options import channel_number
from tui.source import fail

if TYPE_CHECKING:
    from core.events import ProbeEvent
    from core.monitor import Monitor
    from core.probe.runner import Backend

#: With an HCI source, `probe` first lets it read this long (s): who gets media, who not.
HCI_SETTLE_S = 1.0
#: Most coded probes played at once (each needs its own sink and a distinct code).
MAX_SPEAKERS = 32


def add_probe_commands(sub: Any, add_source_args: Any) -> None:
    """Add probe-signal, analyze and probe to the subcommand parser."""
    signal = sub.add_parser(
        "probe-signal",
        help="write the coded probe signals (one WAV per speaker) for your own player",
        description="Write DIR/probe_01.wav … probe_NN.wav (mono, equal length, sample 0 = "
        "emission time) and DIR/probe.json. Play them together, record the room, then "
        "`btmon-tui analyze REC.wav --reference DIR`.",
    )
    signal.add_argument("--speakers", type=int, required=True, metavar="N", help="how many")
    signal.add_argument("--rate", type=int, default=48000, help="sample rate (default 48000)")
    signal.add_argument("--out", required=True, metavar="DIR", help="directory to write into")
    analyze = sub.add_parser(
        "analyze",
        help="find each probe's arrival in a recording (latency, drift, gaps)",
        description="Find where each reference signal's direct path starts in REC.wav "
        "(sub-sample), its SNR and level, the spread between speakers, and silent gaps. "
        "--reference is a probe-signal directory or any single WAV. Exit 0, 2 on bad input.",
    )
    analyze.add_argument("recording", metavar="REC.wav", help="the recording (WAV)")
    analyze.add_argument(
        "--reference", required=True, metavar="DIR|REF.wav", help="probe-signal dir or a WAV"
    )
    analyze.add_argument("--json", action="store_true", help="JSON: arrivals, SNR, spread and gaps")
    analyze.add_argument(
        "--channel",
        type=channel_number,
        default=None,
        metavar="N",
        help="which channel of a multi-channel recording to analyse (1-based; default 1)",
    )
    probe = sub.add_parser(
        "probe",
        help="play coded probes on the speakers that stream, record, report latency and drift",
        description="Play one coded probe on every speaker whose A2DP transport is active "
        "(each on its own audio-server sink), record the microphone, and print each "
        "speaker's arrival, latency and offset from the fleet median, against the 15 ms "
        "(tight) and 40 ms (echo) lines. With --demo the room is simulated. Exit 0 when the "
        "probe ran (a speaker not heard is a result), 2 when it could not run.",
    )
    add_source_args(probe)
    probe.add_argument("--json", action="store_true", help="print the probe event (JSON)")
    probe.add_argument(
        "--list-devices", action="store_true", help="list audio devices and sinks, then exit"
    )
    add_input_args(probe)
    probe.add_argument(
        "--speaker",
        action="append",
        default=[],
        metavar="SPEAKER",
        help="probe this speaker: address, name or alias (repeat for more; default: every "
        "speaker that streams)",
    )


def add_input_args(parser: argparse.ArgumentParser, nested: bool = True) -> None:
    """--input, --source and --sink: the microphone the probes record and the sinks they
    play on (they count before or after the subcommand)."""
    options.add(
        parser,
        nested,
        "--input",
        metavar="DEVICE",
        help="microphone: PortAudio device index or name (see `btmon-tui probe "
        "--list-devices`; default: the default input)",
    )
    options.add(
        parser,
        nested,
        "--source",
        metavar="NAME",
        help="record this PulseAudio/PipeWire source instead (e.g. a USB mic's source name)",
    )
    options.add(
        parser,
        nested,
        "--sink",
        action="append",
        type=sink_mapping,
        metavar="ADDRESS=SINK",
        help="play this speaker's probe on SINK (repeatable; default: the sink named after "
        "its address, bluez_sink.… or bluez_output.…)",
    )


def sink_mapping(text: str) -> tuple[str, str]:
    """'AA:BB:CC:DD:EE:FF=sink_name' -> (address, sink)."""
    address, _, sink = text.partition("=")
    address = address.strip().upper()
    if not sink.strip() or len(address.split(":")) != 6:
        raise argparse.ArgumentTypeError(
            f"{text!r}: write ADDRESS=SINK, e.g. 00:1A:7D:DA:71:01=spk1"
        )
    return address, sink.strip()


def run_probe_signal(args: argparse.Namespace) -> int:
    from core.probe.signals import design_probes, write_probe_dir
    from core.probe.wavio import WavError

    if not 1 <= args.speakers <= MAX_SPEAKERS:
        return fail(f"--speakers must be 1 to {MAX_SPEAKERS}")
    if not 8000 <= args.rate <= 192000:
        return fail("--rate must be 8000 to 192000 Hz (48000 is what audio servers use)")
    out = Path(args.out)
    try:
        probes = design_probes(args.speakers, args.rate)
        files = write_probe_dir(probes, out)
    except (OSError, WavError) as exc:
        return fail(f"cannot write to {out}: {exc}")
    wavs = [f for f in files if f.suffix == ".wav"]
    print(
        f"wrote {len(wavs)} probe signals ({probes.duration_s:.3f} s at {probes.rate} Hz) "
        f"and probe.json to {out}"
    )
    return 0


def run_analyze(args: argparse.Namespace) -> int:
    import numpy as np

    from core.probe.analysis import ProbeError, analyze
    from core.probe.signals import load_reference
    from core.probe.wavio import WavError, read_wav

    try:
        wav = read_wav(Path(args.recording))
        reference = load_reference(Path(args.reference))
    except (WavError, ProbeError) as exc:
        return fail(str(exc))
    samples = wav.samples
    warnings: list[str] = []
    if samples.ndim == 2:
        channel = args.channel or 1
        if not 1 <= channel <= samples.shape[1]:
            return fail(f"--channel {channel}: {args.recording} has {samples.shape[1]} channels")
        if args.channel is None:
            warnings.append(
                f"{args.recording} has {samples.shape[1]} channels: analysed channel 1 "
                "(choose with --channel)"
            )
        samples = np.ascontiguousarray(samples[:, channel - 1])
    elif args.channel not in (None, 1):
        return fail(f"--channel {args.channel}: {args.recording} is mono")
    try:
        result = analyze(samples, wav.rate, reference)
    except ProbeError as exc:
        return fail(str(exc))
    data = result.to_json()
    data["warnings"] = warnings + list(data.get("warnings") or [])
    for warning in data["warnings"]:
        print(f"btmon-tui: warning: {warning}", file=sys.stderr)
    print(json.dumps(data) if args.json else analysis_table(data))
    return 0


def analysis_table(data: dict[str, Any]) -> str:
    """`analyze` in words: one line per reference signal, the spread, the gaps."""
    lines = [f"{'probe':>5}  {'heard':5}  {'arrival':>12}  {'SNR':>8}  {'level':>9}"]
    for row in data["speakers"]:
        arrival = f"{row['arrival_ms']:.3f} ms" if row.get("arrival_ms") is not None else "-"
        snr = f"{row['snr_db']:.1f} dB" if row.get("snr_db") is not None else "-"
        level = f"{row['level_dbfs']:.1f} dBFS" if row.get("level_dbfs") is not None else "-"
        heard = "yes" if row["detected"] else "NO"
        lines.append(f"{row['index']:>5}  {heard:5}  {arrival:>12}  {snr:>8}  {level:>9}")
    spread = data.get("spread_ms")
    if spread is not None:
        from core.model import sync_word

        lines.append(f"spread {spread:.3f} ms ({sync_word(spread)})")
    gaps = data.get("gaps") or []
    lines.append(
        f"{len(gaps)} gap(s) ≥ 20 ms: "
        + ", ".join(f"{g['duration_ms']:.0f} ms at {g['start_ms'] / 1000:.3f} s" for g in gaps)
        if gaps
        else "no gaps"
    )
    return "\n".join(lines)


def list_devices() -> int:
    from core.probe import audio

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
    from core.model import sync_word

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
        from core.sim.room_sim import RoomBackend
        from core.sim.scenario import ROOM

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
    from core.probe.backends import MicBackend

    device: int | str | None = args.input
    if isinstance(device, str) and device.isdigit():
        device = int(device)
    return MicBackend(input_device=device, pulse_source=args.source, sinks=dict(args.sink))


def _chosen_speakers(asked: list[str], speakers: Any) -> tuple[list[str], str]:
    """The addresses `--speaker` names (address, name or alias) that stream now; a speaker
    that does not stream is named with its verdict (a probe would only miss it)."""
    from core.lookup import find_speaker
    from core.probe.runner import PLAYING

    chosen: list[str] = []
    for query in asked:
        speaker, problem = find_speaker(query, speakers)
        if speaker is None:
            return [], problem
        if speaker.verdict not in PLAYING:
            return [], (
                f"{speaker.name} ({speaker.address}) is not streaming ({speaker.verdict}): a "
                "probe plays only to speakers whose A2DP transport is active; start playback "
                f"or `btmon-tui resync {speaker.address}`"
            )
        chosen.append(speaker.address)
    return chosen, ""


async def probe_once(args: argparse.Namespace, monitor: Any, ready_s: float) -> int:
    """`btmon-tui probe`: wait for BlueZ, probe, print."""
    import asyncio

    from core.model import SourceState
    from core.probe.runner import ProbeFailed

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
