"""The demo's simulated capture follows the fake fleet (core.sim.hci_feed): what `snoop`
reads from it matches what the fleet did, including the speaker whose stream stalls."""

from __future__ import annotations

from copy import deepcopy
from pathlib import Path

from core.hci.a2dp import analyze
from core.sim.hci_feed import static_capture, sync_once
from core.sim.hci_sim import HciSim
from core.sim.scenario import DEFAULT_FLEET, STALLED

T0 = 1_795_800_000.0
PLAYING = {"00:1A:7D:DA:71:01", "00:1A:7D:DA:71:02", "00:1A:7D:DA:71:03"}


def devices(path: Path) -> dict[str, dict]:
    return {d["address"]: d for d in analyze(path)["devices"]}


def test_static_capture_streams_the_playing_speakers_only(tmp_path: Path) -> None:
    capture = tmp_path / "demo.btsnoop"
    static_capture(DEFAULT_FLEET, capture, T0, T0 + 10)
    found = devices(capture)
    for address in PLAYING:
        assert found[address]["streams"] == 1
        assert found[address]["media_packets_tx"] > 300  # 10 s at 43-69 packets/s
    # Foyer: connected, its stream started (AVDTP Start), and not one media packet since.
    assert found[STALLED]["streams"] == 1
    assert found[STALLED]["media_packets_tx"] == 0
    # Idle (Bar), pending (Lobby): linked, no stream. Disconnected ones: not on HCI at all.
    assert found["F4:4E:FD:10:22:04"]["streams"] == 0
    assert "F4:4E:FD:10:22:06" not in found and "5C:F3:70:99:00:08" not in found


def test_the_capture_follows_drops_resyncs_and_stalls(tmp_path: Path) -> None:
    fleet = {d.address: deepcopy(d) for d in DEFAULT_FLEET}
    capture = tmp_path / "demo.btsnoop"
    sim = HciSim(capture, now=T0)
    shown: dict[str, str] = {}
    sync_once(fleet, sim, shown, T0)
    sync_once(fleet, sim, shown, T0 + 5)
    dropper = fleet["00:1A:7D:DA:71:03"]
    dropper.connected, dropper.transport_state = False, None  # link lost
    sync_once(fleet, sim, shown, T0 + 6)
    dropper.connected, dropper.transport_state = True, "active"  # back, playing
    sync_once(fleet, sim, shown, T0 + 8)
    fleet[STALLED].media_stalls = False  # a resync fixed Foyer
    fleet[STALLED].connected = False
    sync_once(fleet, sim, shown, T0 + 9)
    fleet[STALLED].connected = True
    sync_once(fleet, sim, shown, T0 + 10)
    sync_once(fleet, sim, shown, T0 + 12)
    sim.close()
    found = devices(capture)
    assert found["00:1A:7D:DA:71:03"]["streams"] == 2  # one Start per link
    assert found[STALLED]["media_packets_tx"] > 50  # 2 s of SBC after the resync
