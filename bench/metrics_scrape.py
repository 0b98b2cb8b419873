"""Prometheus metrics (issue 15 §3): /metrics scrape time with 100 speakers, and the exporter's
CPU when idle, each next to a same-run peer.

    .venv/bin/python -m bench metrics-scrape      (or: python -m bench.metrics_scrape [--scrapes N])

Setup (one machine; the numbers that matter are the ratios, the machine is shared):

* a private dbus-daemon (core.sim.daemon.PrivateBus) and a publisher process owning org.bluez:
  the fake BlueZ with 100 paired, streaming speakers on two adapters (core.sim.scenario
  build_load), nothing changing after the start;
* an event log holding one microphone probe that heard all 100 speakers (latency and offset
  series) and dropouts: every 4th speaker 6 periodic link drops (period and next-drop series),
  every 7th one transport drop, so every per-speaker family has series (~1,250 samples);
* the exporter: `btmon-tui watch --json --bus ADDRESS --db LOG --metrics 127.0.0.1:0`, the real
  command, so every scrape takes the Monitor's snapshot on its loop (core.metrics.on_loop);
* peer 1 (scrape): a plain prometheus-client process serving a registry of static metrics
  (Gauges, and one Info and one Counter as the real families) holding the very series of the
  exporter's first scrape: what a hand-written exporter would serve, with the same bytes;
* peer 2 (idle CPU): `btmon-tui watch --json` of the same fleet without --metrics.

1. Scrape time: SCRAPES scrapes of each format (text 0.0.4, OpenMetrics, OpenMetrics gzipped:
   what Prometheus asks for) from each server, interleaved (exporter and peer take turns going
   first), over a fresh HTTP connection each, timed from connect to the last body byte. Also
   each server's CPU per scrape (/proc utime+stime over the phase / scrapes served).
   Target (issue 15): exporter p99 <= 100 ms in every format.
2. Idle CPU: both `watch` processes at once, IDLE_S with no scrape (nothing changes), then
   SCRAPED_S with the exporter scraped every 15 s (Prometheus' default interval). CPU % of a
   core from /proc/PID/stat. Target (this bench's, the issue names none): exporter <= 1 % of a
   core in both windows.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import http.client
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    CLK_TCK,
    CpuWindow,
    btmon_command,
    child_env,
    cpu_seconds,
    fmt,
    log,
    percentile,
    read_line,
    stop_process,
    verdict,
)

SPEAKERS = 100
SCRAPES = 250
WARMUP = 20
IDLE_S = 20.0
SCRAPED_S = 30.0
SCRAPE_INTERVAL_S = 15.0
TARGET_P99_MS = 100.0
TARGET_IDLE_CPU_PCT = 1.0
START_S = 30.0

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
#: Prometheus' own Accept header (scrape_protocols default, 2.x/3.x), sent with gzip.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)
#: name -> (Accept, gzip?)
FORMATS: dict[str, tuple[str | None, bool]] = {
    "text 0.0.4": (None, False),
    "OpenMetrics": (OPENMETRICS, False),
    "OpenMetrics gzip (as Prometheus)": (PROMETHEUS_ACCEPT, True),
}


# -- the fleet's history -------------------------------------------------------------------
def write_history(path: Path, addresses: list[str]) -> None:
    """A probe that heard every speaker, and dropouts of some, in the event log at `path`."""
    from core.eventlog.store import EventStore
    from core.fleet.events import DropoutEvent, Event, ProbeEvent
    from core.fleet.model import SpeakerProbe

    now = time.time()
    events: list[Event] = []
    for index, address in enumerate(addresses):
        if index % 4 == 0:
            t = now - 30.0
            for _ in range(6):
                t -= 282.0
                events.append(DropoutEvent(t, address, "link", start_t=t))
                events.append(DropoutEvent(t + 2, address, "link", 2.0, "end", t + 2, start_t=t))
        if index % 7 == 0:
            t = now - 1400.0 - index
            events.append(DropoutEvent(t, address, "transport", start_t=t))
    latencies = [150.0 + (i * 37) % 60 for i in range(len(addresses))]
    median = sorted(latencies)[len(latencies) // 2]
    results = tuple(
        SpeakerProbe(a, f"Speaker {i:03d}", True, latency_ms=lat, offset_ms=lat - median)
        for i, (a, lat) in enumerate(zip(addresses, latencies, strict=True))
    )
    t = now - 60.0
    events.append(ProbeEvent(t, results, spread_ms=max(latencies) - min(latencies), played_t=t - 1))
    events.sort(key=lambda e: e.t)
    store = EventStore(path, retention_days=30)
    store.open()
    store.append(events)
    if not store.close():
        raise RuntimeError(f"could not write the event log {path}")


# -- child: the publisher (owns org.bluez) -------------------------------------------------
async def _publisher(address: str, speakers: int) -> None:
    from dbus_next.aio import MessageBus

    from core.sim.dbus_compat import patch_dbus_next_eagain
    from core.sim.fake_bluez import FakeBluez
    from core.sim.objtree import ObjectTree
    from core.sim.scenario import build_load

    patch_dbus_next_eagain()
    bus = await MessageBus(bus_address=address).connect()
    fake = FakeBluez(ObjectTree(bus))
    addresses = build_load(fake, speakers)
    await bus.request_name("org.bluez")
    print(json.dumps({"addresses": addresses}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)  # stay on the bus until told
    bus.disconnect()


# -- child: the peer exporter --------------------------------------------------------------
def _peer(openmetrics_file: str) -> None:
    """Serve static prometheus-client metrics holding the series of an OpenMetrics scrape."""
    import threading

    from prometheus_client import (
        CollectorRegistry,
        Counter,
        Gauge,
        Info,
        disable_created_metrics,
        start_http_server,
    )
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    disable_created_metrics()  # the exporter has no _created series either
    registry = CollectorRegistry(auto_describe=False)
    series = 0
    text = Path(openmetrics_file).read_text()
    for family in text_string_to_metric_families(text):
        if family.type == "info":
            labelnames = ["address"]
            info = Info(family.name, family.documentation, labelnames, registry=registry)
            for s in family.samples:
                extra = {k: v for k, v in s.labels.items() if k not in labelnames}
                info.labels(*[s.labels[k] for k in labelnames]).info(extra)
                series += 1
            continue
        labelnames = list(family.samples[0].labels)
        if family.type == "counter":
            metric: Any = Counter(
                family.name, family.documentation, labelnames, registry=registry, unit=family.unit
            )
        else:
            metric = Gauge(
                family.name, family.documentation, labelnames, registry=registry, unit=family.unit
            )
        for s in family.samples:
            child = metric.labels(*[s.labels[k] for k in labelnames]) if labelnames else metric
            if family.type == "counter":
                child.inc(s.value)
            else:
                child.set(s.value)
            series += 1
    server, _thread = start_http_server(0, "127.0.0.1", registry)
    print(json.dumps({"port": server.server_address[1], "series": series}), flush=True)
    threading.Event().wait()  # until terminated


# -- scraping ------------------------------------------------------------------------------
def scrape(port: int, accept: str | None, gz: bool) -> tuple[float, bytes, str]:
    """(seconds, body as sent, Content-Type) of one GET /metrics over a fresh connection."""
    headers = {}
    if accept:
        headers["Accept"] = accept
    if gz:
        headers["Accept-Encoding"] = "gzip"
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics", headers=headers)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    took = time.perf_counter() - t0
    if response.status != 200:
        raise RuntimeError(f"scrape of port {port}: HTTP {response.status}: {body[:200]!r}")
    if gz and response.headers.get("Content-Encoding") != "gzip":
        raise RuntimeError(f"port {port} did not gzip")
    return took, body, response.headers.get("Content-Type", "")


def plain(body: bytes, gz: bool) -> str:
    return (gzip.decompress(body) if gz else body).decode()


def samples_of(text: str) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def stats_ms(values: list[float]) -> dict[str, float]:
    ms = [v * 1000.0 for v in values]
    return {
        "n": float(len(ms)),
        "p50": percentile(ms, 50),
        "p95": percentile(ms, 95),
        "p99": percentile(ms, 99),
        "max": max(ms),
    }


class Watch:
    """One `btmon-tui watch --json ...` with stdout and stderr in files."""

    def __init__(self, tmp: Path, name: str, args: list[str], env: dict[str, str]) -> None:
        self.err = tmp / f"{name}.stderr"
        self.out = tmp / f"{name}.stdout"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [*btmon_command(), "watch", "--json", *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
            )

    def wait_for(self, what: str, where: str = "stderr") -> str:
        path = self.err if where == "stderr" else self.out
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            for line in path.read_text(errors="replace").splitlines():
                if what in line:
                    return line
            if self.proc.poll() is not None:
                raise RuntimeError(f"watch ended: {self.err.read_text()[-1000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"watch did not say {what!r} in {START_S} s")


def run(scrapes: int = SCRAPES, idle_s: float = IDLE_S, scraped_s: float = SCRAPED_S) -> dict:
    from core.sim.daemon import PrivateBus

    py = sys.executable
    tmp = Path(tempfile.mkdtemp(prefix="btmon-bench-metrics-"))
    env = child_env({"XDG_STATE_HOME": str(tmp / "state")})
    bus = PrivateBus()
    procs: list[subprocess.Popen[bytes]] = []
    res: dict[str, Any] = {"speakers": SPEAKERS}
    try:
        address = bus.start()
        pub = subprocess.Popen(
            [py, "-m", "bench.metrics_scrape", "--role", "publisher", "--address", address],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        procs.append(pub)
        hello = read_line(pub, 30)
        if not hello:
            raise RuntimeError("publisher did not start")
        addresses = json.loads(hello)["addresses"]
        write_history(tmp / "exporter.sqlite3", addresses)
        shutil.copy(tmp / "exporter.sqlite3", tmp / "peer.sqlite3")

        exporter = Watch(
            tmp,
            "exporter",
            ["--bus", address, "--db", str(tmp / "exporter.sqlite3"), "--metrics", "127.0.0.1:0"],
            env,
        )
        procs.append(exporter.proc)
        url = exporter.wait_for("btmon-tui: metrics on").split()[-1]
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        exporter.wait_for('"type":"snapshot"', "stdout")
        deadline = time.monotonic() + START_S
        while True:  # until the scrape has every speaker, streaming, and the log's history
            _, body, _ = scrape(port, OPENMETRICS, False)
            om = body.decode()
            if (
                f"btmon_fleet_streaming {SPEAKERS}" in om
                and "btmon_speaker_latency_seconds{" in om
                and "btmon_speaker_dropout_period_seconds{" in om
            ):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the exporter's scrape never showed the fleet: {om[-500:]}")
            time.sleep(0.2)
        (tmp / "first.om").write_text(om)
        res["exporter_samples"] = samples_of(om)

        log("metrics-scrape: peer exporter")
        peer = subprocess.Popen(
            [py, "-m", "bench.metrics_scrape", "--role", "peer", "--file", str(tmp / "first.om")],
            stdout=subprocess.PIPE,
            env=env,
        )
        procs.append(peer)
        line = read_line(peer, 30)
        if not line:
            raise RuntimeError("peer exporter did not start")
        peer_port = json.loads(line)["port"]
        _, peer_body, _ = scrape(peer_port, OPENMETRICS, False)
        res["peer_samples"] = samples_of(peer_body.decode())

        servers = {"exporter": port, "peer": peer_port}
        pids = {"exporter": exporter.proc.pid, "peer": peer.pid}
        res["bytes"] = {}
        for fname, (accept, gz) in FORMATS.items():
            for who, p in servers.items():
                _, body, ctype = scrape(p, accept, gz)
                res["bytes"][(fname, who)] = len(body)
                if accept and "openmetrics" not in ctype:
                    raise RuntimeError(f"{who} answered {ctype!r} to {accept!r}")
        for _ in range(WARMUP):
            for p in servers.values():
                for accept, gz in FORMATS.values():
                    scrape(p, accept, gz)

        log(f"metrics-scrape: {scrapes} scrapes x {len(FORMATS)} formats x 2 servers")
        times: dict[tuple[str, str], list[float]] = {(f, w): [] for f in FORMATS for w in servers}
        cpu0 = {who: cpu_seconds(pid) for who, pid in pids.items()}
        t0 = time.monotonic()
        for i in range(scrapes):
            order = list(servers) if i % 2 == 0 else list(reversed(servers))
            for fname, (accept, gz) in FORMATS.items():
                for who in order:
                    took, _, _ = scrape(servers[who], accept, gz)
                    times[(fname, who)].append(took)
        wall = time.monotonic() - t0
        served = scrapes * len(FORMATS)
        res["scrape_wall_s"] = wall
        res["cpu_ms_per_scrape"] = {
            who: 1000.0 * (cpu_seconds(pid) - cpu0[who]) / served for who, pid in pids.items()
        }
        res["scrape"] = {key: stats_ms(values) for key, values in times.items()}
        stop_process(peer)

        log("metrics-scrape: idle CPU, watch --json peer")
        plain_args = ["--bus", address, "--db", str(tmp / "peer.sqlite3")]
        plain_watch = Watch(tmp, "plain", plain_args, env)
        procs.append(plain_watch.proc)
        plain_watch.wait_for('"type":"snapshot"', "stdout")
        time.sleep(3.0)  # both settle (first snapshots, history loaded)
        window = CpuWindow({"exporter": exporter.proc.pid, "plain": plain_watch.proc.pid})
        window.start()
        time.sleep(idle_s)
        res["idle"] = window.stop()
        log("metrics-scrape: scraped every 15 s")
        window.start()
        next_at, scraped = time.monotonic(), 0
        end = next_at + scraped_s
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if now >= next_at:
                scrape(port, PROMETHEUS_ACCEPT, True)
                scraped += 1
                next_at += SCRAPE_INTERVAL_S
            time.sleep(max(0.0, min(next_at, end) - time.monotonic()))
        res["scraped"] = window.stop()
        res["scraped"]["scrapes"] = scraped
        for name, w in (("exporter", exporter), ("plain", plain_watch)):
            if w.proc.poll() is not None:
                raise RuntimeError(f"{name} watch ended early: {w.err.read_text()[-500:]}")
        assert pub.stdin is not None
        pub.stdin.write(b"stop\n")
        pub.stdin.flush()
    finally:
        for proc in reversed(procs):
            stop_process(proc)
        bus.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def report(res: dict[str, Any]) -> str:
    scr = res["scrape"]
    out = [
        f"{res['speakers']} paired speakers; exporter {res['exporter_samples']} samples, peer "
        f"{res['peer_samples']} (static prometheus-client metrics of the same series); "
        f"{int(scr[(next(iter(FORMATS)), 'exporter')]['n'])} scrapes per format and server, "
        f"fresh connection each, {fmt(res['scrape_wall_s'], 0)} s in all",
        "",
        "| format | server | bytes | p50 ms | p95 ms | p99 ms | max ms | p99 vs peer |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ok_all = True
    for fname in FORMATS:
        e, p = scr[(fname, "exporter")], scr[(fname, "peer")]
        ok_all = ok_all and e["p99"] <= TARGET_P99_MS
        for who, s in (("`watch --metrics`", e), ("peer", p)):
            ratio = f"x{fmt(e['p99'] / p['p99'], 2)}" if s is e else ""
            key = "exporter" if s is e else "peer"
            out.append(
                f"| {fname} | {who} | {res['bytes'][(fname, key)]:,} | {fmt(s['p50'], 2)} | "
                f"{fmt(s['p95'], 2)} | {fmt(s['p99'], 2)} | {fmt(s['max'], 2)} | {ratio} |"
            )
    cpu = res["cpu_ms_per_scrape"]
    out.append(
        f"\nserver CPU per scrape (all formats): exporter {fmt(cpu['exporter'], 2)} ms, peer "
        f"{fmt(cpu['peer'], 2)} ms, x{fmt(cpu['exporter'] / cpu['peer'], 2)}"
    )
    out.append(
        f"target: exporter p99 <= {fmt(TARGET_P99_MS, 0)} ms in every format: "
        f"**{verdict(ok_all)}**\n"
    )
    idle, scraped = res["idle"], res["scraped"]
    out += [
        "| window | `watch --json --metrics` CPU % | `watch --json` CPU % | extra (pp) "
        "| ratio | machine busy % |",
        "|---|---|---|---|---|---|",
    ]
    ok_cpu = True
    for label, w in (
        (f"idle, no scrape, {fmt(idle['wall_s'], 0)} s", idle),
        (
            f"scraped every {fmt(SCRAPE_INTERVAL_S, 0)} s ({scraped['scrapes']} scrapes), "
            f"{fmt(scraped['wall_s'], 0)} s",
            scraped,
        ),
    ):
        e, p = w["exporter_cpu_pct"], w["plain_cpu_pct"]
        ok_cpu = ok_cpu and e <= TARGET_IDLE_CPU_PCT
        ratio = f"x{fmt(e / p, 2)}" if p > 0 else "- (peer 0)"
        out.append(
            f"| {label} | {fmt(e, 3)} | {fmt(p, 3)} | {fmt(e - p, 3)} | {ratio} | "
            f"{fmt(w['machine_busy_pct'], 0)} |"
        )
    out.append(
        f"\n(CPU from /proc utime+stime in {1000 // CLK_TCK} ms ticks: one tick over "
        f"{fmt(idle['wall_s'], 0)} s is {fmt(100.0 / CLK_TCK / idle['wall_s'], 3)} % of a core.) "
        f"target (this bench's): exporter <= {fmt(TARGET_IDLE_CPU_PCT, 0)} % of a "
        f"core in both windows: **{verdict(ok_cpu)}**"
    )
    res["pass"] = ok_all and ok_cpu
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.metrics_scrape", description=__doc__)
    parser.add_argument("--role", choices=["bench", "publisher", "peer"], default="bench")
    parser.add_argument("--address", default="")
    parser.add_argument("--file", default="")
    parser.add_argument("--scrapes", type=int, default=SCRAPES)
    parser.add_argument("--idle", type=float, default=IDLE_S, help="idle window, s")
    parser.add_argument("--scraped", type=float, default=SCRAPED_S, help="scraped window, s")
    args = parser.parse_args(argv)
    if args.role == "publisher":
        asyncio.run(_publisher(args.address, SPEAKERS))
        return 0
    if args.role == "peer":
        _peer(args.file)
        return 0
    log("metrics-scrape: running")
    res = run(args.scrapes, args.idle, args.scraped)
    print(report(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
