"""The private PulseAudio of the probe tests: the shared fixture of tests/pulse_server.py."""

from __future__ import annotations

from tests.pulse_server import SPEAKERS, PulseServer, pulse, require_portaudio

__all__ = ["SPEAKERS", "PulseServer", "pulse", "require_portaudio"]
