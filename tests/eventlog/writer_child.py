"""A process that appends events to an EventStore until a signal ends it (tests/eventlog only).

`python -m tests.eventlog.writer_child DB LOG MODE`, MODE one of:
  plain   no signal handlers: for `kill -9`, and SIGINT (KeyboardInterrupt -> `with` closes)
  term    install_signal_flush(store): SIGTERM/SIGHUP flush, close, then die by the signal
  hup     install_signal_flush(store, on_signal=...): the callback ends the loop, exit path closes
Event `seq` numbers count from 0 with no gaps. LOG gets one unbuffered line per returned
append(), "appended N T", and per acknowledged flush, "acked N T" (N events so far, T =
time.monotonic(), comparable across processes).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from core.eventlog.signals import install_signal_flush
from core.eventlog.store import EventStore

#: An acknowledgement (flush) after the first FIRST_ACK events and then every ACK_EVERY
#: (~3 s apart); between them the writer's own schedule decides what is on disk, which is what
#: the kill -9 test measures.
FIRST_ACK = 500
ACK_EVERY = 5000
#: Pause between appends: ~1,500 events/s, busier than any real fleet.
APPEND_PAUSE_S = 0.0005


def main() -> int:
    db, log_path, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    running = True

    def stop(signum: int) -> None:
        nonlocal running
        running = False

    with open(log_path, "w", buffering=1) as log, EventStore(db, retention_days=None) as store:
        if mode == "term":
            install_signal_flush(store)
        elif mode == "hup":
            install_signal_flush(store, on_signal=stop)
        log.write(f"ready 0 {time.monotonic():.6f}\n")
        seq = 0
        while running:
            store.append(
                [
                    {
                        "type": "transport",
                        "t": 1_700_000_000.0 + seq / 1000,
                        "address": f"AA:BB:CC:DD:EE:{seq % 8:02X}",
                        "state": "active" if seq % 2 else "idle",
                        "codec": "SBC",
                        "seq": seq,
                    }
                ]
            )
            seq += 1
            log.write(f"appended {seq} {time.monotonic():.6f}\n")
            if seq % ACK_EVERY == FIRST_ACK and store.flush():
                log.write(f"acked {seq} {time.monotonic():.6f}\n")
            time.sleep(APPEND_PAUSE_S)
        log.write(f"stopped {seq} {time.monotonic():.6f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
