"""`btmon-tui --demo --metrics …`: the TUI in a real terminal (tmux) serves the same metrics
as `watch`, probe results included (the demo probes its room); a port it cannot take is a
warning in its log, and the fleet view runs on."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.metrics import METRICS
from tests.conftest import DEMO_HCI_VERDICTS, require_binary
from tests.metrics.scrape import by_address, current_verdicts, samples, scrape, wait_until
from tests.tui.test_tmux_e2e import (
    PROBE_TIMEOUT_S,
    START_TIMEOUT_S,
    Demo,
    Tmux,
    btmon_command,
)

pytestmark = [pytest.mark.tmux, pytest.mark.dbus]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    require_binary("dbus-daemon", "dbus-daemon")
    running = Demo(Tmux(require_binary("tmux", "tmux"), tmp_path), tmp_path / "exit-status")
    try:
        yield running
    finally:
        running.cleanup()


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def exit_status(demo: Demo) -> int:
    """The app's exit status once it ended (a loaded machine may take seconds to stop the
    demo's bus and simulator: this is about the status, not the speed)."""
    wait_until(
        lambda: demo.status_file.exists() and demo.status_file.read_text().strip(),
        30.0,
        "btmon-tui to end",
        None,
    )
    return int(demo.status_file.read_text())


def start(demo: Demo, metrics: str) -> None:
    tmux = demo.tmux
    command = f"{btmon_command()} --metrics {metrics}"
    tmux.start(f"{command}; echo $? > {demo.status_file}", 120, 32)
    tmux.wait(lambda s: "connected speakers streaming" in s, "the fleet line", START_TIMEOUT_S)


def test_the_tui_serves_the_fleet_and_its_probes(demo: Demo) -> None:
    port = free_port()
    start(demo, f"127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}/metrics"
    found = samples(scrape(url)[1])
    assert found["btmon_fleet_connected"][0].value == 7
    # The TUI's demo probes its room 2 s in: latency and offset for the speakers it heard,
    # and the spread between them; none for Foyer, which it cannot hear.
    found = wait_until(
        lambda: (f := samples(scrape(url)[1])) and "btmon_fleet_spread_seconds" in f and f,
        PROBE_TIMEOUT_S,
        "the first probe's metrics",
        None,
    )
    # The demo with its probes shows every metric there is but the delays (nothing aligned).
    assert set(found) == METRICS - {"btmon_speaker_delay_seconds"}
    verdicts = current_verdicts(found)
    assert verdicts.keys() == DEMO_HCI_VERDICTS.keys()
    latency = by_address(found, "btmon_speaker_latency_seconds")
    offset = by_address(found, "btmon_speaker_offset_seconds")
    assert latency and latency.keys() == offset.keys()
    assert "F4:4E:FD:10:22:0A" not in latency  # Foyer: not heard, so no series (never NaN)
    assert all(0 < value < 1 for value in latency.values())
    spread = found["btmon_fleet_spread_seconds"][0].value
    assert spread == pytest.approx(max(latency.values()) - min(latency.values()), abs=1e-5)
    assert max(offset.values()) - min(offset.values()) == pytest.approx(spread, abs=1e-5)
    demo.tmux.keys("q")
    assert exit_status(demo) == 0
    # Nobody listens on the port once the app has ended (SO_REUSEADDR, as the server binds:
    # the scrapes' connections may linger in TIME_WAIT; a listener would still refuse it).
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))
        again.listen()


def test_a_port_in_use_is_a_warning_and_the_tui_runs_on(demo: Demo, held_port: int) -> None:
    start(demo, f"127.0.0.1:{held_port}")
    tmux = demo.tmux
    screen = tmux.wait(lambda s: "in the log)" in s, "the warning count", 10.0)
    assert f"127.0.0.1:{held_port} is in use" in screen
    # The fleet view goes on: the demo's HCI capture has its say, three speakers stream.
    tmux.wait(lambda s: "3 of 7 connected speakers streaming" in s, "the fleet", 10.0)
    tmux.keys("q")
    assert exit_status(demo) == 0


def test_not_a_port_is_a_warning_too(demo: Demo) -> None:
    start(demo, "nine")
    screen = demo.tmux.wait(lambda s: "in the log)" in s, "the warning count", 10.0)
    assert "'nine' is not a port" in screen
    demo.tmux.keys("q")
    assert exit_status(demo) == 0
