"""What an action on a speaker may take and how it can end: its per-step limits, its failure,
and BlueZ's errors (D-Bus error names, `Failed` detail strings) in an operator's words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from core.bluez.bus import DBusCallError


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Per-step limits of an action (seconds); the config file can change them."""

    call_s: float = 25.0
    disconnect_s: float = 10.0
    transport_s: float = 8.0
    active_s: float = 8.0
    attempts: int = 3
    #: Pause between a resync's Disconnect and its Connect: the speaker settles, and one that
    #: reconnects by itself has usually done so by then (our Connect then finds it connected).
    settle_s: float = 0.5
    #: Pause before retrying a Connect that a retry can fix (page timeout, busy).
    retry_s: float = 1.0


class ActionFailed(Exception):
    """An action step failed; carries BlueZ's detail and the operator's message."""

    def __init__(self, message: str, detail: str | None = None, name: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        #: The D-Bus error name when the failure was an error reply.
        self.name = name


#: BlueZ (and bus) error names -> what the operator should read.
ERROR_WORDS: Final[dict[str, str]] = {
    "org.bluez.Error.NotReady": "the adapter is not ready (powered off?): `bluetoothctl power on`",
    "org.bluez.Error.InProgress": "BlueZ is already connecting this speaker",
    "org.bluez.Error.AlreadyConnected": "already connected",
    "org.bluez.Error.NotConnected": "not connected",
    "org.bluez.Error.NotAvailable": "the speaker offers no audio profile right now",
    "org.bluez.Error.BREDR.ProfileUnavailable": "the speaker offers no audio profile right now",
    "org.bluez.Error.DoesNotExist": "BlueZ no longer knows this speaker (unpaired?)",
    "org.bluez.Error.AuthenticationFailed": "pairing is broken: remove and pair the speaker again",
    "org.freedesktop.DBus.Error.AccessDenied": (
        "not allowed by the D-Bus policy: run as root or as a user in group 'bluetooth'"
    ),
    "org.freedesktop.DBus.Error.ServiceUnknown": "bluetoothd is not running (restarted?)",
    "org.freedesktop.DBus.Error.NameHasNoOwner": "bluetoothd is not running (restarted?)",
    "org.freedesktop.DBus.Error.UnknownObject": "bluetoothd restarted or removed the speaker",
    "org.freedesktop.DBus.Error.NoReply": "BlueZ did not answer",
    "org.freedesktop.DBus.Error.Disconnected": "lost the connection to D-Bus",
}
#: org.bluez.Error.Failed detail strings (BlueZ >= 5.62, src/error.h) -> operator words.
FAILED_WORDS: Final[dict[str, str]] = {
    "br-connection-page-timeout": "the speaker did not answer: is it on and in range?",
    "br-connection-profile-unavailable": "the speaker offers no audio profile right now",
    "br-connection-refused": "the speaker refused the connection (busy with another host?)",
    "br-connection-canceled": "the connection was cancelled",
    "br-connection-key-missing": "pairing keys are missing: pair the speaker again",
    "br-connection-adapter-not-powered": "the adapter is off: `bluetoothctl power on`",
    "br-connection-busy": "the adapter is busy; try again in a moment",
    "br-connection-timeout": "the connection timed out: is the speaker in range?",
    "br-connection-aborted-by-remote": "the speaker dropped the connection while it was set up",
    "br-connection-sdp-search": "could not read the speaker's services (SDP): try again",
    "br-connection-already-connected": "already connected",
    "br-connection-unknown": "the connection failed for an unknown reason",
}
#: Failed details a new attempt can fix (the speaker was switched on, came in range…).
RETRY_DETAILS: Final = frozenset(
    {
        "br-connection-page-timeout",
        "br-connection-busy",
        "br-connection-timeout",
        "br-connection-aborted-by-remote",
        "br-connection-canceled",
        "br-connection-sdp-search",
        "br-connection-unknown",
    }
)
#: bluetoothd left the bus while an action waited for it.
RESTARTED: Final = (
    "bluetoothd stopped or restarted during the action: check `systemctl status bluetooth`, "
    "then try again"
)


def explain(error: DBusCallError) -> tuple[str, str]:
    """(detail, message) for a D-Bus error reply; detail is BlueZ's token or the error name."""
    text = error.text.strip()
    detail = text if text and " " not in text else error.name
    if error.name == "org.bluez.Error.Failed":
        return detail, FAILED_WORDS.get(detail, f"BlueZ says: {text or 'failed'}")
    if error.name == "org.freedesktop.DBus.Error.NoReply" and "disconnected" in text:
        return "bluez-restarted", RESTARTED  # bluetoothd left the bus before it answered
    words = ERROR_WORDS.get(error.name) or FAILED_WORDS.get(text)
    return detail, words or f"{error.name}: {text}".strip(": ")
