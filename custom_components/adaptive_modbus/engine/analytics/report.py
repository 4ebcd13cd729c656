"""A daily or weekly report of one connection or device: markdown and data.

The markdown is sized for a notification (at most ``max_chars``, 4000 by
default): health, the remediation, anomalies, traffic, then the registers'
figures, cutting register lines first and saying how many were left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .core import Analytics
from .health import CONNECTION

PERIODS: Mapping[str, float] = {"day": 86_400.0, "week": 7 * 86_400.0}
MAX_CHARS = 4000
TOP_ANOMALIES = 5
TOP_REMEDIATION = 3


@dataclass(frozen=True, slots=True)
class Report:
    """The report as markdown and as structured data."""

    markdown: str
    data: dict[str, Any]


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}"


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


def build_report(
    analytics: Analytics,
    *,
    period: str = "day",
    unit_id: int | None = None,
    title: str = "",
    unit_names: Mapping[int, str] | None = None,
    register_names: Mapping[str, str] | None = None,
    max_chars: int = MAX_CHARS,
) -> Report:
    """Report of the connection (``unit_id`` None) or one device over ``period``.

    Raises ``KeyError`` for an unknown period and ``ValueError`` before the first
    cycle or for a unit the connection does not poll.
    """
    seconds = PERIODS[period]
    snap = analytics.snapshot
    if snap is None:
        raise ValueError("no poll cycle yet")
    units = sorted({r.unit_id for r in snap.registers.values() if r.enabled})
    if unit_id is not None and unit_id not in units:
        raise ValueError(f"unit {unit_id} is not polled")
    unit_names = unit_names or {}
    register_names = register_names or {}
    now = analytics.now()
    since = now - seconds
    scopes: list[int | str] = [unit_id] if unit_id is not None else [CONNECTION, *units]

    def name(scope: int | str) -> str:
        if scope == CONNECTION:
            return title or "connection"
        return unit_names.get(int(scope), f"unit {scope}")

    health = []
    for scope in scopes:
        score = analytics.health_score(scope)
        points = analytics.health_trend(scope, "day" if period == "day" else "week")
        values = [v for _, v in points if _ >= since]
        health.append(
            {
                "scope": scope,
                "name": name(scope),
                "score": None if score is None else score.score,
                "status": None if score is None else score.status,
                "min": min(values) if values else None,
                "mean": round(sum(values) / len(values), 1) if values else None,
                "problems": []
                if score is None
                else [f.as_dict() for f in score.problems],
            }
        )
    fixes = analytics.remediation(unit_id)
    anomalies = analytics.anomalies_since(since, unit_id=unit_id)
    hours = analytics.history.hours(since)
    traffic = {
        "requests": sum(h.requests for h in hours),
        "errors": sum(h.errors for h in hours),
        "registers_read": sum(h.registers_read for h in hours),
        "bus_time": round(sum(h.bus_time for h in hours), 3),
        "seconds": round(sum(h.seconds for h in hours), 1),
    }
    registers: list[dict[str, Any]] = []
    for uid, reg in snap.registers.items():
        if not reg.enabled or (unit_id is not None and reg.unit_id != unit_id):
            continue
        agg = analytics.aggregate(uid, since, now)
        if agg.count == 0 or isinstance(reg.value, bool | str):
            continue
        registers.append(
            {
                "uid": uid,
                "name": register_names.get(uid, reg.key),
                "unit_id": reg.unit_id,
                "min": agg.minimum,
                "mean": agg.time_weighted_mean,
                "max": agg.maximum,
                "last": agg.last,
                "reads": agg.count,
                "anomalies": sum(1 for a in anomalies if a.uid == uid),
            }
        )
    # registers with anomalies first, then map order
    registers.sort(key=lambda r: -r["anomalies"])
    data = {
        "title": title,
        "period": period,
        "start": since,
        "end": now,
        "unit_id": unit_id,
        "health": health,
        "remediation": [f.as_dict() for f in fixes],
        "anomalies": {
            "count": len(anomalies),
            "top": [
                a.as_dict()
                for a in sorted(anomalies, key=lambda a: -a.score)[:TOP_ANOMALIES]
            ],
        },
        "traffic": traffic,
        "registers": registers,
    }
    head = _markdown_head(
        data, name(unit_id if unit_id is not None else CONNECTION), register_names
    )
    lines = []
    for r in registers:
        flag = f" ⚠ {r['anomalies']}" if r["anomalies"] else ""
        lines.append(
            f"- {r['name']}: {_fmt(r['min'])} / {_fmt(r['mean'])} / {_fmt(r['max'])}"
            f" (last {_fmt(r['last'])}){flag}"
        )
    note = f"… {len(lines)} more registers" if lines else ""
    markdown = _fit(head, max_chars - len(note) - 2)
    if lines:
        markdown += "\n\n**Registers** (min / mean / max)\n"
    shown = 0
    for line in lines:
        note = f"… {len(lines) - shown - 1} more registers"
        if len(markdown) + len(line) + 1 + len(note) > max_chars:
            break
        markdown += line + "\n"
        shown += 1
    if shown < len(lines):
        markdown += f"… {len(lines) - shown} more registers"
    markdown = _fit(markdown.rstrip(), max_chars)
    data["registers_shown"] = shown
    return Report(markdown=markdown, data=data)


def _fit(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters at a line end (marked with …)."""
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", 0, max(0, limit - 2))
    return (text[:cut] if cut > 0 else text[: max(0, limit - 2)]) + "\n…"


def _markdown_head(
    data: dict[str, Any], heading: str, register_names: Mapping[str, str]
) -> str:
    out = [
        f"## {heading}: {data['period']} report",
        f"{_iso(data['start'])} – {_iso(data['end'])}",
        "",
        "**Health**",
    ]
    for h in data["health"]:
        score = "-" if h["score"] is None else f"{h['score']}/100 ({h['status']})"
        low = "" if h["min"] is None else f", lowest {h['min']:.0f}"
        why = f": {h['problems'][0]['explanation']}" if h["problems"] else ""
        out.append(f"- {h['name']}: {score}{low}{why}")
    if data["remediation"]:
        out += ["", "**To do**"]
        out += [f"- {r['message']}" for r in data["remediation"][:TOP_REMEDIATION]]
    anomalies = data["anomalies"]
    out += ["", f"**Anomalies**: {anomalies['count']}"]
    for a in anomalies["top"]:
        out.append(
            f"- {register_names.get(a['uid'], a['uid'])} = {_fmt(a['value'])} at "
            f"{_iso(a['at'])} (expected {_fmt(a['expected_low'])} – "
            f"{_fmt(a['expected_high'])}, score {a['score']:.1f})"
        )
    t = data["traffic"]
    out += [
        "",
        (
            f"**Traffic**: {t['requests']} requests, {t['errors']} errors, "
            f"{t['registers_read']} registers read, bus busy {t['bus_time']:.0f} s"
        ),
    ]
    return "\n".join(out)
