"""Media packets/s per speaker from HCI records (DESIGN §3): pure, time passed in.

Attribution: the HCI monitor channel replays adapters (New Index) but not connections, and only
HCI Connection Complete carries both the handle and the address (Encryption Change, Read Remote
Version and the ACL packets themselves carry the handle alone). So a speaker whose link came up
before monitoring started cannot be attributed until it reconnects: :meth:`MediaRates.rates`
leaves it out (unknown, never "0 packets/s", so it is not judged stalled) and its packets are
counted in :meth:`MediaRates.warnings`. A speaker whose Connection Complete was seen is
reported even with no media at all: every packet of its link passes the monitor, so 0 is true.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

from core.hci.a2dp import NO_CONNECTION, A2dpAnalyzer
from core.hci.btsnoop import PacketType, Record

#: DESIGN §3: `streaming` = media in the last 2 s; packets/s are counted over this window.
WINDOW_S: Final = 2.0
#: Less capture than this gives no rate worth showing (one packet would read as 2+ packets/s).
MIN_SPAN_S: Final = 0.5
#: Unattributed handles remembered at most (a bound on memory, not a protocol number).
MAX_UNATTRIBUTED: Final = 64


@dataclass(frozen=True, slots=True)
class MediaRate:
    """One speaker's media: packets/s over WINDOW_S, its last media packet (Unix s), and
    since when the capture has watched its link (its Connection Complete, Unix s): no media
    since then means none, as every packet of the link passes the monitor."""

    pps: float
    last_media_t: float | None
    since: float | None = None


class MediaRates:
    """Media packets/s per address from records fed in order (time passed in, no clock)."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self.analyzer = A2dpAnalyzer(on_media=self._media)
        #: Time of the first record seen: before it, nothing is known.
        self.started: float | None = None
        #: Time of the latest record seen.
        self.latest: float | None = None
        self._times: dict[str, deque[float]] = {}
        self._last: dict[str, float] = {}
        #: Address -> when its current link was seen to open.
        self._linked: dict[str, float] = {}
        self._unattributed: dict[tuple[int, int], int] = {}

    def restart(self) -> None:
        """A new capture begins (file replaced): forget links, keep per-address history."""
        self.analyzer = A2dpAnalyzer(on_media=self._media)
        self._unattributed.clear()

    def feed(self, record: Record) -> None:
        if self.started is None:
            self.started = record.time
        self.latest = record.time
        unknown_before = self.analyzer.problems[NO_CONNECTION]
        if record.type is PacketType.EVENT:  # links open and close only on HCI events
            links = dict(self.analyzer.links)
            self.analyzer.feed(record)
            for key, link in self.analyzer.links.items():
                if links.get(key) is not link:
                    self._linked[link.device.address] = record.time
            return
        self.analyzer.feed(record)
        if record.type is not PacketType.ACL or len(record.data) < 4:
            return
        key = (record.index, int.from_bytes(record.data[0:2], "little") & 0x0FFF)
        if self.analyzer.problems[NO_CONNECTION] != unknown_before:
            if key in self._unattributed or len(self._unattributed) < MAX_UNATTRIBUTED:
                self._unattributed[key] = self._unattributed.get(key, 0) + 1
        elif key in self._unattributed:  # a new connection reuses the handle: attributed now
            del self._unattributed[key]

    def _media(self, address: str, direction: str, t: float) -> None:
        """The analyzer's media hook: one packet of ``address`` at ``t``."""
        times = self._times.get(address)
        if times is None:
            times = self._times[address] = deque()
        times.append(t)
        self._last[address] = t
        cutoff = t - self.window_s
        while times[0] < cutoff:
            times.popleft()

    def attributed(self) -> set[str]:
        """Addresses whose link the capture saw open (and not yet close)."""
        return {link.device.address for link in self.analyzer.links.values()}

    def rates(self, now: float) -> dict[str, MediaRate]:
        """Rates of every attributed address, plus any that sent media in the window."""
        if self.started is None:
            return {}
        span = min(self.window_s, max(now - self.started, MIN_SPAN_S))
        cutoff = now - self.window_s
        live = self.attributed()
        result: dict[str, MediaRate] = {}
        for address in live | set(self._times):
            times = self._times.get(address)
            while times and times[0] < cutoff:
                times.popleft()
            if not times and address not in live:
                self._times.pop(address, None)
                continue
            count = len(times) if times else 0
            result[address] = MediaRate(
                round(count / span, 3), self._last.get(address), self._linked.get(address)
            )
        return result

    def speakers(self) -> int:
        """Attributed links on which AVDTP was seen."""
        links = self.analyzer.links.values()
        return len({link.device.address for link in links if link.device.avdtp})

    def warnings(self) -> list[str]:
        out = []
        if self._unattributed:
            packets = sum(self._unattributed.values())
            handles = len(self._unattributed)
            out.append(
                f"{packets} ACL packets on {handles} connection(s) opened before monitoring "
                "started: not attributed to a speaker; reconnect those speakers to see their "
                "media rate"
            )
        # The analyzer's own count of those packets says less than the line above.
        return out + self.analyzer.warnings(leave_out={NO_CONNECTION})
