"""Stand-ins for remote hosts (`--host NAME=COMMAND`) on one machine: a script that runs this
checkout's btmon-tui on a fleet's private bus, as `ssh NAME btmon-tui` would on that host.

Used by `make demo-hosts` (scripts/demo_hosts.py), the screenshots, the tests and the
benches. A host can be taken down: while the file `down` exists next to its script, the
script fails as ssh does when it cannot reach a host (exit 255, `ssh: …`), and `take_down`
also kills the btmon-tui processes it started (their pids are kept in `pids`)."""

from __future__ import annotations

import os
import shlex
import signal
import sys
from pathlib import Path
from typing import Final

#: The repository root: the script runs `python -m tui.cli` from there.
ROOT: Final = Path(__file__).resolve().parents[2]

SCRIPT: Final = """#!/bin/sh
# A stand-in for `ssh {name} btmon-tui`: btmon-tui on this host's private bus, or, while the
# host is down, what ssh says when it cannot reach it.
if [ -e {down} ]; then
    echo "ssh: connect to host {name} port 22: Connection refused" >&2
    exit 255
fi
echo $$ >> {pids}
cd {root}
exec {python} -m tui.cli --bus {bus} "$@"
"""


def write_host_script(name: str, bus: str, folder: Path) -> Path:
    """`folder/btmon-tui`: runs btmon-tui on `bus` with the arguments it is given."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "btmon-tui"
    script.write_text(
        SCRIPT.format(
            name=name,
            down=shlex.quote(str(folder / "down")),
            pids=shlex.quote(str(folder / "pids")),
            root=shlex.quote(str(ROOT)),
            python=shlex.quote(sys.executable),
            bus=shlex.quote(bus),
        )
    )
    script.chmod(0o755)
    return script


def take_down(folder: Path) -> None:
    """The host goes away: the btmon-tui processes its script started die, and until
    `bring_up` the script cannot reach it."""
    (folder / "down").touch()
    pids = folder / "pids"
    if pids.exists():
        for line in pids.read_text().split():
            try:
                os.kill(int(line), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        pids.unlink()


def bring_up(folder: Path) -> None:
    (folder / "down").unlink(missing_ok=True)
