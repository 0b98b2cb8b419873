"""The collector's families from hand-made snapshots: what is absent stays absent, one
series per address, and `[ADDR:]PORT` parsing."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from core.fleet.model import (
    DropoutSummary,
    FleetCounts,
    FleetSnapshot,
    SourceState,
    SourceStatus,
    Speaker,
    Transport,
    Verdict,
)
from core.metrics import DEFAULT_HOST, FleetCollector, FleetView, MetricsError, parse_listen
from tests.metrics.scrape import by_address, current_verdicts, samples

BLUEZ = SourceStatus(SourceState.CONNECTED, "")
A = "00:1A:7D:DA:71:01"


def speaker(adapter: str, connected: bool, verdict: Verdict, **kw: object) -> Speaker:
    return Speaker(
        path=f"/org/bluez/{adapter}/dev_{A.replace(':', '_')}",
        address=A,
        name="Stage Left",
        adapter=adapter,
        paired=True,
        connected=connected,
        is_speaker=True,
        verdict=verdict,
        transport=Transport("/t", "active", "AAC") if connected else None,
        battery=None,
        media_pps=None,
        last_dropout=None,
        period_s=None,
        changed_t=0.0,
        **kw,  # type: ignore[arg-type]
    )


def scrape_of(snapshot: FleetSnapshot, sources: dict[str, SourceStatus]) -> str:
    registry = CollectorRegistry()
    registry.register(FleetCollector(lambda: FleetView(snapshot, sources)))
    return generate_latest(registry).decode()


def test_one_series_per_address_the_connected_one() -> None:
    """Paired on two adapters (one link up): one series, or Prometheus rejects the scrape."""
    snap = FleetSnapshot(
        1.0,
        (speaker("hci0", False, Verdict.DISCONNECTED), speaker("hci1", True, Verdict.STREAMING)),
        (),
        BLUEZ,
        FleetCounts(2, 1, 1),
    )
    found = samples(scrape_of(snap, {"BlueZ": BLUEZ}))
    assert current_verdicts(found) == {A: "streaming"}
    assert [s.labels["adapter"] for s in found["btmon_speaker_info"]] == ["hci1"]
    assert by_address(found, "btmon_speaker_connected") == {A: 1.0}


def test_absent_values_are_absent_series() -> None:
    """No rate, no period, no probe, a source down: only what is known is exported."""
    dropouts = DropoutSummary(
        count=3, last=0.5, period_s=None, confidence=0.0, next_expected=None,
        kinds={"link": 2, "transport": 1},
    )  # fmt: skip
    snap = FleetSnapshot(
        1.0,
        (speaker("hci0", True, Verdict.STALLED),),
        (),
        BLUEZ,
        FleetCounts(1, 1, 0),
        dropouts={A: dropouts, "00:00:00:00:00:99": dropouts},  # the second one is gone
    )
    down = SourceStatus(SourceState.ERROR, "cannot read the capture")
    text = scrape_of(snap, {"BlueZ": BLUEZ, "HCI": down})
    assert "NaN" not in text
    found = samples(text)
    assert {s.labels["kind"]: s.value for s in found["btmon_speaker_dropouts_total"]} == {
        "link": 2.0,
        "transport": 1.0,
    }
    assert {s.labels["source"]: s.value for s in found["btmon_source_up"]} == {
        "BlueZ": 1.0,
        "HCI": 0.0,
    }
    for name in (
        "btmon_speaker_media_packets_per_second",
        "btmon_speaker_dropout_period_seconds",
        "btmon_speaker_dropout_next_timestamp_seconds",
        "btmon_speaker_latency_seconds",
        "btmon_fleet_spread_seconds",
    ):
        assert name not in found
        assert f"# TYPE {name}" not in text  # no empty family either


def test_the_dropout_counter_never_goes_down() -> None:
    """A dropout taken back (an operator's resync) leaves the history; the counter keeps it,
    or rate() and increase() would read the fall as a restart and count everything again."""
    counts = iter([{"link": 3}, {"link": 2}, {"link": 2, "transport": 1}, {"link": 4}])

    def view() -> FleetView:
        summary = DropoutSummary(3, 0.5, None, 0.0, None, kinds=next(counts))
        snap = FleetSnapshot(
            1.0, (speaker("hci0", True, Verdict.STREAMING),), (), BLUEZ, dropouts={A: summary}
        )
        return FleetView(snap, {})

    registry = CollectorRegistry()
    registry.register(FleetCollector(view))
    seen = []
    for _ in range(4):
        found = samples(generate_latest(registry).decode())
        seen.append({s.labels["kind"]: s.value for s in found["btmon_speaker_dropouts_total"]})
    assert seen == [
        {"link": 3.0},
        {"link": 3.0},
        {"link": 3.0, "transport": 1.0},
        {"link": 4.0},
    ]


@pytest.mark.parametrize(
    ("text", "listen"),
    [
        ("9108", (DEFAULT_HOST, 9108)),
        (":9108", (DEFAULT_HOST, 9108)),
        ("127.0.0.1:9108", ("127.0.0.1", 9108)),
        ("[::1]:9108", ("::1", 9108)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_listen_addresses(text: str, listen: tuple[str, int]) -> None:
    assert parse_listen(text) == listen


@pytest.mark.parametrize("text", ["", "x", "65536", "1.2.3.4:", "9108:", "-1", "9108.5"])
def test_not_a_port(text: str) -> None:
    with pytest.raises(MetricsError, match="is not a port"):
        parse_listen(text)
