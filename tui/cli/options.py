"""Options that count wherever they are given: before or after the subcommand (DESIGN §4.1).

argparse lets a subcommand's default overwrite what was given before it (`btmon-tui --demo
watch` forgot --demo). Shared options are therefore declared without defaults (given or
absent), at the top under their own name and in each subcommand under a prefixed one;
`merge` then takes whichever was given, refuses the same option given twice with different
values, and only then fills in the defaults. `check` refuses contradictory combinations and
impossible values with one line naming the problem and the fix.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from typing import Any, Final, NoReturn

#: Where a subcommand keeps its copy of a shared option until `merge`.
NESTED: Final = "nested__"
#: dest -> default of every shared option, filled in by `merge` when given nowhere.
DEFAULTS: dict[str, Any] = {}
#: dest -> the option as the user writes it ("include_all" -> "--all"), for messages.
FLAGS: dict[str, str] = {}
#: The fastest demo or replay (×): beyond it a timeline outruns any terminal or script.
MAX_SPEED: Final = 1000.0
#: A D-Bus address: transport:key=value[,key=value…][;…] (D-Bus specification, "Addresses").
BUS_ADDRESS = re.compile(r"^[a-z][a-z0-9-]*:([a-z0-9_-]+=[^,;]*)(,[a-z0-9_-]+=[^,;]*)*(;.*)?$")
#: Subcommands that watch live speakers (or the demo): the source options apply to them.
LIVE_COMMANDS: Final = frozenset({"watch", "probe", "align", "resync", "connect", "disconnect"})


class Parser(argparse.ArgumentParser):
    """argparse with bad input in one line (what is wrong, where to read more), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def fail(message: str) -> int:
    """Bad input: one line on stderr naming the problem and the fix; exit status 2."""
    print(f"btmon-tui: error: {message}", file=sys.stderr)
    return 2


def add(parser: argparse.ArgumentParser | Any, nested: bool, *flags: str, **kwargs: Any) -> None:
    """Add a shared option to `parser` (a subcommand's parser when `nested`)."""
    dest = kwargs.pop("dest", None) or flags[0].lstrip("-").replace("-", "_")
    action = kwargs.get("action")
    default = kwargs.pop("default", [] if action == "append" else False if action else None)
    DEFAULTS[dest] = default
    FLAGS[dest] = flags[0]
    name = NESTED + dest if nested else dest
    if action is None and "metavar" not in kwargs:
        kwargs["metavar"] = dest.upper()
    parser.add_argument(*flags, dest=name, default=argparse.SUPPRESS, **kwargs)


def merge(args: argparse.Namespace) -> str:
    """Fold the subcommand's copies into the top-level names and fill in defaults; returns
    '' or the one-line problem (an option given twice with different values)."""
    values = vars(args)
    given: set[str] = set()
    problem = ""
    for dest, default in DEFAULTS.items():
        top = values.pop(dest, argparse.SUPPRESS)
        sub = values.pop(NESTED + dest, argparse.SUPPRESS)
        if top is not argparse.SUPPRESS and sub is not argparse.SUPPRESS:
            if isinstance(top, list):
                sub = top + [v for v in sub if v not in top]
            elif top != sub and not problem:
                problem = f"{FLAGS[dest]} given twice ({top!r} and {sub!r}): give it once"
        chosen = sub if sub is not argparse.SUPPRESS else top
        if chosen is argparse.SUPPRESS:
            chosen = list(default) if isinstance(default, list) else default
        else:
            given.add(dest)
        values[dest] = chosen
    values["given"] = frozenset(given)
    return problem


def check(args: argparse.Namespace) -> str:
    """'' or the first contradiction or impossible value, in one line with the fix."""
    given: frozenset[str] = args.given
    command = args.command
    if "speed" in given:
        if not (math.isfinite(args.speed) and 0 < args.speed <= MAX_SPEED):
            return f"--speed must be more than 0 and at most {MAX_SPEED:g}"
        if not ({"demo", "replay"} & given):
            return "--speed goes with --demo or --replay (a real fleet runs in real time)"
    if "retention" in given and not (math.isfinite(args.retention) and args.retention > 0):
        return "--retention must be a number of days above 0 (e.g. 30)"
    if args.demo and "bus" in given:
        return "--demo runs its own private bus: leave out --bus (or --demo)"
    if "bus" in given:
        if args.bus == "":
            return "--bus is empty: give system, session or an address like unix:path=/run/dbus/x"
        if args.bus not in ("system", "session") and not BUS_ADDRESS.match(args.bus):
            return (
                f"--bus {args.bus!r} is not a bus: give system, session or a D-Bus address "
                "like unix:path=/run/dbus/system_bus_socket"
            )
    if "host" in given:
        problem = _check_hosts(args)
        if problem:
            return problem
    if "replay" in given:
        clash = sorted({"demo", "bus", "hci", "hci_file", "ble", "host"} & given)
        if clash:
            flags = ", ".join(FLAGS[c] for c in clash)
            return f"--replay plays a recording: leave out {flags} (or --replay)"
        if command not in (None, "watch"):
            return f"`{command}` acts on live speakers: --replay goes with the TUI or `watch`"
    if "metrics" in given:
        if command not in (None, "watch"):
            return f"--metrics serves the TUI's or `watch`'s fleet: leave it out of `{command}`"
        if "replay" in given:
            return "--metrics serves a live fleet: leave out --replay (or --metrics)"
    if getattr(args, "keep_aligned", False):
        if command is not None:
            return f"--keep-aligned keeps the TUI's fleet aligned: leave it out of `{command}`"
        if not (getattr(args, "probe_every", None) or args.demo):
            return (
                "--keep-aligned re-checks the spread at each periodic probe: add "
                "--probe-every DURATION (e.g. 5m)"
            )
    if command is not None and command not in LIVE_COMMANDS:
        live_only = sorted(
            {"demo", "bus", "hci", "hci_file", "ble", "include_all", "replay", "speed"} & given
        )
        if live_only:
            flag = FLAGS[live_only[0]]
            return f"{flag} does not apply to `{command}`, which reads files: leave it out"
    return ""


#: Commands that can show several hosts (actions, probes and alignments run on each host).
HOST_COMMANDS: Final = frozenset({None, "watch"})


def _check_hosts(args: argparse.Namespace) -> str:
    """--host: each name once, with the TUI or `watch`; this machine's own options only
    with `--host local` among them."""
    from core.hosts import check_hosts

    if args.command not in HOST_COMMANDS:
        return (
            f"--host goes with the TUI and `watch`: run `{args.command}` on the speaker's host "
            "(e.g. ssh HOST btmon-tui ...)"
        )
    problem = check_hosts(args.host)
    if problem:
        return problem
    if not any(host.is_local for host in args.host):
        here = sorted({"demo", "bus", "hci", "hci_file", "ble"} & args.given)
        if here:
            flag = FLAGS[here[0]]
            return (
                f"{flag} is about this machine, which the --host list leaves out: add "
                f"--host local (or leave out {flag})"
            )
    return ""


def seconds(text: str, *, least: float = 0.0, what: str = "a duration") -> float:
    """'10', '10s', '5m', '1h' -> seconds; refuses nan, inf, negatives and below `least`."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    cleaned = text.strip().lower()
    scale = units.get(cleaned[-1:], 1.0)
    number = cleaned[:-1] if cleaned[-1:] in units else cleaned
    try:
        value = float(number) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what} (e.g. 10, 90s, 5m)") from None
    if not math.isfinite(value) or value < least:
        bound = f"at least {least:g} s" if least else "0 or more seconds"
        raise argparse.ArgumentTypeError(f"{text!r}: {what} must be {bound}")
    return value


def duration_arg(text: str) -> float:
    """--duration: any finite number of seconds from 0 up, with an optional unit."""
    return seconds(text, what="a duration")


def positive_seconds(text: str) -> float:
    """--timeout: more than 0 s."""
    try:
        value = seconds(text, what="a time limit")
    except argparse.ArgumentTypeError:
        value = -1.0
    if value <= 0:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a time limit is a number of seconds above 0 (e.g. 30, 2m)"
        )
    return value


def unix_time(text: str) -> float:
    """--now, --since, --until: Unix seconds, or a local date and time in ISO form
    ('2026-12-06', '2026-12-06 20:15'); finite and not before 1970."""
    import datetime

    try:
        value = float(text)
    except ValueError:
        try:
            value = datetime.datetime.fromisoformat(text.strip()).timestamp()
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a time: give Unix seconds or a date like '2026-12-06 20:15'"
            ) from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a Unix time is a number of seconds ≥ 0")
    return value


def channel_number(text: str) -> int:
    """--channel: 1, 2, … (channels are counted from 1)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a channel number (1, 2, …)") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: channels are counted from 1")
    return value
