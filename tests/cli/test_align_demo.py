"""`btmon-tui align --demo` (issue 14 §4): the demo has no audio server, so its simulated room
is the fleet output and the microphone; the command aligns the demo's early sub, leaves out
the stalled Foyer (not heard) and says so, and --dry-run, which needs an audio server, is
refused with one line."""

from __future__ import annotations

import json

from core.sim.scenario import STALLED
from tests.cli.conftest import run_cli
from tests.conftest import require_binary

SUB = "00:1A:7D:DA:71:03"


def test_align_demo_aligns_the_room_and_leaves_out_who_is_not_heard() -> None:
    require_binary("dbus-daemon", "dbus-daemon")
    result = run_cli("align", "--demo", "--json", timeout=60.0)
    assert result.returncode == 0, result.stderr
    event = json.loads(result.stdout.splitlines()[-1])
    assert event["type"] == "align" and event["result"] == "aligned"
    assert event["sink"] == "btmon_fleet"
    assert event["spread_before_ms"] > 100.0  # the aptX LL sub plays ~140 ms early
    assert event["spread_after_ms"] <= 5.0
    by_address = {r["address"]: r for r in event["results"]}
    assert STALLED not in by_address
    assert by_address[SUB]["delay_ms"] > 100  # the early one waits for the others
    assert min(r["delay_ms"] for r in event["results"]) == 0
    assert "left out: Foyer" in result.stderr


def test_align_demo_dry_run_is_refused_in_one_line() -> None:
    require_binary("dbus-daemon", "dbus-daemon")
    result = run_cli("align", "--demo", "--dry-run", timeout=60.0)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("btmon-tui")]
    assert len(errors) == 1 and "audio server" in errors[0]
