"""The demo fleet as a still picture: the same scene for the snapshot tests and the README
screenshots (time stands still at `now`). Dropouts seeded as in the demo, a drift history
(the real analysis of the simulated room at past moments) and a finished HCI capture."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from core.hci.live import HciLive
from core.monitor import Monitor
from core.sim.hci_feed import static_capture
from core.sim.room_sim import past_probes
from core.sim.scenario import DEFAULT_FLEET, ROOM, seed_history
from core.sources import Source

#: Seconds of simulated HCI capture before `now` (media packets/s are counted over 2 s).
CAPTURE_S: Final = 5.0
#: How the status bar names the demo's simulated capture.
DEMO_CAPTURE_LABEL: Final = "simulated capture"
#: The drift history: this many probes, this far apart, ending at `now`.
PROBES: Final = 12
PROBE_EVERY_S: Final = 30.0


def scene_history(now: float, capture: Path) -> list[dict[str, Any]]:
    """Write the HCI capture to `capture`; the records to load as history."""
    static_capture(DEFAULT_FLEET, capture, now - CAPTURE_S, now)
    names = {d.address: d.name for d in DEFAULT_FLEET}
    # The probes played to the speakers whose transport is active in the scene, as the app's.
    playing = {d.address for d in DEFAULT_FLEET if d.connected and d.transport_state == "active"}
    room = {a: speaker for a, speaker in ROOM.items() if a in playing}
    probes = past_probes(room, names, now, count=PROBES, every_s=PROBE_EVERY_S)
    return [*seed_history(now), *(p.to_json() for p in probes)]


def scene_monitor(
    address: str,
    clock: Callable[[], float],
    capture: Path,
    label: str,
    sources: Sequence[Source] = (),
) -> Monitor:
    """A Monitor of the demo bus with the scene's HCI capture read whole (a still picture:
    the same rates every time; `btmon-tui --demo` follows its growing capture instead), and
    other `sources` (remote hosts) if given."""
    hci = HciLive.finished(capture, clock=clock, label=DEMO_CAPTURE_LABEL)
    return Monitor(address, bus_label=label, clock=clock, hci=hci, sources=sources)
