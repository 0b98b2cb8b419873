"""Work-arounds for dbus-next bugs that the fake BlueZ runs into (it sends in bursts)."""

from __future__ import annotations


def patch_dbus_next_eagain() -> None:
    """Make dbus-next's asyncio writer wait on EAGAIN instead of dropping the connection.

    dbus-next 0.2.3 (`aio/message_bus.py`, `_MessageWriter.write_callback`) treats
    BlockingIOError from `sock.send` as fatal and finalizes the bus, so a burst of signals
    larger than the socket buffer (the load fleet's InterfacesAdded at start-up) kills the
    publisher at random (upstream altdesktop/python-dbus-next#153, fix in PR #154, unmerged).
    Applied by the fake BlueZ (it sends whole fleets at once), not by the client, which
    sends only a few calls.
    """
    from dbus_next.aio import message_bus

    writer = message_bus._MessageWriter
    if getattr(writer, "_btmon_eagain", False):
        return

    def write_callback(self) -> None:  # type: ignore[no-untyped-def]
        # dbus-next's loop, except that EAGAIN means "wait until writable".
        try:
            while True:
                if self.buf is None:
                    if self.messages.qsize() == 0:
                        self.loop.remove_writer(self.fd)
                        return
                    buf, _unix_fds, fut = self.messages.get_nowait()
                    self.buf = memoryview(buf)
                    self.offset = 0
                    self.fut = fut
                try:
                    self.offset += self.sock.send(self.buf[self.offset :])
                except BlockingIOError:
                    return
                if self.offset < len(self.buf):
                    return
                self.buf = None
                message_bus._future_set_result(self.fut, None)
        except Exception as exc:
            message_bus._future_set_exception(self.fut, exc)
            self.bus._finalize(exc)

    writer.write_callback = write_callback
    writer._btmon_eagain = True
