"""The demo's simulated HCI source: its file reads back with the offline analysis, and the live
follower gives the scripted rates, the stall included, across rotations."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from core.hci.a2dp import analyze
from core.hci.live import HciLive
from core.sim.hci_sim import MEDIA, HciSim
from tests.hci.test_live import wait_for

T0 = 1_795_800_000.0
LEFT, RIGHT, SUB, BAR = (
    "00:1A:7D:DA:71:01",
    "00:1A:7D:DA:71:02",
    "00:1A:7D:DA:71:03",
    "F4:4E:FD:10:22:04",
)


def fleet(path: Path, **kwargs: int) -> HciSim:
    sim = HciSim(path, now=T0, **kwargs)
    sim.connect(LEFT, "Stage Left", codec="SBC", now=T0)
    sim.connect(RIGHT, "Stage Right", codec="AAC", now=T0)
    sim.connect(SUB, "Sub Bass", codec="aptX LL", index=1, now=T0)
    sim.connect(BAR, "Bar", codec="SBC", index=1, now=T0)
    for address in (LEFT, RIGHT, SUB):
        sim.start(address, now=T0 + 0.5)
    return sim


def test_the_file_reads_back_with_the_scripted_counts(tmp_path: Path) -> None:
    path = tmp_path / "hci.btsnoop"
    sim = fleet(path)
    t = T0
    for step in range(1, 41):  # 10 s in 0.25 s steps
        t = T0 + step * 0.25
        sim.step(t)
        if step == 20:
            sim.stall(SUB)
            sim.suspend(RIGHT)
    sim.disconnect(BAR, now=t)
    sim.step(t)
    result = analyze(path)
    devices = {d["address"]: d for d in result["devices"]}
    counts = sim.media_counts() | {BAR: 0}
    assert {a: d["media_packets_tx"] for a, d in devices.items()} == counts
    assert {a: d["codec"] for a, d in devices.items()} == {
        LEFT: "SBC",
        RIGHT: "AAC",
        SUB: "aptX LL",
        BAR: "SBC",
    }
    assert {a: d["streams"] for a, d in devices.items()} == {LEFT: 1, RIGHT: 1, SUB: 1, BAR: 0}
    assert devices[LEFT]["name"] == "Stage Left"
    # rates: SBC ~68.9/s for 9.5 s; AAC 43.1/s and aptX LL for 4.5 s
    assert counts[LEFT] == pytest.approx(MEDIA["SBC"].pps * 9.5, abs=2)
    assert counts[RIGHT] == pytest.approx(MEDIA["AAC"].pps * 4.5, abs=2)
    assert counts[SUB] == pytest.approx(MEDIA["aptX LL"].pps * 4.5, abs=2)
    assert devices[LEFT]["media_bytes_tx"] == counts[LEFT] * MEDIA["SBC"].size
    assert not result["warnings"]


async def test_the_follower_gives_the_rates_and_the_stall_across_rotations(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hci.btsnoop"
    sim = fleet(path, max_bytes=150_000)  # rotates every ~2.5 s of this fleet
    clock_now = [T0]
    live = HciLive.follow(path, poll_s=0.002, clock=lambda: clock_now[0])
    task = asyncio.create_task(live.run())
    t = T0
    for step in range(1, 41):  # 10 s in 0.25 s steps
        t = T0 + step * 0.25
        sim.step(t)
        if step == 20:
            sim.stall(SUB)  # last media just before T0 + 5
        clock_now[0] = t
        await asyncio.sleep(0.003)
    assert sim.rotations >= 3
    final = t
    await wait_for(
        lambda: live.media.latest is not None and live.media.latest > final - 0.02, "the end"
    )
    rates = live.rates(final)
    assert set(rates) == {LEFT, RIGHT, SUB, BAR}
    assert rates[LEFT].pps == pytest.approx(MEDIA["SBC"].pps, rel=0.05)
    assert rates[RIGHT].pps == pytest.approx(MEDIA["AAC"].pps, rel=0.05)
    assert rates[SUB].pps == 0.0
    stalled_since = rates[SUB].last_media_t
    assert stalled_since is not None and T0 + 4.9 < stalled_since <= T0 + 5.0
    assert rates[BAR].pps == 0.0 and rates[BAR].last_media_t is None
    assert live.status == "HCI: following " + str(path) + ", 4 speakers"
    live.close()
    await asyncio.wait_for(task, 5)


def test_a_step_is_cheap_and_the_file_stays_bounded(tmp_path: Path) -> None:
    """Eight speakers, an hour of demo time in 0.25 s steps would be 14,400 steps: time 600."""
    path = tmp_path / "hci.btsnoop"
    sim = HciSim(path, now=T0, max_bytes=4 * 1024 * 1024)
    for number in range(8):
        address = f"00:1A:7D:DA:72:{number:02X}"
        sim.connect(address, f"Speaker {number}", codec=("SBC", "AAC", "aptX LL")[number % 3])
        sim.start(address)
    started = time.perf_counter()
    for step in range(1, 601):
        sim.step(T0 + step * 0.25)
    per_step_ms = (time.perf_counter() - started) / 600 * 1000
    print(f"hci_sim: {per_step_ms:.2f} ms per 0.25 s step, 8 speakers; {sim.rotations} rotations")
    assert per_step_ms < 25  # a tenth of the step interval, on a loaded 2-core machine
    assert sim.rotations >= 1
    assert path.stat().st_size <= 4 * 1024 * 1024 + 200_000
    assert not path.with_name(path.name + ".new").exists()
