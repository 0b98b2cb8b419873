"""The fleet output on the audio server (PulseAudio, or pipewire-pulse's `pactl`): one null
sink `btmon_fleet` that the player plays to, and one `module-loopback` per speaker from its
monitor into that speaker's sink, whose latency is the speaker's delay plus a common base.

Everything loaded carries a `btmon.` property in its module arguments, so the modules are
found again from the server alone (also after a crash of an earlier run) and no module we
did not load is ever touched. The server is the only state: a stage's delay is read back
from its `latency_msec`. Stages are loaded with `sink_dont_move`: when a speaker's sink goes
away the server unloads its stage, and `attach` loads it again when the sink returns under
the same name.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from core.probe import ProbeError

#: The fleet output's sink name: where the operator's player plays.
FLEET_SINK: Final = "btmon_fleet"
#: Property on the fleet output's null sink (module argument `sink_properties`).
FLEET_PROPERTY: Final = "btmon.fleet"
#: Property on a stage's streams, valued with the speaker's sink name.
STAGE_PROPERTY: Final = "btmon.stage"
#: Latency (ms) under every stage; a speaker's delay is its stage's latency minus this.
#: module-loopback cannot go below its sink's and source's latency plus a fragment (×1.1 +
#: 1.5 ms); Bluetooth sinks report tens of ms, so a common base above that keeps every
#: stage in its adjustable range, and only differences between stages matter.
BASE_MS: Final = 60
#: The fleet output's rate: the probe's and most players' rate, so nothing resamples twice.
FLEET_RATE: Final = 48_000
#: How long one `pactl` call may take; a healthy local server answers in milliseconds.
PACTL_TIMEOUT_S: Final = 5.0


class AlignError(ProbeError):
    """The audio server could not do what aligning needs; the message says what and what to
    do. `bad_input` distinguishes "cannot start" (no server, nothing to align) from a
    failure during the alignment."""

    def __init__(self, message: str, *, bad_input: bool = True) -> None:
        super().__init__(message)
        self.bad_input = bad_input


class ServerRefused(AlignError):
    """The server refused a command (e.g. loading a module): the alignment failed (exit 1),
    the input was fine."""

    def __init__(self, message: str) -> None:
        super().__init__(message, bad_input=False)


def pactl(*args: str) -> str:
    """stdout of `pactl ARGS`; AlignError when there is no pactl or no server,
    ServerRefused when the server answered with an error."""
    binary = shutil.which("pactl")
    if binary is None:
        raise AlignError(
            "pactl not found: install pulseaudio-utils (it talks to PulseAudio and PipeWire)"
        )
    try:
        done = subprocess.run(
            [binary, *args], capture_output=True, text=True, timeout=PACTL_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AlignError(
            f"the audio server did not answer `pactl {args[0]}` within {PACTL_TIMEOUT_S:g} s: "
            "is pulseaudio or pipewire-pulse hung?"
        ) from exc
    if done.returncode != 0:
        why = " ".join((done.stderr or done.stdout).split()) or f"exit {done.returncode}"
        if "connection" in why.lower() or "connect" in why.lower():
            raise AlignError(
                f"no audio server answered ({why}): start pulseaudio or pipewire-pulse, or "
                "point PULSE_SERVER at one"
            )
        raise ServerRefused(f"the audio server refused `pactl {' '.join(args)}`: {why}")
    return done.stdout


@dataclass(frozen=True, slots=True)
class Module:
    """One loaded module as `pactl list short modules` shows it."""

    index: int
    name: str
    arguments: str

    def argument(self, key: str) -> str | None:
        """The value of `key=` in the arguments (unquoted), or None."""
        match = re.search(
            rf"(?:^|\s|[\"']){re.escape(key)}=(\"[^\"]*\"|'[^']*'|\S+)", self.arguments
        )
        if match is None:
            return None
        return match.group(1).strip("\"'")


def modules() -> list[Module]:
    """Every module the server has loaded."""
    found = []
    for line in pactl("list", "short", "modules").splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and fields[0].strip().isdigit():
            found.append(Module(int(fields[0]), fields[1], fields[2] if len(fields) > 2 else ""))
    return found


def sinks() -> list[str]:
    """Names of the server's sinks."""
    names = []
    for line in pactl("list", "short", "sinks").splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and fields[1]:
            names.append(fields[1])
    return names


def is_fleet(module: Module) -> bool:
    return module.name == "module-null-sink" and f"{FLEET_PROPERTY}=" in module.arguments


def stage_sink(module: Module) -> str | None:
    """The speaker sink a module of ours feeds, or None when it is not one of our stages."""
    if module.name != "module-loopback" or f"{STAGE_PROPERTY}=" not in module.arguments:
        return None
    return module.argument("sink")


@dataclass(frozen=True, slots=True)
class Stage:
    """One loaded delay stage: its module, the speaker sink it feeds, the delay it adds."""

    module: int
    sink: str
    delay_ms: int


def stages() -> dict[str, Stage]:
    """Our stages by speaker sink (read back from the server)."""
    found: dict[str, Stage] = {}
    for module in modules():
        sink = stage_sink(module)
        if sink is None:
            continue
        latency = module.argument("latency_msec")
        delay = int(latency) - BASE_MS if latency and latency.isdigit() else 0
        found[sink] = Stage(module.index, sink, delay)
    return found


def fleet_loaded() -> bool:
    return any(is_fleet(m) for m in modules())


def ensure_fleet() -> bool:
    """Load the fleet output unless it is there; True when this call loaded it. Refuses a
    `btmon_fleet` sink that is not ours (someone else's sink of that name)."""
    if fleet_loaded():
        return False
    if FLEET_SINK in sinks():
        raise AlignError(
            f"a sink named {FLEET_SINK} exists but btmon-tui did not load it: unload it "
            f"(`pactl list short modules`) and align again"
        )
    pactl(
        "load-module",
        "module-null-sink",
        f"sink_name={FLEET_SINK}",
        f"rate={FLEET_RATE}",
        f"sink_properties={FLEET_PROPERTY}=1",
    )
    return True


def attach(sink: str, delay_ms: int) -> Stage:
    """Make sure `sink` has a stage adding `delay_ms`: load one when missing (a speaker whose
    sink came back), reload it when its delay differs (PulseAudio 16's loopback cannot
    change its latency while loaded), keep it otherwise."""
    if delay_ms < 0:
        raise ValueError(f"a delay cannot be negative ({delay_ms} ms)")
    current = stages().get(sink)
    if current is not None and current.delay_ms == delay_ms:
        return current
    if current is not None:
        unload(current.module)
    index = int(
        pactl(
            "load-module",
            "module-loopback",
            f"source={FLEET_SINK}.monitor",
            f"sink={sink}",
            f"latency_msec={BASE_MS + delay_ms}",
            "source_dont_move=true",
            "sink_dont_move=true",
            f"sink_input_properties={STAGE_PROPERTY}={sink}",
            f"source_output_properties={STAGE_PROPERTY}={sink}",
        ).strip()
    )
    return Stage(index, sink, delay_ms)


def apply(delays_by_sink: Mapping[str, int]) -> dict[str, Stage]:
    """`attach` every sink with its delay; the stages as they are now."""
    return {sink: attach(sink, delay) for sink, delay in delays_by_sink.items()}


def unload(index: int) -> None:
    """Unload one module of ours; one that is already gone is fine (its sink left)."""
    try:
        pactl("unload-module", str(index))
    except ServerRefused:
        if any(m.index == index for m in modules()):
            raise


def reset(*, remove_fleet: bool = False, only: Iterable[int] | None = None) -> list[int]:
    """Unload every stage of ours (or only the module indices in `only`), and the fleet
    output with `remove_fleet`; the indices unloaded. Modules that are not ours stay."""
    wanted = None if only is None else set(only)
    done = []
    for module in modules():
        ours = stage_sink(module) is not None or (remove_fleet and is_fleet(module))
        if ours and (wanted is None or module.index in wanted):
            unload(module.index)
            done.append(module.index)
    return done


def ours() -> list[int]:
    """Indices of every module of ours that is loaded (stages and the fleet output)."""
    return [m.index for m in modules() if is_fleet(m) or stage_sink(m) is not None]


def stage_inputs() -> dict[str, int]:
    """Speaker sink -> the sink-input index of its stage (to mute the others while one
    speaker is measured), from the stage property of `pactl list sink-inputs`."""
    found: dict[str, int] = {}
    current: int | None = None
    pattern = re.compile(rf'{re.escape(STAGE_PROPERTY)} = "([^"]*)"')
    for line in pactl("list", "sink-inputs").splitlines():
        header = re.match(r"Sink Input #(\d+)", line.strip())
        if header:
            current = int(header.group(1))
            continue
        match = pattern.search(line)
        if match and current is not None:
            found[match.group(1)] = current
    return found


def solo(sink: str | None, inputs: Mapping[str, int]) -> None:
    """Mute every stage but `sink`'s (None: unmute all)."""
    for name, index in inputs.items():
        pactl("set-sink-input-mute", str(index), "0" if sink in (None, name) else "1")


def switch(was: str | None, now: str, inputs: Mapping[str, int]) -> None:
    """Move the solo from `was`'s stage to `now`'s (two commands instead of one per stage)."""
    if was is not None and was in inputs:
        pactl("set-sink-input-mute", str(inputs[was]), "1")
    pactl("set-sink-input-mute", str(inputs[now]), "0")
