"""Prometheus metrics (issue 15 §3): the Monitor's current snapshot as metric families, served
on /metrics by the official client library (`--metrics [ADDR:]PORT`).

A custom collector, not counters and gauges kept up to date: every scrape reads the snapshot
the TUI and `watch --json` are built from (Monitor.snapshot: the same speakers, verdicts and
fleet counts), so a speaker that vanished is simply absent from the next scrape. The scrape
runs on the HTTP server's thread; the snapshot is taken on the Monitor's own event loop
(`on_loop`), so it is consistent and never raced by the loop that changes it.

The names are the contract of DESIGN §4.2 (metrics). Absent values are absent series, never
NaN; no sample carries a timestamp (Prometheus stamps the scrape).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)

from core.fleet.model import FleetSnapshot, SourceState, SourceStatus, Speaker, Verdict
from core.hosts import LOCAL
from core.monitor import Monitor

__all__ = [
    "DEFAULT_HOST",
    "METRICS",
    "SCRAPE_TIMEOUT_S",
    "FleetCollector",
    "FleetView",
    "MetricsError",
    "MetricsServer",
    "families",
    "on_loop",
    "parse_listen",
    "view_of",
]

#: Every sample name the collector may expose (DESIGN §4.2, metrics): the contract. Series
#: whose value is unknown now are left out; these are all there can be.
METRICS: Final = frozenset(
    {
        "btmon_speaker_info",
        "btmon_speaker_verdict",
        "btmon_speaker_connected",
        "btmon_speaker_media_packets_per_second",
        "btmon_speaker_dropouts_total",
        "btmon_speaker_dropout_period_seconds",
        "btmon_speaker_dropout_next_timestamp_seconds",
        "btmon_speaker_latency_seconds",
        "btmon_speaker_offset_seconds",
        "btmon_speaker_delay_seconds",
        "btmon_source_up",
        "btmon_fleet_speakers",
        "btmon_fleet_connected",
        "btmon_fleet_streaming",
        "btmon_fleet_spread_seconds",
    }
)
#: Where `--metrics PORT` listens: every IPv4 interface, as exporters do (Prometheus usually
#: scrapes from another host); `--metrics 127.0.0.1:PORT` keeps it on this host.
DEFAULT_HOST: Final = "0.0.0.0"
#: How long a scrape waits for the Monitor's loop to hand over a snapshot (s); a loop that
#: busy is itself a problem worth a failed scrape (HTTP 500, `up` stays 1 but no samples).
SCRAPE_TIMEOUT_S: Final = 5.0


class MetricsError(Exception):
    """`--metrics` cannot be served: one line naming the problem and the fix."""


@dataclass(frozen=True, slots=True)
class FleetView:
    """What one scrape reads, taken at one instant on the Monitor's loop."""

    snapshot: FleetSnapshot
    #: Each source's status by name (Monitor.source_statuses): BlueZ, HCI, BLE, …
    sources: Mapping[str, SourceStatus]


def view_of(monitor: Monitor) -> FleetView:
    """The Monitor's snapshot and its sources' statuses (call on the Monitor's loop)."""
    return FleetView(monitor.snapshot(), monitor.source_statuses())


def on_loop(
    monitor: Monitor, loop: asyncio.AbstractEventLoop, timeout: float = SCRAPE_TIMEOUT_S
) -> Callable[[], FleetView]:
    """A reader for another thread: each call takes `view_of(monitor)` on `loop`, the loop
    the Monitor runs on, and waits for it at most `timeout` s (TimeoutError after)."""

    async def take() -> FleetView:
        return view_of(monitor)

    def read() -> FleetView:
        return asyncio.run_coroutine_threadsafe(take(), loop).result(timeout)

    return read


def _seconds(ms: float) -> float:
    return ms / 1000.0


def _fleet_speakers(snapshot: FleetSnapshot) -> list[Speaker]:
    """The speakers the metrics describe: paired speakers only (Speaker.in_fleet, the rule of
    the fleet line: `--all`'s unpaired devices and other devices never appear), one per
    address (a speaker paired on two adapters: the connected one, else the first)."""
    chosen: dict[str, Speaker] = {}
    for speaker in snapshot.speakers:
        if not speaker.in_fleet:
            continue
        held = chosen.get(speaker.key)
        if held is None or (speaker.connected and not held.connected):
            chosen[speaker.key] = speaker
    return list(chosen.values())


def families(view: FleetView, counted: dict[tuple[str, str], int] | None = None) -> list[Metric]:
    """Every metric family of one scrape, from one view. `counted`: the highest dropout count
    exported so far per (address, kind), kept across scrapes and updated here, so that the
    counter never goes down (a dropout taken back, e.g. an operator's resync, stays counted:
    a counter that falls reads as a restart to rate() and increase())."""
    counted = {} if counted is None else counted
    snap = view.snapshot
    speakers = _fleet_speakers(snap)
    # Watching hosts (`--host`): every speaker series also says whose it is.
    at = ["address", "host"] if snap.hosts else ["address"]
    info = InfoMetricFamily(
        "btmon_speaker",
        "A speaker of the fleet: its name, adapter and A2DP codec",
        labels=at,
    )
    verdict = GaugeMetricFamily(
        "btmon_speaker_verdict",
        "1 for the speaker's current verdict (DESIGN §3), 0 for every other verdict",
        labels=[*at, "verdict"],
    )
    connected = GaugeMetricFamily(
        "btmon_speaker_connected", "1 when BlueZ has the speaker connected", labels=at
    )
    pps = GaugeMetricFamily(
        "btmon_speaker_media_packets_per_second",
        "A2DP media packets per second seen on HCI (only with an HCI source)",
        labels=at,
    )
    dropouts = CounterMetricFamily(
        "btmon_speaker_dropouts",
        "Dropouts seen (or loaded from the event log) by kind: link, transport, probe",
        labels=[*at, "kind"],
    )
    period = GaugeMetricFamily(
        "btmon_speaker_dropout_period_seconds",
        "The period of the speaker's dropouts, when one is found",
        labels=at,
        unit="seconds",
    )
    next_drop = GaugeMetricFamily(
        "btmon_speaker_dropout_next_timestamp_seconds",
        "When the next dropout is expected (Unix time), when a period is found",
        labels=at,
        unit="seconds",
    )
    latency = GaugeMetricFamily(
        "btmon_speaker_latency_seconds",
        "The speaker's latency as the last probe heard it",
        labels=at,
        unit="seconds",
    )
    offset = GaugeMetricFamily(
        "btmon_speaker_offset_seconds",
        "The speaker's latency minus the fleet's median latency, from the last probe",
        labels=at,
        unit="seconds",
    )
    delay = GaugeMetricFamily(
        "btmon_speaker_delay_seconds",
        "The delay the last alignment gave the speaker's stage in the fleet output",
        labels=at,
        unit="seconds",
    )
    delays = snap.alignment.delays_ms if snap.alignment is not None else {}
    heard = {}
    if snap.drift is not None:
        heard = {r.address: r for r in snap.drift.results if r.detected}
    for speaker in speakers:
        address = speaker.address
        ids = [address, speaker.host or LOCAL] if snap.hosts else [address]
        here = speaker.host is None  # probes and alignments are this room's
        codec = speaker.transport.codec if speaker.transport and speaker.transport.codec else ""
        info.add_metric(ids, {"name": speaker.name, "adapter": speaker.adapter, "codec": codec})
        for value in Verdict:
            verdict.add_metric([*ids, value.value], 1.0 if speaker.verdict == value else 0.0)
        connected.add_metric(ids, 1.0 if speaker.connected else 0.0)
        if speaker.media_pps is not None:
            pps.add_metric(ids, speaker.media_pps)
        summary = snap.dropouts.get(speaker.key)
        if summary is not None:
            for kind, count in sorted(summary.kinds.items()):
                key = (speaker.key, kind)
                counted[key] = max(count, counted.get(key, 0))
                dropouts.add_metric([*ids, kind], float(counted[key]))
            if summary.period_s is not None:
                period.add_metric(ids, summary.period_s)
                if summary.next_expected is not None:
                    next_drop.add_metric(ids, summary.next_expected)
        probe = heard.get(address) if here else None
        if probe is not None and probe.latency_ms is not None:
            latency.add_metric(ids, _seconds(probe.latency_ms))
        if probe is not None and probe.offset_ms is not None:
            offset.add_metric(ids, _seconds(probe.offset_ms))
        if here and address in delays:
            delay.add_metric(ids, _seconds(delays[address]))
    up = GaugeMetricFamily(
        "btmon_source_up",
        "1 when the source (BlueZ, HCI, BLE, …) is connected and working, else 0",
        labels=["source"],
    )
    for name, status in sorted(view.sources.items()):
        up.add_metric([name], 1.0 if status.state == SourceState.CONNECTED else 0.0)
    counts = snap.counts
    out: list[Metric] = [
        info,
        verdict,
        connected,
        pps,
        dropouts,
        period,
        next_drop,
        latency,
        offset,
        delay,
        up,
        GaugeMetricFamily(
            "btmon_fleet_speakers", "Paired speakers in the fleet", value=counts.speakers
        ),
        GaugeMetricFamily(
            "btmon_fleet_connected",
            "Paired speakers connected (the fleet line's count)",
            value=counts.connected,
        ),
        GaugeMetricFamily(
            "btmon_fleet_streaming",
            "Paired speakers streaming (the fleet line's count)",
            value=counts.streaming,
        ),
    ]
    if snap.drift is not None and snap.drift.spread_ms is not None:
        out.append(
            GaugeMetricFamily(
                "btmon_fleet_spread_seconds",
                "Latest probe: the latest minus the earliest speaker's latency",
                value=_seconds(snap.drift.spread_ms),
                unit="seconds",
            )
        )
    return [family for family in out if family.samples]  # an empty family says nothing


class FleetCollector:
    """A prometheus_client collector over a FleetView reader: every scrape is one view."""

    def __init__(self, read: Callable[[], FleetView] | None = None) -> None:
        #: Where views come from; None until the server serves (nothing to say yet).
        self.read = read
        #: The dropout counters' highest values so far (see `families`).
        self._counted: dict[tuple[str, str], int] = {}
        #: Scrapes may run at once (a thread each): one at a time updates the counters.
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        if self.read is None:
            return
        view = self.read()
        with self._lock:
            out = families(view, self._counted)
        yield from out


class _Quiet(WSGIRequestHandler):
    """No access log on stderr (it would run through the TUI or `watch`'s output)."""

    def log_message(self, format: str, *args: object) -> None:
        return None


def parse_listen(text: str) -> tuple[str, int]:
    """'9108' -> (DEFAULT_HOST, 9108); '127.0.0.1:9108', '[::1]:9108', ':9108' likewise;
    port 0 takes a free port (the server says which). MetricsError when it is not one."""
    host, colon, port_text = text.strip().rpartition(":")
    if colon and not host:
        host = DEFAULT_HOST
    host = host.strip("[]") if host else DEFAULT_HOST
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise MetricsError(
            f"--metrics {text!r} is not a port: give PORT or ADDR:PORT, e.g. 9108 or 127.0.0.1:9108"
        )
    return host, int(port_text)


class MetricsServer:
    """/metrics over HTTP from a private registry holding only the fleet's collector (no
    process or platform collectors: the host's own exporter covers the process, and they
    would put numbers that are not the fleet's into the contract)."""

    def __init__(self, listen: str) -> None:
        """Bind `listen` ([ADDR:]PORT) now, so a bad value fails before anything starts;
        serving starts with `serve`. Raises MetricsError (one line) when it cannot bind."""
        host, port = parse_listen(listen)
        self.collector = FleetCollector()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        try:
            family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        except (socket.gaierror, UnicodeError):
            raise MetricsError(f"--metrics: {host!r} is not an address to listen on") from None

        class Server(ThreadingWSGIServer):
            address_family = family

        try:
            self._httpd = make_server(
                host, port, make_wsgi_app(self.registry), Server, handler_class=_Quiet
            )
        except OSError as exc:
            raise MetricsError(_bind_problem(host, port, exc)) from None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the one taken when 0 was asked for)."""
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._httpd.server_address[0])
        shown = "127.0.0.1" if host == "0.0.0.0" else f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}/metrics"

    def serve(self, read: Callable[[], FleetView]) -> None:
        """Answer scrapes from now on (on a daemon thread), each with one `read()` view."""
        self.collector.read = read
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="btmon-metrics", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop answering and free the port (waits for the serving thread, < 0.5 s)."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread = None
        self._httpd.server_close()
        self.collector.read = None


def _bind_problem(host: str, port: int, exc: OSError) -> str:
    where = f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return f"--metrics: {where} is in use (another exporter?): pick another port, e.g. 9108"
    if exc.errno == errno.EACCES:
        return (
            f"--metrics: port {port} needs root (ports below 1024 are privileged): "
            "use 1024 or above, e.g. 9108"
        )
    if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        return f"--metrics: {host} is not an address of this host: use 127.0.0.1 or 0.0.0.0"
    return f"--metrics: cannot listen on {where}: {exc.strerror or exc}"
