"""Sources: every input of a Monitor behind one small interface (DESIGN §2).

BlueZ over D-Bus, the HCI media feed, BLE presence and the replay of a log (and next, remote
hosts) only deliver: facts about devices, or §4.2 records, handed to the one `SourceSink`
their Monitor gives them. The Monitor owns what the facts add up to (fleet, dropouts, probes,
warnings), runs every source as a task, ticks them from its one ticker, and asks each for its
status, its readiness, its view on a snapshot and, for a source that can act, its control.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from core.fleet.events import Event
from core.fleet.model import Adapter, DeviceFacts, FleetSnapshot, SourceStatus, Speaker
from core.fleet.state import FleetState, MediaFacts

# -- facts: what a source may hand its Monitor ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Devices:
    """New facts about devices, by object path (None: the device is gone)."""

    changed: Mapping[str, DeviceFacts | None]


@dataclass(frozen=True, slots=True)
class DisconnectReason:
    """Why the device at `path` disconnected, as a §4.2 `reason` word (BlueZ 5.83+ says)."""

    path: str
    word: str


@dataclass(frozen=True, slots=True)
class Adapters:
    """The Bluetooth adapters the source sees now."""

    adapters: tuple[Adapter, ...]


@dataclass(frozen=True, slots=True)
class Status:
    """The fleet's source changed state: a §4.2 `source` line; verdicts follow it (a fleet
    whose source is away is `unknown`)."""

    status: SourceStatus


@dataclass(frozen=True, slots=True)
class MediaExpected:
    """Media facts are coming (an HCI source starts): `streaming` waits for their first say."""


@dataclass(frozen=True, slots=True)
class Media:
    """Media packets per address, as the HCI source counts them now; `caught_up` once it has
    read up to the present (until then its silence about a link means nothing)."""

    rates: Mapping[str, MediaFacts]
    caught_up: bool


@dataclass(frozen=True, slots=True)
class Record:
    """A §4.2 record as written (`watch --json`, the event log): a recorded or remote
    speaker row or snapshot is put in place as it is, not re-judged; a dropout or probe goes
    to the history; every record is published again as it was."""

    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Warn:
    """A sentence the operator must read (the event log panel's warnings)."""

    text: str


@dataclass(frozen=True, slots=True)
class Shown:
    """Something this source shows in its view changed (presence, RSSI): repaint."""


@dataclass(frozen=True, slots=True)
class Rewind:
    """A recording starts over: forget the speakers, dropouts and probes it fed."""


Fact = (
    Devices
    | DisconnectReason
    | Adapters
    | Status
    | MediaExpected
    | Media
    | Record
    | Warn
    | Shown
    | Rewind
)


def apply_to_fleet(state: FleetState, fact: Fact, now: float) -> list[Event]:
    """What a fact about devices does to the fleet, and the events that causes; [] for facts
    the fleet does not hold (the Monitor handles media, records, warnings and repaints)."""
    match fact:
        case Devices(changed):
            return state.update(changed, now)
        case DisconnectReason(path, word):
            return state.note_disconnect_reason(path, word)
        case Adapters(adapters):
            state.set_adapters(adapters)
        case Status(status):
            return state.set_source(status, now)
        case MediaExpected():
            state.expect_media()
    return []


# -- the interface ----------------------------------------------------------------------------


class SourceSink(Protocol):
    """The one way a source reaches the Monitor that runs it."""

    def feed(self, fact: Fact) -> None:
        """Hand over one fact; the Monitor judges, logs and publishes what follows."""

    @property
    def speakers(self) -> Mapping[str, Speaker]:
        """The fleet as judged now, by path (read only: BLE follows what streams where)."""

    async def fleet_ready(self, timeout: float) -> bool:
        """Wait until every source has its first full state in (False on timeout)."""


class DeviceCalls(Protocol):
    """Calls on one device object of a source (BlueZ: org.bluez.Device1 over D-Bus); raise
    DBusCallError with the error's name and text when the device says no."""

    async def call_device(
        self, path: str, member: str, signature: str = "", body: list[object] | None = None
    ) -> None: ...


class Source(ABC):
    """One input of a Monitor. The Monitor attaches it to a sink, runs `run()` as a task (a
    failure becomes a warning; the other sources go on), calls `tick` from its one ticker
    and `view` on every snapshot; the rest has defaults for a source that needs nothing."""

    #: Short name for status lines and metrics ("BlueZ", "HCI", "BLE", "replay", a host).
    name: str
    #: Where facts go; set by `attach`, before `run`.
    sink: SourceSink
    #: True for another machine's fleet (core.hosts): it acts through its own commands,
    #: not through a control here, and its speakers are probed in their own room.
    remote: bool = False

    def attach(self, sink: SourceSink) -> None:
        """Called once by the Monitor that runs this source, when the Monitor is built."""
        self.sink = sink

    @property
    @abstractmethod
    def status(self) -> SourceStatus:
        """What the source is doing: what is wrong and what to do, in words."""

    @abstractmethod
    async def run(self) -> None:
        """Feed facts until cancelled (or until there is nothing more to read)."""

    async def wait_ready(self, timeout: float) -> bool:
        """True once the source's first full state is in (False after `timeout` s)."""
        return True

    @property
    def control(self) -> DeviceCalls | None:
        """Where actions on this source's devices go; None for a read-only source."""
        return None

    def tick(self, now: float) -> None:
        """The Monitor's periodic tick (core.monitor.TICK_S): feed what time alone changes.
        Never blocks."""
        return None

    def refresh(self) -> None:
        """Feed every device again: the fleet's rules changed (every device, or speakers only)."""
        return None

    def view(self, snapshot: FleetSnapshot) -> FleetSnapshot:
        """The snapshot with what this source shows itself (its status line, presence)."""
        return snapshot
