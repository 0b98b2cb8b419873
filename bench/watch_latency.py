"""Change -> `watch --json` line latency, against a bare dbus-next subscriber (the floor).

    .venv/bin/python -m bench watch            (or: python -m bench.watch_latency)

Setup (all on one machine, every time stamp is CLOCK_MONOTONIC, shared by all processes):

* a private dbus-daemon (core.sim.daemon.PrivateBus);
* a publisher process owning org.bluez: the fake BlueZ (FakeBluez + build_load, 6 speakers);
  after a go it makes 10 warm-up changes, then CHANGES (200) Volume changes spaced 20-50 ms
  apart (seeded random), stamping time.monotonic() just before each `fake.set_volume`. Change i
  goes to speaker i % 5 with volume i // 5, so (address, volume) names the change;
* consumer (a): `btmon-tui watch --json --bus ADDRESS` as a subprocess; each stdout line is
  stamped when this process reads it; a change is matched to the first `speaker` line with its
  address and transport.volume;
* consumer (b), the floor: a minimal dbus-next subscriber (AddMatch on PropertiesChanged,
  time.monotonic() taken first thing in its message handler). It also prints one line per
  signal, stamped on arrival here like watch's lines ("floor via pipe", for reference).

Target (issue): watch p99 <= 3 x floor p99 + 5 ms, and no change missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import time
from typing import Any

from bench.common import (
    LineCollector,
    btmon_command,
    child_env,
    fmt,
    log,
    read_line,
    stop_process,
    summary_ms,
    verdict,
)
from core.sim.dbus_compat import patch_dbus_next_eagain

CHANGES = 200
WARMUP = 10
MEASURED_SPEAKERS = 5
GAP_S = (0.020, 0.050)
SEED = 7


# -- child: the publisher (owns org.bluez) -------------------------------------------------
async def _publisher(address: str, changes: int, seed: int) -> None:
    from dbus_next.aio import MessageBus

    from core.sim.fake_bluez import FakeBluez
    from core.sim.objtree import ObjectTree
    from core.sim.scenario import build_load

    patch_dbus_next_eagain()
    bus = await MessageBus(bus_address=address).connect()
    fake = FakeBluez(ObjectTree(bus))
    addresses = build_load(fake, MEASURED_SPEAKERS + 1)
    await bus.request_name("org.bluez")
    paths = {a: fake.transport_path(fake.devices[a]) for a in addresses}
    print(json.dumps({"ready": True, "paths": paths}), flush=True)

    loop = asyncio.get_running_loop()
    go = await loop.run_in_executor(None, sys.stdin.readline)
    if not go.strip():
        return
    rng = random.Random(seed)
    warm = addresses[MEASURED_SPEAKERS]
    for i in range(WARMUP):
        await asyncio.sleep(rng.uniform(*GAP_S))
        fake.set_volume(warm, i)
    sends: list[list[Any]] = []
    for i in range(changes):
        await asyncio.sleep(rng.uniform(*GAP_S))
        addr = addresses[i % MEASURED_SPEAKERS]
        volume = i // MEASURED_SPEAKERS
        t = time.monotonic()
        fake.set_volume(addr, volume)
        sends.append([i, addr, paths[addr], volume, t])
    await asyncio.sleep(0.3)  # let the last writes leave
    print(json.dumps({"sends": sends}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # stay on the bus until told
    bus.disconnect()


# -- child: the floor (a bare subscriber) --------------------------------------------------
async def _floor(address: str) -> None:
    from dbus_next import Message, MessageType
    from dbus_next.aio import MessageBus

    bus = await MessageBus(bus_address=address).connect()
    out = sys.stdout

    def handler(msg: Message) -> bool:
        t = time.monotonic()
        if msg.message_type == MessageType.SIGNAL and msg.member == "PropertiesChanged":
            changed = msg.body[1]
            volume = changed.get("Volume")
            if volume is not None:
                out.write(f"{t:.7f} {msg.path} {volume.value}\n")
                out.flush()
        return False

    bus.add_message_handler(handler)
    rule = (
        "type='signal',sender='org.bluez',interface='org.freedesktop.DBus.Properties',"
        "member='PropertiesChanged'"
    )
    await bus.call(
        Message(
            destination="org.freedesktop.DBus",
            path="/org/freedesktop/DBus",
            interface="org.freedesktop.DBus",
            member="AddMatch",
            signature="s",
            body=[rule],
        )
    )
    print("ready", flush=True)
    await bus.wait_for_disconnect()


# -- the benchmark -------------------------------------------------------------------------
def run(changes: int = CHANGES) -> dict[str, Any]:
    from core.sim.daemon import PrivateBus

    py = sys.executable
    env = child_env()
    bus = PrivateBus()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        address = bus.start()
        pub = subprocess.Popen(
            [
                py,
                "-m",
                "bench.watch_latency",
                "--role",
                "publisher",
                "--address",
                address,
                "--changes",
                str(changes),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        procs.append(pub)
        hello = read_line(pub, 20)
        if not hello:
            raise RuntimeError("publisher did not start")
        paths: dict[str, str] = json.loads(hello)["paths"]
        floor = subprocess.Popen(
            [py, "-m", "bench.watch_latency", "--role", "floor", "--address", address],
            stdout=subprocess.PIPE,
            env=env,
        )
        procs.append(floor)
        if read_line(floor, 20).strip() != b"ready":
            raise RuntimeError("floor subscriber did not start")
        watch = subprocess.Popen(
            [*btmon_command(), "watch", "--json", "--bus", address],
            stdout=subprocess.PIPE,
            env=env,
        )
        procs.append(watch)
        first = read_line(watch, 20)
        snap = json.loads(first) if first else {}
        if snap.get("type") != "snapshot" or len(snap.get("speakers", [])) != len(paths):
            raise RuntimeError(f"watch --json did not print the snapshot first: {first[:200]!r}")
        floor_lines = LineCollector(floor, "floor")
        watch_lines = LineCollector(watch, "watch")
        floor_lines.start()
        watch_lines.start()
        assert pub.stdin is not None
        pub.stdin.write(b"go\n")
        pub.stdin.flush()
        result_line = read_line(pub, 60)
        if not result_line:
            raise RuntimeError("publisher did not finish")
        sends = json.loads(result_line)["sends"]
        time.sleep(0.5)  # the last lines are in flight
        pub.stdin.write(b"stop\n")
        pub.stdin.flush()
    finally:
        for proc in reversed(procs):
            stop_process(proc)
        bus.stop()
    floor_lines.join(timeout=2)
    watch_lines.join(timeout=2)
    return _analyse(sends, paths, floor_lines.lines, watch_lines.lines)


def _analyse(
    sends: list[list[Any]],
    paths: dict[str, str],
    floor_lines: list[tuple[float, bytes]],
    watch_lines: list[tuple[float, bytes]],
) -> dict[str, Any]:
    floor_seen: dict[tuple[str, int], tuple[float, float]] = {}
    for arrival, raw in floor_lines:
        stamp, path, volume = raw.decode().split()
        floor_seen.setdefault((path, int(volume)), (float(stamp), arrival))
    watch_seen: dict[tuple[str, int], float] = {}
    unparsable = 0
    for arrival, raw in watch_lines:
        try:
            data = json.loads(raw)
        except ValueError:
            unparsable += 1
            continue
        transport = data.get("transport") or {}
        if data.get("type") == "speaker" and transport.get("volume") is not None:
            watch_seen.setdefault((data["address"], int(transport["volume"])), arrival)
    floor_handler, floor_pipe, watch_lat = [], [], []
    floor_missed = watch_missed = 0
    for _i, addr, path, volume, t_send in sends:
        f = floor_seen.get((path, volume))
        if f is None:
            floor_missed += 1
        else:
            floor_handler.append(f[0] - t_send)
            floor_pipe.append(f[1] - t_send)
        w = watch_seen.get((addr, volume))
        if w is None:
            watch_missed += 1
        else:
            watch_lat.append(w - t_send)
    floor_s = summary_ms(floor_handler)
    pipe_s = summary_ms(floor_pipe)
    watch_s = summary_ms(watch_lat)
    limit = 3 * floor_s["p99"] + 5.0
    return {
        "changes": len(sends),
        "floor": floor_s,
        "floor_pipe": pipe_s,
        "watch": watch_s,
        "floor_missed": floor_missed,
        "watch_missed": watch_missed,
        "watch_unparsable_lines": unparsable,
        "watch_lines": len(watch_lines),
        "ratio_p50": watch_s["p50"] / floor_s["p50"],
        "ratio_p99": watch_s["p99"] / floor_s["p99"],
        "limit_p99_ms": limit,
        "pass": watch_missed == 0 and watch_s["p99"] <= limit,
    }


def report(res: dict[str, Any]) -> str:
    f, p, w = res["floor"], res["floor_pipe"], res["watch"]
    rows = [
        "| consumer | n | p50 ms | p99 ms | max ms | missed |",
        "|---|---|---|---|---|---|",
        f"| floor: dbus-next subscriber, stamped in handler | {int(f['n'])} | {fmt(f['p50'], 2)}"
        f" | {fmt(f['p99'], 2)} | {fmt(f['max'], 2)} | {res['floor_missed']} |",
        f"| floor, line read through a pipe (reference) | {int(p['n'])} | {fmt(p['p50'], 2)}"
        f" | {fmt(p['p99'], 2)} | {fmt(p['max'], 2)} | {res['floor_missed']} |",
        f"| `btmon-tui watch --json`, line read through a pipe | {int(w['n'])} | "
        f"{fmt(w['p50'], 2)} | {fmt(w['p99'], 2)} | {fmt(w['max'], 2)} | {res['watch_missed']} |",
    ]
    rows.append(
        f"\nwatch/floor: p50 x{fmt(res['ratio_p50'], 2)}, p99 x{fmt(res['ratio_p99'], 2)}; "
        f"target p99 <= 3 x {fmt(f['p99'], 2)} + 5 = {fmt(res['limit_p99_ms'], 2)} ms and 0 "
        f"missed: **{verdict(res['pass'])}**"
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.watch_latency", description=__doc__)
    parser.add_argument("--role", choices=["bench", "publisher", "floor"], default="bench")
    parser.add_argument("--address", default="")
    parser.add_argument("--changes", type=int, default=CHANGES)
    args = parser.parse_args(argv)
    if args.role == "publisher":
        asyncio.run(_publisher(args.address, args.changes, SEED))
        return 0
    if args.role == "floor":
        asyncio.run(_floor(args.address))
        return 0
    log("watch_latency: running")
    res = run(args.changes)
    print(report(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
