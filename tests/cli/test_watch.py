"""`btmon-tui watch` end to end, as a subprocess (DESIGN §4.1, §4.2, §7)."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

from core.fleet.events import decode_line
from core.sim.daemon import child_env
from core.sim.scenario import DROP_OUTAGE_S, DROPPER, FIRST_DROP_S, STALLED
from tests.cli.conftest import Result, run_cli
from tests.conftest import DEMO_HCI_VERDICTS, require_binary
from tests.fleet.builders import SPEAKER_KEYS


def assert_json_lines(result: Result) -> list[dict]:
    """Every stdout line is one event object with a string `type` and a numeric `t`."""
    lines = result.stdout.splitlines()
    assert lines, f"no output; stderr: {result.stderr}"
    return [decode_line(line) for line in lines]


@pytest.fixture
def dbus_daemon() -> str:
    return require_binary("dbus-daemon", "dbus-daemon")


def test_watch_json_demo_snapshot(dbus_daemon) -> None:
    result = run_cli("watch", "--json", "--demo", "--duration", "5")
    assert result.returncode == 0, result.stderr
    events = assert_json_lines(result)
    first = events[0]
    assert first["type"] == "snapshot"
    # The first snapshot waits (bounded) for the HCI capture's first say: Foyer, whose
    # transport is active but gets no media, is never counted as streaming (issue 11 §5);
    # the neighbour's unpaired speaker is not part of the fleet (issue 11 §1).
    assert first["fleet"] == {"speakers": 9, "connected": 7, "streaming": 3}
    assert {s["address"]: s["verdict"] for s in first["speakers"]} == DEMO_HCI_VERDICTS
    latest = {}
    for event in events[1:]:
        if event["type"] == "speaker":
            latest[event["address"]] = event
    assert latest.get(STALLED, {}).get("verdict", "stalled") == "stalled"
    foyer = next(s for s in first["speakers"] if s["address"] == STALLED)
    assert foyer["media_pps"] == 0
    dropper = next(s for s in first["speakers"] if s["address"] == DROPPER)
    assert dropper["media_pps"] > 30
    for speaker in first["speakers"]:
        assert set(speaker) == SPEAKER_KEYS
    assert dropper["transport"] == {
        "state": "active",
        "codec": "aptX LL",
        "delay_ms": 38.0,
        "volume": 110,
    }
    assert result.stderr == ""


def test_watch_json_demo_sees_the_dropper_drop_and_return(dbus_daemon) -> None:
    speed = 20.0
    # The first drop comes FIRST_DROP_S of demo time in; it is back DROP_OUTAGE_S later.
    # A generous margin: on a loaded 2-core machine start-up alone can take a second or two.
    duration = (FIRST_DROP_S + DROP_OUTAGE_S) / speed + 5.0
    result = run_cli(
        "watch", "--json", "--demo", "--speed", str(speed), "--duration", f"{duration:.2f}"
    )
    assert result.returncode == 0, result.stderr
    events = assert_json_lines(result)
    assert events[0]["type"] == "snapshot"
    # `t` is when a thing happened; a dropout (and a disconnect held for its reason) is
    # known a moment later, so only the other lines must come in time order.
    ts = [e["t"] for e in events if e["type"] not in ("dropout", "device")]
    assert ts == sorted(ts)
    dropouts = [e for e in events if e["type"] == "dropout" and e["address"] == DROPPER]
    assert [d["kind"] for d in dropouts if d["phase"] == "start"] == ["link"]

    about = [(i, e) for i, e in enumerate(events) if e.get("address") == DROPPER]
    down = [
        i
        for i, e in about
        if e["type"] == "device" and e["connected"] is False and e["reason"] == "timeout"
    ]
    assert len(down) == 1, [e for _, e in about]
    gone = [i for i, e in about if e["type"] == "transport" and e["state"] == "absent"]
    assert gone and gone[0] < down[0]  # the transport goes before the link
    up = [i for i, e in about if e["type"] == "device" and e["connected"] is True]
    assert up and up[0] > down[0]
    back = [(e["state"], e["codec"]) for i, e in about if e["type"] == "transport" and i > up[0]]
    assert back == [("pending", "aptX LL"), ("active", "aptX LL")]
    last = [e for _, e in about if e["type"] == "speaker"][-1]
    assert (last["verdict"], last["connected"]) == ("streaming", True)
    # The outage is short in demo time: the events are about DROP_OUTAGE_S / speed apart.
    outage = events[up[0]]["t"] - events[down[0]]["t"]
    assert 0.5 * DROP_OUTAGE_S / speed < outage < DROP_OUTAGE_S / speed + 1.0


def test_watch_human_output_has_the_fleet_line(dbus_daemon) -> None:
    result = run_cli("watch", "--demo", "--duration", "0.5")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "3 of 7 connected speakers streaming" in lines[0]
    assert any("Sub Bass" in line and "aptX LL" in line for line in lines)
    assert any(line.split()[:1] == ["connected-idle"] for line in lines)
    assert not result.stdout.lstrip().startswith("{")


def test_watch_no_such_bus_exits_2() -> None:
    result = run_cli("watch", "--bus", "unix:path=/nonexistent", "--duration", "1")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr_lines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("btmon-tui: error: cannot reach")
    assert "/nonexistent" in lines[0]
    assert "No such file or directory" in lines[0]


def test_watch_silent_socket_exits_2_instead_of_hanging(tmp_path: Path) -> None:
    """A socket that accepts but never speaks D-Bus: before open_bus had a connect timeout,
    `watch --duration 1` hung here forever."""
    path = tmp_path / "silent.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.listen()
    try:
        result = run_cli("watch", "--bus", f"unix:path={path}", "--duration", "1", timeout=15)
    finally:
        sock.close()
    assert result.returncode == 2
    lines = result.stderr_lines()
    assert len(lines) == 1, result.stderr
    assert "did not answer" in lines[0]


def test_watch_bus_without_bluez_waits_and_exits_0(private_bus) -> None:
    result = run_cli("watch", "--json", "--bus", private_bus, "--duration", "1")
    assert result.returncode == 0, result.stderr
    events = assert_json_lines(result)
    assert events[0]["type"] == "snapshot"
    assert events[0]["fleet"] == {"speakers": 0, "connected": 0, "streaming": 0}
    sources = [e for e in events if e["type"] == "source"]
    assert sources and sources[0]["state"] == "waiting"
    assert "BlueZ (org.bluez) is not running" in sources[0]["detail"]
    assert "BlueZ (org.bluez) is not running" in result.stderr
    assert 0.9 < result.seconds < 8


@pytest.mark.parametrize("argv", [["--help"], ["watch", "--help"]], ids=["main", "watch"])
def test_help_exits_0(argv: list[str]) -> None:
    result = run_cli(*argv)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: btmon-tui")
    assert "--demo" in result.stdout
    # The main help lists the subcommand; watch's help has its own options.
    assert ("--duration" if argv[0] == "watch" else "watch") in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize("argv", [["--demo"], ["watch", "--json", "--demo"]], ids=["tui", "watch"])
def test_demo_without_dbus_daemon_exits_2(tmp_path: Path, argv: list[str]) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = child_env()
    env["PATH"] = str(empty)
    assert shutil.which("dbus-daemon", path=env["PATH"]) is None
    assert os.path.isabs(sys.executable)
    result = run_cli(*argv, env=env, timeout=15)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr_lines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("btmon-tui: error: dbus-daemon not found")
    assert "apt-get install dbus-daemon" in lines[0]  # names the package that fixes it


def test_watch_duration_0_prints_a_complete_first_snapshot(dbus_daemon) -> None:
    """`watch --duration 0` printed an empty snapshot: start-up is bounded on its own and
    --duration counts from the first snapshot."""
    result = run_cli("watch", "--json", "--demo", "--duration", "0")
    assert result.returncode == 0, result.stderr
    first = assert_json_lines(result)[0]
    assert first["type"] == "snapshot"
    assert {s["address"]: s["verdict"] for s in first["speakers"]} == DEMO_HCI_VERDICTS


def test_watch_replays_a_recording(dbus_daemon, tmp_path: Path) -> None:
    """`watch --replay DB` plays a logged session's lines again in time order (issue 12 §5:
    the option is no longer ignored), in JSON or in words with the recorded names."""
    db = tmp_path / "events.sqlite3"
    recorded = run_cli("watch", "--demo", "--duration", "1", "--db", str(db), timeout=40)
    assert recorded.returncode == 0, recorded.stderr
    result = run_cli("watch", "--json", "--replay", str(db), "--speed", "1000", timeout=40)
    assert result.returncode == 0, result.stderr
    lines = assert_json_lines(result)
    snapshot = next(line for line in lines if line["type"] == "snapshot")
    assert len(snapshot["speakers"]) == 9
    times = [line["t"] for line in lines]
    assert times == sorted(times)
    # The demo's seeded past dropouts come before the session's snapshot: named all the same.
    words = run_cli("watch", "--replay", str(db), "--speed", "1000", timeout=40)
    assert words.returncode == 0, words.stderr
    first = words.stdout.splitlines()[0]
    assert "Sub Bass" in first and DROPPER not in first, first
