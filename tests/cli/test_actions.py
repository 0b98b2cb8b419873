"""`btmon-tui resync|connect|disconnect ADDRESS` as a subprocess (DESIGN §4.1, §4.2): exit codes,
progress in words, and the action event as the last JSON line.

The fake BlueZ runs in this process (so a test can inspect its calls or stop it mid-action);
the CLI runs as a child process against the same private bus."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from core.fleet.events import decode_line
from core.sim.fake_bluez import device_path
from tests.bluez.conftest import policy_bus
from tests.bluez.rig import (
    BOUNCY,
    GHOST,
    OFF,
    PLAYER,
    PLAYER2,
    SLOW,
    UNKNOWN,
    Running,
    cli,
    fast_config_file,
    fleet,
    pty_pair,
)
from tests.cli.conftest import Result
from tests.conftest import FakeService, require_binary

pytestmark = pytest.mark.dbus

BAR = "F4:4E:FD:10:22:04"  # the demo's ghost-connected speaker
ACTION_KEYS = {"type", "t", "address", "action", "result", "detail", "message", "duration_s"}


def action_event(result: Result) -> dict[str, Any]:
    """The last stdout line, checked to be a §4.2 action event."""
    lines = result.stdout.splitlines()
    assert lines, f"no stdout; stderr: {result.stderr}"
    event = decode_line(lines[-1])
    assert event["type"] == "action"
    assert set(event) == ACTION_KEYS
    assert event["result"] in ("ok", "error")
    return event


def one_error_line(result: Result) -> str:
    assert result.returncode == 2, result
    assert result.stdout == ""
    lines = result.stderr_lines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("btmon-tui: error: ")
    return lines[0]


@pytest.fixture
def fast_config(tmp_path: Path) -> str:
    return fast_config_file(tmp_path)


@pytest.fixture
async def fake_bus(bluez_service: FakeService) -> FakeService:
    await bluez_service.start(fleet)
    return bluez_service


async def test_resync_the_demos_ghost_connected_bar_to_streaming() -> None:
    require_binary("dbus-daemon", "dbus-daemon")
    result = await cli("resync", BAR.lower(), "--demo", "--speed", "10", "--json")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1  # with --json, stdout holds only the event
    event = action_event(result)
    assert (event["address"], event["action"], event["result"]) == (BAR, "resync", "ok")
    assert event["detail"] is None
    assert event["message"] == "streaming again"
    progress = result.stderr_lines()
    assert progress[0] == f"Bar ({BAR}): disconnecting…"
    assert f"Bar ({BAR}): reconnecting…" in progress
    assert progress[-1] == f"Bar ({BAR}): resync ok — streaming again"


async def test_human_output_goes_to_stdout(fake_bus, fast_config) -> None:
    result = await cli("connect", GHOST, "--bus", fake_bus.address, "--config", fast_config)
    # Ghost is linked but silent: Connect cannot fix that (resync does), and says so.
    assert result.returncode == 1, result
    lines = result.stdout.splitlines()
    assert lines[0] == f"Ghost ({GHOST}): connecting…"
    assert "{" not in result.stdout
    assert result.stderr_lines() == [
        f"btmon-tui: connect Ghost ({GHOST}) failed: connected, but no audio is sent to it "
        "(A2DP stays idle): restart playback or check the audio server's output routing "
        "(transport-idle)"
    ]
    resync = await cli("resync", GHOST, "--bus", fake_bus.address, "--config", fast_config)
    assert resync.returncode == 0, resync
    assert resync.stdout.splitlines()[-1] == f"Ghost ({GHOST}): resync ok — streaming again"
    assert resync.stderr == ""


async def test_resync_that_bluetoothd_finished_first_is_done(fake_bus, fast_config) -> None:
    result = await cli(
        "resync", BOUNCY, "--bus", fake_bus.address, "--config", fast_config, "--json"
    )
    assert result.returncode == 0, result.stderr
    event = action_event(result)
    assert (event["result"], event["detail"]) == ("ok", "org.bluez.Error.AlreadyConnected")
    assert "reconnected by itself" in event["message"]
    calls = [c for c in fake_bus.fake.calls if c[0] == BOUNCY]
    assert calls[-1] == (BOUNCY, "Connect", "org.bluez.Error.AlreadyConnected")


async def test_page_timeout_fails_with_words_detail_and_retries(fake_bus, fast_config) -> None:
    result = await cli("resync", OFF, "--bus", fake_bus.address, "--config", fast_config, "--json")
    assert result.returncode == 1, result
    event = action_event(result)
    assert (event["result"], event["detail"]) == ("error", "br-connection-page-timeout")
    assert f"Off ({OFF}): reconnecting 2/3…" in result.stderr_lines()
    assert f"Off ({OFF}): reconnecting 3/3…" in result.stderr_lines()
    assert "did not answer" in result.stderr_lines()[-1]
    assert "br-connection-page-timeout" in result.stderr_lines()[-1]
    assert "Traceback" not in result.stderr


async def test_access_denied_by_the_bus_policy(tmp_path: Path, fast_config) -> None:
    """A bus that lets us read BlueZ but not call Device1 methods (like bluetooth.conf for a
    user outside group 'bluetooth'): exit 1 with words that say what to do."""
    rules = """
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    <deny send_destination="org.bluez" send_interface="org.bluez.Device1"/>
    """
    with policy_bus(tmp_path, rules) as address:
        service = FakeService(address)
        await service.start(fleet)
        try:
            result = await cli("resync", GHOST, "--bus", address, "--config", fast_config, "--json")
            calls = list(service.fake.calls) if service.fake else []
        finally:
            await service.stop()
    assert result.returncode == 1, result
    event = action_event(result)
    assert event["detail"] == "org.freedesktop.DBus.Error.AccessDenied"
    assert "not allowed by the D-Bus policy" in event["message"]
    assert "group 'bluetooth'" in result.stderr_lines()[-1]
    assert calls == []  # the call never reached BlueZ


async def test_bluetoothd_restart_mid_action(fake_bus, fast_config) -> None:
    run = await Running.start(
        "connect", SLOW, "--bus", fake_bus.address, "--config", fast_config, "--json"
    )
    await run.wait_for_err("connecting…")
    await fake_bus.stop()
    result = await run.finish()
    assert result.returncode == 1, result
    assert action_event(result)["detail"] == "bluez-restarted"
    assert "bluetoothd stopped or restarted" in result.stderr_lines()[-1]
    assert "Traceback" not in result.stderr


async def test_disconnect_without_yes_and_without_a_terminal(fake_bus) -> None:
    result = await cli("disconnect", PLAYER, "--bus", fake_bus.address, "--json")
    line = one_error_line(result)
    assert "no terminal" in line and "--yes" in line
    assert fake_bus.fake.calls == []


async def test_disconnect_yes(fake_bus, fast_config) -> None:
    result = await cli(
        "disconnect", PLAYER, "--yes", "--bus", fake_bus.address, "--config", fast_config, "--json"
    )
    assert result.returncode == 0, result
    event = action_event(result)
    assert (event["action"], event["result"], event["message"]) == (
        "disconnect",
        "ok",
        "disconnected",
    )
    assert fake_bus.fake.calls == [(PLAYER, "Disconnect", "ok")]
    assert (
        fake_bus.fake.tree.get(device_path("hci0", PLAYER), "org.bluez.Device1", "Connected")
        is False
    )


@pytest.mark.parametrize(("answer", "code"), [("y", 0), ("n", 1)])
async def test_disconnect_asks_on_a_terminal(fake_bus, answer: str, code: int) -> None:
    master, slave = pty_pair()
    try:
        run = await Running.start(
            "disconnect", PLAYER, "--bus", fake_bus.address, "--json", stdin=slave
        )
        os.close(slave)
        await run.wait_for_err(f"Disconnect Player ({PLAYER})? [y/N] ")
        os.write(master, f"{answer}\n".encode())
        result = await run.finish()
    finally:
        os.close(master)
    assert result.returncode == code, result
    event = action_event(result)
    if answer == "y":
        assert fake_bus.fake.calls == [(PLAYER, "Disconnect", "ok")]
        assert (event["result"], event["message"]) == ("ok", "disconnected")
    else:
        assert fake_bus.fake.calls == []
        assert (event["result"], event["detail"]) == ("error", "declined")
        assert result.stderr_lines()[-1].endswith(f"Player ({PLAYER}): not disconnected")


@pytest.mark.parametrize(
    "address", ["10:00:00:00:00", "10:00:00:00:00:0G", "100000000001", "10-00-00-00-00-1"]
)
async def test_malformed_address_exits_2(address: str) -> None:
    line = one_error_line(await cli("resync", address, "--bus", "unix:path=/nonexistent"))
    assert f"'{address}' is not a Bluetooth address" in line
    assert "AA:BB:CC:DD:EE:FF" in line


async def test_a_speaker_by_name_or_alias(fake_bus, fast_config) -> None:
    """Issue 12: `resync Bar` works; a name that fits several speakers exits 2 listing them;
    an address written with dashes or in lower case is the same address."""
    result = await cli("resync", "ghost", "--bus", fake_bus.address, "--config", fast_config)
    assert result.returncode == 0, result
    assert result.stdout.splitlines()[-1] == f"Ghost ({GHOST}): resync ok — streaming again"
    line = one_error_line(await cli("connect", "play", "--bus", fake_bus.address))
    assert f"Player ({PLAYER})" in line and f"Player Two ({PLAYER2})" in line
    assert "give the address" in line
    dashed = GHOST.lower().replace(":", "-")
    result = await cli("resync", dashed, "--bus", fake_bus.address, "--config", fast_config)
    assert result.returncode == 0, result
    line = one_error_line(await cli("connect", "Nobody Here", "--bus", fake_bus.address))
    assert "no paired speaker named 'Nobody Here'" in line and "Ghost" in line
    assert fake_bus.fake.calls.count((GHOST, "Disconnect", "ok")) == 2


async def test_unknown_address_exits_2(fake_bus) -> None:
    line = one_error_line(await cli("connect", UNKNOWN.lower(), "--bus", fake_bus.address))
    assert f"no paired speaker {UNKNOWN}" in line
    assert fake_bus.fake.calls == []


async def test_no_bluez_on_the_bus_exits_2(private_bus) -> None:
    result = await cli("resync", GHOST, "--bus", private_bus, "--json")
    line = one_error_line(result)
    assert "BlueZ (org.bluez) is not running" in line
    assert "systemctl start bluetooth" in line
    assert result.seconds < 5


async def test_unreachable_bus_exits_2() -> None:
    line = one_error_line(await cli("connect", GHOST, "--bus", "unix:path=/nonexistent"))
    assert "cannot reach /nonexistent" in line


async def test_overall_timeout(fake_bus, fast_config) -> None:
    result = await cli(
        "connect",
        SLOW,
        "--bus",
        fake_bus.address,
        "--config",
        fast_config,
        "--json",
        "--timeout",
        "0.5",
    )
    assert result.returncode == 1, result
    event = action_event(result)
    assert (event["detail"], event["message"]) == ("timeout", "did not finish within 0.5 s")
    assert result.seconds < 5


@pytest.mark.parametrize("action", ["resync", "connect", "disconnect"])
async def test_action_help(action: str) -> None:
    result = await cli(action, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: btmon-tui {action}")
    assert "SPEAKER" in result.stdout and "AA:BB:CC:DD:EE:FF" in result.stdout
    assert "--json" in result.stdout
    assert ("--yes" in result.stdout) == (action == "disconnect")
