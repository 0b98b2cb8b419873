"""Where promtool is: on PATH (the prometheus package) or in .tools/bin (`make promtool`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import IN_CI

LOCAL: Path = Path(__file__).resolve().parents[2] / ".tools" / "bin" / "promtool"


def promtool_path() -> str:
    """promtool's path; skip (locally) or fail (under CI=true) when it is missing."""
    found = shutil.which("promtool") or (str(LOCAL) if LOCAL.exists() else None)
    if found is None:
        message = "promtool not found (Debian package prometheus; `make promtool` unpacks it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found
