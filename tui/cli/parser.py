"""The `btmon-tui` command line's grammar: every subcommand and option, and nothing that runs.

Kept apart from the commands so that parsing loads argparse alone; `main` then imports just the
one command module it runs (tui/cli/main.py).
"""

from __future__ import annotations

import argparse
from typing import Any

from core.hosts import HostError, HostSpec, parse_host
from tui.cli import options

EPILOG = """\
keys in the TUI: ↑/↓ select · enter details · r resync · R resync all silent · c connect
  d disconnect · esc cancel an action · p probe (drift) · l event log · a all devices
  ? help · q quit

examples:
  btmon-tui                      watch the speakers on this host (BlueZ on the system bus)
  btmon-tui --demo               the built-in demo fleet, no Bluetooth needed
  btmon-tui watch --json         JSON Lines: a snapshot, then one line per change
  btmon-tui watch --json --demo --duration 10
  btmon-tui watch --metrics 9108         Prometheus metrics on http://HOST:9108/metrics
  btmon-tui resync F4:4E:FD:10:22:04 --demo   reconnect the demo's ghost-connected speaker
  btmon-tui report --db ~/.local/state/btmon-tui/events.sqlite3   dropouts and their periods
  btmon-tui --replay events.sqlite3 --speed 20                     replay a recorded session
  btmon-tui --hci-file /tmp/hci.btsnoop   count media packets from `sudo btmon -w /tmp/hci.btsnoop`
  btmon-tui --probe-every 5m --input "USB Mic"   probe the drift every 5 minutes
  btmon-tui probe --json                  play, record and analyse one probe now
  btmon-tui align --source USB_MIC        delay the speakers in btmon_fleet until they agree
  btmon-tui snoop capture.btsnoop         media packets per speaker in a capture
"""


#: Actions on one speaker: name -> (help line, description).
ACTION_HELP = {
    "resync": (
        "disconnect and reconnect one speaker until it streams again",
        "Disconnect the speaker, reconnect it and wait until its A2DP stream runs again. "
        "Exit 0 when done (also when bluetoothd reconnected it by itself), 1 when it failed "
        "(the reason is printed), 2 on bad input.",
    ),
    "connect": (
        "connect one paired speaker and wait for its A2DP stream",
        "Connect a paired speaker (retrying when it does not answer) and wait for A2DP. "
        "Exit 0 when done, 1 when it failed (the reason is printed), 2 on bad input.",
    ),
    "disconnect": (
        "disconnect one speaker (asks first; --yes for scripts)",
        "Disconnect a speaker; this is not recorded as a dropout. Asks first on a terminal; "
        "without one, --yes is required. Exit 0 when done, 1 when it failed, 2 on bad input.",
    ),
}


#: Most coded probes played at once (each needs its own sink and a distinct code).
MAX_SPEAKERS = 32


def _add_source_args(parser: argparse.ArgumentParser, nested: bool = True) -> None:
    """The options that say where the fleet comes from; they count before or after the
    subcommand (tui/options.py)."""

    def add(*flags: str, **kwargs: Any) -> None:
        options.add(parser, nested, *flags, **kwargs)

    add(
        "--bus",
        default="system",
        help="D-Bus to find BlueZ on: system (default), session, or an address "
        "such as unix:path=/run/dbus/system_bus_socket",
    )
    add(
        "--demo",
        action="store_true",
        help="start the built-in demo fleet on a private D-Bus (no Bluetooth needed)",
    )
    add(
        "--speed",
        type=float,
        default=1.0,
        help=f"with --demo or --replay: run the timeline X times faster (at most "
        f"{options.MAX_SPEED:g})",
    )
    add(
        "--db",
        metavar="PATH",
        help="the SQLite event log (TUI default: $XDG_STATE_HOME/btmon-tui/events.sqlite3; "
        "with --demo a temporary file; watch, probe and actions log only when --db is given, "
        "and exit 2 when it cannot be written)",
    )
    add(
        "--retention",
        type=float,
        default=30.0,
        metavar="DAYS",
        help="delete logged events older than DAYS days (default 30)",
    )
    add(
        "--replay",
        metavar="DB",
        help="play a recorded session from an event log (the TUI, or `watch`), with --speed X",
    )
    add(
        "--all",
        action="store_true",
        dest="include_all",
        help="show every paired device, not only speakers (A2DP sinks), and unpaired "
        "devices heard nearby (marked, never counted)",
    )
    add(
        "--config",
        metavar="PATH",
        help="speaker aliases, groups, who must stream, resync timeouts (TOML; default "
        "$XDG_CONFIG_HOME/btmon-tui/config.toml when it exists)",
    )
    add(
        "--ble",
        metavar="ADAPTER",
        help="also scan for BLE advertisements on ADAPTER (e.g. hci1) to show RSSI and presence; "
        "refused on an adapter that streams A2DP (audio would stutter)",
    )
    add("--ble-force", action="store_true", help="with --ble: scan even while the adapter streams")
    add(
        "--host",
        action="append",
        type=host_arg,
        metavar="NAME[=COMMAND]",
        help="also watch host NAME's fleet through `COMMAND watch --json` (default COMMAND: "
        "ssh NAME btmon-tui); repeat it for more hosts; `--host local` is this machine "
        "(TUI and watch; default: the config file's [hosts.NAME] tables)",
    )
    hci = parser.add_mutually_exclusive_group()
    options.add(
        hci,
        nested,
        "--hci",
        action="store_true",
        help="count each speaker's A2DP media packets on the HCI monitor channel (as btmon "
        "does; needs CAP_NET_RAW): shows packets/s and the `stalled` verdict",
    )
    options.add(
        hci,
        nested,
        "--hci-file",
        metavar="PATH",
        help="the same from a growing capture: run `btmon -w PATH` (as root) and point here",
    )


def add_input_args(parser: argparse.ArgumentParser, nested: bool = True) -> None:
    """--input, --source and --sink: the microphone the probes record and the sinks they
    play on (they count before or after the subcommand)."""
    options.add(
        parser,
        nested,
        "--input",
        metavar="DEVICE",
        help="microphone: PortAudio device index or name (see `btmon-tui probe "
        "--list-devices`; default: the default input)",
    )
    options.add(
        parser,
        nested,
        "--source",
        metavar="NAME",
        help="record this PulseAudio/PipeWire source instead (e.g. a USB mic's source name)",
    )
    options.add(
        parser,
        nested,
        "--sink",
        action="append",
        type=sink_mapping,
        metavar="ADDRESS=SINK",
        help="play this speaker's probe on SINK (repeatable; default: the sink named after "
        "its address, bluez_sink.… or bluez_output.…)",
    )


def add_metrics_arg(parser: argparse.ArgumentParser, nested: bool = True) -> None:
    """--metrics: the TUI's and `watch`'s Prometheus exporter (before or after `watch`)."""
    options.add(
        parser,
        nested,
        "--metrics",
        metavar="[ADDR:]PORT",
        help="serve Prometheus metrics of the fleet on http://ADDR:PORT/metrics (ADDR "
        "default 0.0.0.0, every interface; 127.0.0.1:PORT keeps it local; port 0 takes a "
        "free one: `watch` names its URL on stderr)",
    )


def host_arg(text: str) -> HostSpec:
    """--host NAME[=COMMAND] (core.hosts.parse_host), refused in one line."""
    try:
        return parse_host(text)
    except HostError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--host ")) from None


def sink_mapping(text: str) -> tuple[str, str]:
    """'AA:BB:CC:DD:EE:FF=sink_name' -> (address, sink)."""
    address, _, sink = text.partition("=")
    address = address.strip().upper()
    if not sink.strip() or len(address.split(":")) != 6:
        raise argparse.ArgumentTypeError(
            f"{text!r}: write ADDRESS=SINK, e.g. 00:1A:7D:DA:71:01=spk1"
        )
    return address, sink.strip()


def build_parser() -> argparse.ArgumentParser:
    parser = options.Parser(
        prog="btmon-tui",
        description="Tells connected from really streaming across a fleet of Bluetooth speakers.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _add_source_args(parser, nested=False)
    add_input_args(parser, nested=False)
    add_metrics_arg(parser, nested=False)
    parser.add_argument(
        "--probe-every",
        metavar="DURATION",
        type=duration,
        help="probe the speakers that play every DURATION (e.g. 5m, 90s; default: only on p)",
    )
    parser.add_argument(
        "--keep-aligned",
        action="store_true",
        help="after an alignment (A), each periodic probe re-checks the spread and corrects "
        "a drift past 5 ms by at most 1 ms per speaker (needs --probe-every; the demo probes "
        "every 30 s)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    watch = sub.add_parser(
        "watch",
        help="print the fleet and every change (JSON Lines with --json)",
        description="Print a snapshot of the fleet, then one line per change, until "
        "--duration passes or you press Ctrl-C.",
    )
    _add_source_args(watch)
    add_metrics_arg(watch)
    watch.add_argument(
        "--json", action="store_true", help="JSON Lines: a snapshot, then one event per line"
    )
    watch.add_argument(
        "--duration",
        type=options.duration_arg,
        default=None,
        metavar="S",
        help="stop S seconds after the first snapshot (e.g. 30, 90s, 5m; default: run until "
        "interrupted)",
    )
    report = sub.add_parser(
        "report",
        help="dropouts and their periods per speaker, from the event log or a JSON Lines file",
        description="Count each speaker's dropouts in a recording and find their period "
        "(e.g. 'every 4m42s, next at 20:04:42'). Reads the SQLite event log (--db) or the "
        "output of `btmon-tui watch --json` (--events).",
    )
    source = report.add_mutually_exclusive_group()
    options.add(source, True, "--db", metavar="PATH", help="the SQLite event log to read")
    source.add_argument("--events", metavar="FILE", help="a JSON Lines file (watch --json output)")
    report.add_argument("--json", action="store_true", help="JSON (dropouts and periods)")
    report.add_argument(
        "--now",
        type=options.unix_time,
        metavar="T",
        help="predict the next dropout after time T (Unix seconds or '2026-12-06 20:15'; "
        "default: the end of the recording)",
    )
    report.add_argument(
        "--since",
        type=options.unix_time,
        metavar="T",
        help="only events from T on (Unix seconds or a local date/time like '2026-12-06 20:00')",
    )
    report.add_argument(
        "--until", type=options.unix_time, metavar="T", help="only events before T (as --since)"
    )
    snoop = sub.add_parser(
        "snoop",
        help="A2DP truth per device from a btsnoop capture (btmon -w, Android, tshark)",
        description="Read a btsnoop file and count each device's A2DP media packets, codec and "
        "Starts; flags a device that is connected but starved. Exit 0, 2 on bad input.",
    )
    snoop.add_argument("file", metavar="FILE", help="the btsnoop capture")
    snoop.add_argument("--json", action="store_true", help="JSON: per-device media counts")
    add_probe_commands(sub, _add_source_args)
    add_align_command(sub)
    for action, (summary, description) in ACTION_HELP.items():
        act = sub.add_parser(action, help=summary, description=description)
        act.add_argument(
            "address",
            metavar="SPEAKER",
            help="the speaker: its address (AA:BB:CC:DD:EE:FF), name or alias",
        )
        _add_source_args(act)
        act.add_argument(
            "--json",
            action="store_true",
            help="print the action event (JSON) as the last line; progress goes to stderr",
        )
        act.add_argument(
            "--timeout",
            type=options.positive_seconds,
            metavar="S",
            help="give up after S seconds in all (e.g. 30, 2m)",
        )
        if action == "disconnect":
            act.add_argument(
                "--yes", action="store_true", help="do not ask first (needed without a terminal)"
            )
    return parser


def add_probe_commands(sub: Any, add_source_args: Any) -> None:
    """Add probe-signal, analyze and probe to the subcommand parser."""
    signal = sub.add_parser(
        "probe-signal",
        help="write the coded probe signals (one WAV per speaker) for your own player",
        description="Write DIR/probe_01.wav … probe_NN.wav (mono, equal length, sample 0 = "
        "emission time) and DIR/probe.json. Play them together, record the room, then "
        "`btmon-tui analyze REC.wav --reference DIR`.",
    )
    signal.add_argument("--speakers", type=int, required=True, metavar="N", help="how many")
    signal.add_argument("--rate", type=int, default=48000, help="sample rate (default 48000)")
    signal.add_argument("--out", required=True, metavar="DIR", help="directory to write into")
    analyze = sub.add_parser(
        "analyze",
        help="find each probe's arrival in a recording (latency, drift, gaps)",
        description="Find where each reference signal's direct path starts in REC.wav "
        "(sub-sample), its SNR and level, the spread between speakers, and silent gaps. "
        "--reference is a probe-signal directory or any single WAV. Exit 0, 2 on bad input.",
    )
    analyze.add_argument("recording", metavar="REC.wav", help="the recording (WAV)")
    analyze.add_argument(
        "--reference", required=True, metavar="DIR|REF.wav", help="probe-signal dir or a WAV"
    )
    analyze.add_argument("--json", action="store_true", help="JSON: arrivals, SNR, spread and gaps")
    analyze.add_argument(
        "--channel",
        type=options.channel_number,
        default=None,
        metavar="N",
        help="which channel of a multi-channel recording to analyse (1-based; default 1)",
    )
    probe = sub.add_parser(
        "probe",
        help="play coded probes on the speakers that stream, record, report latency and drift",
        description="Play one coded probe on every speaker whose A2DP transport is active "
        "(each on its own audio-server sink), record the microphone, and print each "
        "speaker's arrival, latency and offset from the fleet median, against the 15 ms "
        "(tight) and 40 ms (echo) lines. With --demo the room is simulated. Exit 0 when the "
        "probe ran (a speaker not heard is a result), 2 when it could not run.",
    )
    add_source_args(probe)
    probe.add_argument("--json", action="store_true", help="print the probe event (JSON)")
    probe.add_argument(
        "--list-devices", action="store_true", help="list audio devices and sinks, then exit"
    )
    add_input_args(probe)
    probe.add_argument(
        "--speaker",
        action="append",
        default=[],
        metavar="SPEAKER",
        help="probe this speaker: address, name or alias (repeat for more; default: every "
        "speaker that streams)",
    )


def add_align_command(sub: Any) -> None:
    """Add `align` (issue 14) to the subcommand parser."""
    align = sub.add_parser(
        "align",
        help="delay each speaker in the fleet output (btmon_fleet) until they play together",
        description="Play to btmon_fleet, the fleet output that feeds every streaming "
        "speaker through its own delay stage. align probes each speaker through it (the "
        "others muted), gives every speaker the delay that brings it to the latest one, and "
        "measures again until the spread is within --target-ms. Exit 0 aligned, 1 not (the "
        "reason is printed), 2 on bad input (no audio server, nothing streaming, no sink).",
    )
    _add_source_args(align)
    add_input_args(align)
    align.add_argument(
        "--target-ms",
        type=_target_ms,
        default=5.0,
        metavar="MS",
        help="the spread to reach, in ms (default 5)",
    )
    align.add_argument(
        "--rounds",
        type=_rounds,
        default=5,
        metavar="N",
        help="apply and measure at most N times (default 5)",
    )
    align.add_argument("--json", action="store_true", help="print the align event (JSON) last")
    align.add_argument(
        "--reset", action="store_true", help="remove every delay stage and the fleet output"
    )
    align.add_argument(
        "--dry-run", action="store_true", help="measure and show the delays, apply nothing"
    )


def _target_ms(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1000:
        raise argparse.ArgumentTypeError(f"{text!r}: the target is a spread in ms above 0, e.g. 5")
    return value


def _rounds(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= 20:
        raise argparse.ArgumentTypeError(f"{text!r}: rounds are a whole number from 1 to 20")
    return int(text)


def duration(text: str) -> float:
    """--probe-every: '5m', '90s', '1h', '300' (seconds); at least 10 s between probes."""
    return options.seconds(text, least=10.0, what="a time between probes")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("btmon-tui")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"
