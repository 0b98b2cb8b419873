"""Scenarios for the fake BlueZ: the default demo fleet and synthetic fleets for tests."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Final

from core.fleet.events import DropoutEvent
from core.sim.fake_bluez import PAGE_TIMEOUT, FakeBluez, SimDevice
from core.sim.room_sim import RoomSpeaker

#: The seed case of DESIGN §1: one speaker drops every 4.7 min (a firmware buffer timeout).
DROP_PERIOD_S: Final = 282.0
#: Seconds into the demo before the dropper's first drop (so a newcomer sees one soon).
FIRST_DROP_S: Final = 45.0
#: How long the dropper stays away before bluetoothd brings it back.
DROP_OUTAGE_S: Final = 6.0

#: How each speaker answers resync/connect/disconnect (DESIGN §7), so every path shows:
#: Stage Right connects back by itself after we drop it (our Connect meets InProgress, or
#: AlreadyConnected); Patio's A2DP never comes up; Green Room is out of reach on the first
#: try and fails now and then (seeded); Lobby has BlueZ's dual-role regression (Connect
#: without A2DP, ConnectProfile brings it); Spare's dongle is off (NotReady). Bar, the
#: ghost-connected one, always resyncs cleanly.
DEFAULT_FLEET: Final = (
    SimDevice(
        "00:1A:7D:DA:71:01", "Stage Left", "hci0", codec="SBC", delay_tenth_ms=1720, battery=81
    ),
    SimDevice(
        "00:1A:7D:DA:71:02",
        "Stage Right",
        "hci0",
        codec="AAC",
        delay_tenth_ms=1450,
        returns_after_disconnect_s=1.0,
    ),
    SimDevice(
        "00:1A:7D:DA:71:03", "Sub Bass", "hci0", codec="aptX LL", delay_tenth_ms=380, volume=110
    ),
    SimDevice(
        "F4:4E:FD:10:22:04", "Bar", "hci1", codec="SBC", transport_state="idle", delay_tenth_ms=1800
    ),
    SimDevice(
        "F4:4E:FD:10:22:05", "Patio", "hci1", has_a2dp=False, transport_state=None, battery=9
    ),
    SimDevice(
        "F4:4E:FD:10:22:06",
        "Green Room",
        "hci1",
        codec="AAC",
        connected=False,
        transport_state=None,
        connect_failure=PAGE_TIMEOUT,
        connect_failures=1,
        flaky=0.3,
    ),
    SimDevice(
        "F4:4E:FD:10:22:07",
        "Lobby",
        "hci1",
        codec="SBC",
        transport_state="pending",
        a2dp_on_connect=False,
    ),
    SimDevice(
        "5C:F3:70:99:00:08", "Spare", "hci2", codec="SBC", connected=False, transport_state=None
    ),
    # BlueZ says it streams; over the air it gets nothing (the HCI capture shows it stalled).
    # On a dongle of its own, so that hci1 stays the quiet adapter `--ble` may scan on.
    SimDevice(
        "F4:4E:FD:10:22:0A", "Foyer", "hci3", codec="SBC", delay_tenth_ms=1650, media_stalls=True
    ),
    # A neighbour's speaker that bluetoothd heard during discovery (Paired=false): never
    # part of the fleet or its counts; `a` / --all lists it, marked unpaired.
    SimDevice(
        "30:C0:1D:5E:00:0B",
        "Neighbour JBL",
        "hci0",
        codec="SBC",
        paired=False,
        connected=False,
        transport_state=None,
    ),
    # Not a speaker: hidden unless `a` / --all shows every paired device.
    SimDevice(
        "A4:50:46:00:00:09",
        "Ops Phone",
        "hci0",
        has_a2dp=False,
        transport_state=None,
        kind="phone",
    ),
)
#: The speaker that drops every DROP_PERIOD_S.
DROPPER: Final = "00:1A:7D:DA:71:03"
#: The speaker whose stream stalls (transport active, no media on HCI, silent to the mic).
STALLED: Final = "F4:4E:FD:10:22:0A"

#: The demo room's acoustic truth for probes (DESIGN §7): latency = the codec's Delay plus
#: the speaker's own DSP; the stage pair starts 7 ms apart and drifts apart at 43 ppm
#: (2.6 ms a minute: "loose" after about 3 minutes); the aptX LL sub plays 130 ms early (an
#: audible echo, the mixed-codec problem); Foyer plays nothing although BlueZ says it streams.
ROOM: Final[dict[str, RoomSpeaker]] = {
    "00:1A:7D:DA:71:01": RoomSpeaker(178.0, drift_ppm=18.0, distance_m=6.0),
    "00:1A:7D:DA:71:02": RoomSpeaker(171.0, drift_ppm=-25.0, distance_m=7.5),
    "00:1A:7D:DA:71:03": RoomSpeaker(42.0, drift_ppm=60.0, distance_m=3.0),
    STALLED: RoomSpeaker(175.0, distance_m=12.0, silent=True),
    # Silent today (idle, no A2DP, stuck, away), heard as soon as a resync or connect makes
    # them play: a probe after `r` must hear the speaker it fixed.
    "F4:4E:FD:10:22:04": RoomSpeaker(183.0, drift_ppm=-8.0, distance_m=9.0),
    "F4:4E:FD:10:22:05": RoomSpeaker(168.0, distance_m=14.0),
    "F4:4E:FD:10:22:06": RoomSpeaker(162.0, drift_ppm=12.0, distance_m=10.0),
    "F4:4E:FD:10:22:07": RoomSpeaker(176.0, distance_m=11.0),
    "5C:F3:70:99:00:08": RoomSpeaker(179.0, distance_m=8.0),
}


def build_default(fake: FakeBluez) -> None:
    """Three live adapters and a switched-off dongle; every verdict shows (`stalled` needs
    the simulated HCI capture, which the demo reads)."""
    fake.add_adapter("hci0", "B8:27:EB:00:00:01", alias="stage-pi")
    fake.add_adapter("hci1", "00:E0:4C:00:00:02", alias="usb-dongle")
    fake.add_adapter("hci2", "00:E0:4C:00:00:03", alias="spare-dongle", powered=False)
    fake.add_adapter("hci3", "00:E0:4C:00:00:04", alias="foyer-dongle")
    for dev in DEFAULT_FLEET:
        fake.add_device(SimDevice(**{f: getattr(dev, f) for f in dev.__dataclass_fields__}))


async def run_default(fake: FakeBluez) -> None:
    """The default timeline: the periodic dropper and a slowly draining battery."""
    build_default(fake)
    await asyncio.gather(_periodic_dropper(fake), _battery_drain(fake, "F4:4E:FD:10:22:05"))


async def _periodic_dropper(fake: FakeBluez) -> None:
    # bluetoothd brings it back by itself (its reconnect policy), DROP_OUTAGE_S after each drop.
    fake.devices[DROPPER].auto_reconnect_s = DROP_OUTAGE_S
    await fake.sleep(FIRST_DROP_S)
    while True:
        fake.drop_link(DROPPER)
        await fake.sleep(DROP_PERIOD_S)


async def _battery_drain(fake: FakeBluez, address: str) -> None:
    while True:
        await fake.sleep(600)
        dev = fake.devices[address]
        if dev.battery:
            fake.set_battery(address, dev.battery - 1)


def build_load(fake: FakeBluez, speakers: int, adapters: int = 2) -> list[str]:
    """A synthetic fleet of `speakers` streaming speakers spread over `adapters` adapters."""
    for index in range(adapters):
        fake.add_adapter(f"hci{index}", f"00:00:00:00:00:{index:02X}")
    addresses = []
    for index in range(speakers):
        address = f"10:00:00:00:{index // 256:02X}:{index % 256:02X}"
        fake.add_device(
            SimDevice(
                address,
                f"Speaker {index:03d}",
                f"hci{index % adapters}",
                codec=("SBC", "AAC", "aptX LL")[index % 3],
            )
        )
        addresses.append(address)
    return addresses


async def run_load(fake: FakeBluez, speakers: int, rate_hz: float, seed: int = 1) -> None:
    """Every speaker changes its volume `rate_hz` times a second (a busy fleet)."""
    addresses = build_load(fake, speakers)
    rng = random.Random(seed)
    tick_s = 0.05
    loop = asyncio.get_running_loop()
    start, done = loop.time(), 0
    while True:
        await asyncio.sleep(tick_s)
        due = int((loop.time() - start) * rate_hz * speakers * fake.speed) - done
        for _ in range(due):
            fake.set_volume(rng.choice(addresses), rng.randrange(0, 128))
        done += due


async def run_empty(fake: FakeBluez) -> None:
    """BlueZ with no adapter at all."""
    await asyncio.Event().wait()


async def run_powered_off(fake: FakeBluez) -> None:
    """One adapter, switched off, with two paired speakers."""
    fake.add_adapter("hci0", "B8:27:EB:00:00:01", powered=False)
    fake.add_device(
        SimDevice("00:1A:7D:DA:71:01", "Stage Left", connected=False, transport_state=None)
    )
    fake.add_device(
        SimDevice("00:1A:7D:DA:71:02", "Stage Right", connected=False, transport_state=None)
    )
    await asyncio.Event().wait()


SCENARIOS: Final[dict[str, Callable[[FakeBluez], Awaitable[None]]]] = {
    "default": run_default,
    "empty": run_empty,
    "powered-off": run_powered_off,
}


def seed_history(start: float, speed: float = 1.0, seed: int = 7) -> list[dict[str, object]]:
    """Dropouts 'recorded' before the demo started, so its patterns show at once (DESIGN §7).

    The dropper's past drops lie on the same 282 s rhythm (±1 %) as its first live drop at
    FIRST_DROP_S; one unrelated drop of another speaker shows what a one-off looks like.
    """
    rng = random.Random(seed)
    first_live = start + FIRST_DROP_S / speed
    events: list[DropoutEvent] = []
    t = first_live
    outage = DROP_OUTAGE_S / speed
    for _ in range(6):
        # Each interval is 282 s ± 1 %, measured from the previous drop (firmware timer).
        t -= DROP_PERIOD_S / speed * (1 + rng.uniform(-0.01, 0.01))
        events.append(DropoutEvent(t, DROPPER, "link", start_t=t))
        events.append(
            DropoutEvent(t + outage, DROPPER, "link", outage, "end", t + outage, start_t=t)
        )
    one_off = start - 1400 / speed
    events.append(DropoutEvent(one_off, "00:1A:7D:DA:71:02", "transport", start_t=one_off))
    records = [e.to_json() for e in events]
    return sorted(records, key=lambda r: float(r["t"]))
