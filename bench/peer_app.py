"""The same-run peer: a bare Textual app with one DataTable shaped like btmon-tui's fleet table.

The peer has a DataTable of the same size, columns and rows as the fleet table, and applies the
same kind of cell updates at the app's render interval (--interval; the benchmarks pass
tui.app.RENDER_INTERVAL_S) with DataTable.update_cell, and nothing else: no D-Bus, no domain
model, no other widget. Our numbers over the peer's = our overhead over Textual.

The fleet table changes as the project moves, so the benchmarks read its current size and
columns from the app (bench.tui_load.probe_layout) and pass them with --table-size/--columns
(the defaults are what it was at 120x40 when this was written: 76x30, 7 columns). A Volume
change updates the Vol cell and the Changed cell (when its second flips) where those columns
are shown, only cells whose text changed, as FleetTable.show does; a marker updates the Name.

    python -m bench.peer_app --mode live --speakers 100 --rate 10 --tags FILE   (load)
    python -m bench.peer_app --mode live --speakers 8 --rate 0                  (idle)
    python -m bench.peer_app --mode frames --steps N --out FILE                 (hour)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from bench.common import rss_mb

#: The fleet table's columns at 120x40 when this was written; the benchmarks pass the current
#: ones (--columns, read from the running app by bench.tui_load.probe_layout).
COLUMNS = (
    ("verdict", "Verdict"),
    ("name", "Name"),
    ("adapter", "Adapter"),
    ("codec", "Codec"),
    ("delay", "Delay"),
    ("battery", "Batt"),
    ("changed", "Changed"),
)
TABLE_SIZE = (76, 30)
MARKER_SPEAKERS = (0, 2, 4, 6, 8, 10, 12, 14)  # on hci0: the first rows of the table
MARKER_GAP_S = (0.10, 0.175)
TAG_MOD = 10**10
SAMPLE_S = 10.0


def make_tag(now: float | None = None) -> str:
    """time.monotonic() (CLOCK_MONOTONIC, shared by all processes) in 0.1 ms, 10 digits."""
    ticks = int((time.monotonic() if now is None else now) * 10_000)
    return f"{ticks % TAG_MOD:010d}"


def speaker_name(index: int, tag: str | None = None) -> str:
    return f"Speaker {index:03d}" + (f" t{tag}" if tag is not None else "")


def clock_time(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def initial_cell(key: str, index: int, changed: str) -> Text | str:
    """What the fleet table shows in column `key` for load speaker `index` at start."""
    values: dict[str, Text | str] = {
        "verdict": Text("● streaming", style="bold green"),
        "name": speaker_name(index, "0" * 10 if index in MARKER_SPEAKERS else None),
        "address": f"10:00:00:00:{index // 256:02X}:{index % 256:02X}",
        "adapter": f"hci{index % 2}",
        "codec": ("SBC", "AAC", "aptX LL")[index % 3],
        "delay": "150 ms",
        "volume": "100",
        "changed": changed,
    }
    return values.get(key, "-")


class PeerApp(App[None]):
    BINDINGS = [("q", "quit", "Quit")]

    def __init__(
        self,
        speakers: int,
        *,
        rate: float = 0.0,
        tags_path: str | None = None,
        steps: int = 0,
        out: str | None = None,
        interval: float = 0.25,
        columns: tuple[tuple[str, str], ...] = COLUMNS,
        table_size: tuple[int, int] = TABLE_SIZE,
    ) -> None:
        self.CSS = f"DataTable {{ width: {table_size[0]}; height: {table_size[1]}; }}"
        super().__init__()
        self.columns = columns
        self.keys = {key for key, _ in columns}
        self.speakers = speakers
        self.rate = rate
        self.tags_path = tags_path
        self.steps = steps
        self.out = out
        self.interval = interval
        self.changed_t = dict.fromkeys(range(speakers), time.time())
        self.volume = dict.fromkeys(range(speakers), 100)
        self.shown: dict[tuple[int, str], str] = {}
        self.dirty: set[int] = set()
        self.names: dict[int, str] = {}
        self.frame = asyncio.Event()

    def compose(self) -> ComposeResult:
        yield DataTable(cursor_type="row")

    def post_display_hook(self) -> None:
        self.frame.set()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label in self.columns:
            table.add_column(label, key=key)
        # Same order as the fleet table: by adapter (index % 2), then name.
        for i in sorted(range(self.speakers), key=lambda i: (i % 2, i)):
            changed = clock_time(self.changed_t[i])
            self.shown[(i, "changed")] = changed
            self.shown[(i, "volume")] = "100"
            cells = [initial_cell(key, i, changed) for key, _ in self.columns]
            table.add_row(*cells, key=str(i))
        table.focus()
        if self.steps:
            self.run_worker(self.frames())
            return
        self.set_interval(self.interval, self.apply)
        if self.rate > 0:
            self.run_worker(self.generate())
            self.run_worker(self.markers())

    # -- live mode: changes on their own clock, applied every interval ------------------------
    async def generate(self) -> None:
        """The load scenario's pattern: rate x speakers changes/s, in 50 ms ticks."""
        rng = random.Random(1)
        loop = asyncio.get_running_loop()
        start, done = loop.time(), 0
        while True:
            await asyncio.sleep(0.05)
            due = int((loop.time() - start) * self.rate * self.speakers) - done
            now = time.time()
            for _ in range(due):
                row = rng.randrange(self.speakers)
                self.changed_t[row] = now
                self.volume[row] = rng.randrange(0, 128)
                self.dirty.add(row)
            done += due

    async def markers(self) -> None:
        rng = random.Random(3)
        turn = 0
        with open(self.tags_path or "/dev/null", "a", buffering=1) as log:
            while True:
                await asyncio.sleep(rng.uniform(*MARKER_GAP_S))
                index = MARKER_SPEAKERS[turn % len(MARKER_SPEAKERS)]
                turn += 1
                tag = make_tag()
                self.names[index] = speaker_name(index, tag)
                self.dirty.add(index)
                log.write(tag + "\n")

    def apply(self) -> int:
        """Bring the table in line (only cells whose text changed); returns cells updated."""
        if not self.dirty:
            return 0
        updated = 0
        table = self.query_one(DataTable)
        dirty, self.dirty = self.dirty, set()
        for row in dirty:
            values = {
                "changed": clock_time(self.changed_t[row]),
                "volume": str(self.volume[row]),
            }
            if row in self.names:
                values["name"] = self.names[row]
            for column, value in values.items():
                if column in self.keys and self.shown.get((row, column)) != value:
                    table.update_cell(str(row), column, value)
                    self.shown[(row, column)] = value
                    updated += 1
        return updated

    # -- frames mode: a fixed number of simulated intervals, as fast as frames go -------------
    async def frames(self) -> None:
        rng = random.Random(1)
        step_s = self.interval
        sample_every = max(1, round(SAMPLE_S / step_s))
        owed = 0.0
        t = time.time()
        start = time.monotonic()
        samples = [[0.0, rss_mb()[0], 0.0, sys.getallocatedblocks()]]
        timeouts = frames = 0
        for step in range(1, self.steps + 1):
            t += step_s
            owed += self.rate * self.speakers * step_s
            while owed >= 1:
                owed -= 1
                row = rng.randrange(self.speakers)
                self.changed_t[row] = t
                self.volume[row] = rng.randrange(0, 128)
                self.dirty.add(row)
            self.frame.clear()
            if self.apply():  # nothing visible changed: Textual draws nothing either
                frames += 1
                try:
                    await asyncio.wait_for(self.frame.wait(), 0.5)
                except TimeoutError:
                    timeouts += 1
            else:
                await asyncio.sleep(0)
            if step % sample_every == 0 or step == self.steps:
                samples.append(
                    [step * step_s, rss_mb()[0], time.monotonic() - start, sys.getallocatedblocks()]
                )
        result = {
            "steps": self.steps,
            "wall_s": time.monotonic() - start,
            "samples": samples,
            "frame_timeouts": timeouts,
            "frames": frames,
            "hwm_mb": rss_mb()[1],
            "step_s": step_s,
        }
        Path(self.out or "/dev/null").write_text(json.dumps(result))
        self.exit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peer_app", description=__doc__)
    parser.add_argument("--mode", choices=["live", "frames"], default="live")
    parser.add_argument("--speakers", type=int, default=100)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--tags", default=None)
    parser.add_argument("--steps", type=int, default=0)
    parser.add_argument("--out", default=None)
    parser.add_argument(
        "--interval", type=float, default=0.25, help="seconds between table updates (frames)"
    )
    parser.add_argument("--table-size", default="", help="WxH of the table (default 76x30)")
    parser.add_argument("--columns", default="", help="key=Label,... (default: 7 columns)")
    args = parser.parse_args(argv)
    steps = args.steps if args.mode == "frames" else 0
    columns = COLUMNS
    if args.columns:
        columns = tuple(
            tuple(item.split("=", 1))
            for item in args.columns.split(",")  # type: ignore[misc]
        )
    size = TABLE_SIZE
    if args.table_size:
        w, h = args.table_size.split("x")
        size = (int(w), int(h))
    PeerApp(
        args.speakers,
        rate=args.rate,
        tags_path=args.tags,
        steps=steps,
        out=args.out,
        interval=args.interval,
        columns=columns,
        table_size=size,
    ).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
