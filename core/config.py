"""The operator's config file: speaker aliases and groups, who must stream, action timeouts.

Read once at start from `--config PATH` or `$XDG_CONFIG_HOME/btmon-tui/config.toml`; a missing
default file means defaults. Anything wrong becomes one ConfigError line naming the file, the
line (and column when TOML says) and the problem, so a typo never starts a half-configured run.

```toml
[speakers."AA:BB:CC:DD:EE:FF"]
alias = "Stage Left"          # shown instead of the name BlueZ reports
group = "stage left"          # shown in the detail view
expect_streaming = true       # flag it when it is silent while others play

[groups."stage left"]         # optional
expect_streaming = true       # the default for the group's speakers
speakers = ["AA:BB:CC:DD:EE:FF"]

[resync]                      # any field of core.bluez.control.Timeouts
call_s = 25                   # step limits (seconds, more than 0)
disconnect_s = 10
transport_s = 8
active_s = 8
attempts = 3                  # a count (at least 1)
settle_s = 0.5                # pauses (seconds, 0 or more)

[hosts.lab]                   # watched when no --host is given (core.hosts)
command = "ssh -p 2222 pi@lab /opt/btmon/bin/btmon-tui"   # default: ssh lab btmon-tui
[hosts.local]                 # this machine's own fleet next to them
```
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final

from core.bluez.outcomes import Timeouts
from core.hosts import HostError, HostSpec, host_with_command, parse_host

#: A Bluetooth device address as BlueZ writes it (any case is accepted and upper-cased).
ADDRESS_RE: Final = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
#: tomllib (3.11) puts the position only in its message: "… (at line 3, column 9)".
_TOML_POSITION_RE: Final = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_TOML_AT_END: Final = " (at end of document)"
_BARE_KEY_RE: Final = re.compile(r"^[A-Za-z0-9_-]+$")

SPEAKER_KEYS: Final = ("alias", "group", "expect_streaming")
GROUP_KEYS: Final = ("expect_streaming", "speakers")
RESYNC_KEYS: Final = tuple(f.name for f in fields(Timeouts))
_TIMEOUT_DEFAULTS: Final[dict[str, object]] = {k: getattr(Timeouts(), k) for k in RESYNC_KEYS}
#: Timeouts that limit a step: 0 would fail every action at once. Other seconds are pauses.
STEP_LIMITS: Final = ("call_s", "disconnect_s", "transport_s", "active_s")
TOP_KEYS: Final = ("speakers", "groups", "resync", "hosts")
#: Keys of a `[hosts.NAME]` table.
HOST_KEYS: Final = ("command",)


class ConfigError(Exception):
    """The config file cannot be used; `str()` is one line: FILE:LINE:COLUMN: problem."""

    def __init__(
        self, path: Path, problem: str, line: int | None = None, column: int | None = None
    ) -> None:
        self.path = path
        self.problem = problem
        self.line = line
        self.column = column
        where = str(path)
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True, slots=True)
class SpeakerConfig:
    """One `[speakers."ADDRESS"]` table."""

    address: str
    #: Shown instead of BlueZ's name; None keeps BlueZ's.
    alias: str | None = None
    group: str | None = None
    #: None: take the group's setting (default False).
    expect_streaming: bool | None = None


@dataclass(frozen=True, slots=True)
class GroupConfig:
    """One `[groups."NAME"]` table."""

    name: str
    #: The default `expect_streaming` of the group's speakers.
    expect_streaming: bool = False
    #: Addresses that belong to the group (besides speakers naming it with `group =`).
    speakers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the config file sets; `Config()` is the no-file default."""

    #: The file it came from; None when no file was read.
    path: Path | None = None
    speakers: Mapping[str, SpeakerConfig] = field(default_factory=dict)
    groups: Mapping[str, GroupConfig] = field(default_factory=dict)
    timeouts: Timeouts = field(default_factory=Timeouts)
    #: `[hosts.NAME]` tables: the hosts watched when no --host is given, in file order.
    hosts: tuple[HostSpec, ...] = ()

    @property
    def aliases(self) -> dict[str, str]:
        """Address -> the name to show instead of BlueZ's."""
        return {a: s.alias for a, s in self.speakers.items() if s.alias}

    @property
    def group_of(self) -> dict[str, str]:
        """Address -> group name, from `group =` and from `[groups.X] speakers`."""
        out = {a: g.name for g in self.groups.values() for a in g.speakers}
        out.update({a: s.group for a, s in self.speakers.items() if s.group})
        return out

    @property
    def expected(self) -> frozenset[str]:
        """Addresses that should be streaming whenever the rest of the fleet is."""
        group_of = self.group_of
        out = set()
        for address in set(group_of) | set(self.speakers):
            own = self.speakers.get(address)
            if own is not None and own.expect_streaming is not None:
                wanted = own.expect_streaming
            else:
                group = self.groups.get(group_of.get(address, ""))
                wanted = group.expect_streaming if group is not None else False
            if wanted:
                out.add(address)
        return frozenset(out)


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    """$XDG_CONFIG_HOME/btmon-tui/config.toml; ~/.config/… when unset or not absolute (XDG)."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "btmon-tui" / "config.toml"


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read `path` (it must exist) or the default file (defaults when it does not exist)."""
    explicit = path is not None
    file = Path(path) if path is not None else default_config_path(env)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        if not explicit:
            return Config()
        raise ConfigError(file, "no such file: create it or pass another --config") from None
    except IsADirectoryError:
        raise ConfigError(file, "is a directory, not a config file") from None
    except OSError as exc:
        raise ConfigError(file, f"cannot read it: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(file, "not UTF-8 text (TOML files must be UTF-8)", line) from None
    return parse_config(text, file)


def parse_config(text: str, path: Path) -> Config:
    """The Config in `text` (a TOML document read from `path`, named in errors)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(exc, text, path) from None
    return _Reader(text, path).config(doc)


def _syntax_error(exc: tomllib.TOMLDecodeError, text: str, path: Path) -> ConfigError:
    message = str(exc)
    match = _TOML_POSITION_RE.search(message)
    if match:
        problem = message[: match.start()]
        return ConfigError(
            path, f"invalid TOML: {problem}", int(match.group(1)), int(match.group(2))
        )
    if message.endswith(_TOML_AT_END):
        lines = text.splitlines() or [""]
        problem = message[: -len(_TOML_AT_END)]
        return ConfigError(
            path, f"invalid TOML: {problem} (at the end)", len(lines), len(lines[-1]) + 1
        )
    return ConfigError(path, f"invalid TOML: {message}")


def key_path(parts: tuple[str, ...]) -> str:
    """speakers."AA:BB:CC:DD:EE:FF".alias, quoted the way TOML needs."""
    return ".".join(p if _BARE_KEY_RE.match(p) else f'"{p}"' for p in parts)


def _type_name(value: object) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


class _Reader:
    """Checks a parsed document key by key; every error names the key path and its line."""

    def __init__(self, text: str, path: Path) -> None:
        self.path = path
        self.lines = _key_lines(text)

    def fail(self, parts: tuple[str, ...], problem: str) -> ConfigError:
        return ConfigError(self.path, problem, self.line_of(parts))

    def line_of(self, parts: tuple[str, ...]) -> int | None:
        """The line that defines `parts`, or the nearest enclosing table's (inline tables)."""
        for length in range(len(parts), 0, -1):
            line = self.lines.get(parts[:length])
            if line is not None:
                return line
        return None

    def table(
        self, value: object, parts: tuple[str, ...], known: tuple[str, ...]
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(parts, f"{key_path(parts)} must be a table, not {_type_name(value)}")
        for key in value:
            if key not in known:
                raise self.fail(
                    (*parts, key),
                    f"unknown key {key_path((*parts, key))} (known: {', '.join(known)})",
                )
        return value

    def typed(
        self, value: object, parts: tuple[str, ...], kind: type | tuple[type, ...], noun: str
    ) -> Any:
        # bool is an int in Python; TOML keeps them apart, so do we.
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise self.fail(parts, f"{key_path(parts)} must be {noun}, not {_type_name(value)}")
        return value

    def address(self, value: str, parts: tuple[str, ...]) -> str:
        if not ADDRESS_RE.match(value):
            raise self.fail(
                parts,
                f"{key_path(parts)}: {value!r} is not a Bluetooth address "
                "(write it as AA:BB:CC:DD:EE:FF)",
            )
        return value.upper()

    def config(self, doc: dict[str, Any]) -> Config:
        self.table(doc, (), TOP_KEYS)
        speakers: dict[str, SpeakerConfig] = {}
        for raw, value in self._entries(doc, "speakers"):
            parts = ("speakers", raw)
            address = self.address(raw, parts)
            if address in speakers:
                raise self.fail(parts, f"{key_path(parts)}: speaker {address} is listed twice")
            body = self.table(value, parts, SPEAKER_KEYS)
            alias = self._optional(body, parts, "alias", str, "a string")
            if alias is not None and not alias.strip():
                raise self.fail((*parts, "alias"), f"{key_path((*parts, 'alias'))} is empty")
            speakers[address] = SpeakerConfig(
                address,
                alias=alias,
                group=self._optional(body, parts, "group", str, "a string"),
                expect_streaming=self._optional(
                    body, parts, "expect_streaming", bool, "true or false"
                ),
            )
        groups: dict[str, GroupConfig] = {}
        for name, value in self._entries(doc, "groups"):
            parts = ("groups", name)
            body = self.table(value, parts, GROUP_KEYS)
            members = self._optional(body, parts, "speakers", list, "an array of addresses")
            addresses = tuple(
                self.address(
                    self.typed(m, (*parts, "speakers"), str, "an address"), (*parts, "speakers")
                )
                for m in members or []
            )
            for address in addresses:
                own = speakers.get(address)
                if own is not None and own.group not in (None, name):
                    raise self.fail(
                        (*parts, "speakers"),
                        f"{key_path((*parts, 'speakers'))}: {address} is already in group "
                        f'{own.group!r} (speakers."{address}".group)',
                    )
            expect = self._optional(body, parts, "expect_streaming", bool, "true or false")
            groups[name] = GroupConfig(name, bool(expect), addresses)
        return Config(
            path=self.path,
            speakers=speakers,
            groups=groups,
            timeouts=self._timeouts(doc),
            hosts=self._hosts(doc),
        )

    def _hosts(self, doc: dict[str, Any]) -> tuple[HostSpec, ...]:
        hosts = []
        for name, value in self._entries(doc, "hosts"):
            parts = ("hosts", name)
            body = self.table(value, parts, HOST_KEYS)
            command = self._optional(body, parts, "command", str, "a string")
            try:
                if command is None:
                    hosts.append(parse_host(name))
                else:
                    hosts.append(host_with_command(name, command, key_path((*parts, "command"))))
            except HostError as exc:
                raise self.fail(parts, str(exc).replace("--host ", "hosts.", 1)) from None
        return tuple(hosts)

    def _entries(self, doc: dict[str, Any], name: str) -> list[tuple[str, Any]]:
        value = doc.get(name, {})
        if not isinstance(value, dict):
            raise self.fail((name,), f"{name} must be a table, not {_type_name(value)}")
        return list(value.items())

    def _optional(
        self, body: dict[str, Any], parts: tuple[str, ...], key: str, kind: type, noun: str
    ) -> Any:
        if key not in body:
            return None
        return self.typed(body[key], (*parts, key), kind, noun)

    def _timeouts(self, doc: dict[str, Any]) -> Timeouts:
        body = self.table(doc.get("resync", {}), ("resync",), RESYNC_KEYS)
        values: dict[str, Any] = {}
        for key, value in body.items():
            parts = ("resync", key)
            if isinstance(_TIMEOUT_DEFAULTS[key], int):  # a count, such as attempts
                count = self.typed(value, parts, int, "a whole number")
                if count < 1:
                    raise self.fail(parts, f"{key_path(parts)} must be at least 1, not {count}")
                values[key] = count
                continue
            seconds = self.typed(value, parts, (int, float), "a number of seconds")
            if key in STEP_LIMITS and not seconds > 0:
                raise self.fail(parts, f"{key_path(parts)} must be more than 0 s, not {seconds}")
            if not seconds >= 0:  # a pause may be 0; nan fails both tests
                raise self.fail(parts, f"{key_path(parts)} must be 0 s or more, not {seconds}")
            values[key] = float(seconds)
        return Timeouts(**values)


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Key path -> the line (1-based) of its table header or `key = …` line, best effort.

    Headers and keys are re-parsed with tomllib itself, so quoting and dotted keys are read
    exactly as TOML reads them; lines that do not parse alone (multi-line values) are skipped.
    """
    out: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("["):
            parsed = _parse_alone(stripped)
            if parsed is not None and not stripped.startswith("[["):
                table = _single_path(parsed)
                out.setdefault(table, number)
            continue
        key, sep, _ = stripped.partition("=")
        if not sep:
            continue
        parsed = _parse_alone(f"{key}= 0")
        if parsed is not None:
            out.setdefault((*table, *_single_path(parsed)), number)
    return out


def _parse_alone(text: str) -> dict[str, Any] | None:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None


def _single_path(doc: dict[str, Any]) -> tuple[str, ...]:
    parts: list[str] = []
    node: Any = doc
    while isinstance(node, dict) and len(node) == 1:
        key = next(iter(node))
        parts.append(key)
        node = node[key]
    return tuple(parts)
