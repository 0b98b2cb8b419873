"""`btmon-tui probe-signal`: the coded probe signals, one WAV per speaker, for any player."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.probe.signals import design_probes, write_probe_dir
from core.probe.wavio import WavError
from tui.cli.options import fail
from tui.cli.parser import MAX_SPEAKERS


def run(args: argparse.Namespace) -> int:

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
