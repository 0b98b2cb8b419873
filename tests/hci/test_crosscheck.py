"""`snoop` against the references: tshark's AVDTP dissector and `btmon -a`, on the same files.

Every scripted capture of tests/hci/captures.py (seed case in the three datalinks, ACL
fragments, interleaved handles, Start/Suspend cycles, vendor codecs, a source, handle reuse, two
adapters, fragmented AVDTP signals, LE links, Abort, a small fleet) is read by all three.

Compared with tshark (4.0, `-Y "btavdtp || ..." -T fields`), per remote device:
  media frames tx and rx (AVDTP frames without a signalling header, after its L2CAP
  reassembly), streams (Start accepts, matched to their command by transaction label), codec
  (of the accepted Set Configuration / Reconfigure, tshark's ids named by our decode_codec), and
  the (handle, reason) of every Disconnection Complete; tshark must also find no malformed
  frame (the scripts build valid packets).
Compared with `btmon -a` (BlueZ 5.66), per BR/EDR connection address: media frames tx and rx
  (frames counted on the CIDs of PSM 25 channels after the first one, which is signalling).
Not compared, and why: btmon -a prints no AVDTP signals, codec or disconnection reason; its
  per-connection "TX/RX packets" count ACL fragments, and "TX completed packets" need Number of
  Completed Packets events, neither is a quantity snoop reports. btmon -a does not follow L2CAP
  Disconnection (a frame sent to a CID after its channel closed still counts) and does not know
  LE connections (they show as "BR-ACL ... Connection setup missing"); tshark keeps a handle's
  L2CAP channels after the link is gone. So scenarios where that matters assert the reference
  counts at least as much (btmon) or only on the devices snoop reports (both); extra
  addresses the references list must have no media and no streams.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.hci.a2dp import analyze
from tests.conftest import IN_CI, require_binary
from tests.hci.captures import (
    LE_PEER,
    LE_PEER_2,
    SCENARIOS,
    Scenario,
    btmon_connections,
    btmon_media,
    btmon_path,
    tshark_view,
)

IDS = [scenario.name for scenario in SCENARIOS]


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("crosscheck")
    return {s.name: s.build().save(folder / f"{s.name}.btsnoop") for s in SCENARIOS}


def require_btmon() -> str:
    """btmon on PATH or in .tools/ (`make btmon`); skip locally, fail under CI=true."""
    found = btmon_path()
    if found is None:
        message = "btmon not found (Debian package bluez; `make btmon` unpacks it to .tools/)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


def ours(path: Path) -> dict:
    result = analyze(path)
    assert result["warnings"] == []
    return result


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_tshark_agrees(scenario: Scenario, captures: dict[str, Path]) -> None:
    tshark = require_binary("tshark", "tshark")
    path = captures[scenario.name]
    result = ours(path)
    view = tshark_view(tshark, path)
    assert view.malformed == 0
    mine = {d["address"]: d for d in result["devices"]}
    for address, device in mine.items():
        reference = view.devices.get(address)
        got = (device["media_packets_tx"], device["media_packets_rx"], device["streams"])
        if reference is None:  # tshark saw no AVDTP frame of this device at all
            assert got == (0, 0, 0), address
            continue
        expected = (reference.media_packets_tx, reference.media_packets_rx, reference.streams)
        assert got == expected, address
        assert device["codec"] == reference.codec, address
    for address in set(view.devices) - set(mine):
        extra = view.devices[address]
        assert (extra.media_packets_tx, extra.media_packets_rx, extra.streams) == (0, 0, 0)
    disconnections = [(d["handle"], d["reason"]) for d in result["disconnections"]]
    assert disconnections == view.disconnections


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_btmon_agrees(scenario: Scenario, captures: dict[str, Path]) -> None:
    btmon = require_btmon()
    path = captures[scenario.name]
    result = ours(path)
    connections = btmon_connections(btmon, path)
    media = btmon_media(connections)
    mine = {d["address"]: d for d in result["devices"]}
    assert set(mine) <= set(media)
    for address, device in mine.items():
        got = (device["media_packets_tx"], device["media_packets_rx"])
        expected = (media[address]["tx"], media[address]["rx"])
        if scenario.btmon_exact:
            assert got == expected, address
        else:  # btmon also counts the frames sent after the channel's disconnection
            assert got[0] <= expected[0] and got[1] <= expected[1], address
    if not scenario.btmon_exact:
        assert sum(d["media_packets_tx"] for d in mine.values()) < sum(media[a]["tx"] for a in mine)
    for address in set(media) - set(mine):
        assert media[address]["tx"] == media[address]["rx"] == 0, address


def test_the_seed_case_is_2843_and_17_for_all_three(captures: dict[str, Path]) -> None:
    """The issue's own numbers, read by each tool (skips the tools that are missing)."""
    expected = {"00:1A:7D:DA:71:01": 2843, "00:1A:7D:DA:71:02": 17}
    for name in ("seed-monitor", "seed-h4", "seed-h1", "seed-fragmented-acl"):
        path = captures[name]
        assert {d["address"]: d["media_packets_tx"] for d in ours(path)["devices"]} == expected
        if shutil.which("tshark"):
            view = tshark_view("tshark", path)
            assert {a: r.media_packets_tx for a, r in view.devices.items()} == expected
        btmon = btmon_path()
        if btmon:
            media = btmon_media(btmon_connections(btmon, path))
            assert {a: c["tx"] for a, c in media.items()} == expected


def test_le_links_are_not_devices_and_do_not_disturb_br_edr(captures: dict[str, Path]) -> None:
    result = ours(captures["le-links"])
    (device,) = result["devices"]
    assert (device["media_packets_tx"], device["media_packets_rx"]) == (40, 0)
    assert [(d["address"], d["link"], d["reason"]) for d in result["disconnections"]] == [
        ("00:1A:7D:DA:71:01", "BR/EDR", 0x13),
        (LE_PEER_2, "LE", 0x08),
        (LE_PEER, "LE", 0x16),
    ]
    assert result["disconnections"][1]["reason_text"] == "Connection Timeout"
