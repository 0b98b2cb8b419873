"""The command line (tui/cli/) is headless: importing every command module loads no Textual,
and parsing alone loads neither numpy nor D-Bus (issue 13 §3; pyproject's contract too)."""

from __future__ import annotations

import textwrap

from tests.fresh import fresh_json

IMPORT = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    import tui.cli
    names = sorted(m.name for m in pkgutil.walk_packages(tui.cli.__path__, "tui.cli."))
    names = [n for n in names if n != "tui.cli.__main__"]  # running it would start the CLI
    for name in sys.argv[1:] or names:
        importlib.import_module(name)
    top = sorted({m.split(".")[0] for m in sys.modules})
    print(json.dumps({"imported": names, "top": top, "modules": sorted(sys.modules)}))
    """
)


def _fresh_import(*modules: str) -> dict:  # type: ignore[type-arg]
    report: dict = fresh_json(IMPORT, *modules)  # type: ignore[type-arg]
    return report


def test_every_command_module_imports_without_textual() -> None:
    report = _fresh_import()
    for command in ("main", "parser", "watch", "report", "snoop", "probe", "analyze", "act"):
        assert f"tui.cli.{command}" in report["imported"], report["imported"]
    assert "textual" not in report["top"] and "rich" not in report["top"]
    assert "tui.app" not in report["modules"] and "tui.launch" not in report["modules"]


def test_parsing_loads_no_numpy_and_no_dbus() -> None:
    report = _fresh_import("tui.cli.main")
    assert not {"numpy", "dbus_next", "textual", "sounddevice"} & set(report["top"])
