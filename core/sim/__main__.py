"""`python -m core.sim --address ADDR [--scenario NAME] [--speed X]`: serve the fake BlueZ.

Prints `ready` on stdout once org.bluez is owned and the fleet is built.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from dbus_next.aio import MessageBus
from dbus_next.constants import RequestNameReply

from core.sim.fake_bluez import FakeBluez
from core.sim.objtree import ObjectTree
from core.sim.scenario import SCENARIOS, run_load


async def serve(
    address: str, scenario: str, speed: float, speakers: int, rate: float, hci_file: str | None
) -> None:
    bus = await MessageBus(bus_address=address).connect()
    fake = FakeBluez(ObjectTree(bus), speed=speed)
    reply = await bus.request_name("org.bluez")
    if reply != RequestNameReply.PRIMARY_OWNER:
        print(f"error: org.bluez is already owned on {address}", file=sys.stderr)
        raise SystemExit(2)
    if scenario == "load":
        task = asyncio.create_task(run_load(fake, speakers, rate))
    else:
        task = asyncio.ensure_future(SCENARIOS[scenario](fake))
    await asyncio.sleep(0)  # let the scenario build its objects before saying ready
    capture = None
    if hci_file is not None:
        from pathlib import Path

        from core.sim.hci_feed import feed_capture

        capture = asyncio.create_task(feed_capture(fake, Path(hci_file)))
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await asyncio.wait(
        [task, asyncio.create_task(stop.wait()), asyncio.create_task(bus.wait_for_disconnect())],
        return_when=asyncio.FIRST_COMPLETED,
    )
    task.cancel()
    if capture is not None:
        capture.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await capture
    with contextlib.suppress(Exception):
        bus.disconnect()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m core.sim", description=__doc__)
    parser.add_argument("--address", required=True, help="D-Bus address to serve on")
    parser.add_argument("--scenario", default="default", choices=[*SCENARIOS, "load"])
    parser.add_argument("--speed", type=float, default=1.0, help="run the timeline X times faster")
    parser.add_argument("--speakers", type=int, default=100, help="load scenario: fleet size")
    parser.add_argument(
        "--rate", type=float, default=10.0, help="load scenario: changes per second per speaker"
    )
    parser.add_argument(
        "--hci-file", help="also write a simulated HCI capture (btsnoop, monitor) to this path"
    )
    args = parser.parse_args()
    asyncio.run(
        serve(args.address, args.scenario, args.speed, args.speakers, args.rate, args.hci_file)
    )


if __name__ == "__main__":
    main()
