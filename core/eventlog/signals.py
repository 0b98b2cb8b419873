"""Flush the event log when the process is told to stop (DESIGN §6: SIGTERM, and SIGHUP when an
SSH session drops), so a polite kill loses nothing that was appended.

SIGINT is not handled here: Python turns it into KeyboardInterrupt, and the program's own exit
path (`with store:` or `finally: store.close()`) writes the log. The TUI and `watch` call
`close()` in their exit path too; this helper only covers signals that would otherwise end the
process without running that path.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Final

from core.eventlog.store import EventStore

#: How long a signal handler waits for the writer. systemd waits 90 s before SIGKILL and an
#: SSH hang-up has no deadline; 5 s keeps a stuck disk from delaying the exit for long.
SIGNAL_FLUSH_TIMEOUT_S: Final = 5.0

#: The signals that end a monitor politely without raising an exception in Python.
STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGHUP)


def install_signal_flush(
    store: EventStore,
    *,
    on_signal: Callable[[int], None] | None = None,
    signals: Iterable[signal.Signals] = STOP_SIGNALS,
    timeout: float = SIGNAL_FLUSH_TIMEOUT_S,
) -> Callable[[], None]:
    """On each of `signals`: flush `store`, then call `on_signal(signum)` if given (which
    should make the program leave through its exit path, where it calls `store.close()`);
    without `on_signal`, close the store and end the process with the signal's default action
    (so the parent still sees "terminated by SIGTERM").

    Call from the main thread (Python runs signal handlers there). Returns a function that
    restores the previous handlers. In an asyncio program prefer `loop.add_signal_handler`
    with a callback that calls `store.flush()` off the loop; this helper suits a synchronous
    main loop and is a safety net for the TUI.
    """
    chosen = tuple(signals)

    def handle(signum: int, frame: FrameType | None) -> None:
        if on_signal is not None:
            store.flush(timeout)
            on_signal(signum)
            return
        store.close(timeout)
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)

    previous = {signum: signal.signal(signum, handle) for signum in chosen}

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore
