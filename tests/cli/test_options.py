"""Issue 12 §5 and §11: options count before or after the subcommand; contradictions and
impossible values exit 2 with one line naming the problem and the fix."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

import pytest

from tests.cli.conftest import run_cli
from tests.conftest import DEMO_HCI_VERDICTS, require_binary
from tui.cli import options


def one_error_line(*argv: str) -> str:
    result = run_cli(*argv, timeout=30)
    assert result.returncode == 2, result
    assert result.stdout == "", result
    lines = result.stderr_lines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("btmon-tui"), lines
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "argv",
    [
        ["--demo", "watch", "--json", "--duration", "0"],
        ["watch", "--json", "--demo", "--duration", "0"],
        ["--demo", "--all", "watch", "--json", "--duration", "0s"],
    ],
    ids=["before", "after", "mixed"],
)
def test_global_options_count_before_or_after_the_subcommand(argv: list[str]) -> None:
    require_binary("dbus-daemon", "dbus")
    result = run_cli(*argv, timeout=40)
    assert result.returncode == 0, result.stderr
    first = result.json_lines()[0]
    verdicts = {s["address"]: s["verdict"] for s in first["speakers"]}
    if "--all" in argv:  # every paired device, and the neighbour's unpaired speaker
        assert set(DEMO_HCI_VERDICTS) < set(verdicts)
        unpaired = [s for s in first["speakers"] if not s["paired"]]
        assert [s["name"] for s in unpaired] == ["Neighbour JBL"]
    else:
        assert verdicts == DEMO_HCI_VERDICTS
    assert first["fleet"]["speakers"] == 9


def test_db_before_the_subcommand_is_the_log_watch_writes(tmp_path: Path) -> None:
    require_binary("dbus-daemon", "dbus")
    db = tmp_path / "events.sqlite3"
    result = run_cli("--db", str(db), "watch", "--demo", "--duration", "0", timeout=40)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(db) as conn:
        (count,) = conn.execute("SELECT count(*) FROM events").fetchone()
    assert count > 0


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--demo", "--bus", "session", "watch"], "--demo runs its own private bus"),
        (["watch", "--demo", "--bus", "garbage"], "--demo runs its own private bus"),
        (["--bus", "garbage", "watch"], "is not a bus"),
        (["--bus", "", "watch"], "--bus is empty"),
        (["--replay", "x.sqlite3", "--demo"], "--replay plays a recording"),
        (["watch", "--replay", "x.sqlite3", "--hci"], "--replay plays a recording"),
        (["resync", "Bar", "--replay", "x.sqlite3"], "acts on live speakers"),
        (["--bus", "system", "watch", "--bus", "session"], "given twice"),
        (["--speed", "3", "watch"], "--speed goes with --demo or --replay"),
        (["watch", "--demo", "--speed", "1e6"], "at most 1000"),
        (["watch", "--demo", "--speed", "nan"], "at most 1000"),
        (["watch", "--demo", "--speed", "0"], "more than 0"),
        (["--demo", "report", "--db", "x"], "does not apply to `report`"),
        (["--retention", "-1", "watch"], "--retention"),
        (["watch", "--duration", "nan"], "--duration"),
        (["watch", "--duration", "-3"], "--duration"),
        (["watch", "--duration", "soon"], "--duration"),
        (["--probe-every", "5s"], "at least 10 s"),
        (["report", "--db", "x", "--now", "-5"], "--now"),
        (["report", "--db", "x", "--since", "yesterday-ish"], "--since"),
        (["report", "--db", "x", "--since", "200", "--until", "100"], "--until must be later"),
        (["report"], "report needs --db"),
        (["analyze", "a.wav", "--reference", "r", "--channel", "0"], "counted from 1"),
        (["resync", "Bar", "--timeout", "0"], "above 0"),
        (["resync", "Bar", "--timeout", "-1"], "above 0"),
        (["resync", "AA:BB:CC:DD:EE"], "is not a Bluetooth address"),
        (["nosuchcommand"], "invalid choice"),
    ],
)
def test_contradictions_and_impossible_values_exit_2_with_one_line(
    argv: list[str], words: str
) -> None:
    line = one_error_line(*argv)
    assert words in line, line


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("btmon-tui ") and result.stdout.split()[1][0].isdigit()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10", 10.0), ("10s", 10.0), ("1.5m", 90.0), ("2h", 7200.0), (" 0 ", 0.0)],
)
def test_durations_take_units(text: str, seconds: float) -> None:
    assert options.duration_arg(text) == seconds


@pytest.mark.parametrize("text", ["nan", "inf", "-1", "1x", "", "m"])
def test_durations_refuse_nonsense(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        options.duration_arg(text)


def test_dates_are_taken_as_local_time() -> None:
    import datetime

    expected = datetime.datetime(2026, 12, 6, 20, 15).timestamp()
    assert options.unix_time("2026-12-06 20:15") == expected
    assert options.unix_time("1700000000") == 1_700_000_000.0
