"""`--config` end to end: a bad file stops every command with one line and exit 2 (DESIGN §4.1);
a good one renames the demo's speakers in `watch --json`."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.sim.daemon import child_env
from tests.cli.conftest import Result, run_cli
from tests.conftest import require_binary

BAR = "F4:4E:FD:10:22:04"
STAGE_LEFT = "00:1A:7D:DA:71:01"

GOOD = f"""\
[speakers."{STAGE_LEFT}"]
alias = "Main Left"
group = "stage"

[speakers."{BAR.lower()}"]
alias = "Bar Top"
expect_streaming = true
"""


def env_with_config_home(home: Path) -> dict[str, str]:
    """The child's environment with its own XDG config dir (never the developer's file)."""
    env = child_env()
    env["XDG_CONFIG_HOME"] = str(home)
    return env


def one_error_line(result: Result) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr_lines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    return lines[0]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[resync]\ncall_s = soon\n", ":2:10: invalid TOML: Invalid value"),
        ("[resync]\nretries = 2\n", ":2: unknown key resync.retries (known: "),
        (
            f'[speakers."{BAR}"]\nexpect_streaming = "yes"\n',
            f':2: speakers."{BAR}".expect_streaming must be true or false, not a string',
        ),
        (
            '[speakers."Bar"]\nalias = "Bar"\n',
            ":1: speakers.Bar: 'Bar' is not a Bluetooth address (write it as AA:BB:CC:DD:EE:FF)",
        ),
    ],
)
@pytest.mark.parametrize("command", [["watch", "--json", "--demo"], ["--demo"]])
def test_malformed_config_exits_2_with_one_line(
    tmp_path: Path, text: str, problem: str, command: list[str]
) -> None:
    config = tmp_path / "rig.toml"
    config.write_text(text)
    result = run_cli(*command, "--config", str(config), env=env_with_config_home(tmp_path))
    line = one_error_line(result)
    assert line.startswith(f"btmon-tui: error: {config}{problem}")


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    result = run_cli(
        "watch", "--json", "--config", str(missing), env=env_with_config_home(tmp_path)
    )
    assert one_error_line(result) == (
        f"btmon-tui: error: {missing}: no such file: create it or pass another --config"
    )


def test_malformed_default_config_is_an_error_too(tmp_path: Path) -> None:
    default = tmp_path / "btmon-tui" / "config.toml"
    default.parent.mkdir()
    default.write_text("[speakers]\nfoo = 1\n")
    result = run_cli("watch", "--json", "--demo", env=env_with_config_home(tmp_path))
    assert one_error_line(result) == (
        f"btmon-tui: error: {default}:2: speakers.foo: 'foo' is not a Bluetooth address "
        "(write it as AA:BB:CC:DD:EE:FF)"
    )


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--ble-force"], "btmon-tui: error: --ble-force needs --ble ADAPTER (e.g. --ble hci1)"),
        (
            ["--ble", "usb0"],
            "btmon-tui: error: --ble 'usb0': name a Bluetooth adapter such as hci0 "
            "(see `bluetoothctl list`)",
        ),
    ],
)
def test_bad_ble_options_exit_2(tmp_path: Path, args: list[str], line: str) -> None:
    result = run_cli("watch", "--json", "--demo", *args, env=env_with_config_home(tmp_path))
    assert one_error_line(result) == line


def names_in_watch(result: Result) -> dict[str, str]:
    assert result.returncode == 0, result.stderr
    snapshot = result.json_lines()[0]
    assert snapshot["type"] == "snapshot"
    return {s["address"]: s["name"] for s in snapshot["speakers"]}


def test_aliases_name_the_speakers_in_watch_json(tmp_path: Path) -> None:
    require_binary("dbus-daemon", "dbus-daemon")
    config = tmp_path / "rig.toml"
    config.write_text(GOOD)
    result = run_cli(
        "watch",
        "--json",
        "--demo",
        "--config",
        str(config),
        "--duration",
        "1",
        env=env_with_config_home(tmp_path),
    )
    names = names_in_watch(result)
    assert names[STAGE_LEFT] == "Main Left"
    assert names[BAR] == "Bar Top"  # a lower-case address in the file still matches
    assert names["00:1A:7D:DA:71:02"] == "Stage Right"  # no alias: BlueZ's name


def test_default_config_file_is_read_from_xdg_config_home(tmp_path: Path) -> None:
    require_binary("dbus-daemon", "dbus-daemon")
    default = tmp_path / "btmon-tui" / "config.toml"
    default.parent.mkdir()
    default.write_text(GOOD)
    result = run_cli(
        "watch", "--json", "--demo", "--duration", "1", env=env_with_config_home(tmp_path)
    )
    assert names_in_watch(result)[STAGE_LEFT] == "Main Left"


def test_tui_gets_the_config_and_ble_through_its_monitor_and_controller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`btmon-tui --demo --config F --ble hci1` builds the app with the file's aliases, groups
    and timeouts and a BLE scan of hci1 (the app itself is not run here)."""
    require_binary("dbus-daemon", "dbus-daemon")
    from tui import launch
    from tui.cli import main, source

    config = tmp_path / "rig.toml"
    config.write_text(GOOD + "[resync]\ncall_s = 7\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    built: list[object] = []
    monkeypatch.setattr(launch, "_run_app", lambda app, *_args, **_kw: built.append(app))
    monkeypatch.setattr(source, "has_terminal", lambda: True)  # pytest's stdin is no tty
    code = main.main(
        ["--demo", "--config", str(config), "--ble", "hci1", "--db", str(tmp_path / "e.db")]
    )
    assert code == 0
    (app,) = built
    assert app.controller.timeouts.call_s == 7.0
    monitor = app.feed.monitor
    assert monitor.state.aliases == {STAGE_LEFT: "Main Left", BAR: "Bar Top"}
    assert monitor.state.groups == {STAGE_LEFT: "stage"}
    assert monitor.state.expected == {BAR}
    assert monitor.ble is not None
    assert (monitor.ble.presence.adapter, monitor.ble.force) == ("hci1", False)
