"""`btmon-tui`: parse the command line, then run the one command it names (the TUI when none).

Only the grammar (tui/cli/parser.py) is loaded for parsing; the command's own module is
imported after, so `snoop` does not load numpy and no headless command loads Textual.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Sequence

from tui.cli import options
from tui.cli.parser import build_parser

#: Subcommand -> the module whose `run(args)` carries it out.
COMMANDS = {
    "watch": "tui.cli.watch",
    "report": "tui.cli.report",
    "snoop": "tui.cli.snoop",
    "probe-signal": "tui.cli.probe_signal",
    "analyze": "tui.cli.analyze",
    "probe": "tui.cli.probe",
    "align": "tui.cli.align",
    "resync": "tui.cli.act",
    "connect": "tui.cli.act",
    "disconnect": "tui.cli.act",
}
#: The Textual app's launcher, outside this package (the one place that may import Textual).
TUI = "tui.launch"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, without a traceback.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    problem = options.merge(args) or options.check(args)
    if problem:
        return options.fail(problem)
    module = importlib.import_module(COMMANDS.get(args.command, TUI))
    code: int = module.run(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
