"""`make demo-hosts`: btmon-tui watching three hosts on this one machine, no Bluetooth needed.

This machine runs the demo fleet (`--demo --host local`); two more demo fleets, each on its
own private D-Bus, stand in for the hosts `stage` and `bar`. They are reached through scripts
that run btmon-tui there (core/sim/remote.py) instead of `ssh HOST btmon-tui`, so keys act on
the selected speaker's host exactly as over SSH. While the TUI runs, `touch FOLDER/down` takes
a host away (its script then fails as ssh does) and removing it brings it back: the folders are
printed at start. Extra arguments go to btmon-tui (e.g. `--metrics 9108`)."""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.sim.daemon import DemoUnavailable  # noqa: E402
from core.sim.demo import DemoFleet  # noqa: E402
from core.sim.remote import take_down, write_host_script  # noqa: E402

HOSTS = ("stage", "bar")


def main(argv: list[str]) -> int:
    fleets: list[DemoFleet] = []
    with tempfile.TemporaryDirectory(prefix="btmon-demo-hosts-") as temp:
        args = [sys.executable, "-m", "tui.cli", "--demo", "--host", "local"]
        try:
            for name in HOSTS:
                fleet = DemoFleet(hci=False)
                fleets.append(fleet)
                script = write_host_script(name, fleet.start(), Path(temp) / name)
                args += ["--host", f"{name}={shlex.quote(str(script))}"]
                print(f"host {name}: `touch {Path(temp) / name / 'down'}` takes it away")
        except DemoUnavailable as exc:
            print(f"demo-hosts: error: {exc}", file=sys.stderr)
            return 2
        finally:
            if len(fleets) < len(HOSTS):
                for fleet in fleets:
                    fleet.stop()
        try:
            return subprocess.call([*args, *argv], cwd=ROOT)
        except KeyboardInterrupt:
            return 130
        finally:
            for name in HOSTS:
                take_down(Path(temp) / name)
            for fleet in fleets:
                fleet.stop()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
