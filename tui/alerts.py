"""What deserves a toast: a speaker dropping out, a predicted dropout coming near, an action's
end, a probe's news. Pure: the screen hands in snapshots, events and probe results (time is
the snapshot's `t`) and shows the toasts it gets back.

No Textual here (an import-linter contract keeps it so), so every rule is tested without a
screen: tests/tui/test_alerts.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from core.fleet.describe import age, countdown, describe_dropout, describe_event, plural
from core.fleet.events import ActionEvent, DropoutEvent, Event, ProbeEvent
from core.fleet.model import FleetSnapshot, sync_word
from core.probe.runner import missed

#: A toast's colour, as Textual's notify names it.
Severity = Literal["information", "warning", "error"]

#: A predicted dropout is announced this many seconds ahead.
DUE_WARNING_S: Final = 30
#: Seconds an action's outcome stays on screen as a toast (failures need reading).
DONE_TOAST_S, FAILED_TOAST_S = 5, 12
#: Dropout toasts per batch of events; beyond it one toast counts the rest (a fleet-wide drop,
#: or a replay moved forward, must not bury the screen under toasts).
MAX_DROPOUT_TOASTS: Final = 3
#: Seconds a dropout's toast, and a predicted dropout's, stay.
DROPOUT_TOAST_S, DUE_TOAST_S = 8, 10
#: Seconds a probe's toast stays: a clean probe briefly, one that missed a speaker longer, a
#: failed one longest.
PROBE_TOAST_S, PROBE_MISSED_TOAST_S, PROBE_FAILED_TOAST_S = 5, 12, 10
#: How the probe runner says there was nothing to probe: a periodic probe keeps quiet then
#: (playback stopped between songs), a probe the operator asked for says it.
NOTHING_TO_PROBE: Final = "no speaker is playing"


@dataclass(frozen=True, slots=True)
class Toast:
    """One notification, as App.notify takes it (always shown without markup)."""

    message: str
    title: str
    severity: Severity
    timeout: float


def dropout_toasts(events: Sequence[Event], names: Mapping[str, str]) -> list[Toast]:
    """A toast per dropout that starts, at most MAX_DROPOUT_TOASTS, then one for the rest."""
    starts = [e for e in events if isinstance(e, DropoutEvent) and e.phase == "start"]
    toasts = [
        Toast(
            f"{names.get(e.address, e.address)}: {describe_dropout(e.kind, e.together_with)}",
            "Dropout",
            "error",
            DROPOUT_TOAST_S,
        )
        for e in starts[:MAX_DROPOUT_TOASTS]
    ]
    rest = len(starts) - MAX_DROPOUT_TOASTS
    if rest > 0:
        toasts.append(
            Toast(
                f"and {plural(rest, 'more dropout')} (see the log)",
                "Dropout",
                "error",
                DROPOUT_TOAST_S,
            )
        )
    return toasts


def action_toast(event: ActionEvent, names: Mapping[str, str]) -> Toast:
    """The outcome in the log's words: green when it worked, red with BlueZ's words when it
    did not, yellow when the operator cancelled it."""
    line = describe_event(event.to_json(), dict(names)) or ""
    severity: Severity
    if event.result == "ok":
        title, severity, timeout = "done", "information", DONE_TOAST_S
    elif event.detail == "cancelled":
        title, severity, timeout = "cancelled", "warning", DONE_TOAST_S
    else:
        title, severity, timeout = "failed", "error", FAILED_TOAST_S
    return Toast(line, f"{event.action.capitalize()}: {title}", severity, timeout)


def due_toast(name: str, in_s: float, period_s: float) -> Toast:
    """'Sub Bass is expected to drop in 0:30 (every 4m42s): resync it now or swap it'."""
    return Toast(
        f"{name} is expected to drop in {countdown(in_s)} "
        f"(every {age(period_s)}): resync it now or swap it",
        "Dropout due",
        "warning",
        DUE_TOAST_S,
    )


def probe_toast(event: ProbeEvent) -> Toast:
    """A probe's result in the log's words; red when it did not hear every speaker."""
    names = {r.address: r.name for r in event.results}
    line = describe_event(event.to_json(), names) or "probe done"
    heard_all = all(r.detected for r in event.results)
    return Toast(
        line,
        "Probe",
        "information" if heard_all else "error",
        PROBE_TOAST_S if heard_all else PROBE_MISSED_TOAST_S,
    )


#: A probe's news: the speakers it did not hear and the fleet's sync word ('' without one).
ProbeNews = tuple[frozenset[str], str]


def probe_news(event: ProbeEvent) -> ProbeNews:
    return missed(event), sync_word(event.spread_ms) if event.spread_ms else ""


class Alerts:
    """The toasts of one session, remembering what was said: one toast per predicted dropout,
    and a periodic probe only when its news differ from the previous probe's."""

    def __init__(self, names: Mapping[str, str] | None = None) -> None:
        #: Every name known for an address (a replay's recorded names, then the fleet's).
        self.names: dict[str, str] = dict(names or {})
        #: Speaker -> the predicted dropout time already announced.
        self._announced: dict[str, float] = {}
        #: What the last probe toast said.
        self._probe_news: ProbeNews = (frozenset(), "")

    def update(self, snapshot: FleetSnapshot, events: Sequence[Event]) -> list[Toast]:
        """Every toast a new snapshot and its events call for, in order: actions' outcomes,
        dropouts, then predicted dropouts DUE_WARNING_S away (at `snapshot.t`)."""
        self.names.update({s.address: s.name for s in snapshot.speakers})
        self.names.update({s.key: s.name for s in snapshot.speakers if s.host})
        toasts = [action_toast(e, self.names) for e in events if isinstance(e, ActionEvent)]
        return toasts + dropout_toasts(events, self.names) + self._due(snapshot)

    def _due(self, snapshot: FleetSnapshot) -> list[Toast]:
        toasts = []
        for address, summary in snapshot.dropouts.items():
            due = summary.next_expected
            if due is None or address not in self.names or self._announced.get(address) == due:
                continue
            if 0 <= due - snapshot.t <= DUE_WARNING_S:
                self._announced[address] = due
                toasts.append(
                    due_toast(self.names[address], due - snapshot.t, summary.period_s or 0)
                )
        return toasts

    def probed(self, event: ProbeEvent, *, asked: bool) -> Toast | None:
        """A probe's toast; None for a periodic probe (`asked` False) with nothing new."""
        news = probe_news(event)
        if not asked and news == self._probe_news:
            return None
        self._probe_news = news
        return probe_toast(event)

    def probe_failed(self, problem: str, *, asked: bool) -> Toast | None:
        """Why a probe failed; None for a periodic probe that found nothing playing."""
        if not asked and problem.startswith(NOTHING_TO_PROBE):
            return None
        return Toast(problem, "Probe failed", "error", PROBE_FAILED_TOAST_S)

    def forget(self) -> None:
        """A replay went back in time: its predictions may be announced again."""
        self._announced.clear()
