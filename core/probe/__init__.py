"""Acoustic drift probes: coded probe signals, WAV I/O, arrival analysis and a simulated room.

`ProbeError` is the one exception family of the package: every probe failure (bad WAV, rate
mismatch, recording too short, audio device trouble) is a `ProbeError` whose message says what
is wrong and what to do, so a caller can catch it once and show the message.
"""

from __future__ import annotations


class ProbeError(Exception):
    """A probe could not be designed, played, recorded or analysed; the message says why."""


__all__ = ["ProbeError"]
