"""How hosts are named and reached (--host, [hosts.NAME]), what is refused, and what a host's
records do to this machine's view: speakers kept apart by host, dropouts per host."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import ConfigError, parse_config
from core.fleet.model import SourceState, SourceStatus, Verdict
from core.hosts import (
    HostError,
    HostSpec,
    default_command,
    host_parts,
    parse_host,
    shown_status,
    why_ended,
)
from core.monitor import Monitor
from core.sources import Record, Source
from tests.cli.conftest import run_cli


def test_a_bare_name_goes_over_ssh_without_asking_for_a_password() -> None:
    spec = parse_host("lab")
    assert spec.name == "lab"
    assert spec.command == default_command("lab")
    assert spec.command[0] == "ssh" and spec.command[-2:] == ("lab", "btmon-tui")
    assert "BatchMode=yes" in spec.command
    assert spec.argv("watch", "--json")[-2:] == ["watch", "--json"]


def test_a_command_is_split_as_a_shell_would() -> None:
    spec = parse_host("lab=ssh -p 2222 'pi@lab' /opt/btmon/bin/btmon-tui")
    assert spec.command == ("ssh", "-p", "2222", "pi@lab", "/opt/btmon/bin/btmon-tui")
    assert parse_host("local") == HostSpec("local")
    assert parse_host("local").is_local


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "is not a host name"),
        ("my lab", "is not a host name"),
        ("lab=", "the command is empty"),
        ("lab=ssh 'lab", "cannot read the command"),
        ("local=ssh x", "is this machine"),
    ],
)
def test_a_bad_host_is_refused_with_how_to_write_it(text: str, words: str) -> None:
    with pytest.raises(HostError, match=words):
        parse_host(text)


def test_the_config_names_hosts_and_their_commands() -> None:
    config = parse_config(
        '[hosts.lab]\ncommand = "ssh -p 2222 pi@lab btmon-tui"\n[hosts.foyer]\n[hosts.local]\n',
        Path("c.toml"),
    )
    assert [h.name for h in config.hosts] == ["lab", "foyer", "local"]
    assert config.hosts[0].command == ("ssh", "-p", "2222", "pi@lab", "btmon-tui")
    assert config.hosts[1].command == default_command("foyer")
    assert config.hosts[2].is_local
    with pytest.raises(ConfigError, match=r"c.toml:2: unknown key hosts.lab.cmd"):
        parse_config('[hosts.lab]\ncmd = "ssh lab"\n', Path("c.toml"))
    with pytest.raises(ConfigError, match="must be a string"):
        parse_config("[hosts.lab]\ncommand = 3\n", Path("c.toml"))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--host", "my lab", "watch"], "is not a host name"),
        (["--host", "lab=true", "--host", "lab=false", "watch"], "given twice"),
        (["--host", "lab=true", "--demo", "watch"], "add --host local"),
        (["--host", "lab=true", "--bus", "session", "watch"], "add --host local"),
        (["--host", "lab=true", "probe"], "--host goes with the TUI and `watch`"),
        (["--host", "lab=true", "--replay", "x.db", "watch"], "--replay plays a recording"),
    ],
)
def test_contradictions_with_hosts_exit_2_in_one_line(args: list[str], words: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_why_a_session_ended_names_the_cause() -> None:
    spec = parse_host("lab")
    assert "unreachable" in why_ended(spec, 255, ["ssh: connect to host lab: timed out"], False)
    assert "SSH session was lost" in why_ended(spec, 255, ["Broken pipe"], True)
    assert "older btmon-tui" in why_ended(spec, 2, ["error: unrecognized arguments: --json"], False)
    assert "not found on lab" in why_ended(spec, 127, [], False)
    assert "its watch ended (exit 0)" in why_ended(spec, 0, [], True)


class _Feeder(Source):
    """A host's records fed by hand (the real source runs a command: tests/hosts/test_hosts)."""

    remote = True

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def status(self) -> SourceStatus:
        return SourceStatus(SourceState.CONNECTED, f"{self.name}: ok")

    async def run(self) -> None:
        return None

    def view(self, snapshot):  # type: ignore[no-untyped-def]
        from dataclasses import replace

        return replace(snapshot, hosts=(*snapshot.hosts, (self.name, self.status)))


def _speaker(address: str, host: str, verdict: str, connected: bool = True) -> dict:  # type: ignore[type-arg]
    return {
        "address": address,
        "name": "Bar",
        "adapter": "hci0",
        "paired": True,
        "connected": connected,
        "verdict": verdict,
        "transport": None,
        "host": host,
    }


def test_the_same_speaker_on_two_hosts_is_two_rows_with_their_own_dropouts() -> None:
    lab, foyer = _Feeder("lab"), _Feeder("foyer")
    monitor = Monitor(sources=[lab, foyer], clock=lambda: 1000.0)
    address = "AA:BB:CC:DD:EE:01"
    for host, verdict in (("lab", "streaming"), ("foyer", "disconnected")):
        snapshot = {"type": "snapshot", "t": 990.0, "host": host}
        row = _speaker(address, host, verdict, connected=verdict == "streaming")
        (lab if host == "lab" else foyer).sink.feed(Record({**snapshot, "speakers": [row]}))
    for start in (100.0, 382.0, 664.0):  # lab's speaker drops every 282 s
        for phase in ("start", "end"):
            lab.sink.feed(
                Record(
                    {
                        "type": "dropout",
                        "t": start + (3 if phase == "end" else 0),
                        "phase": phase,
                        "address": address,
                        "kind": "link",
                        "start_t": start,
                        "host": "lab",
                        **({"end_t": start + 3, "duration_s": 3.0} if phase == "end" else {}),
                    }
                )
            )
    snap = monitor.snapshot()
    rows = {s.host: s for s in snap.speakers}
    assert set(rows) == {"lab", "foyer"}
    assert rows["lab"].verdict == Verdict.STREAMING
    assert rows["foyer"].verdict == Verdict.DISCONNECTED
    assert rows["lab"].key == f"lab/{address}"
    assert snap.dropouts[rows["lab"].key].count == 3
    assert rows["foyer"].key not in snap.dropouts
    assert address not in snap.dropouts  # nothing under the bare address (this machine's)
    assert (snap.counts.speakers, snap.counts.connected, snap.counts.streaming) == (2, 1, 1)
    assert host_parts(snap) == [
        ("lab", "1/1 streaming", None),
        ("foyer", "0/0 streaming", None),
    ]
    # A new snapshot from lab without the speaker: it is gone from lab, not from foyer.
    lab.sink.feed(Record({"type": "snapshot", "t": 1000.0, "host": "lab", "speakers": []}))
    assert [s.host for s in monitor.snapshot().speakers] == ["foyer"]


def test_the_status_bar_names_the_host_that_is_away() -> None:
    lab, foyer = _Feeder("lab"), _Feeder("foyer")
    monitor = Monitor(sources=[lab, foyer], clock=lambda: 1000.0)
    snap = monitor.snapshot()
    assert shown_status(snap).state == SourceState.CONNECTED
    away = SourceStatus(SourceState.ERROR, "foyer: unreachable: ssh: connect … refused")
    from dataclasses import replace

    snap = replace(snap, hosts=(("lab", lab.status), ("foyer", away)))
    assert shown_status(snap) == away
    assert host_parts(snap)[1] == ("foyer", "away", away)


def test_a_hosts_logged_dropouts_keep_its_period_after_a_restart() -> None:
    """The local log holds each host's dropout lines with their `host`; read back at start
    they are that host's history, not this machine's nor another host's."""
    monitor = Monitor(sources=[_Feeder("lab")], clock=lambda: 1000.0)
    address = "AA:BB:CC:DD:EE:01"
    records = []
    starts = [100.0 + 282.0 * n for n in range(6)]
    for start in starts:
        base = {"address": address, "kind": "link", "start_t": start, "host": "lab"}
        records.append({"type": "dropout", "t": start, "phase": "start", **base})
        end = {"end_t": start + 3, "duration_s": 3.0}
        records.append({"type": "dropout", "t": start + 3, "phase": "end", **base, **end})
    assert monitor.load_history(records) == 2 * len(starts)
    summaries = monitor.dropout_summaries(starts[-1] + 10)
    assert set(summaries) == {f"lab/{address}"}
    assert summaries[f"lab/{address}"].count == len(starts)
    assert summaries[f"lab/{address}"].period_s == pytest.approx(282.0, abs=1.0)


def test_metrics_label_every_speaker_with_its_host_when_watching_hosts() -> None:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from core.metrics import FleetCollector, FleetView

    lab = _Feeder("lab")
    monitor = Monitor(sources=[lab], clock=lambda: 1000.0)
    address = "AA:BB:CC:DD:EE:01"
    row = _speaker(address, "lab", "streaming")
    lab.sink.feed(Record({"type": "snapshot", "t": 990.0, "host": "lab", "speakers": [row]}))
    registry = CollectorRegistry()
    registry.register(
        FleetCollector(lambda: FleetView(monitor.snapshot(), monitor.source_statuses()))
    )
    families = {
        f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())
    }
    connected = families["btmon_speaker_connected"].samples
    assert [(s.labels, s.value) for s in connected] == [({"address": address, "host": "lab"}, 1.0)]
    verdicts = families["btmon_speaker_verdict"].samples
    assert all(s.labels["host"] == "lab" for s in verdicts)
    up = {s.labels["source"]: s.value for s in families["btmon_source_up"].samples}
    assert up == {"lab": 1.0}
