"""The config file: what it sets, its defaults, and one precise line for every way it is wrong."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from core.bluez.control import Timeouts
from core.config import Config, ConfigError, default_config_path, load_config, parse_config

FULL = """\
# the evening's rig
[speakers."aa:bb:cc:dd:ee:01"]
alias = "Stage Left"
group = "stage left"
expect_streaming = true

[speakers."AA:BB:CC:DD:EE:02"]
alias = "Stage Right"
group = "stage left"
expect_streaming = false

[speakers."AA:BB:CC:DD:EE:03"]
alias = "Bar"

[groups."stage left"]
expect_streaming = true

[groups.patio]
expect_streaming = true
speakers = ["AA:BB:CC:DD:EE:04"]

[resync]
call_s = 12
disconnect_s = 4.5
transport_s = 6
active_s = 7
attempts = 5
"""


def parse(text: str) -> Config:
    return parse_config(text, Path("/etc/rig.toml"))


def error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("/etc/rig.toml")
    return info.value


def test_full_file_sets_aliases_groups_expectations_and_timeouts() -> None:
    config = parse(FULL)
    assert config.path == Path("/etc/rig.toml")
    assert config.aliases == {
        "AA:BB:CC:DD:EE:01": "Stage Left",  # lower-case address upper-cased, as BlueZ writes it
        "AA:BB:CC:DD:EE:02": "Stage Right",
        "AA:BB:CC:DD:EE:03": "Bar",
    }
    assert config.group_of == {
        "AA:BB:CC:DD:EE:01": "stage left",
        "AA:BB:CC:DD:EE:02": "stage left",
        "AA:BB:CC:DD:EE:04": "patio",
    }
    # 01 says so; 02 opts out of its group's default; 03 has no group; 04 inherits patio's.
    assert config.expected == {"AA:BB:CC:DD:EE:01", "AA:BB:CC:DD:EE:04"}
    assert config.timeouts == Timeouts(
        call_s=12.0, disconnect_s=4.5, transport_s=6.0, active_s=7.0, attempts=5
    )


def test_empty_file_and_partial_resync_keep_defaults() -> None:
    assert parse("") == Config(path=Path("/etc/rig.toml"))
    assert parse("[resync]\nattempts = 1\n").timeouts == Timeouts(attempts=1)
    assert parse('[speakers."AA:BB:CC:DD:EE:01"]\n').aliases == {}


def test_no_default_file_means_defaults(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    assert default_config_path(env) == tmp_path / "btmon-tui" / "config.toml"
    config = load_config(None, env)
    assert config == Config()
    assert config.timeouts == Timeouts()
    assert (config.aliases, config.group_of, config.expected) == ({}, {}, frozenset())


def test_default_path_follows_xdg_and_falls_back_to_home(tmp_path: Path) -> None:
    home = Path.home() / ".config" / "btmon-tui" / "config.toml"
    assert default_config_path({}) == home
    # XDG: a relative XDG_CONFIG_HOME is invalid and must be ignored.
    assert default_config_path({"XDG_CONFIG_HOME": "relative/dir"}) == home
    (tmp_path / "btmon-tui").mkdir()
    (tmp_path / "btmon-tui" / "config.toml").write_text(FULL)
    assert load_config(None, {"XDG_CONFIG_HOME": str(tmp_path)}).aliases["AA:BB:CC:DD:EE:03"] == (
        "Bar"
    )


def test_explicit_path_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope\.toml: no such file"):
        load_config(missing)
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'[speakers."AA:BB:CC:DD:EE:01"]\nalias = "B\xe4r"\n')
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert str(info.value) == f"{bad}:2: not UTF-8 text (TOML files must be UTF-8)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # TOML syntax: tomllib's problem, with its line and column
        (
            '[speakers."AA:BB:CC:DD:EE:01"]\nalias = Stage Left\n',
            "/etc/rig.toml:2:9: invalid TOML: Invalid value",
        ),
        (
            '[speakers."AA:BB:CC:DD:EE:01"]\nalias = "Stage Left\n',
            "/etc/rig.toml:2:20: invalid TOML: Illegal character '\\n'",
        ),
        (
            "[resync]\nattempts = 2\nattempts = 3\n",
            "/etc/rig.toml:3:13: invalid TOML: Cannot overwrite a value",
        ),
        ("[resync]\ncall_s =", "/etc/rig.toml:2:9: invalid TOML: Invalid value (at the end)"),
    ],
)
def test_bad_toml_syntax_names_line_and_column(text: str, expected: str) -> None:
    err = error(text)
    assert str(err) == expected
    assert err.line is not None and err.column is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "volume = 3\n",
            "/etc/rig.toml:1: unknown key volume (known: speakers, groups, resync, hosts)",
        ),
        (
            '\n[speakers."AA:BB:CC:DD:EE:01"]\nalias = "x"\ncolour = "red"\n',
            '/etc/rig.toml:4: unknown key speakers."AA:BB:CC:DD:EE:01".colour '
            "(known: alias, group, expect_streaming)",
        ),
        (
            "[resync]\ncall_s = 5\nretries = 2\n",
            "/etc/rig.toml:3: unknown key resync.retries "
            f"(known: {', '.join(f.name for f in fields(Timeouts))})",
        ),
        (
            "[groups.bar]\nmembers = []\n",
            "/etc/rig.toml:2: unknown key groups.bar.members (known: expect_streaming, speakers)",
        ),
    ],
)
def test_unknown_keys_name_the_key_path_and_line(text: str, expected: str) -> None:
    assert str(error(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[speakers."AA:BB:CC:DD:EE:01"]\nalias = 3\n',
            '/etc/rig.toml:2: speakers."AA:BB:CC:DD:EE:01".alias must be a string, not an integer',
        ),
        (
            '[speakers."AA:BB:CC:DD:EE:01"]\nexpect_streaming = "yes"\n',
            '/etc/rig.toml:2: speakers."AA:BB:CC:DD:EE:01".expect_streaming must be true or '
            "false, not a string",
        ),
        (
            '[speakers."AA:BB:CC:DD:EE:01"]\ngroup = ["a"]\n',
            '/etc/rig.toml:2: speakers."AA:BB:CC:DD:EE:01".group must be a string, not an array',
        ),
        (
            "[resync]\nattempts = true\n",
            "/etc/rig.toml:2: resync.attempts must be a whole number, not a boolean",
        ),
        (
            "[resync]\nattempts = 2.5\n",
            "/etc/rig.toml:2: resync.attempts must be a whole number, not a number",
        ),
        (
            '[resync]\ncall_s = "25"\n',
            "/etc/rig.toml:2: resync.call_s must be a number of seconds, not a string",
        ),
        (
            "[resync]\nactive_s = 0\n",
            "/etc/rig.toml:2: resync.active_s must be more than 0 s, not 0",
        ),
        ("[resync]\nattempts = 0\n", "/etc/rig.toml:2: resync.attempts must be at least 1, not 0"),
        ("[resync]\nretry_s = -1\n", "/etc/rig.toml:2: resync.retry_s must be 0 s or more, not -1"),
        (
            "[resync]\ncall_s = nan\n",
            "/etc/rig.toml:2: resync.call_s must be more than 0 s, not nan",
        ),
        ("speakers = 3\n", "/etc/rig.toml:1: speakers must be a table, not an integer"),
        ("resync = []\n", "/etc/rig.toml:1: resync must be a table, not an array"),
        (
            '[speakers]\n"AA:BB:CC:DD:EE:01" = "Stage Left"\n',
            '/etc/rig.toml:2: speakers."AA:BB:CC:DD:EE:01" must be a table, not a string',
        ),
        (
            '[speakers."AA:BB:CC:DD:EE:01"]\nalias = "  "\n',
            '/etc/rig.toml:2: speakers."AA:BB:CC:DD:EE:01".alias is empty',
        ),
        # an inline table: the line of the nearest key that has one
        (
            '[speakers]\n"AA:BB:CC:DD:EE:01" = { alias = 5 }\n',
            '/etc/rig.toml:2: speakers."AA:BB:CC:DD:EE:01".alias must be a string, not an integer',
        ),
        # dotted keys at the top level
        (
            'speakers."AA:BB:CC:DD:EE:01".alias = false\n',
            '/etc/rig.toml:1: speakers."AA:BB:CC:DD:EE:01".alias must be a string, not a boolean',
        ),
    ],
)
def test_wrong_types_name_the_key_path_and_line(text: str, expected: str) -> None:
    assert str(error(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[speakers."AA:BB:CC:DD:EE"]\nalias = "x"\n',
            "/etc/rig.toml:1: speakers.\"AA:BB:CC:DD:EE\": 'AA:BB:CC:DD:EE' is not a Bluetooth "
            "address (write it as AA:BB:CC:DD:EE:FF)",
        ),
        (
            '[speakers.stage-left]\nalias = "x"\n',
            "/etc/rig.toml:1: speakers.stage-left: 'stage-left' is not a Bluetooth address "
            "(write it as AA:BB:CC:DD:EE:FF)",
        ),
        (
            '[groups.bar]\nspeakers = ["AA-BB-CC-DD-EE-01"]\n',
            "/etc/rig.toml:2: groups.bar.speakers: 'AA-BB-CC-DD-EE-01' is not a Bluetooth "
            "address (write it as AA:BB:CC:DD:EE:FF)",
        ),
        (
            '[speakers."AA:BB:CC:DD:EE:01"]\nalias = "a"\n\n[speakers."aa:bb:cc:dd:ee:01"]\n',
            '/etc/rig.toml:4: speakers."aa:bb:cc:dd:ee:01": speaker AA:BB:CC:DD:EE:01 is '
            "listed twice",
        ),
        (
            '[speakers."AA:BB:CC:DD:EE:01"]\ngroup = "a"\n[groups.b]\n'
            'speakers = ["AA:BB:CC:DD:EE:01"]\n',
            "/etc/rig.toml:4: groups.b.speakers: AA:BB:CC:DD:EE:01 is already in group 'a' "
            '(speakers."AA:BB:CC:DD:EE:01".group)',
        ),
    ],
)
def test_bad_addresses_name_the_key_and_line(text: str, expected: str) -> None:
    assert str(error(text)) == expected


def test_pauses_may_be_zero() -> None:
    assert parse("[resync]\nsettle_s = 0\nretry_s = 0.25\n").timeouts == Timeouts(
        settle_s=0.0, retry_s=0.25
    )


def test_the_documented_example_is_a_valid_config() -> None:
    import core.config

    example = (core.config.__doc__ or "").split("```toml")[1].split("```")[0]
    config = parse(example)
    assert config.aliases == {"AA:BB:CC:DD:EE:FF": "Stage Left"}
    assert config.expected == {"AA:BB:CC:DD:EE:FF"}
