"""Keeps the demo's simulated HCI capture (core.sim.hci_sim) in step with the fake BlueZ:
every STEP_S it compares each device's link and transport with what the capture shows and
writes the difference (Connection Complete, AVDTP Start/Suspend, media, Disconnection)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Final

from core.sim.fake_bluez import FakeBluez, SimDevice
from core.sim.hci_sim import HciSim

#: How often the capture catches up (s): well under the 1 s after which silence is `stalled`.
STEP_S: Final = 0.2


def sync_once(
    devices: Mapping[str, SimDevice], sim: HciSim, shown: dict[str, str], now: float
) -> None:
    """Bring the capture in line with the fleet; `shown`: address -> state last written."""
    for address, dev in devices.items():
        if dev.kind != "speaker" or not dev.has_a2dp:
            continue
        if not dev.connected:
            state = "gone"
        elif dev.transport_state == "active":
            state = "stalled" if dev.media_stalls else "streaming"
        else:
            state = "idle"
        before = shown.get(address, "gone")
        if state == before:
            continue
        if state == "gone":
            sim.disconnect(address, now=now)
        else:
            if before == "gone":
                sim.connect(address, dev.name, codec=dev.codec, now=now)
            if state == "idle":
                sim.suspend(address, now=now)
            else:
                sim.start(address, now=now)
                if state == "stalled":
                    sim.stall(address, now=now)
        shown[address] = state
    sim.step(now)


async def feed_capture(fake: FakeBluez, path: Path, clock: Callable[[], float] = time.time) -> None:
    """Write the capture at `path` until cancelled."""
    sim = HciSim(path, now=clock())
    shown: dict[str, str] = {}
    try:
        while True:
            sync_once(fake.devices, sim, shown, clock())
            await asyncio.sleep(STEP_S)
    finally:
        sim.close()


def static_capture(devices: Iterable[SimDevice], path: Path, start: float, end: float) -> None:
    """A finished capture of a fleet that did not change from `start` to `end` (screenshots:
    the same packets every time)."""
    sim = HciSim(path, now=start)
    try:
        sync_once({d.address: d for d in devices}, sim, {}, start)
        t = start
        while t < end:  # in demo-sized steps: the simulator skips media owed for long gaps
            t = min(end, t + STEP_S)
            sim.step(t)
    finally:
        sim.close()
