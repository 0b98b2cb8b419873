"""The TUI under load, idle, and after a simulated hour; against a bare Textual DataTable app.

    .venv/bin/python -m bench tui       (all three)   or   tui-load | tui-idle | tui-hour

The app runs with XDG_STATE_HOME set to a temporary directory, so its default SQLite event log
(on in the TUI by default) is written and then thrown away, not added to the user's log.

Every app runs in its own process on a pseudo-terminal of 120x40 with Textual's real Linux
driver (so full frames are produced and written, as in an SSH session); this process drains the
terminal, stamps what it reads with CLOCK_MONOTONIC and reads the app's CPU and memory from
/proc/<pid>. Nothing in the app is patched for the load and idle parts: it is `btmon-tui --bus
ADDRESS`, the real command. Which columns the fleet table shows depends on its width (at 120x40
it is 76x30 next to the detail panel; when this was written it showed no Volume column there),
so the peer is given the table's current size and columns, read from the app first
(probe_layout).

1. load: a private dbus-daemon; a publisher owning org.bluez that runs the `load` scenario
   (core.sim.scenario.run_load: 100 speakers, 10 Volume changes/s each = 1000 signals/s, the
   same code as `python -m core.sim --scenario load --speakers 100 --rate 10`) plus markers:
   every 100-175 ms (random, so not phase-locked to the render timer) it sets the Alias
   of one of eight speakers shown in the top rows to "Speaker NNN tTTTTTTTTTT", where T is
   time.monotonic() in 0.1 ms taken just before the send. Change -> rendered latency = the
   moment the terminal output containing that name is read from the pty, minus T. (Marker
   speakers start with a placeholder name of the same length: DataTable.update_cell does not
   widen a column, so a longer name would be cut and never appear.)
   CPU = (utime + stime) of the app process over the measurement window / wall time.
   Peer: bench.peer_app, a bare Textual app with one DataTable of the same size, columns and
   rows, whose own asyncio task makes the same changes at the same rate and the same markers,
   applied at the app's render interval with update_cell (only cells whose text changed, as
   FleetTable does).
   Same pty, same measurement; the ratio is our overhead (D-Bus, mirror, fleet state,
   snapshot, the other widgets) over Textual itself.
2. idle: `btmon-tui --demo` as a user starts it (its own private bus and the default demo
   fleet; the demo's first drop comes at 45 s, so only clocks and countdowns tick); CPU of the
   app process only (its dbus-daemon and fake bluetoothd are reported apart). Peer: the bare
   app with 8 rows and its render timer, no changes. Both run at the same time (both near idle).
3. hour: see bench/hour_sim.py (the real app fed in-process for a wall-clock budget; RSS
   against simulated time).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    CpuWindow,
    LineCollector,
    PtyApp,
    btmon_command,
    child_env,
    fmt,
    log,
    read_line,
    rss_mb,
    stop_process,
    summary_ms,
    verdict,
)
from bench.peer_app import MARKER_GAP_S, MARKER_SPEAKERS, TAG_MOD, make_tag, speaker_name
from core.sim.dbus_compat import patch_dbus_next_eagain

SIZE = (120, 40)
#: A terminal wide enough for the table's widest column set (Vol and Changed shown), where
#: every Volume change is visible.
WIDE_SIZE = (200, 50)
SPEAKERS = 100
RATE_HZ = 10.0
TAG_RE = rb"Speaker \d{3} t(\d{10})"
WARMUP_S = 4.0
LOAD_S = 20.0
IDLE_S = 15.0
HOUR_BUDGET_S = 45.0

TARGET_LATENCY_P99_MS = 250.0
#: Issue 3's absolute budget under load (bench/__main__.py's summary still judges it).
TARGET_LOAD_CPU_PCT = 30.0
#: Issue 13 §7: under load at most 1.25x the bare DataTable's CPU in the same run.
TARGET_LOAD_CPU_RATIO = 1.25
#: Issue 13 §7: idle at most 1 % of a core and at most 3x the bare app in the same run.
TARGET_IDLE_CPU_PCT = 1.0
TARGET_IDLE_CPU_RATIO = 3.0
TARGET_RSS_MB = 150.0


def tag_time(tag: bytes | str, seen_at: float) -> float:
    """The send time encoded in a tag (undoing the modulo with the time it was seen)."""
    value = int(tag)
    now = int(seen_at * 10_000)
    base = now - now % TAG_MOD + value
    if base > now + 10_000:  # seen before sent: the modulo wrapped in between
        base -= TAG_MOD
    return base / 10_000


def render_interval() -> float:
    """The app's render interval as the code under test has it (the peer uses the same)."""
    import tui.app

    return float(tui.app.RENDER_INTERVAL_S)


# -- child: what the fleet table looks like at SIZE (for the peer) --------------------------
async def _probe_layout(cols: int, rows: int) -> None:
    """Print the fleet table's region and columns when the app shows the load fleet."""
    from dbus_next.aio import MessageBus

    from core.sim.daemon import PrivateBus
    from core.sim.fake_bluez import FakeBluez
    from core.sim.objtree import ObjectTree
    from core.sim.scenario import build_load
    from tui.app import make_app
    from tui.widgets.fleet_table import FleetTable

    patch_dbus_next_eagain()
    with PrivateBus() as address:
        bus = await MessageBus(bus_address=address).connect()
        build_load(FakeBluez(ObjectTree(bus)), SPEAKERS)
        await bus.request_name("org.bluez")
        app = make_app(address)
        async with app.run_test(headless=True, size=(cols, rows)) as pilot:
            table = app.query_one(FleetTable)
            for _ in range(100):
                await pilot.pause(0.1)
                if table.row_count >= SPEAKERS:
                    break
            await pilot.pause(0.3)
            region = table.region
            layout = {
                "size": [region.width, region.height],
                "columns": [[key, label] for key, label in table.columns_shown],
            }
        bus.disconnect()
    print(json.dumps(layout), flush=True)


def probe_layout(size: tuple[int, int] = SIZE) -> dict[str, Any] | None:
    """The fleet table's size and columns at this terminal size (None if it cannot be read)."""
    import subprocess

    argv = [sys.executable, "-m", "bench.tui_load", "--role", "probe-layout"]
    argv += ["--size", f"{size[0]}x{size[1]}"]
    try:
        done = subprocess.run(argv, capture_output=True, env=child_env(), timeout=60, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as exc:
        log(f"tui_load: could not read the fleet table's layout ({exc!r}); peer uses defaults")
        return None


def peer_layout_args(layout: dict[str, Any] | None) -> list[str]:
    if not layout:
        return []
    width, height = layout["size"]
    keys = ",".join(f"{key}={label}" for key, label in layout["columns"])
    return ["--table-size", f"{width}x{height}", "--columns", keys]


# -- child: the load publisher -------------------------------------------------------------
async def _load_publisher(address: str, speakers: int, rate: float) -> None:
    from dbus_next import Variant
    from dbus_next.aio import MessageBus

    from core.bluez.defs import DEVICE
    from core.sim.fake_bluez import FakeBluez, device_path
    from core.sim.objtree import ObjectTree
    from core.sim.scenario import run_load

    patch_dbus_next_eagain()
    bus = await MessageBus(bus_address=address).connect()
    fake = FakeBluez(ObjectTree(bus))
    load = asyncio.create_task(run_load(fake, speakers, rate))
    await asyncio.sleep(0)  # run_load builds the fleet before its first await
    devices = list(fake.devices.values())
    markers = [devices[i] for i in MARKER_SPEAKERS if i < len(devices)]
    for index, dev in zip(MARKER_SPEAKERS, markers, strict=False):
        fake.tree.set_props(
            device_path(dev.adapter, dev.address),
            DEVICE,
            {"Alias": Variant("s", speaker_name(index, "0" * 10))},
        )
    await bus.request_name("org.bluez")
    print("ready", flush=True)
    rng = random.Random(3)
    turn = 0
    try:
        while not load.done():
            await asyncio.sleep(rng.uniform(*MARKER_GAP_S))
            index, dev = MARKER_SPEAKERS[turn % len(markers)], markers[turn % len(markers)]
            turn += 1
            tag = make_tag()
            fake.tree.set_props(
                device_path(dev.adapter, dev.address),
                DEVICE,
                {"Alias": Variant("s", speaker_name(index, tag))},
            )
            print(tag, flush=True)
    finally:
        load.cancel()


# -- pty runs --------------------------------------------------------------------------------
def _latencies(
    app: PtyApp, sent: list[tuple[float, bytes]], t_from: float, t_to: float
) -> dict[str, Any]:
    """Markers sent in [t_from, t_to]: latency to their first appearance on the terminal."""
    lat, missed = [], 0
    for seen_at, raw in sent:
        tag = raw.strip()
        t_sent = tag_time(tag, seen_at)
        if not t_from <= t_sent <= t_to:
            continue
        shown = app.seen.get(tag)
        if shown is None:
            missed += 1
        else:
            lat.append(shown - t_sent)
    out: dict[str, Any] = summary_ms(lat)
    out["missed"] = missed
    out["over_250"] = sum(1 for v in lat if v * 1000 > TARGET_LATENCY_P99_MS)
    out["values_ms"] = sorted(round(v * 1000, 1) for v in lat)
    return out


def run_load(
    seconds: float = LOAD_S,
    workdir: Path | None = None,
    app_argv: list[str] | None = None,
    size: tuple[int, int] = SIZE,
) -> dict[str, Any]:
    """The app against 100 speakers x 10 changes/s over D-Bus (app_argv: another command,
    to which the bus address is appended, for experiments)."""
    from core.sim.daemon import PrivateBus

    bus = PrivateBus()
    pub = None
    app = None
    state = tempfile.TemporaryDirectory(prefix="bench-state-")
    db_mb = float("nan")
    try:
        address = bus.start()
        pub = _popen_pipe(
            [
                sys.executable,
                "-m",
                "bench.tui_load",
                "--role",
                "load-publisher",
                "--address",
                address,
                "--speakers",
                str(SPEAKERS),
                "--rate",
                str(RATE_HZ),
            ]
        )
        if read_line(pub, 20).strip() != b"ready":
            raise RuntimeError("load publisher did not start")
        tags = LineCollector(pub, "markers")
        tags.start()
        argv = [*app_argv, address] if app_argv else [*btmon_command(), "--bus", address]
        app = PtyApp(argv, size=size, tag_pattern=TAG_RE, env=state_env(state.name))
        pid = app.start()
        t_app = time.monotonic()
        if not app.wait_for(b"Speaker 000", 30):
            raise RuntimeError("btmon-tui showed no fleet within 30 s")
        assert bus.proc is not None
        window = CpuWindow({"app": pid, "publisher": pub.pid, "dbus_daemon": bus.proc.pid})
        time.sleep(WARMUP_S)
        window.start()
        t_from = time.monotonic()
        time.sleep(seconds)
        cpu = window.stop()
        t_to = time.monotonic() - 1.0
        rss, hwm = rss_mb(pid)
        time.sleep(0.5)
        lat = _latencies(app, list(tags.lines), t_from, t_to)
        terminal_kb_s = app.bytes_read / 1024 / max(1e-9, time.monotonic() - t_from)
        app.stop()
        db_mb = _db_mb(state.name)
        return {
            "cpu": cpu,
            "rss_mb": rss,
            "hwm_mb": hwm,
            "latency": lat,
            "terminal_kb_s": terminal_kb_s,
            "event_log_mb": db_mb,
            "app_seconds": time.monotonic() - t_app,
        }
    finally:
        if app is not None:
            app.stop()
        stop_process(pub)
        bus.stop()
        state.cleanup()


def run_load_peer(
    seconds: float = LOAD_S,
    workdir: Path | None = None,
    layout: dict[str, Any] | None = None,
    size: tuple[int, int] = SIZE,
) -> dict[str, Any]:
    """The bare DataTable app making the same changes itself."""
    side = tempfile.NamedTemporaryFile(prefix="bench-peer-", suffix=".tags", delete=False)  # noqa: SIM115
    side.close()
    app = PtyApp(
        [
            sys.executable,
            "-m",
            "bench.peer_app",
            "--speakers",
            str(SPEAKERS),
            "--rate",
            str(RATE_HZ),
            "--tags",
            side.name,
            "--interval",
            str(render_interval()),
            *peer_layout_args(layout),
        ],
        size=size,
        tag_pattern=TAG_RE,
    )
    try:
        pid = app.start()
        if not app.wait_for(b"Speaker 000", 30):
            raise RuntimeError("peer app showed nothing within 30 s")
        window = CpuWindow({"app": pid})
        time.sleep(WARMUP_S)
        window.start()
        t_from = time.monotonic()
        time.sleep(seconds)
        cpu = window.stop()
        t_to = time.monotonic() - 1.0
        rss, hwm = rss_mb(pid)
        kb_s = app.bytes_read / 1024 / max(1e-9, time.monotonic() - t_from)
        time.sleep(0.5)
    finally:
        app.stop()
    # The peer logged each marker's tag to a file; the tag holds its send time.
    lines = Path(side.name).read_bytes().splitlines()
    Path(side.name).unlink(missing_ok=True)
    now = time.monotonic()
    sent = [(now, line) for line in lines if line.strip().isdigit()]
    lat = _latencies(app, sent, t_from, t_to)
    return {"cpu": cpu, "rss_mb": rss, "hwm_mb": hwm, "latency": lat, "terminal_kb_s": kb_s}


def run_idle(
    seconds: float = IDLE_S, workdir: Path | None = None, layout: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`btmon-tui --demo` (its own private bus and demo fleet, as a user starts it) and the
    bare app with 8 rows, side by side, idle."""
    app = peer = None
    state = tempfile.TemporaryDirectory(prefix="bench-state-")
    try:
        app = PtyApp([*btmon_command(), "--demo"], size=SIZE, env=state_env(state.name))
        app_pid = app.start()
        peer = PtyApp(
            [
                sys.executable,
                "-m",
                "bench.peer_app",
                "--speakers",
                "8",
                "--rate",
                "0",
                "--interval",
                str(render_interval()),
                *peer_layout_args(layout),
            ],
            size=SIZE,
        )
        peer_pid = peer.start()
        if not app.wait_for(b"Stage Left", 30) or not peer.wait_for(b"Speaker 000", 30):
            raise RuntimeError("idle apps showed nothing within 30 s")
        pids = {"app": app_pid, "peer": peer_pid}
        for child in children(app_pid):  # the demo's dbus-daemon and fake bluetoothd
            cmd = Path(f"/proc/{child}/cmdline").read_bytes()
            pids["dbus_daemon" if b"dbus-daemon" in cmd else "fake_bluez"] = child
        window = CpuWindow(pids)
        time.sleep(WARMUP_S)
        window.start()
        time.sleep(seconds)
        cpu = window.stop()
        return {"cpu": cpu, "app_rss_mb": rss_mb(app_pid)[0], "peer_rss_mb": rss_mb(peer_pid)[0]}
    finally:
        for p in (app, peer):
            if p is not None:
                p.stop()
        state.cleanup()


def children(pid: int) -> list[int]:
    """Direct child processes of `pid`."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def state_env(state_home: str) -> dict[str, str]:
    """The app's environment: its default event log goes to a temporary XDG_STATE_HOME (the
    TUI logs every event to SQLite by default; a benchmark must not fill the user's log)."""
    return child_env({"XDG_STATE_HOME": state_home})


def _db_mb(state_home: str) -> float:
    """Size of the app's event log (database + WAL) in MiB."""
    files = Path(state_home).glob("btmon-tui/events.sqlite3*")
    return sum(f.stat().st_size for f in files) / (1 << 20)


def _popen_pipe(argv: list[str]):  # type: ignore[no-untyped-def]
    import subprocess

    return subprocess.Popen(argv, stdout=subprocess.PIPE, env=child_env())


# -- the benchmark -------------------------------------------------------------------------
def run(parts: tuple[str, ...] = ("load", "idle", "hour")) -> dict[str, Any]:
    res: dict[str, Any] = {"render_interval_s": render_interval()}
    layout = probe_layout() if {"load", "idle", "hour"} & set(parts) else None
    res["table_layout"] = layout
    with tempfile.TemporaryDirectory(prefix="bench-tui-") as tmp:
        work = Path(tmp)
        if "load" in parts:
            log("tui_load: app under load (100 speakers x 10/s)")
            res["load"] = run_load(workdir=work)
            log("tui_load: peer (bare DataTable app) under the same load")
            res["load_peer"] = run_load_peer(workdir=work, layout=layout)
        if "load-wide" in parts:
            wide = probe_layout(WIDE_SIZE)
            res["table_layout_wide"] = wide
            log(f"tui_load: app under load at {WIDE_SIZE[0]}x{WIDE_SIZE[1]}")
            res["load_wide"] = run_load(workdir=work, size=WIDE_SIZE)
            log("tui_load: peer under the same load, same size")
            res["load_wide_peer"] = run_load_peer(workdir=work, layout=wide, size=WIDE_SIZE)
        if "idle" in parts:
            log("tui_load: idle, demo fleet and bare app side by side")
            res["idle"] = run_idle(workdir=work, layout=layout)
        if "hour" in parts:
            from bench import hour_sim

            log("tui_load: simulated hour (RSS)")
            res["hour"] = hour_sim.run(budget_s=HOUR_BUDGET_S, workdir=work)
            log("tui_load: peer for the hour (bare DataTable app, same number of renders)")
            res["hour_peer"] = hour_sim.run_peer(
                res["hour"]["steps"], res["hour"]["step_s"], workdir=work, layout=layout
            )
    return res


def _load_report(
    a: dict[str, Any],
    p: dict[str, Any],
    size: tuple[int, int],
    layout: dict[str, Any] | None,
    res: dict[str, Any],
) -> list[str]:
    la, lp = a["latency"], p["latency"]
    cpu_a, cpu_p = a["cpu"]["app_cpu_pct"], p["cpu"]["app_cpu_pct"]
    table = (
        f"fleet table {layout['size'][0]}x{layout['size'][1]} with columns "
        + ", ".join(label for _key, label in layout["columns"])
        if layout
        else "fleet table layout unknown (peer used its defaults)"
    )
    return [
        f"load: 100 speakers x 10 changes/s, {fmt(a['cpu']['wall_s'], 0)} s measured after "
        f"{fmt(WARMUP_S, 0)} s warm-up; {size[0]}x{size[1]} pty, {table}; render interval "
        f"(app and peer) {fmt(res['render_interval_s'] * 1000, 0)} ms",
        "",
        "| metric | btmon-tui | bare DataTable peer | ratio | target | result |",
        "|---|---|---|---|---|---|",
        f"| change->rendered p50 ms | {fmt(la['p50'])} | {fmt(lp['p50'])} | "
        f"x{fmt(la['p50'] / lp['p50'], 2)} | | |",
        f"| change->rendered p99 ms | {fmt(la['p99'])} | {fmt(lp['p99'])} | "
        f"x{fmt(la['p99'] / lp['p99'], 2)} | <= {fmt(TARGET_LATENCY_P99_MS, 0)} | "
        f"{verdict(la['p99'] <= TARGET_LATENCY_P99_MS and la['missed'] == 0)} |",
        f"| change->rendered max ms | {fmt(la['max'])} | {fmt(lp['max'])} | | | |",
        f"| markers (missed, > 250 ms) | {int(la['n'])} ({la['missed']}, {la['over_250']}) | "
        f"{int(lp['n'])} ({lp['missed']}, {lp['over_250']}) | | | |",
        f"| app CPU % of one core | {fmt(cpu_a)} | {fmt(cpu_p)} | x{fmt(cpu_a / cpu_p, 2)} | "
        f"<= x{fmt(TARGET_LOAD_CPU_RATIO, 2)} the peer | "
        f"{verdict(cpu_a <= TARGET_LOAD_CPU_RATIO * cpu_p)} |",
        f"| RSS MB at end (peak) | {fmt(a['rss_mb'])} ({fmt(a['hwm_mb'])}) | "
        f"{fmt(p['rss_mb'])} ({fmt(p['hwm_mb'])}) | x{fmt(a['rss_mb'] / p['rss_mb'], 2)} | | |",
        f"| terminal output KiB/s | {fmt(a['terminal_kb_s'])} | "
        f"{fmt(p.get('terminal_kb_s', float('nan')))} | | | |",
        "",
        f"context: publisher {fmt(a['cpu']['publisher_cpu_pct'])} %, dbus-daemon "
        f"{fmt(a['cpu']['dbus_daemon_cpu_pct'])} % of a core; whole machine busy "
        f"{fmt(a['cpu']['machine_busy_pct'])} % of one core (app run), "
        f"{fmt(p['cpu']['machine_busy_pct'])} % (peer run); the app wrote "
        f"{fmt(a.get('event_log_mb', float('nan')))} MiB to its SQLite event log in "
        f"{fmt(a.get('app_seconds', float('nan')), 0)} s",
        "",
    ]


def report(res: dict[str, Any]) -> str:
    out: list[str] = []
    for key, size, layout in (
        ("load", SIZE, res.get("table_layout")),
        ("load_wide", WIDE_SIZE, res.get("table_layout_wide")),
    ):
        if key in res:
            out += _load_report(res[key], res[f"{key}_peer"], size, layout, res)
    if "idle" in res:
        c = res["idle"]["cpu"]
        ratio = c["app_cpu_pct"] / c["peer_cpu_pct"] if c["peer_cpu_pct"] > 0 else float("nan")
        idle_ok = c["app_cpu_pct"] <= TARGET_IDLE_CPU_PCT and ratio <= TARGET_IDLE_CPU_RATIO
        out += [
            f"idle: `btmon-tui --demo`, {fmt(c['wall_s'], 0)} s after {fmt(WARMUP_S, 0)} s, "
            "app and peer side by side",
            "",
            "| metric | btmon-tui | bare DataTable peer (8 rows) | ratio | target | result |",
            "|---|---|---|---|---|---|",
            f"| idle CPU % of one core | {fmt(c['app_cpu_pct'], 2)} | {fmt(c['peer_cpu_pct'], 2)}"
            f" | x{fmt(ratio, 2)} | <= {fmt(TARGET_IDLE_CPU_PCT, 0)} and <= "
            f"x{fmt(TARGET_IDLE_CPU_RATIO, 0)} the peer | "
            f"{verdict(idle_ok)} |",
            f"| RSS MB | {fmt(res['idle']['app_rss_mb'])} | {fmt(res['idle']['peer_rss_mb'])} | "
            f"x{fmt(res['idle']['app_rss_mb'] / res['idle']['peer_rss_mb'], 2)} | | |",
            "",
            f"context: fake BlueZ {fmt(c.get('fake_bluez_cpu_pct', float('nan')), 2)} %, "
            f"dbus-daemon {fmt(c.get('dbus_daemon_cpu_pct', float('nan')), 2)} %; machine busy "
            f"{fmt(c['machine_busy_pct'], 1)} % of one core",
            "",
        ]
    if "hour" in res:
        from bench import hour_sim

        out.append(hour_sim.report(res["hour"], res.get("hour_peer")))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tui_load", description=__doc__)
    parser.add_argument(
        "--role",
        choices=["bench", "load-publisher", "probe-layout"],
        default="bench",
        help="internal",
    )
    parser.add_argument("--address", default="")
    parser.add_argument("--size", default=f"{SIZE[0]}x{SIZE[1]}", help="probe-layout: COLSxROWS")
    parser.add_argument("--speakers", type=int, default=SPEAKERS)
    parser.add_argument("--rate", type=float, default=RATE_HZ)
    parser.add_argument(
        "--part",
        action="append",
        choices=["load", "load-wide", "idle", "hour"],
        help="run only these parts",
    )
    args = parser.parse_args(argv)
    if args.role == "probe-layout":
        cols, rows = (int(v) for v in args.size.split("x"))
        asyncio.run(_probe_layout(cols, rows))
        return 0
    if args.role == "load-publisher":
        asyncio.run(_load_publisher(args.address, args.speakers, args.rate))
        return 0
    res = run(tuple(args.part or ("load", "idle", "hour")))
    print(report(res))
    print(json.dumps(res, default=str), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
