"""core/ stays free of Textual and Rich: checked by importing it fresh and by import-linter."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.fresh import fresh_json

ROOT = Path(__file__).resolve().parents[2]

#: Top-level packages the domain must never pull in (DESIGN §2; pyproject's contract).
FORBIDDEN = ("textual", "rich", "tui")

IMPORT_ALL_CORE = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    import core
    names = sorted(m.name for m in pkgutil.walk_packages(core.__path__, "core."))
    for name in names:
        importlib.import_module(name)
    top = {m.split(".")[0] for m in sys.modules}
    print(json.dumps({"imported": names, "forbidden": sorted(top & set(sys.argv[1:]))}))
    """
)


def test_importing_all_of_core_loads_no_ui_library() -> None:
    """A fresh interpreter that imports every core module has no textual/rich/tui loaded."""
    report = fresh_json(IMPORT_ALL_CORE, *FORBIDDEN)
    # the walk really reached the domain modules (an empty walk would pass vacuously)
    for module in (
        "core.fleet.model",
        "core.fleet.verdict",
        "core.fleet.events",
        "core.fleet.state",
        "core.fleet.describe",
        "core.bluez.defs",
        "core.bluez.cache",
        "core.bluez.facts",
        "core.bluez.client",
    ):
        assert module in report["imported"]
    assert report["forbidden"] == []


def test_import_linter_contracts_are_kept() -> None:
    """`lint-imports` (the contracts in pyproject.toml) exits 0 with nothing broken."""
    lint_imports = Path(sys.executable).parent / "lint-imports"
    assert lint_imports.exists(), f"{lint_imports} missing: install the dev extras (make setup)"
    result = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
