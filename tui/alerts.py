"""What deserves a toast: a speaker dropping out, a predicted dropout coming near, an action's
end. Pure: the app hands in a snapshot and events and shows the toasts it gets back.

No Textual here, so every rule can be tested without a screen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from core.describe import age, countdown, describe_dropout, describe_event, plural
from core.events import ActionEvent, DropoutEvent, Event
from core.model import FleetSnapshot

#: A predicted dropout is announced this many seconds ahead.
DUE_WARNING_S: Final = 30
#: Seconds an action's outcome stays on screen as a toast (failures need reading).
DONE_TOAST_S, FAILED_TOAST_S = 5, 12
#: Dropout toasts per batch of events; beyond it one toast counts the rest (a fleet-wide drop,
#: or a replay moved forward, must not bury the screen under toasts).
MAX_DROPOUT_TOASTS: Final = 3


@dataclass(frozen=True, slots=True)
class Toast:
    """One notification, as App.notify takes it."""

    message: str
    title: str
    severity: str
    timeout: float


def dropout_toasts(events: Sequence[Event], names: Mapping[str, str]) -> list[Toast]:
    """A toast per dropout that starts, at most MAX_DROPOUT_TOASTS, then one for the rest."""
    starts = [e for e in events if isinstance(e, DropoutEvent) and e.phase == "start"]
    toasts = [
        Toast(
            f"{names.get(e.address, e.address)}: {describe_dropout(e.kind, e.together_with)}",
            "Dropout",
            "error",
            8,
        )
        for e in starts[:MAX_DROPOUT_TOASTS]
    ]
    rest = len(starts) - MAX_DROPOUT_TOASTS
    if rest > 0:
        toasts.append(
            Toast(f"and {plural(rest, 'more dropout')} (see the log)", "Dropout", "error", 8)
        )
    return toasts


def action_toast(event: ActionEvent, names: Mapping[str, str]) -> Toast:
    """The outcome in the log's words: green when it worked, red with BlueZ's words when it
    did not, yellow when the operator cancelled it."""
    line = describe_event(event.to_json(), dict(names)) or ""
    if event.result == "ok":
        title, severity, timeout = "done", "information", DONE_TOAST_S
    elif event.detail == "cancelled":
        title, severity, timeout = "cancelled", "warning", DONE_TOAST_S
    else:
        title, severity, timeout = "failed", "error", FAILED_TOAST_S
    return Toast(line, f"{event.action.capitalize()}: {title}", severity, timeout)


def due_toasts(
    snapshot: FleetSnapshot, names: Mapping[str, str], warned: dict[str, float]
) -> list[Toast]:
    """A toast when a predicted dropout is DUE_WARNING_S away; `warned` (speaker -> the
    prediction announced) keeps it to one per prediction and is updated here."""
    toasts = []
    for address, summary in snapshot.dropouts.items():
        due = summary.next_expected
        if due is None or address not in names or warned.get(address) == due:
            continue
        if 0 <= due - snapshot.t <= DUE_WARNING_S:
            warned[address] = due
            toasts.append(
                Toast(
                    f"{names[address]} is expected to drop in {countdown(due - snapshot.t)} "
                    f"(every {age(summary.period_s or 0)}): resync it now or swap it",
                    "Dropout due",
                    "warning",
                    10,
                )
            )
    return toasts


def alerts(
    snapshot: FleetSnapshot,
    events: Sequence[Event],
    names: Mapping[str, str],
    warned: dict[str, float],
) -> list[Toast]:
    """Every toast a new snapshot and its events call for, in order."""
    toasts = [action_toast(e, names) for e in events if isinstance(e, ActionEvent)]
    return toasts + dropout_toasts(events, names) + due_toasts(snapshot, names, warned)
