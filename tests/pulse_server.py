"""A private PulseAudio with a simulated room, for real audio through PortAudio: the
`pulse` fixture, shared by the test packages that play real audio (their conftest imports
it; each package gets its own server for the session).

Topology (measured in test_roundtrip.py): one null sink `room`; each speaker is a
`module-remap-sink` (`spk1`…`spk3`, mono) whose master is `room`, so every speaker is mixed
into `room.monitor`, the test microphone, with no extra buffering. Two measured necessities:
- `norewinds=1` on `room`: with rewinds, a stream that starts while the room is running is
  mixed in up to 4 ms away from where its own timing says (about 1 probe in 10) while the
  stamps stay steady; without rewinds (like a Bluetooth sink) the median error fell from
  0.19 to 0.06 ms.
- a low-latency recorder (`keeper`, 2 ms) on `room.monitor` for the whole session:
  PulseAudio 16's null sink otherwise renders in 2 s blocks while nobody asks for low
  latency, so a fresh recording gets its first audio only when the current block ends (up
  to 2 s late); and the room's block length bounds how far a new stream can land from
  where its timing says.

The server runs as a child process (`--daemonize=no`) with its own runtime directory and
HOME, anonymous auth, and is killed at the end of the session; PULSE_SERVER points this
test process (pactl and the ALSA `pulse` device) at it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from core.probe.audio import list_devices
from tests.conftest import IN_CI, require_binary

#: Speakers of the simulated room.
SPEAKERS = ("spk1", "spk2", "spk3")
#: Room sink latency below which the null sink has left its 2 s idle blocks (measured: a
#: keeper brings it to a few ms; idle it reports up to 2 000 ms).
ROOM_READY_LATENCY_US = 100_000
#: Latency the keeper asks of the room: the room renders in blocks this long. Measured over
#: 160 three-speaker probes: at 10 ms about 1 offset in 60 was 2-4.4 ms off; at 2 ms the
#: worst was 1.8 ms (p99 0.7 ms).
KEEPER_LATENCY_MS = 2
#: How long the server and the room may take to come up.
START_TIMEOUT_S = 10.0


def require_portaudio() -> None:
    """Skip (locally) or fail (under CI=true) when sounddevice cannot load libportaudio."""
    try:
        import sounddevice  # noqa: F401
    except OSError as exc:
        message = f"PortAudio not loadable ({exc}): apt install libportaudio2"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@dataclass
class PulseServer:
    """The private server: `pactl(...)` talks to it; `modules` maps sink name -> module."""

    server: str
    env: dict[str, str]
    modules: dict[str, int] = field(default_factory=dict)

    def pactl(self, *args: str) -> str:
        done = subprocess.run(
            ["pactl", *args], env=self.env, capture_output=True, text=True, timeout=10
        )
        if done.returncode != 0:
            raise RuntimeError(f"pactl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def load(self, name: str, module: str, *args: str) -> int:
        index = int(self.pactl("load-module", module, *args).strip())
        self.modules[name] = index
        return index

    def add_speaker(self, name: str) -> int:
        """A mono per-speaker sink mixed into `room`."""
        return self.load(
            name,
            "module-remap-sink",
            f"sink_name={name}",
            "master=room",
            "channels=1",
            "channel_map=mono",
            "remix=yes",
        )

    def room_latency_us(self) -> int:
        listing = self.pactl("list", "sinks")
        block = listing.split("Name: room\n", 1)[1]
        match = re.search(r"Latency: (\d+) usec", block)
        return int(match.group(1)) if match else 10**9


def _wait(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            if predicate():
                return
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"private PulseAudio: timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseServer]:
    """A private PulseAudio with the room topology; PULSE_SERVER set for this process."""
    yield from serve_pulse(tmp_path_factory)


def serve_pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseServer]:
    """The `pulse` fixture's body (a package that needs a fresh server per module uses it
    with its own scope); skips or fails (CI=true) when a component is missing."""
    require_binary("pulseaudio", "pulseaudio")
    require_binary("pactl", "pulseaudio-utils")
    require_binary("pacat", "pulseaudio-utils")
    require_portaudio()
    with private_pulse(tmp_path_factory.mktemp("pulse")) as server:
        if not any(d.name == "pulse" for d in list_devices(rescan=True)):
            message = "PortAudio has no ALSA `pulse` device: apt install libasound2-plugins"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
        yield server


@contextlib.contextmanager
def private_pulse(base: Path) -> Iterator[PulseServer]:
    """Start the private server with the room under `base` (also for benches), set
    PULSE_SERVER for this process, and stop everything on exit."""
    runtime, home = base / "run", base / "home"
    runtime.mkdir(mode=0o700)
    home.mkdir()
    socket = base / "native"
    env = {
        **os.environ,
        "XDG_RUNTIME_DIR": str(runtime),
        "HOME": str(home),
        "PULSE_SERVER": f"unix:{socket}",
    }
    log = (base / "pulseaudio.log").open("w")
    daemon = subprocess.Popen(
        [
            shutil.which("pulseaudio") or "pulseaudio",
            "--daemonize=no",
            "-n",
            "--exit-idle-time=-1",
            "--disallow-exit",
            "--log-target=stderr",
            f"--load=module-native-protocol-unix auth-anonymous=1 socket={socket}",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = PulseServer(f"unix:{socket}", env)
    keeper: subprocess.Popen[bytes] | None = None
    saved = os.environ.get("PULSE_SERVER")
    try:
        _wait(lambda: daemon.poll() is None and bool(server.pactl("info")), "pactl info")
        server.load("room", "module-null-sink", "sink_name=room", "rate=48000", "norewinds=1")
        for name in SPEAKERS:
            server.add_speaker(name)
        keeper = subprocess.Popen(
            [
                "pacat",
                "--record",
                "--device=room.monitor",
                f"--latency-msec={KEEPER_LATENCY_MS}",
                "--raw",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(lambda: server.room_latency_us() < ROOM_READY_LATENCY_US, "the room to wake up")
        os.environ["PULSE_SERVER"] = server.server
        yield server
    finally:
        if saved is None:
            os.environ.pop("PULSE_SERVER", None)
        else:
            os.environ["PULSE_SERVER"] = saved
        for process in (keeper, daemon):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
        log.close()
