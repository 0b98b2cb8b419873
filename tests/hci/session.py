"""Scripted A2DP sessions for the tests: a re-export of core.hci.script (the demo uses it too)."""

from __future__ import annotations

from core.hci.script import AAC_INFO, SBC_INFO, T0, Link, Session, seed_case

__all__ = ["AAC_INFO", "SBC_INFO", "T0", "Link", "Session", "seed_case"]
