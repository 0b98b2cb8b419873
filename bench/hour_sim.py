"""RSS after one simulated hour of a busy fleet: the real app, fed in-process, no D-Bus.

    .venv/bin/python -m bench tui-hour       (or: python -m bench.hour_sim)

What is simulated (explicitly):

* The app is the real one (tui.app.make_app) on a 120x40 pty with Textual's real driver. Its
  FleetFeed.run, which would connect to D-Bus, is replaced by a driver coroutine; its render
  timer is switched off (tui.app.RENDER_INTERVAL_S patched to an hour after reading it) and
  the driver renders instead, once per simulated render interval (RENDER_INTERVAL_S as the
  app has it: 0.25 s originally, 0.1 s since the 10 Hz change): feed.pull() ->
  app.show_fleet(...) (what the timer's FleetUpdated message leads to), then it waits until
  the frame has been written.
* The fake BlueZ (FakeBluez, build_load: 100 speakers on 2 adapters) emits its real signal
  Messages into a loopback "bus" that hands them to BluezMirror._on_message with the sender
  set, so the mirror's decoding, ObjectCache, facts, FleetState, events and FleetFeed all run;
  only the socket, marshalling and dbus-daemon are skipped.
* Per simulated second: 1000 Volume changes (100 speakers x 10/s, seeded random), the
  Monitor's tick twice (core.monitor.TICK_S), and the demo's dropper: one speaker
  drops (transport gone, Disconnected, Connected=false) at 45 s and then every 282 s, and
  comes back 6 s later (as in the default demo scenario).
* The app's SQLite event log (core.eventlog.store.EventStore, on by default in the TUI) is
  open, in a temporary directory, as the command line would open it.
* The clock the app and mirror see is simulated (starts now, + one interval per step).
* One hour is 3600 / interval steps (36,000 frames at 10 Hz) and 3.6 M changes: more than a
  benchmark can run, so the run stops at its wall-clock budget. RSS (VmRSS) and Python's
  allocated heap blocks are sampled every 10 simulated seconds; the report gives the simulated
  time reached, RSS at the end, the slopes over the second half of the run, and the RSS slope
  extrapolated to one hour (a plateau extrapolates to itself).

Peer: bench.peer_app (a bare Textual app with a DataTable shaped like the fleet table) doing
the same number of steps of the same length with the same changes, sampled the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import PtyApp, child_env, fmt, rss_mb, verdict

SIZE = (120, 40)
SPEAKERS = 100
CHANGES_PER_S = 1000
SAMPLE_S = 10.0  # simulated seconds between RSS samples
WARM_S = 60.0  # simulated seconds left out of the slopes
MIN_TAIL_S = 30.0  # simulated seconds of samples needed after WARM_S for an extrapolation
DROP_PERIOD_S = 282.0
DROP_OUTAGE_S = 6.0
FIRST_DROP_S = 45.0
SENDER = ":1.99"
TARGET_RSS_MB = 150.0


class SimClock:
    """A clock the driver advances; the app and the mirror read it."""

    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


class LoopbackBus:
    """Just enough of dbus_next.aio.MessageBus for ObjectTree (server) and BluezMirror."""

    def __init__(self) -> None:
        self.handlers: list[Any] = []
        self.deliver: Any = None
        self.connected = True
        self._serial = 0

    def add_message_handler(self, handler: Any) -> None:
        self.handlers.append(handler)

    def next_serial(self) -> int:
        self._serial += 1
        return self._serial

    def send(self, msg: Any) -> None:
        from dbus_next import Message, MessageType

        if not msg.serial:
            msg.serial = self.next_serial()
        if msg.message_type == MessageType.METHOD_CALL:
            for handler in self.handlers:
                reply = handler(msg)
                if isinstance(reply, Message):
                    reply.sender = SENDER
                    reply.serial = self.next_serial()
                    self.deliver(reply)
                    return
            return
        msg.sender = SENDER
        self.deliver(msg)


# -- child: the app for an hour ----------------------------------------------------------
def _open_log(state_dir: str) -> Any:
    """The SQLite event log the TUI keeps by default (core.eventlog.store.EventStore), in state_dir;
    None when this version of the code has none."""
    try:
        from core.eventlog.store import EventStore
    except ImportError:
        return None
    store = EventStore(Path(state_dir) / "events.sqlite3")
    store.open()
    return store


def _child_app(budget_s: float, out: str, state_dir: str) -> None:
    from dbus_next import Variant

    import tui.app
    from core.bluez.defs import DEVICE, TRANSPORT
    from core.monitor import TICK_S
    from core.sim.fake_bluez import FakeBluez, device_path
    from core.sim.objtree import ObjectTree
    from core.sim.scenario import build_load
    from tui.ingest import FleetUpdated

    # One step = one render interval of the app as it is now; the driver renders instead of
    # the app's timer, which is switched off.
    step_s = float(tui.app.RENDER_INTERVAL_S)
    tui.app.RENDER_INTERVAL_S = 3600.0
    hour_steps = round(3600 / step_s)
    tick_every = max(1, round(TICK_S / step_s))
    sample_every = max(1, round(SAMPLE_S / step_s))
    clock = SimClock()
    store = _open_log(state_dir)
    extra = {"log": store} if store is not None else {}
    app = tui.app.make_app("loopback", bus_label="a simulated hour", clock=clock, **extra)
    feed = app.feed
    monitor = feed.monitor
    mirror = monitor.bluez
    assert mirror is not None
    frame = asyncio.Event()
    app.post_display_hook = frame.set  # type: ignore[method-assign]

    async def drive() -> None:
        bus = LoopbackBus()
        bus.deliver = mirror._on_message
        fake = FakeBluez(ObjectTree(bus))  # type: ignore[arg-type]
        addresses = build_load(fake, SPEAKERS)
        mirror.bus = bus  # type: ignore[assignment]
        mirror._request_objects(bus)  # type: ignore[arg-type]
        paths = {a: fake.transport_path(fake.devices[a]) for a in addresses}
        dropper = addresses[3]
        rng = random.Random(1)
        owed = 0.0  # changes due (fractional), so any step length gives 1000/s on average
        changes = drops = missed_frames = 0
        next_drop, back_at = FIRST_DROP_S, None
        start_wall = time.monotonic()
        deadline = start_wall + budget_s
        step = 0
        await _frame(app, frame)
        samples = [[0.0, rss_mb()[0], 0.0, sys.getallocatedblocks()]]
        while step < hour_steps and time.monotonic() < deadline:
            step += 1
            clock.t += step_s
            sim_s = step * step_s
            owed += CHANGES_PER_S * step_s
            while owed >= 1:
                owed -= 1
                changes += 1
                address = rng.choice(addresses)
                path = paths[address]
                if path is not None:
                    fake.tree.set_props(
                        path, TRANSPORT, {"Volume": Variant("q", rng.randrange(0, 128))}
                    )
            if sim_s >= next_drop:
                fake.drop_link(dropper)
                paths[dropper] = None
                back_at, next_drop = sim_s + DROP_OUTAGE_S, next_drop + DROP_PERIOD_S
                drops += 1
            elif back_at is not None and sim_s >= back_at:
                dev = fake.devices[dropper]
                dev.connected = True
                fake.tree.set_props(
                    device_path(dev.adapter, dropper),
                    DEVICE,
                    {"Connected": Variant("b", True), "ServicesResolved": Variant("b", True)},
                )
                fake.set_transport_state(dropper, "active")
                paths[dropper] = fake.transport_path(dev)
                back_at = None
            if step % tick_every == 0:
                monitor.tick(clock())
            update = feed.pull()
            if update is not None:
                app.show_fleet(FleetUpdated(*update))
            if not await _frame(app, frame):
                missed_frames += 1
            if step % sample_every == 0:
                samples.append(
                    [sim_s, rss_mb()[0], time.monotonic() - start_wall, sys.getallocatedblocks()]
                )
        samples.append(
            [step * step_s, rss_mb()[0], time.monotonic() - start_wall, sys.getallocatedblocks()]
        )
        result = {
            "step_s": step_s,
            "hour_steps": hour_steps,
            "steps": step,
            "changes": changes,
            "drops": drops,
            "frame_timeouts": missed_frames,
            "wall_s": time.monotonic() - start_wall,
            "samples": samples,
            "hwm_mb": rss_mb()[1],
            "history": len(feed.history),
            "speakers": len(monitor.state.speakers),
            "event_log": store is not None,
        }
        if store is not None:
            store.close()
            files = Path(state_dir).glob("events.sqlite3*")
            result["event_log_mb"] = sum(f.stat().st_size for f in files) / (1 << 20)
        Path(out).write_text(json.dumps(result))
        app.exit()

    feed.run = drive  # type: ignore[method-assign]
    app.run()


async def _frame(app: Any, frame: asyncio.Event, timeout: float = 0.5) -> bool:
    """Wait until the next frame has been handed to the terminal; False on timeout."""
    frame.clear()
    try:
        await asyncio.wait_for(frame.wait(), timeout)
    except TimeoutError:
        return False
    return True


# -- the benchmark -------------------------------------------------------------------------
def _run_child(argv: list[str], out: Path, timeout_s: float) -> dict[str, Any]:
    app = PtyApp(argv, size=SIZE, env=child_env())
    app.start()
    assert app.proc is not None
    try:
        app.proc.wait(timeout=timeout_s)
    except Exception:
        pass
    finally:
        app.stop(quit_keys=None)
    if not out.exists():
        raise RuntimeError(f"{' '.join(argv[2:5])}: no result (did it crash?)")
    return json.loads(out.read_text())


def run(budget_s: float = 40.0, workdir: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-hour-") as tmp:
        out = Path(workdir or tmp) / "hour.json"
        out.unlink(missing_ok=True)
        argv = [sys.executable, "-m", "bench.hour_sim", "--role", "app", "--out", str(out)]
        argv += ["--budget", str(budget_s), "--state", tmp]
        res = _run_child(argv, out, budget_s + 60)
    return _analyse(res)


def run_peer(
    steps: int, step_s: float, workdir: Path | None = None, layout: dict[str, Any] | None = None
) -> dict[str, Any]:
    from bench.tui_load import peer_layout_args

    with tempfile.TemporaryDirectory(prefix="bench-hour-") as tmp:
        out = Path(workdir or tmp) / "hour-peer.json"
        out.unlink(missing_ok=True)
        argv = [sys.executable, "-m", "bench.peer_app", "--mode", "frames", "--out", str(out)]
        argv += ["--steps", str(steps), "--interval", str(step_s)]
        argv += ["--speakers", str(SPEAKERS), "--rate", str(CHANGES_PER_S / SPEAKERS)]
        argv += peer_layout_args(layout)
        res = _run_child(argv, out, 60 + 0.2 * steps)
    return _analyse(res)


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0 with fewer than two points)."""
    if len(points) < 2:
        return 0.0
    mx = sum(p[0] for p in points) / len(points)
    my = sum(p[1] for p in points) / len(points)
    den = sum((p[0] - mx) ** 2 for p in points)
    return sum((p[0] - mx) * (p[1] - my) for p in points) / den if den else 0.0


def _analyse(res: dict[str, Any]) -> dict[str, Any]:
    samples = res["samples"]
    sim_end = samples[-1][0]
    # Slopes over the second half of the run, but never over the first simulated minute (the
    # event history and Textual's caches fill up then); too short a tail gives no estimate.
    tail_from = max(WARM_S, sim_end / 2)
    half = [s for s in samples if s[0] >= tail_from]
    res["tail_s"] = sim_end - tail_from
    rss_slope = _slope([(s[0], s[1]) for s in half])  # MB per simulated second
    blocks_slope = _slope([(s[0], s[3]) for s in half])
    res["sim_s"] = sim_end
    res["rss_end_mb"] = samples[-1][1]
    res["rss_start_mb"] = samples[0][1]
    res["blocks_start"] = samples[0][3]
    res["blocks_end"] = samples[-1][3]
    res["slope_mb_per_sim_min"] = rss_slope * 60
    res["blocks_per_sim_min"] = blocks_slope * 60
    if sim_end >= 3600:
        res["rss_hour_extrapolated_mb"] = samples[-1][1]
    elif res["tail_s"] >= MIN_TAIL_S:
        res["rss_hour_extrapolated_mb"] = samples[-1][1] + max(0.0, rss_slope) * (3600 - sim_end)
    else:
        res["rss_hour_extrapolated_mb"] = float("nan")
    res["frames_per_s"] = res["steps"] / res["wall_s"] if res["wall_s"] else 0
    return res


def _thin(samples: list[list[float]], n: int) -> list[list[float]]:
    if len(samples) <= n:
        return samples
    step = (len(samples) - 1) / (n - 1)
    return [samples[round(i * step)] for i in range(n)]


def report(res: dict[str, Any], peer: dict[str, Any] | None = None) -> str:
    hour_mb = res["rss_hour_extrapolated_mb"]
    full = res["steps"] >= res.get("hour_steps", 1 << 62)
    lines = [
        f"hour: simulated {fmt(res['sim_s'] / 60, 1)} min of 60 ({res['steps']} frames, "
        f"{res['changes']:,} changes, {res['drops']} drops) in {fmt(res['wall_s'], 0)} s wall "
        f"({fmt(res['frames_per_s'], 1)} simulated {fmt(res['step_s'] * 1000, 0)} ms steps/s); "
        f"the peer did the same steps in {fmt((peer or {}).get('wall_s', float('nan')), 0)} s "
        f"drawing {(peer or {}).get('frames', '?')} frames (only changes to the columns the "
        "app's table shows need one)"
        + (
            f"; the app's SQLite event log (on, as in the TUI by default) grew to "
            f"{fmt(res['event_log_mb'])} MiB"
            if res.get("event_log")
            else "; no event log in this version"
        ),
        "",
        "| metric | btmon-tui | bare DataTable peer (same steps) | ratio | target | result |",
        "|---|---|---|---|---|---|",
    ]
    p = peer or {}

    def cell(key: str, digits: int = 1) -> str:
        return fmt(p[key], digits) if key in p else "-"

    def ratio(key: str) -> str:
        return f"x{fmt(res[key] / p[key], 2)}" if p.get(key) else "-"

    lines += [
        f"| RSS MB after first frame | {fmt(res['rss_start_mb'])} | {cell('rss_start_mb')} | "
        f"{ratio('rss_start_mb')} | | |",
        f"| RSS MB at end of run | {fmt(res['rss_end_mb'])} | {cell('rss_end_mb')} | "
        f"{ratio('rss_end_mb')} | | |",
        f"| RSS growth MB per simulated min (2nd half) | {fmt(res['slope_mb_per_sim_min'], 3)} | "
        f"{cell('slope_mb_per_sim_min', 3)} | | | |",
        f"| Python heap blocks, first frame -> end | {res['blocks_start']:,} -> "
        f"{res['blocks_end']:,} | "
        + (f"{p['blocks_start']:,} -> {p['blocks_end']:,}" if p else "-")
        + " | | | |",
        f"| heap blocks growth per simulated min (2nd half) | {fmt(res['blocks_per_sim_min'], 0)}"
        f" | {cell('blocks_per_sim_min', 0)} | | | |",
        f"| RSS MB after 1 h ({'measured' if full else 'extrapolated'}) | {fmt(hour_mb)} | "
        f"{cell('rss_hour_extrapolated_mb')} | {ratio('rss_hour_extrapolated_mb')} | "
        f"<= {fmt(TARGET_RSS_MB, 0)} | "
        f"{verdict(hour_mb <= TARGET_RSS_MB) if hour_mb == hour_mb else 'run too short'} |",
        "",
        "RSS over the run (simulated min: MB): "
        + ", ".join(f"{fmt(s[0] / 60, 1)}: {fmt(s[1])}" for s in _thin(res["samples"], 10)),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hour_sim", description=__doc__)
    parser.add_argument("--role", choices=["bench", "app"], default="bench")
    parser.add_argument("--out", default="")
    parser.add_argument("--budget", type=float, default=40.0)
    parser.add_argument("--state", default="", help="app: directory for its event log")
    args = parser.parse_args(argv)
    if args.role == "app":
        _child_app(args.budget, args.out, args.state or tempfile.mkdtemp(prefix="bench-hour-"))
        return 0
    from bench.tui_load import probe_layout

    res = run(args.budget)
    peer = run_peer(res["steps"], res["step_s"], layout=probe_layout())
    print(report(res, peer))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
