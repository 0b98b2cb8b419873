"""The config file in the pure core: aliases name speakers in every event, groups ride along,
and an expected speaker that is silent while others stream is flagged in the snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import parse_config
from core.fleet.events import SpeakerEvent
from core.fleet.model import Verdict
from core.fleet.state import FleetState
from tests.fleet.builders import CONNECTED, address, make_facts, transport

NOW = 1_000.0

CONFIG = parse_config(
    f"""
[speakers."{address(1)}"]
alias = "Stage Left"
group = "stage"
expect_streaming = true

[speakers."{address(2)}"]
expect_streaming = true

[groups.stage]
speakers = ["{address(3)}"]
""",
    Path("rig.toml"),
)


def fleet() -> FleetState:
    state = FleetState()
    state.configure(aliases=CONFIG.aliases, groups=CONFIG.group_of, expected=CONFIG.expected)
    state.set_source(CONNECTED, NOW)
    return state


def test_alias_replaces_the_bluez_name_in_events_and_snapshot() -> None:
    state = fleet()
    events = state.update({"p1": make_facts(1, name="JBL Flip 5"), "p2": make_facts(2)}, NOW)
    named = {e.speaker.address: e.speaker.name for e in events if isinstance(e, SpeakerEvent)}
    assert named == {address(1): "Stage Left", address(2): "Speaker 2"}
    assert [s.name for s in state.snapshot(NOW).speakers] == ["Speaker 2", "Stage Left"]
    assert state.snapshot_event(NOW).to_json()["speakers"][1]["name"] == "Stage Left"


def test_groups_from_either_side_reach_the_speaker() -> None:
    state = fleet()
    state.update({f"p{n}": make_facts(n) for n in (1, 2, 3)}, NOW)
    assert {s.address: s.group for s in state.snapshot(NOW).speakers} == {
        address(1): "stage",
        address(2): None,
        address(3): "stage",
    }


@pytest.mark.parametrize(
    ("silent", "verdict"),
    [
        ({"transport": transport(state="idle", n=2)}, Verdict.CONNECTED_IDLE),
        ({"transport": None}, Verdict.NO_A2DP),
        ({"connected": False, "transport": None}, Verdict.DISCONNECTED),
    ],
)
def test_expected_speaker_silent_while_others_stream_is_flagged(
    silent: dict[str, object], verdict: Verdict
) -> None:
    state = fleet()
    state.update({"p1": make_facts(1), "p2": make_facts(2, **silent)}, NOW)
    snap = state.snapshot(NOW)
    assert {s.address: s.verdict for s in snap.speakers}[address(2)] == verdict  # verdict stays
    assert snap.expected_silent == (address(2),)


def test_not_flagged_when_nobody_streams_or_when_not_expected() -> None:
    state = fleet()
    idle = transport(state="idle")
    state.update({"p1": make_facts(1, transport=idle), "p2": make_facts(2, transport=None)}, NOW)
    assert state.snapshot(NOW).expected_silent == ()  # a pause in the show, not a fault
    # Speaker 4 is not expected: silent while 1 streams is only the usual illusion.
    state.update({"p1": make_facts(1), "p4": make_facts(4, transport=idle)}, NOW)
    assert state.snapshot(NOW).expected_silent == (address(2),)


def test_flag_clears_when_the_speaker_streams_again() -> None:
    state = fleet()
    state.update({"p1": make_facts(1), "p2": make_facts(2, transport=None)}, NOW)
    version = state.version
    assert state.snapshot(NOW).expected_silent == (address(2),)
    state.update({"p2": make_facts(2)}, NOW + 1)
    assert state.version > version
    assert state.snapshot(NOW + 1).expected_silent == ()


def test_without_config_nothing_changes() -> None:
    state = FleetState()
    state.set_source(CONNECTED, NOW)
    state.update({"p1": make_facts(1, name="JBL"), "p2": make_facts(2, transport=None)}, NOW)
    snap = state.snapshot(NOW)
    assert [(s.name, s.group) for s in snap.speakers] == [("JBL", None), ("Speaker 2", None)]
    assert snap.expected_silent == ()
