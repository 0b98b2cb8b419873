"""`btmon-tui snoop FILE`: the A2DP truth per device in a btsnoop capture."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.hci.a2dp import analyze, snoop_table
from core.hci.btsnoop import BtsnoopError
from tui.cli.options import fail


def run(args: argparse.Namespace) -> int:

    try:
        result = analyze(Path(args.file))
    except BtsnoopError as exc:
        return fail(str(exc))
    for warning in result["warnings"]:
        print(f"btmon-tui: warning: {warning}", file=sys.stderr)
    print(json.dumps(result) if args.json else snoop_table(result))
    return 0
