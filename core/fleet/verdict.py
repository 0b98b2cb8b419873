"""classify(): the per-speaker verdict of DESIGN §3 from facts and the time, nothing else."""

from __future__ import annotations

from typing import Final

from core.fleet.model import DeviceFacts, Verdict

#: DESIGN §3: an active transport with no HCI media for this long is `stalled`.
STALL_AFTER_S: Final = 1.0

# Verdict families: the one place that knows which verdicts belong together.
#: Gets audio.
PLAYING: Final = frozenset({Verdict.STREAMING})
#: Looks connected but gets no audio: the illusion this tool exists to expose (named on the
#: fleet line; what `R` resyncs while others stream).
LINKED_SILENT: Final = frozenset({Verdict.CONNECTED_IDLE, Verdict.NO_A2DP, Verdict.STALLED})
#: Gets no audio, linked or not (a speaker expected to play is flagged in any of these).
SILENT: Final = LINKED_SILENT | {Verdict.DISCONNECTED}


def classify(facts: DeviceFacts, now: float, *, source_available: bool = True) -> Verdict:
    """Judge one device: is it really streaming, or only looking connected?"""
    if not source_available or facts.adapter_powered is False:
        return Verdict.UNKNOWN
    if not facts.connected:
        return Verdict.DISCONNECTED
    transport = facts.transport
    if transport is None:
        return Verdict.NO_A2DP
    if transport.sending:
        if facts.probe_missed:
            return Verdict.STALLED
        if facts.media_pps is not None and (
            facts.last_media_t is None or now - facts.last_media_t >= STALL_AFTER_S
        ):
            return Verdict.STALLED
        if facts.awaiting_media:
            # Not `streaming` on the account of a source that has not had its say yet.
            return Verdict.PENDING
        return Verdict.STREAMING
    if transport.state == "pending":
        return Verdict.PENDING
    if transport.state == "idle":
        return Verdict.CONNECTED_IDLE
    # A state BlueZ does not document (or one we were not told): no data to judge on.
    return Verdict.UNKNOWN
