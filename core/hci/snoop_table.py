"""The human table of a `snoop` result (DESIGN §4.5): one line per device with a verdict."""

from __future__ import annotations

from typing import Any

from core.hci.btsnoop import DATALINKS


def snoop_table(result: dict[str, Any]) -> str:
    """The capture in words: one line per device, with the starved verdict."""
    duration = result["duration_s"]
    span = "-" if duration is None else f"{duration:.1f} s"
    lines = [
        f"{result['file']}: {DATALINKS.get(result['datalink'], '?')} "
        f"(datalink {result['datalink']}), {result['records']} records, {span}"
    ]
    devices = result["devices"]
    if not devices:
        lines.append("no connections in the capture")
        return "\n".join(lines)
    hungry = set(result.get("starved", ()))
    lines.append(
        f"{'address':17} {'name':18} {'codec':8} {'media tx':>8} {'rx':>5} {'MB tx':>7} "
        f"{'starts':>6} {'max gap':>8}  verdict"
    )
    for row in devices:
        gap = "-" if row["max_gap_ms"] is None else f"{row['max_gap_ms']:.0f} ms"
        media = row["media_packets_tx"] + row["media_packets_rx"]
        if row["address"] in hungry:
            verdict = "connected but starved"
        elif media:
            verdict = "streamed"
        else:
            verdict = "no media"
        name = (row["name"] or "")[:18]
        lines.append(
            f"{row['address']:17} {name:18} {row['codec'] or '-':8} "
            f"{row['media_packets_tx']:>8} {row['media_packets_rx']:>5} "
            f"{row['media_bytes_tx'] / 1e6:>7.2f} {row['streams']:>6} {gap:>8}  {verdict}"
        )
    lines.extend(_disconnections(result.get("disconnections") or [], devices))
    return "\n".join(lines)


def _disconnections(rows: list[dict[str, Any]], devices: list[dict[str, Any]]) -> list[str]:
    """'disconnections: Bar (F4:…) BR/EDR: remote user terminated connection', as in the JSON."""
    if not rows:
        return []
    names = {d["address"]: d.get("name") for d in devices}
    lines = [f"disconnections ({len(rows)}):"]
    for row in rows:
        name = names.get(row["address"])
        who = f"{name} ({row['address']})" if name else row["address"]
        lines.append(f"  {who} {row.get('transport') or '?'}: {row.get('reason') or 'unknown'}")
    return lines
