"""DemoFleet: a private dbus-daemon plus the fake BlueZ in a child process, run together."""

from __future__ import annotations

import select
import shutil
import subprocess
import sys
from types import TracebackType

from core.sim.daemon import (
    DemoUnavailable,
    PrivateBus,
    child_env,
    die_with_parent,
    stop_process,
)
from core.sim.tempdirs import owned_tempdir


class DemoFleet:
    """`with DemoFleet(speed=10) as address:` gives a bus where org.bluez is the demo fleet."""

    def __init__(
        self,
        scenario: str = "default",
        speed: float = 1.0,
        *,
        extra_args: list[str] | None = None,
        hci: bool = True,
    ) -> None:
        """`hci`: the fake also writes a simulated HCI capture to `hci_file` (the demo's
        `--hci-file` source: media packets per speaker, and a stalled one)."""
        self.scenario = scenario
        self.speed = speed
        self.extra_args = extra_args or []
        self.bus = PrivateBus()
        self.proc: subprocess.Popen[str] | None = None
        self._hci_dir = owned_tempdir("hci") if hci else None
        #: The simulated capture's path (None without `hci`).
        self.hci_file = str(self._hci_dir / "demo.btsnoop") if self._hci_dir is not None else None

    @property
    def address(self) -> str:
        return self.bus.address

    def start(self) -> str:
        address = self.bus.start()
        self.start_service()
        return address

    def start_service(self) -> None:
        """(Re)start the fake bluetoothd on the running bus."""
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "core.sim",
                "--address",
                self.bus.address,
                "--scenario",
                self.scenario,
                "--speed",
                str(self.speed),
                *(["--hci-file", self.hci_file] if self.hci_file else []),
                *self.extra_args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        line = self.proc.stdout.readline().strip() if ready else ""
        if line != "ready":
            reason = "no answer in 20 s"
            if self.proc.poll() is not None and self.proc.stderr is not None:
                lines = self.proc.stderr.read().strip().splitlines()
                reason = lines[-1] if lines else f"exit status {self.proc.returncode}"
            self.stop()
            raise DemoUnavailable(f"the demo fleet did not start: {reason}")

    def stop_service(self) -> None:
        """Stop the fake bluetoothd (like `systemctl stop bluetooth`), keeping the bus."""
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def stop(self) -> None:
        self.stop_service()
        self.bus.stop()
        if self._hci_dir is not None:
            shutil.rmtree(self._hci_dir, ignore_errors=True)
            self._hci_dir = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
