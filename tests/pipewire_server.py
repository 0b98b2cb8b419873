"""A private PipeWire (with pipewire-pulse and WirePlumber) with the same simulated room as
tests/pulse_server.py: the `pipewire` fixture. btmon-tui talks to it exactly as to
PulseAudio, through `pactl` and the ALSA `pulse` device, so the same room (a null sink
`room` whose monitor is the microphone) and the same PulseServer handle serve both.

Measured here (PipeWire 0.3.65, WirePlumber 0.4.13, Debian 12, headless, 2 cores):
- the three daemons run in the foreground as children with a private XDG_RUNTIME_DIR, HOME
  and XDG_CONFIG_HOME; no systemd user session is needed, but WirePlumber exits without a
  D-Bus session bus ("Cannot autolaunch D-Bus without X11 $DISPLAY"), so a private
  dbus-daemon (core.sim.daemon.PrivateBus) serves as one;
- every null sink is a PipeWire driver of its own, and the graph runs with the quantum the
  streams ask for; pipewire-pulse's module-loopback gives each of its two streams
  node.latency = latency_msec/3 (read back: 1920/48000 for 120 ms) and passes a
  `target.delay.sec` to libpipewire-module-loopback. With the quantum left to the streams a
  direct click wandered by up to 20 ms from one recording to the next, so the quantum is
  fixed to QUANTUM (2.7 ms; the PulseAudio room's keeper asks 2 ms for the same reason): a
  speaker's direct arrival then lands -2..+7 ms from its hidden latency (median +3 ms), one
  through the fleet output's stage within ~2 ms of its median (rare 10 ms outliers under
  load);
- at that quantum a loopback's total delay follows `latency_msec` one to one (measured: a
  stage at 60/100/200/305 ms added 61/100/202/305 ms), as stages.py assumes.

The daemons are killed at the end of the module's tests. PULSE_SERVER is set only while a
test that asks for `pipewire_env` runs, so a PulseAudio of the same session is unaffected.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.probe.audio import list_devices
from core.sim.daemon import PrivateBus, die_with_parent
from tests.conftest import IN_CI, require_binary
from tests.pulse_server import PulseServer, require_portaudio

#: The graph's forced quantum (samples at 48 kHz): 128 = 2.7 ms.
QUANTUM = 128
#: How long the daemons and the room may take to come up.
START_TIMEOUT_S = 15.0
#: Config drop-in for pipewire: the fixed quantum from the start.
CONFIG = f"""context.properties = {{
    default.clock.rate = 48000
    default.clock.quantum = {QUANTUM}
    default.clock.min-quantum = {QUANTUM}
    default.clock.max-quantum = {QUANTUM}
}}
"""


def _wait(predicate, what: str, processes: list[subprocess.Popen[bytes]]) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        dead = [p.args[0] for p in processes if p.poll() is not None]  # type: ignore[index]
        if dead:
            raise RuntimeError(f"private PipeWire: {', '.join(map(str, dead))} exited")
        try:
            if predicate():
                return
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"private PipeWire: timed out waiting for {what}")
        time.sleep(0.05)


def server_version(server: PulseServer) -> str:
    """`Server Name` of `pactl info`, e.g. "PulseAudio (on PipeWire 0.3.65)"."""
    for line in server.pactl("info").splitlines():
        if line.startswith("Server Name:"):
            return line.split(":", 1)[1].strip()
    return "?"


@contextlib.contextmanager
def private_pipewire(base: Path) -> Iterator[PulseServer]:
    """pipewire, WirePlumber and pipewire-pulse under `base` with the room loaded; stopped
    (and their logs closed) on exit. PULSE_SERVER is not set for this process: use
    `server.env` or set it while a test runs."""
    runtime, home, config = base / "run", base / "home", base / "config"
    runtime.mkdir(mode=0o700)
    home.mkdir()
    (config / "pipewire" / "pipewire.conf.d").mkdir(parents=True)
    (config / "pipewire" / "pipewire.conf.d" / "btmon-test.conf").write_text(CONFIG)
    socket = runtime / "pulse" / "native"
    env = {
        **os.environ,
        "XDG_RUNTIME_DIR": str(runtime),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(config),
        "PULSE_SERVER": f"unix:{socket}",
        "PIPEWIRE_RUNTIME_DIR": str(runtime),
    }
    env.pop("PIPEWIRE_REMOTE", None)
    processes: list[subprocess.Popen[bytes]] = []
    logs = []
    bus = PrivateBus()
    try:
        env["DBUS_SESSION_BUS_ADDRESS"] = bus.start()
        for name in ("pipewire", "wireplumber", "pipewire-pulse"):
            log = (base / f"{name}.log").open("w")
            logs.append(log)
            processes.append(
                subprocess.Popen(
                    [shutil.which(name) or name],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=die_with_parent,
                )
            )
            if name == "pipewire":
                _wait(lambda: (runtime / "pipewire-0").exists(), "pipewire-0", processes)
        server = PulseServer(f"unix:{socket}", env)
        _wait(lambda: "PipeWire" in server_version(server), "pactl info", processes)
        server.load("room", "module-null-sink", "sink_name=room", "rate=48000")
        _wait(lambda: "room" in server.pactl("list", "short", "sinks"), "the room", processes)
        yield server
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
        for log in logs:
            log.close()
        bus.stop()


@pytest.fixture(scope="module")
def pipewire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseServer]:
    """A private PipeWire with the room, for the tests of one module (skip locally, fail
    under CI=true when PipeWire, pipewire-pulse, WirePlumber or pactl is missing)."""
    require_binary("pipewire", "pipewire")
    require_binary("pipewire-pulse", "pipewire-pulse")
    require_binary("wireplumber", "wireplumber")
    require_binary("pactl", "pulseaudio-utils")
    require_portaudio()
    with private_pipewire(tmp_path_factory.mktemp("pipewire")) as server:
        yield server


@pytest.fixture
def pipewire_env(pipewire: PulseServer, monkeypatch: pytest.MonkeyPatch) -> PulseServer:
    """The private PipeWire with PULSE_SERVER pointing at it for this test only."""
    monkeypatch.setenv("PULSE_SERVER", pipewire.server)
    if not any(d.name == "pulse" for d in list_devices(rescan=True)):
        message = "PortAudio has no ALSA `pulse` device: apt install libasound2-plugins"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return pipewire
