"""`p` and --probe-every: the Monitor runs the probe (off the event loop), the drift panel
shows it, a toast says what is new; a mixin of BtmonApp, which composes it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import work

from core.describe import describe_event
from core.model import sync_word
from core.probe.backends import MicBackend
from core.probe.runner import Backend, ProbeFailed, missed

if TYPE_CHECKING:
    from tui.ingest import FleetFeed

#: Seconds a probe's toast stays: a clean probe briefly, one that missed a speaker longer.
PROBE_TOAST_S, PROBE_MISSED_TOAST_S = 5, 12


class ProbeKeys:
    """p probes now; a periodic timer (--probe-every) calls `_periodic_probe`."""

    # Provided by BtmonApp.
    feed: FleetFeed
    notify: Any
    probe_backend: Backend | None
    _probe_news: tuple[frozenset[str], str]

    def action_probe(self) -> None:
        if self.feed.monitor.probing:
            self.notify("A probe is already running", timeout=3)
            return
        if not self.feed.monitor.live:
            self.notify("This is a replay: probes need live speakers", timeout=4)
            return
        self.run_probe(announce=True)

    def _periodic_probe(self) -> None:
        if not self.feed.monitor.probing:
            self.run_probe(announce=False)

    @work(exclusive=True, exit_on_error=False, group="probe")
    async def run_probe(self, announce: bool) -> None:
        if self.probe_backend is None:
            self.probe_backend = MicBackend()
        try:
            event = await self.feed.monitor.probe(self.probe_backend)
        except ProbeFailed as exc:
            if announce or not str(exc).startswith("no speaker is playing"):
                self.notify(str(exc), title="Probe failed", severity="error", timeout=10)
            return
        names = {r.address: r.name for r in event.results}
        line = describe_event(event.to_json(), names) or "probe done"
        heard_all = all(r.detected for r in event.results)
        # A periodic probe speaks up only when its news differ from the previous one's.
        news = (missed(event), sync_word(event.spread_ms) if event.spread_ms else "")
        if not announce and news == self._probe_news:
            return
        self._probe_news = news
        self.notify(
            line,
            title="Probe",
            severity="information" if heard_all else "error",
            timeout=PROBE_TOAST_S if heard_all else PROBE_MISSED_TOAST_S,
            markup=False,
        )
