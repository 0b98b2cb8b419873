"""`watch --ble` end to end on the demo fleet (a subprocess with its own private bus): an
adapter that streams is refused with one line and exit 2; forced, or on a quiet adapter, it
runs; a scan bleak cannot start is a one-line warning and monitoring goes on."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.sim.daemon import child_env
from tests.cli.conftest import Result, run_cli
from tests.conftest import DEMO_VERDICTS, require_binary

pytestmark = pytest.mark.dbus


@pytest.fixture(autouse=True)
def _dbus_daemon() -> None:
    require_binary("dbus-daemon", "dbus-daemon")


def watch(tmp_path: Path, *args: str) -> Result:
    env = child_env()
    env["XDG_CONFIG_HOME"] = str(tmp_path)  # never the developer's config file
    return run_cli("watch", "--json", "--demo", "--duration", "1", *args, env=env)


def test_streaming_adapter_is_refused_with_one_line(tmp_path: Path) -> None:
    result = watch(tmp_path, "--ble", "hci0")
    assert result.returncode == 2, result.stderr
    assert result.stderr_lines() == [
        "btmon-tui: error: not scanning for BLE on hci0: it streams A2DP to Stage Left, "
        "Stage Right, Sub Bass, and scanning there makes the audio stutter; use another "
        "adapter with --ble, or add --ble-force"
    ]
    assert result.stdout == ""


def test_forced_and_quiet_adapters_scan(tmp_path: Path) -> None:
    for args in (["--ble", "hci0", "--ble-force"], ["--ble", "/org/bluez/hci1"]):
        result = watch(tmp_path, *args)
        assert result.returncode == 0, result.stderr
        assert result.stderr_lines() == []
        assert result.json_lines()[0]["type"] == "snapshot"


def test_adapter_bleak_cannot_use_is_a_warning(tmp_path: Path) -> None:
    result = watch(tmp_path, "--ble", "hci2")
    assert result.returncode == 0, result.stderr
    assert result.stderr_lines() == [
        "btmon-tui: warning: BLE off on hci2: the adapter is powered off (bluetoothctl power on)"
    ]
    assert len(result.json_lines()[0]["speakers"]) == len(DEMO_VERDICTS)  # monitoring went on
    missing = watch(tmp_path, "--ble", "hci9")
    assert missing.returncode == 0, missing.stderr
    assert missing.stderr_lines() == [
        "btmon-tui: warning: BLE off on hci9: BlueZ has no adapter hci9 (see `bluetoothctl list`)"
    ]
