"""Regenerate the README screenshots from the demo fleet: `python scripts/screenshots.py`.

Starts the demo (private dbus-daemon + fake BlueZ), drives the real app headless with a fixed
clock and TZ=UTC, saves one SVG per view under screenshots/, then converts each to PNG with
rsvg-convert (Debian package librsvg2-bin). Exit 0 when every file was written, 2 when a tool
is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Before anything reads the time zone or probes the terminal's colours.
os.environ["TZ"] = "UTC"
os.environ["COLORTERM"] = "truecolor"
os.environ.pop("NO_COLOR", None)
time.tzset()

from core.fleet.model import SourceState  # noqa: E402
from core.hosts import HostSpec, RemoteHost  # noqa: E402
from core.sim.daemon import DemoUnavailable  # noqa: E402
from core.sim.demo import DemoFleet  # noqa: E402
from core.sim.remote import take_down, write_host_script  # noqa: E402
from core.sim.room_sim import RoomBackend  # noqa: E402
from core.sim.scenario import ROOM  # noqa: E402
from core.sim.scene import scene_history, scene_monitor  # noqa: E402
from tui.app import BtmonApp, make_app  # noqa: E402
from tui.widgets.fleet_table import FleetTable  # noqa: E402

#: 2026-11-27 20:00:00 UTC, an evening gig: every time on screen derives from it.
FIXED_NOW: Final = 1795809600.0
#: Demo timeline speed: the first scripted drop (45 s at speed 1) comes after 12.5 hours.
FROZEN_SPEED: Final = 0.001
#: Seconds to wait for the whole fleet to be on screen.
LOAD_TIMEOUT_S: Final = 10.0
#: How the CLI names the demo bus (a socket path would change every run).
DEMO_LABEL: Final = "the demo bus"
#: The scene's simulated HCI capture, written next to the screenshots while they are taken.
CAPTURE: Final = ".demo.btsnoop"


@dataclass(frozen=True, slots=True)
class Shot:
    """One screenshot: file stem, terminal size, keys pressed once the fleet is loaded."""

    name: str
    size: tuple[int, int]
    keys: tuple[str, ...] = ()
    #: Also watch the remote hosts (`--host local --host stage --host bar --host patio`).
    hosts: bool = False


SHOTS: Final = (
    Shot("main", (100, 30)),
    Shot("detail", (100, 30), ("down", "down", "down", "enter")),  # 'Bar', ghost-connected
    Shot("main-80x24", (80, 24)),
    Shot("help", (100, 30), ("question_mark",)),
    Shot("wide", (140, 40), ("down", "down")),  # side panel on 'Sub Bass'
    Shot("drift", (150, 44), ("down", "down")),  # the drift panel under the table
    # Three hosts in one view: this one, stage and bar, and patio unreachable.
    Shot("hosts", (120, 36), ("down",) * 12, hosts=True),
    # Last: it leaves 'Bar' mid-resync in the shared demo (at this speed its Disconnect takes
    # minutes, so the step stays on screen); the shots before see the fleet untouched.
    Shot("action", (100, 30), ("down", "down", "down", "r")),
)


def fleet_on_screen(app: BtmonApp, hosts: int = 0) -> bool:
    """The whole fleet, with the HCI media rates in (the Media column), and every host that
    answers in (`hosts` of them)."""
    snapshot = app.snapshot
    return (
        snapshot is not None
        and snapshot.source.state == SourceState.CONNECTED
        and app.query_one(FleetTable).row_count == len(snapshot.speakers) > 0
        and any(s.media_pps is not None for s in snapshot.speakers)
        and len({s.host for s in snapshot.speakers if s.host}) == hosts
        and all(status.state != SourceState.CONNECTING for _, status in snapshot.hosts)
    )


async def take(
    address: str,
    shot: Shot,
    out: Path,
    records: list[dict[str, object]],
    hosts: Sequence[HostSpec] = (),
) -> Path:
    clock = lambda: FIXED_NOW  # noqa: E731
    remotes = [RemoteHost(host, clock=clock) for host in hosts] if shot.hosts else []
    monitor = scene_monitor(address, clock, out / CAPTURE, DEMO_LABEL, remotes)
    app = make_app(
        address,
        clock=clock,
        history=records,
        monitor=monitor,
        probe_backend=RoomBackend(ROOM, clock),
    )
    async with app.run_test(size=shot.size) as pilot:
        deadline = time.monotonic() + LOAD_TIMEOUT_S
        answering = sum(1 for h in remotes if h.name != DOWN_HOST)
        while not fleet_on_screen(app, answering):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{shot.name}: the demo fleet did not load")
            await pilot.pause(0.05)
        for widget in app.query("*"):  # nothing blinks in a screenshot
            if hasattr(widget, "cursor_blink"):
                widget.cursor_blink = False
        if shot.keys:
            await pilot.press(*shot.keys)
        await pilot.pause(0.3)
        await pilot.wait_for_scheduled_animations()
        path = out / f"{shot.name}.svg"
        app.save_screenshot(filename=path.name, path=str(out))
    return path


#: The host of the `hosts` shot that cannot be reached.
DOWN_HOST: Final = "patio"


def start_hosts(folder: Path, fleets: list[DemoFleet]) -> list[HostSpec]:
    """`stage` and `bar`: a still demo fleet each on its own bus, behind a script that runs
    btmon-tui there (core/sim/remote.py); `patio`: down (its script fails as ssh does)."""
    hosts = []
    for name in ("stage", "bar", DOWN_HOST):
        if name == DOWN_HOST:
            bus = "unix:path=/nonexistent"
        else:
            fleets.append(DemoFleet(speed=FROZEN_SPEED, hci=False))
            bus = fleets[-1].start()
        script = write_host_script(name, bus, folder / name)
        if name == DOWN_HOST:
            take_down(folder / name)
        hosts.append(HostSpec(name, (str(script),)))
    return hosts


def for_rsvg(svg_text: str) -> str:
    """Rich writes spaces as no-break spaces, which librsvg draws narrower at the start of a
    span (columns then drift); plain spaces with xml:space="preserve" keep the grid."""
    return svg_text.replace("&#160;", " ").replace("<svg ", '<svg xml:space="preserve" ', 1)


def to_png(svg: Path, rsvg: str) -> Path:
    png = svg.with_suffix(".png")
    subprocess.run(
        [rsvg, "--format=png", f"--output={png}"],
        input=for_rsvg(svg.read_text(encoding="utf-8")).encode(),
        check=True,
    )
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots", help="output folder")
    args = parser.parse_args(argv)
    rsvg = shutil.which("rsvg-convert")
    if rsvg is None:
        print(
            "screenshots: error: rsvg-convert not found; install librsvg2-bin "
            "(`sudo apt-get install librsvg2-bin`, or `make setup`)",
            file=sys.stderr,
        )
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        fleet = DemoFleet(speed=FROZEN_SPEED)
        address = fleet.start()
    except DemoUnavailable as exc:
        print(f"screenshots: error: {exc}", file=sys.stderr)
        return 2
    extra: list[DemoFleet] = []
    # A fixed folder: the unreachable host's advice names its command on screen.
    temp = Path(tempfile.gettempdir()) / "btmon-hosts"
    shutil.rmtree(temp, ignore_errors=True)
    try:
        records = scene_history(FIXED_NOW, args.out / CAPTURE)
        hosts = start_hosts(temp, extra)
        for shot in SHOTS:
            svg = asyncio.run(take(address, shot, args.out, records, hosts))
            png = to_png(svg, rsvg)
            print(f"{svg.relative_to(ROOT) if svg.is_relative_to(ROOT) else svg}  {png.name}")
    finally:
        fleet.stop()
        for other in extra:
            other.stop()
        shutil.rmtree(temp, ignore_errors=True)
        (args.out / CAPTURE).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
