"""Run a snippet in a fresh interpreter and read the JSON it prints last: what an import
really loads can only be seen where nothing was imported before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def fresh_json(code: str, *argv: str) -> Any:
    """`python -c code argv…` from the repository root; the last stdout line, decoded."""
    result = subprocess.run(
        [sys.executable, "-c", code, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])
