"""`btmon-tui watch --bus … --metrics`: the real command on the fake BlueZ, changed under it
(a verdict changes, a speaker vanishes), with probes from its event log; and bad --metrics
values, each one line and exit 2."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from core.eventlog.store import EventStore
from core.fleet.events import ProbeEvent
from core.fleet.model import SpeakerProbe
from core.sim.fake_bluez import FakeBluez, SimDevice
from tests.cli.conftest import run_cli
from tests.conftest import FakeService
from tests.metrics.scrape import Running, Samples, addresses, by_address, current_verdicts

pytestmark = pytest.mark.dbus

LEFT, RIGHT, GONE = "00:1A:7D:DA:71:01", "00:1A:7D:DA:71:02", "00:1A:7D:DA:71:03"
#: A neighbour's speaker bluetoothd heard (Paired=false): never in the metrics.
NEIGHBOUR = "30:C0:1D:5E:00:0B"
#: Seconds a change gets to show in a scrape (BlueZ signal -> fleet -> next scrape).
CHANGE_S = 10.0


def fleet(fake: FakeBluez) -> None:
    fake.add_adapter("hci0", "B8:27:EB:00:00:01")
    fake.add_device(SimDevice(LEFT, "Left", codec="AAC"))
    fake.add_device(SimDevice(RIGHT, "Right"))
    fake.add_device(SimDevice(GONE, "Gone"))
    fake.add_device(
        SimDevice(NEIGHBOUR, "Neighbour", paired=False, connected=False, transport_state=None)
    )


def log_with_a_probe(path: Path) -> None:
    """An event log whose last probe heard Left and Right 9 ms apart (watch reads the
    probes of the last days from its log at start)."""
    store = EventStore(path, retention_days=30)
    store.open()
    results = (
        SpeakerProbe(LEFT, "Left", True, latency_ms=180.0, offset_ms=4.5),
        SpeakerProbe(RIGHT, "Right", True, latency_ms=171.0, offset_ms=-4.5),
        SpeakerProbe(GONE, "Gone", False),
    )
    t = time.time() - 60
    store.append([ProbeEvent(t, results, spread_ms=9.0, played_t=t - 1)])
    assert store.close()


async def scrape_until(running: Running, what: str, check: Callable[[Samples], bool]) -> Samples:
    """Scrape (off the loop: the fake BlueZ answers on it) until `check(samples)` holds."""
    deadline = time.monotonic() + CHANGE_S
    while True:
        found = await asyncio.to_thread(running.scrape)
        if check(found):
            return found
        assert running.proc.poll() is None, running.stderr()
        assert time.monotonic() < deadline, f"no scrape showed {what} in {CHANGE_S} s: {found}"
        await asyncio.sleep(0.05)


async def test_a_verdict_change_and_a_vanished_speaker_show_in_the_next_scrape(
    bluez_service: FakeService, tmp_path: Path
) -> None:
    fake = await bluez_service.start(fleet)
    db = tmp_path / "events.sqlite3"
    log_with_a_probe(db)
    running = Running(
        tmp_path,
        *("watch", "--bus", bluez_service.address, "--db", str(db)),
        *("--metrics", "127.0.0.1:0"),
    )
    try:
        await asyncio.to_thread(running.wait_url)
        found = await scrape_until(
            running, "three streaming", lambda f: current_verdicts(f).get(GONE) == "streaming"
        )
        assert current_verdicts(found) == {a: "streaming" for a in (LEFT, RIGHT, GONE)}
        assert NEIGHBOUR not in addresses(found)
        assert found["btmon_fleet_streaming"][0].value == 3
        assert {s.labels["source"]: s.value for s in found["btmon_source_up"]} == {"BlueZ": 1}
        # No HCI source: no media rate series at all.
        assert "btmon_speaker_media_packets_per_second" not in found
        # The logged probe: latency and offset of the speakers it heard, and the spread.
        assert by_address(found, "btmon_speaker_latency_seconds") == {
            LEFT: pytest.approx(0.180),
            RIGHT: pytest.approx(0.171),
        }
        assert by_address(found, "btmon_speaker_offset_seconds") == {
            LEFT: pytest.approx(0.0045),
            RIGHT: pytest.approx(-0.0045),
        }
        assert found["btmon_fleet_spread_seconds"][0].value == pytest.approx(0.009)

        fake.set_transport_state(RIGHT, "idle")
        found = await scrape_until(
            running,
            "Right connected-idle",
            lambda f: current_verdicts(f).get(RIGHT) == "connected-idle",
        )
        assert found["btmon_fleet_streaming"][0].value == 2
        assert found["btmon_fleet_connected"][0].value == 3

        fake.remove_device(GONE)
        found = await scrape_until(running, "Gone gone", lambda f: GONE not in addresses(f))
        assert addresses(found) == {LEFT, RIGHT}
        assert found["btmon_fleet_speakers"][0].value == 2
        assert found["btmon_fleet_streaming"][0].value == 1
    finally:
        code = await asyncio.to_thread(running.stop)
    assert code == 0, running.stderr()


def _held_port() -> tuple[socket.socket, int]:
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    return held, held.getsockname()[1]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("nine", "'nine' is not a port"),
        ("70000", "'70000' is not a port"),
        ("127.0.0.1:-1", "'127.0.0.1:-1' is not a port"),
        ("127.0.0.1:", "is not a port"),
        ("192.0.2.1:9108", "192.0.2.1 is not an address of this host"),
    ],
)
def test_a_bad_value_is_one_line_and_exit_2(value: str, says: str) -> None:
    result = run_cli("watch", "--demo", "--metrics", value, "--duration", "0")
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    (line,) = result.stderr_lines()
    assert line.startswith("btmon-tui: error: --metrics") and says in line, line


def test_a_port_in_use_is_one_line_and_exit_2() -> None:
    held, port = _held_port()
    with held:
        result = run_cli("watch", "--demo", "--metrics", f"127.0.0.1:{port}", "--duration", "0")
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr_lines()
    assert f"127.0.0.1:{port} is in use" in line, line


def test_a_privileged_port_without_rights_is_one_line_and_exit_2() -> None:
    if os.geteuid() == 0:
        pytest.skip("run as root: every port can be bound, a privileged one is not refused")
    result = run_cli("watch", "--demo", "--metrics", "127.0.0.1:80", "--duration", "0")
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr_lines()
    assert "port 80 needs root" in line, line


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--metrics", "9108", "report"], "leave it out of `report`"),
        (["watch", "--replay", "x.sqlite3", "--metrics", "9108"], "leave out --replay"),
        (["--metrics", "9108", "watch", "--metrics", "9109"], "--metrics given twice"),
    ],
)
def test_metrics_where_it_does_not_apply(argv: list[str], says: str) -> None:
    result = run_cli(*argv)
    assert result.returncode == 2
    (line,) = result.stderr_lines()
    assert says in line, line


def test_help_names_the_option() -> None:
    for argv in (["--help"], ["watch", "--help"]):
        result = run_cli(*argv)
        assert result.returncode == 0
        assert "--metrics [ADDR:]PORT" in result.stdout
