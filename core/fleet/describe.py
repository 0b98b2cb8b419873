"""Events and verdicts in an operator's words, shared by the TUI's log and headless output."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from core.fleet.model import DropoutSummary, Verdict, sync_word

#: Verdict -> short label for the table, with a symbol so it reads without colour.
VERDICT_LABEL: dict[Verdict, str] = {
    Verdict.STREAMING: "● streaming",
    Verdict.STALLED: "▲ stalled",
    Verdict.CONNECTED_IDLE: "◐ connected-idle",
    Verdict.PENDING: "… pending",
    Verdict.NO_A2DP: "◌ no-a2dp",
    Verdict.DISCONNECTED: "○ disconnected",
    Verdict.UNKNOWN: "? unknown",
}

REASON_WORDS: dict[str, str] = {
    "timeout": "link timed out (out of range or speaker reset)",
    "remote": "the speaker hung up",
    "local": "disconnected from this host",
    "auth": "authentication failed",
    "suspend": "host suspended",
    "unknown": "reason unknown",
}


DROPOUT_WORDS: dict[str, str] = {
    "link": "link lost while streaming",
    "transport": "audio stream stopped while others play",
    "stall": "stream stalled, no media",
    "probe": "the probe did not hear it",
}


def plural(count: int, noun: str, nouns: str = "") -> str:
    """'1 dropout', '6 dropouts', '1 other speaker' (`nouns` when adding s is wrong)."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def describe_dropout(kind: str, together_with: Sequence[str] = ()) -> str:
    """'link lost while streaming — together with 2 other speakers'."""
    what = DROPOUT_WORDS.get(kind, kind)
    if together_with:
        what += f" — together with {plural(len(together_with), 'other speaker')}"
    return what


def clock_time(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def stamp(t: float, now: float) -> str:
    """'20:03:12' for a moment of `now`'s day, '26 Nov 20:03:12' for another day, with the
    year when that differs too: a log read the morning after must not pass for today's."""
    when, today = time.localtime(t), time.localtime(now)
    if when[:3] == today[:3]:
        return time.strftime("%H:%M:%S", when)
    if when.tm_year == today.tm_year:
        return time.strftime("%d %b %H:%M:%S", when)
    return time.strftime("%d %b %Y %H:%M:%S", when)


def short_stamp(t: float, now: float) -> str:
    """A table cell's 8 characters: '20:03:12' today, else the day alone ('26 Nov')."""
    when = time.localtime(t)
    if when[:3] == time.localtime(now)[:3]:
        return time.strftime("%H:%M:%S", when)
    return time.strftime("%d %b", when)


def age(seconds: float) -> str:
    """'4s', '3m05s', '2h10m' — a duration (how long ago, a period), compact for a cell."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def at_host(name: str, host: str | None) -> str:
    """'Bar@lab' for a remote host's speaker (`--host`), 'Bar' for this machine's."""
    return f"{name}@{host}" if host else name


def describe_event(event: dict[str, Any], names: dict[str, str] | None = None) -> str | None:
    """One line for the event log, or None for events not worth a line (speaker rows)."""
    names = names or {}
    who = names.get(event.get("address", ""), event.get("address", ""))
    host = event.get("host")
    if host and host != "local":  # a remote host's line (`--host`): whose speaker it is
        who = at_host(who, str(host))
    kind = event.get("type")
    if kind == "device":
        if event.get("connected"):
            return f"{who}: connected"
        reason = event.get("reason")
        return f"{who}: disconnected — {REASON_WORDS.get(reason or '', 'reason not reported')}"
    if kind == "transport":
        state = event.get("state")
        codec = event.get("codec")
        if state == "absent":
            return f"{who}: A2DP transport gone"
        if state == "active":
            return f"{who}: streaming ({codec})" if codec else f"{who}: streaming"
        if state == "idle":
            return f"{who}: A2DP transport idle — connected but no audio"
        return f"{who}: A2DP transport {state}"
    if kind == "source":
        detail = str(event.get("detail"))
        return f"{host}: {detail}" if host and not detail.startswith(str(host)) else detail
    if kind == "dropout":
        if event.get("phase") == "cancelled":
            # Retracted: the start line it takes back was not a dropout (a music stop, our own
            # action); say so, and why when the line says.
            why = event.get("detail") or DROPOUT_WORDS.get(str(event.get("kind")), "")
            return f"{who}: not a dropout after all — retracted" + (f" ({why})" if why else "")
        if event.get("phase") == "end":
            what = DROPOUT_WORDS.get(str(event.get("kind")), str(event.get("kind")))
            took = event.get("duration_s")
            lasted = f"{took:.1f} s" if isinstance(took, int | float) else "a while"
            return f"{who}: back after {lasted} ({what})"
        return f"{who}: DROPOUT — " + describe_dropout(
            str(event.get("kind")), event.get("together_with") or ()
        )
    if kind == "action":
        return describe_action(event, who)
    if kind == "probe":
        return describe_probe(event, names)
    if kind == "align":
        return describe_align(event)
    return None


def describe_align(event: dict[str, Any]) -> str:
    """'align: spread 144.6 -> 1.2 ms, aligned — Sub Bass +142 ms' for the log and the toast."""

    def ms(value: object) -> str:
        return f"{value:.1f}" if isinstance(value, int | float) else "?"

    result = str(event.get("result") or "")
    if result == "kept":  # --keep-aligned's small correction after a periodic probe
        text = f"align: the fleet drifted to {ms(event.get('spread_before_ms'))} ms; kept aligned"
        if event.get("detail"):
            text += f" ({event['detail']})"
        return text
    text = f"align: spread {ms(event.get('spread_before_ms'))} -> "
    text += f"{ms(event.get('spread_after_ms'))} ms, {result.replace('-', ' ')}"
    delays = [
        f"{r.get('name') or r.get('address')} +{r.get('delay_ms')} ms"
        for r in event.get("results") or ()
        if isinstance(r, dict) and isinstance(r.get("delay_ms"), int) and r["delay_ms"] > 0
    ]
    if delays:
        text += " — " + ", ".join(delays)
    if event.get("detail"):
        text += f" ({event['detail']})"
    return text


def describe_probe(event: dict[str, Any], names: dict[str, str] | None = None) -> str:
    """'probe: spread 12.4 ms (tight) — not heard: Foyer' for the log and the toast."""
    names = names or {}
    results = [r for r in event.get("results") or () if isinstance(r, dict)]
    spread = event.get("spread_ms")
    heard = [r for r in results if r.get("detected")]
    text = f"probe: {len(heard)} of {plural(len(results), 'speaker')} heard"
    if isinstance(spread, int | float):
        text += f", spread {spread:.1f} ms ({sync_word(spread)})"
    missing = [
        names.get(str(r.get("address")), str(r.get("name") or r.get("address")))
        for r in results
        if not r.get("detected")
    ]
    if missing:
        text += " — NOT HEARD: " + ", ".join(missing)
    return text


def describe_action(event: dict[str, Any], who: str) -> str:
    """How an action ended, for the log and the toast: 'Bar: resync ok — streaming again
    (2.7 s)', 'Bar: resync failed — the speaker did not answer: is it on and in range?
    (br-connection-page-timeout)', 'Bar: resync cancelled after 1.2 s'."""
    action = event.get("action") or "action"
    message = str(event.get("message") or "")
    detail = event.get("detail")
    took = event.get("duration_s")
    seconds = f"{took:.1f} s" if isinstance(took, int | float) else ""
    if event.get("result") == "ok":
        text = f"{who}: {action} ok" + (f" — {message}" if message else "")
        return text + (f" ({seconds})" if seconds else "")
    if detail == "cancelled":
        return f"{who}: {action} cancelled" + (f" after {seconds}" if seconds else "")
    text = f"{who}: {action} failed — {message or 'no reason given'}"
    # BlueZ's own words last, so they can be searched for (bluez.org, bug trackers).
    return text + (f" ({detail})" if detail and str(detail) not in message else "")


def countdown(seconds: float) -> str:
    """'1:10', '12:05', '-0:03' (overdue) — minutes:seconds until an expected moment."""
    sign = "-" if seconds < 0 else ""
    seconds = abs(round(seconds))
    if seconds >= 3600:
        return f"{sign}{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{sign}{seconds // 60}:{seconds % 60:02d}"


def dropout_cell(summary: DropoutSummary | None, now: float) -> str:
    """Table cell: '0', '3', '5 ~4m42s →1:10' (count, period, time to the next expected)."""
    if summary is None:
        return "0"
    text = str(summary.count)
    if summary.period_s is not None:
        text += f" ~{age(summary.period_s)}"
        if summary.next_expected is not None:
            text += f" →{countdown(summary.next_expected - now)}"
    return text


def timeline(
    summary: DropoutSummary | None, now: float, *, width: int = 12, span_s: float = 3600.0
) -> str:
    """A strip over the last `span_s`, oldest left: '·' quiet, '▮' a dropout in that slot."""
    slots = ["·"] * width
    if summary is not None:
        slot_s = span_s / width
        for start, _kind, _duration in summary.recent:
            age_s = now - start
            if 0 <= age_s < span_s:
                slots[width - 1 - int(age_s // slot_s)] = "▮"
    return "".join(slots)


def period_sentence(summary: DropoutSummary, now: float) -> str:
    """'drops every 4m42s (confidence 97%), next expected in 1:10 (at 20:04:42)'; the day too
    when the next one falls on another day."""
    if summary.period_s is None:
        return "no regular pattern in its dropouts"
    text = f"drops every {age(summary.period_s)} (confidence {summary.confidence * 100:.0f}%)"
    if summary.next_expected is not None:
        wait = summary.next_expected - now
        text += f", next expected in {countdown(wait)} (at {stamp(summary.next_expected, now)})"
    if summary.previous_period_s is not None:
        text += f"; was every {age(summary.previous_period_s)} before"
    return text
