"""Where a probe's sound goes and comes from: PortAudio devices (listed, chosen by index or
name, opened with audio-server routing) and the audio server's sinks and sources
(PulseAudio or pipewire-pulse, via `pactl`), with the naming rule that finds a Bluetooth
speaker's sink from its address.

`core.probe.audio` re-exports the public names; sounddevice is imported lazily so that this
module imports without libportaudio.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Final, Literal

from core.probe import ProbeError

#: How long one `pactl` call may take; a healthy local server answers in milliseconds.
PACTL_TIMEOUT_S: Final = 5.0

#: The ALSA device of libasound2-plugins that talks to PulseAudio / pipewire-pulse.
PULSE_DEVICE: Final = "pulse"
#: Requested output latency. Measured on a loaded 2-core machine, 4 streams: 50 ms gave an
#: output xrun in 1 of 15 probes, 100 ms none in 45; accuracy comes from the stamps, not it.
OUTPUT_LATENCY_S: Final = 0.1
#: Requested input latency: 20 ms periods give one stamp per host period (at 100 ms
#: PortAudio split each period into two callbacks with one stale stamp).
INPUT_LATENCY_S: Final = 0.02
#: Serialises PULSE_SINK/PULSE_SOURCE changes: the plugin reads them when a stream opens.
ROUTING_LOCK: Final = threading.Lock()


class AudioError(ProbeError):
    """Audio I/O failed; the message says what is wrong and what to do."""


@dataclass(frozen=True, slots=True)
class AudioDevice:
    """One PortAudio device as `--list-devices` shows it."""

    index: int
    name: str
    host_api: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    is_default_input: bool
    is_default_output: bool


def load_sounddevice() -> ModuleType:
    """The sounddevice module, or AudioError when PortAudio cannot be loaded."""
    try:
        import sounddevice
    except OSError as exc:
        raise AudioError(f"PortAudio is not installed ({exc}): apt install libportaudio2") from exc
    except ImportError as exc:
        raise AudioError(f"sounddevice is missing ({exc}): pip install sounddevice") from exc
    module: ModuleType = sounddevice
    return module


def _default_index(sd: Any, kind: str) -> int:
    """PortAudio's default device index for `kind`, -1 when there is none."""
    try:
        return int(sd.query_devices(kind=kind)["index"])
    except Exception:
        return -1


def _rescan(sd: Any) -> None:
    """Re-initialise PortAudio: its device list is fixed when it starts, so a microphone
    plugged in later, or the `pulse` device of a server started later, needs a rescan.
    Only call it while no stream is open."""
    try:
        sd._terminate()
        sd._initialize()
    except Exception as exc:
        raise AudioError(f"PortAudio could not rescan its devices ({exc})") from exc


def list_devices(*, rescan: bool = False) -> list[AudioDevice]:
    """Every PortAudio device, with its host API and whether it is a default."""
    sd = load_sounddevice()
    if rescan:
        _rescan(sd)
    try:
        raw = sd.query_devices()
        apis = sd.query_hostapis()
    except sd.PortAudioError as exc:
        raise AudioError(f"PortAudio cannot list devices ({exc}): is ALSA working?") from exc
    default_in, default_out = _default_index(sd, "input"), _default_index(sd, "output")
    return [
        AudioDevice(
            index=int(info["index"]),
            name=str(info["name"]),
            host_api=str(apis[info["hostapi"]]["name"]),
            max_input_channels=int(info["max_input_channels"]),
            max_output_channels=int(info["max_output_channels"]),
            default_samplerate=float(info["default_samplerate"]),
            is_default_input=int(info["index"]) == default_in,
            is_default_output=int(info["index"]) == default_out,
        )
        for info in raw
    ]


def _channels(device: AudioDevice, kind: str) -> int:
    return device.max_input_channels if kind == "input" else device.max_output_channels


def resolve_device(spec: str | int | None, kind: Literal["input", "output"]) -> int | str | None:
    """A device index from an index or a case-insensitive name substring (an exact name
    wins); None = PortAudio's default, which must exist. When nothing matches, PortAudio
    rescans once before the AudioError (it lists the candidates)."""
    try:
        return _match(list_devices(), spec, kind)
    except AudioError:
        return _match(list_devices(rescan=True), spec, kind)


def _match(
    devices: Sequence[AudioDevice], spec: str | int | None, kind: Literal["input", "output"]
) -> int | None:
    usable = [d for d in devices if _channels(d, kind) > 0]
    hint = "--input" if kind == "input" else "--output"
    listed = "; ".join(f"{d.index}: {d.name}" for d in usable) or "none"
    if spec is None:
        if not any(d.is_default_input if kind == "input" else d.is_default_output for d in usable):
            what = "plug in a microphone" if kind == "input" else "connect a speaker"
            raise AudioError(f"no {kind} device: {what} or pass {hint} (devices: {listed})")
        return None
    if isinstance(spec, int) or spec.strip().isdigit():
        index = int(spec)
        if any(d.index == index for d in usable):
            return index
        raise AudioError(f"no {kind} device with index {index}: pass one of {listed}")
    wanted = spec.strip().casefold()
    exact = [d for d in usable if d.name.casefold() == wanted]
    matches = exact or [d for d in usable if wanted in d.name.casefold()]
    if len(matches) == 1:
        return matches[0].index
    if not matches:
        raise AudioError(f"no {kind} device matches {spec!r}: pass one of {listed}")
    names = "; ".join(f"{d.index}: {d.name}" for d in matches)
    raise AudioError(f"{kind} device {spec!r} is ambiguous ({names}): pass the index")


@contextmanager
def _routed(variable: str, value: str | None) -> Iterator[None]:
    """Set an environment variable for the duration (unchanged when value is None)."""
    if value is None:
        yield
        return
    before = os.environ.get(variable)
    os.environ[variable] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = before


def _open_error(sd: Any, exc: Exception, kind: str, device: int | str | None, rate: int) -> str:
    """Words for a stream that would not open, with the device's own rate when it is one."""
    try:
        label = repr(sd.query_devices(device, kind=kind)["name"])
    except Exception:
        label = "the default device" if device is None else repr(device)
    if "sample rate" in str(exc).lower():
        try:
            native = float(sd.query_devices(device, kind=kind)["default_samplerate"])
            return (
                f"{kind} {label} does not support {rate} Hz (it runs at {native:g} Hz): "
                f"probe at {native:g} Hz or pick another device"
            )
        except Exception:
            return f"{kind} {label} does not support {rate} Hz: pick another rate or device"
    return f"cannot open {kind} {label} ({exc}): check it with `btmon-tui probe --list-devices`"


def open_stream(
    sd: Any, kind: str, device: int | str | None, rate: int, route: str | None, callback: Any
) -> Any:
    """An unstarted sounddevice stream (mono when the device allows) routed to audio-server
    `route` (PULSE_SOURCE/PULSE_SINK, read by the `pulse` device when it opens); the caller
    holds ROUTING_LOCK. AudioError, with the device's own rate when that is the problem."""
    variable = "PULSE_SOURCE" if kind == "input" else "PULSE_SINK"
    cls = sd.InputStream if kind == "input" else sd.OutputStream
    info = sd.query_devices(device, kind=kind)
    channels = 1 if _mono_ok(sd, kind, device, rate) else min(2, int(info[f"max_{kind}_channels"]))
    try:
        with _routed(variable, route):
            return cls(
                device=device,
                channels=channels,
                samplerate=rate,
                dtype="float32",
                latency=OUTPUT_LATENCY_S if kind == "output" else INPUT_LATENCY_S,
                callback=callback,
            )
    except sd.PortAudioError as exc:
        raise AudioError(_open_error(sd, exc, kind, device, rate)) from exc


def _mono_ok(sd: Any, kind: str, device: int | str | None, rate: int) -> bool:
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    try:
        check(device=device, channels=1, dtype="float32", samplerate=rate)
    except sd.PortAudioError as exc:
        if "channel" in str(exc).lower():
            return False
        raise AudioError(_open_error(sd, exc, kind, device, rate)) from exc
    return True


def _pactl(*args: str) -> str:
    """stdout of `pactl ARGS`, or AudioError with advice when there is no pactl or server."""
    pactl = shutil.which("pactl")
    if pactl is None:
        raise AudioError(
            "pactl not found: install pulseaudio-utils (it talks to PulseAudio and PipeWire)"
        )
    try:
        done = subprocess.run(
            [pactl, *args],
            capture_output=True,
            text=True,
            timeout=PACTL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AudioError(
            f"the audio server did not answer `pactl {' '.join(args)}` within "
            f"{PACTL_TIMEOUT_S:g} s: is pulseaudio or pipewire-pulse hung?"
        ) from exc
    if done.returncode != 0:
        why = " ".join((done.stderr or done.stdout).split()) or f"exit {done.returncode}"
        raise AudioError(
            f"no audio server answered ({why}): start pulseaudio or pipewire-pulse, "
            "or point PULSE_SERVER at one"
        )
    return done.stdout


def _names(listing: str) -> list[str]:
    """Second column (the name) of `pactl list short …` output."""
    names = []
    for line in listing.splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and fields[1]:
            names.append(fields[1])
    return names


def list_sinks() -> list[str]:
    """Names of the audio server's sinks (outputs), in the server's order."""
    return _names(_pactl("list", "short", "sinks"))


def list_sources() -> list[str]:
    """Names of the audio server's sources (inputs, including every sink's `.monitor`)."""
    return _names(_pactl("list", "short", "sources"))


def underscored(address: str) -> str:
    """`00:1a:7d:da:71:01` -> `00_1A_7D_DA_71_01`, the form audio servers put in names."""
    return address.strip().upper().replace(":", "_")


def sink_names_for(address: str) -> tuple[str, str]:
    """The exact sink names the audio servers give a Bluetooth speaker in A2DP:
    PulseAudio's module-bluez5-device and PipeWire's SPA bluez5 node (profile 1 = A2DP)."""
    tail = underscored(address)
    return (f"bluez_sink.{tail}.a2dp_sink", f"bluez_output.{tail}.1")


def sink_for_address(address: str, sinks: Sequence[str]) -> str | None:
    """The sink that plays to the speaker at `address`, or None.

    Exact names first (PulseAudio, then PipeWire), then any `bluez_sink.`/`bluez_output.`
    sink carrying the address (other profiles or server versions), then any sink whose
    name contains the underscored address. Case does not matter.
    """
    tail = underscored(address)
    by_folded = {name.casefold(): name for name in sinks}
    for exact in sink_names_for(address):
        if exact.casefold() in by_folded:
            return by_folded[exact.casefold()]
    needle = tail.casefold()
    bluez = [
        name
        for name in sinks
        if name.casefold().startswith(("bluez_sink.", "bluez_output."))
        and needle in name.casefold()
    ]
    if bluez:
        return bluez[0]
    return next((name for name in sinks if needle in name.casefold()), None)


def require_sink(address: str, sinks: Sequence[str]) -> str:
    """`sink_for_address`, or AudioError naming what was looked for."""
    sink = sink_for_address(address, sinks)
    if sink is None:
        pulse, pipewire = sink_names_for(address)
        raise AudioError(
            f"output sink for {address.upper()} not found (looked for {pulse} and "
            f"{pipewire}): is the speaker connected and streaming? (`pactl list short sinks`)"
        )
    return sink


def check_present(
    names: Sequence[str], known: Sequence[str], kind: str, *, during: bool = False
) -> None:
    """AudioError unless every name is one of the server's `known` sinks or sources;
    `during`: the check after a probe (the name was there when it started)."""
    missing = [name for name in names if name not in known]
    if missing and during:
        raise AudioError(
            f"{kind} {', '.join(missing)} vanished during the probe (the server moved its "
            f"audio elsewhere): is the {'speaker' if kind == 'sink' else 'microphone'} "
            "still connected? Probe again"
        )
    if missing:
        shown = ", ".join(known) if known else "none"
        raise AudioError(
            f"{kind} {', '.join(missing)} not found on the audio server (it has: {shown}): "
            f"check the name with `pactl list short {kind}s`"
        )


__all__ = [
    "PULSE_DEVICE",
    "ROUTING_LOCK",
    "AudioDevice",
    "AudioError",
    "check_present",
    "list_devices",
    "list_sinks",
    "list_sources",
    "load_sounddevice",
    "open_stream",
    "require_sink",
    "resolve_device",
    "sink_for_address",
    "sink_names_for",
    "underscored",
]
