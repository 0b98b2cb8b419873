"""Remote view (issue 15): a change on a remote host -> its row on the local screen, against the
same change seen by a local-only TUI.

    .venv/bin/python -m bench remote-view     (or: python -m bench.remote_view [--rate 10,0.1])

Setup (one machine; every time stamp is CLOCK_MONOTONIC, shared by all processes):

* one private dbus-daemon and one publisher owning org.bluez: the fake BlueZ with the `load`
  fleet (core.sim.scenario.build_load, 100 speakers) whose Volume changes at RATE per speaker
  per second (the loop of core.sim.scenario.run_load, seed 1; RATE 10 as in tui-load = 1000
  changes/s, then 0.1 = 10 changes/s, where the JSON hop is nearly idle), plus markers as in
  tui-load: every 100-175 ms (seed 3) the Alias of one of eight speakers in the top rows becomes
  "Speaker NNN tTTTTTTTTTT", T = time.monotonic() in 0.1 ms taken just before the send. On each
  `go` the publisher starts the same seeded stream again (the load, WARMUP_S later the markers),
  MARKERS markers long, so every phase gets the same changes;
* local: `btmon-tui --bus ADDRESS` on a 120x40 pseudo-terminal (Textual's real Linux driver,
  as bench/tui_load.py runs it);
* remote: `btmon-tui --host lab=WRAPPER` on the same kind of terminal, where WRAPPER is a
  script that execs `btmon-tui --bus ADDRESS "$@"` (a stand-in for `ssh lab btmon-tui`, as
  tests/hosts/conftest.py builds hosts): the app runs `WRAPPER watch --json` as a separate
  process and reads its JSON lines (core/hosts.py RemoteHost). Only the SSH hop is missing.

Latency = the moment the terminal output holding a marker's name is read from the pty, minus
T (the screen, not the Monitor's state). The phases run one after another on the same bus and
fleet (local, remote, local, remote, ...: ROUNDS rounds), so they do not compete for the two
cores. CPU % is over the whole stream (warm-up included); "remote watch" is the host's
`watch --json` process, which a real remote host would run on its own CPU.

Target (issue 15): remote p99 <= 2 x local p99 + 100 ms, and no marker missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import subprocess
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
    percentile,
    read_line,
    stop_process,
    summary_ms,
    verdict,
)
from bench.peer_app import MARKER_GAP_S, MARKER_SPEAKERS, make_tag, speaker_name
from bench.tui_load import SIZE, TAG_RE, children, tag_time
from core.sim.dbus_compat import patch_dbus_next_eagain

SPEAKERS = 100
RATE_HZ = 10.0
#: The second load: the same fleet, one change per speaker every 10 s (the JSON hop nearly
#: idle).
LIGHT_RATE_HZ = 0.1
#: Markers per phase; ROUNDS phases of each kind -> ROUNDS x MARKERS markers measured each.
MARKERS = 55
ROUNDS = 4
#: After an app shows its fleet, before its stream starts.
SETTLE_S = 1.0
#: The stream's load runs this long before its first marker (the app warms up under it).
WARMUP_S = 4.0
#: After the last marker, how long its row gets to show before the phase ends.
TAIL_S = 1.5
HOST = "lab"
TARGET_FACTOR = 2.0
TARGET_EXTRA_MS = 100.0


# -- child: the publisher (owns org.bluez) -------------------------------------------------
async def _publisher(address: str, speakers: int, rate: float, markers: int, warmup: float) -> None:
    from dbus_next import Variant
    from dbus_next.aio import MessageBus

    from core.bluez.defs import DEVICE
    from core.sim.fake_bluez import FakeBluez, device_path
    from core.sim.objtree import ObjectTree
    from core.sim.scenario import build_load

    patch_dbus_next_eagain()
    bus = await MessageBus(bus_address=address).connect()
    fake = FakeBluez(ObjectTree(bus))
    addresses = build_load(fake, speakers)
    devices = list(fake.devices.values())
    marked = [(i, devices[i]) for i in MARKER_SPEAKERS if i < len(devices)]

    def alias(index: int, dev: Any, tag: str) -> None:
        fake.tree.set_props(
            device_path(dev.adapter, dev.address),
            DEVICE,
            {"Alias": Variant("s", speaker_name(index, tag))},
        )

    for index, dev in marked:  # placeholders as long as a marker (a cell is not widened)
        alias(index, dev, "0" * 10)
    await bus.request_name("org.bluez")
    print("ready", flush=True)

    async def load() -> None:
        # core.sim.scenario.run_load's loop, restarted with its seed on every `go`.
        rng = random.Random(1)
        loop = asyncio.get_running_loop()
        start, done = loop.time(), 0
        while True:
            await asyncio.sleep(0.05)
            due = int((loop.time() - start) * rate * speakers) - done
            for _ in range(due):
                fake.set_volume(rng.choice(addresses), rng.randrange(0, 128))
            done += due

    loop = asyncio.get_running_loop()
    while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "go":
        task = asyncio.create_task(load()) if rate > 0 else None
        await asyncio.sleep(warmup)  # the app under the load before the first marker
        rng = random.Random(3)
        for turn in range(markers):
            await asyncio.sleep(rng.uniform(*MARKER_GAP_S))
            index, dev = marked[turn % len(marked)]
            tag = make_tag()
            alias(index, dev, tag)
            print(tag, flush=True)
        if task is not None:
            task.cancel()
        print("done", flush=True)
    bus.disconnect()


# -- one phase: one app watching the stream --------------------------------------------------
def _phase(
    mode: str,
    argv: list[str],
    env: dict[str, str],
    pub: Any,
    tags: LineCollector,
    markers: int,
) -> dict[str, Any]:
    app = PtyApp(argv, size=SIZE, tag_pattern=TAG_RE, env=env)
    try:
        pid = app.start()
        t_start = time.monotonic()
        if not app.wait_for(b"Speaker 000", 40):
            raise RuntimeError(f"{mode}: the app showed no fleet within 40 s")
        shown_s = time.monotonic() - t_start
        time.sleep(SETTLE_S)
        pids = {"app": pid}
        if mode == "remote":  # the host's `watch --json` (the wrapper execs btmon-tui)
            kids = children(pid)
            if kids:
                pids["remote_watch"] = kids[0]
        window = CpuWindow(pids)
        first = len(tags.lines)
        window.start()
        assert pub.stdin is not None
        pub.stdin.write(b"go\n")
        pub.stdin.flush()
        deadline = time.monotonic() + WARMUP_S + markers * max(MARKER_GAP_S) + 30
        while not any(line.strip() == b"done" for _, line in tags.lines[first:]):
            if time.monotonic() > deadline or pub.poll() is not None:
                raise RuntimeError(f"{mode}: the publisher did not finish its stream")
            time.sleep(0.1)
        time.sleep(TAIL_S)
        cpu = window.stop()
    finally:
        app.stop()
    lat: list[float] = []
    missed = 0
    for seen_at, raw in tags.lines[first:]:
        tag = raw.strip()
        if not tag.isdigit():
            continue
        shown = app.seen.get(tag)
        if shown is None:
            missed += 1
        else:
            lat.append(shown - tag_time(tag, seen_at))
    return {"latencies_s": lat, "missed": missed, "cpu": cpu, "fleet_shown_s": shown_s}


WRAPPER = """#!/bin/sh
# A stand-in for `ssh {host} btmon-tui`: btmon-tui on the benchmark's private bus.
exec {command} --bus {bus} "$@"
"""


def run(
    speakers: int = SPEAKERS, rate: float = RATE_HZ, markers: int = MARKERS, rounds: int = ROUNDS
) -> dict[str, Any]:
    from core.sim.daemon import PrivateBus

    bus = PrivateBus()
    pub = None
    phases: dict[str, list[dict[str, Any]]] = {"local": [], "remote": []}
    with tempfile.TemporaryDirectory(prefix="bench-remote-") as tmp:
        work = Path(tmp)
        (work / "state").mkdir()
        (work / "config").mkdir()
        # An empty config home: no [hosts.NAME] of the user's config file joins in.
        env = child_env(
            {"XDG_STATE_HOME": str(work / "state"), "XDG_CONFIG_HOME": str(work / "config")}
        )
        try:
            address = bus.start()
            pub = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.remote_view",
                    "--role",
                    "publisher",
                    "--address",
                    address,
                    "--speakers",
                    str(speakers),
                    "--rate",
                    str(rate),
                    "--markers",
                    str(markers),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
            )
            if read_line(pub, 30).strip() != b"ready":
                raise RuntimeError("publisher did not start")
            tags = LineCollector(pub, "markers")
            tags.start()
            wrapper = work / "btmon-tui-lab"
            wrapper.write_text(
                WRAPPER.format(
                    host=HOST,
                    command=shlex.join(btmon_command()),
                    bus=shlex.quote(address),
                )
            )
            wrapper.chmod(0o755)
            argvs = {
                "local": [*btmon_command(), "--bus", address],
                "remote": [*btmon_command(), "--host", f"{HOST}={shlex.quote(str(wrapper))}"],
            }
            for rnd in range(1, rounds + 1):
                for mode in ("local", "remote"):
                    log(f"remote_view: {speakers} x {rate:g}/s, round {rnd}, {mode}")
                    phases[mode].append(_phase(mode, argvs[mode], env, pub, tags, markers))
        finally:
            if pub is not None and pub.stdin is not None:
                try:
                    pub.stdin.write(b"stop\n")
                    pub.stdin.flush()
                except OSError:
                    pass
            stop_process(pub)
            bus.stop()
    return _analyse(phases, speakers, rate)


def _analyse(phases: dict[str, list[dict[str, Any]]], speakers: int, rate: float) -> dict[str, Any]:
    res: dict[str, Any] = {"speakers": speakers, "rate_hz": rate}
    for mode, runs in phases.items():
        lat = [v for r in runs for v in r["latencies_s"]]
        s = summary_ms(lat)
        s["p95"] = percentile([v * 1000 for v in lat], 95)
        s["missed"] = sum(r["missed"] for r in runs)
        s["app_cpu_pct"] = [r["cpu"]["app_cpu_pct"] for r in runs]
        s["remote_watch_cpu_pct"] = [r["cpu"].get("remote_watch_cpu_pct") for r in runs]
        s["machine_busy_pct"] = [r["cpu"]["machine_busy_pct"] for r in runs]
        s["fleet_shown_s"] = [r["fleet_shown_s"] for r in runs]
        s["per_round_p99"] = [percentile([v * 1000 for v in r["latencies_s"]], 99) for r in runs]
        res[mode] = s
    loc, rem = res["local"], res["remote"]
    res["ratio"] = {k: rem[k] / loc[k] for k in ("p50", "p95", "p99")}
    res["limit_p99_ms"] = TARGET_FACTOR * loc["p99"] + TARGET_EXTRA_MS
    res["pass"] = rem["p99"] <= res["limit_p99_ms"] and rem["missed"] == 0
    return res


def _mean(values: list[Any]) -> float:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else float("nan")


def report(results: list[dict[str, Any]]) -> str:
    out = [
        f"{SIZE[0]}x{SIZE[1]} pty; change on the fake BlueZ -> row on the local screen; "
        f"local = `btmon-tui --bus ADDRESS`, remote = `btmon-tui --host {HOST}=WRAPPER` "
        "(WRAPPER execs `btmon-tui --bus ADDRESS`)",
        "",
        "| load | view | n (missed) | p50 ms | p95 ms | p99 ms | max ms | app CPU % | "
        "remote watch CPU % |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        load = f"{res['speakers']} x {res['rate_hz']:g}/s"
        for mode in ("local", "remote"):
            s = res[mode]
            out.append(
                f"| {load} | {mode} | {int(s['n'])} ({s['missed']}) | {fmt(s['p50'])} | "
                f"{fmt(s['p95'])} | {fmt(s['p99'])} | {fmt(s['max'])} | "
                f"{fmt(_mean(s['app_cpu_pct']))} | {fmt(_mean(s['remote_watch_cpu_pct']))} |"
            )
        r = res["ratio"]
        out.append(
            f"| {load} | remote/local | | x{fmt(r['p50'], 2)} | x{fmt(r['p95'], 2)} | "
            f"x{fmt(r['p99'], 2)} | | | |"
        )
    out.append("")
    out.append(
        "Both ends share this machine's cores: the remote host's `watch --json` (its CPU above) "
        "competes with the app here, where on a real host it runs on that host's CPU. "
        "Machine busy is the whole machine in % of one core (all cores: "
        f"{100 * (os.cpu_count() or 1)})."
    )
    out.append("")
    for res in results:
        load = f"{res['speakers']} x {res['rate_hz']:g}/s"
        loc, rem = res["local"], res["remote"]
        out.append(
            f"{load}: target remote p99 <= {fmt(TARGET_FACTOR, 0)} x local p99 + "
            f"{fmt(TARGET_EXTRA_MS, 0)} ms = {fmt(res['limit_p99_ms'])} ms and none missed: "
            f"remote p99 {fmt(rem['p99'])} ms, {rem['missed']} missed: **{verdict(res['pass'])}**"
            f" (p99 per round: local {', '.join(fmt(v) for v in loc['per_round_p99'])}; "
            f"remote {', '.join(fmt(v) for v in rem['per_round_p99'])}; machine busy "
            f"{', '.join(fmt(v, 0) for v in loc['machine_busy_pct'])} / "
            f"{', '.join(fmt(v, 0) for v in rem['machine_busy_pct'])} % of a core)"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.remote_view", description=__doc__)
    parser.add_argument("--role", choices=["bench", "publisher"], default="bench", help="internal")
    parser.add_argument("--address", default="")
    parser.add_argument("--speakers", type=int, default=SPEAKERS)
    parser.add_argument(
        "--rate",
        default=f"{RATE_HZ:g},{LIGHT_RATE_HZ:g}",
        help="changes/s per speaker, comma-separated for several loads (default: tui-load's "
        f"{RATE_HZ:g}, then a light {LIGHT_RATE_HZ:g})",
    )
    parser.add_argument("--markers", type=int, default=MARKERS, help="markers per phase")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args(argv)
    if args.role == "publisher":
        asyncio.run(
            _publisher(args.address, args.speakers, float(args.rate), args.markers, WARMUP_S)
        )
        return 0
    rates = [float(r) for r in args.rate.split(",") if r.strip()]
    results = [run(args.speakers, rate, args.markers, args.rounds) for rate in rates]
    print(report(results))
    print(json.dumps(results, default=str), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
