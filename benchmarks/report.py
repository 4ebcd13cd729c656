"""Results: equal-freshness comparison, target checks, the table, JSON and plots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import math
from pathlib import Path
from typing import Any

from .policies import (
    ADAPTIVE,
    ADAPTIVE_OPTIMIZER,
    ADAPTIVE_OPTIMIZER_APPROVE,
    EXPERT,
    FIXED,
    ORACLE,
    ORACLE_BATCHED,
    ORACLE_LENIENT,
    STATIC,
)

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# Targets of the issue (scripts/bench --check), medians over phases
FIXED_RATIO = 5.0  # fixed-per-entity needs >= 5x adaptive's requests and bus time ...
STATIC_RATIO = 1.5  # ... static blocks >= 1.5x, at adaptive's time out of tolerance
ORACLE_RATIO = 2.0  # adaptive <= 2x the batched oracle's requests ...
# ... on these (reported for the others)
ORACLE_SCENARIOS = (
    "demo",
    "install200",
    "pv",
)
SUNRISE_FACTOR = 2.0  # pv: sunrise seen within 2x fixed-15 s's delay from the third day
SUNRISE_FROM_DAY = 3
NIGHT_SHARE = 0.10  # pv: night requests per hour below 10 % of day requests per hour
# ... beyond the oracle under the 300 s maximum; proposed: nights after the second
# sunrise within this much of the batched oracle's night (held to the same maximum)
NIGHT_ORACLE_RATIO = 1.25
CYCLE_MS_1000 = 0.2  # engine CPU per cycle at 1,000 registers
PER_READ_US = 5.0  # engine CPU per register read in all (decode and models included)
COSTS = (
    ("requests_per_hour", "requests", "req/h"),
    ("bus_s_per_hour", "bus time", "bus s/h"),
)


def equal_freshness(
    points: Sequence[Mapping[str, Any]], target_err: float, metric: str = "err_p95"
) -> dict[str, Any]:
    """Requests/h of a fixed family at the interval whose p95 error equals ``target_err``.

    ``points`` hold ``interval``, ``err_p95`` and ``requests_per_hour`` per swept
    interval. Between the two swept intervals that bracket the target, log(interval)
    and log(requests) are interpolated linearly in p95 error. Outside the sweep the
    nearest end is used and ``bound`` says which way the true figure lies. ``metric``
    picks another error figure (e.g. ``err_mean``); it is reported as ``err_p95``.
    """
    pts = sorted(
        ({**p, "err_p95": p[metric]} for p in points if p.get(metric) is not None),
        key=lambda p: p["interval"],
    )
    if not pts:
        return {}
    # p95 of quantised errors ties: float noise must not break it
    tie = target_err + 1e-6
    below = [p for p in pts if p["err_p95"] <= tie]
    above = [p for p in pts if p["err_p95"] > tie]
    if not below:
        first = pts[0]
        return {
            "interval": first["interval"],
            "requests_per_hour": first["requests_per_hour"],
            "err_p95": first["err_p95"],
            "bound": "even the fastest swept interval is "
            "less fresh: their equal-freshness cost is higher",
        }
    lo = max(below, key=lambda p: p["interval"])
    later = [p for p in above if p["interval"] > lo["interval"]]
    if not later:
        return {
            "interval": lo["interval"],
            "requests_per_hour": lo["requests_per_hour"],
            "err_p95": lo["err_p95"],
            "bound": "even the slowest swept interval is as "
            "fresh: their equal-freshness cost is lower",
        }
    hi = min(later, key=lambda p: p["interval"])
    span = hi["err_p95"] - lo["err_p95"]
    w = min(max((target_err - lo["err_p95"]) / span, 0.0), 1.0) if span > 0 else 0.0
    interval = math.exp(
        (1 - w) * math.log(lo["interval"]) + w * math.log(hi["interval"])
    )
    requests = math.exp(
        (1 - w) * math.log(max(lo["requests_per_hour"], 1e-9))
        + w * math.log(max(hi["requests_per_hour"], 1e-9))
    )
    return {
        "interval": interval,
        "requests_per_hour": requests,
        "err_p95": target_err,
        "bound": None,
    }


def frontier(points: Sequence[Mapping[str, Any]], cost: str) -> list[Mapping[str, Any]]:
    """Return the Pareto frontier of ``points`` in (``tot_pct``, ``cost``).

    Sorted by time out of tolerance, each point cheaper than every fresher one.
    """
    out: list[Mapping[str, Any]] = []
    for point in sorted(
        (p for p in points if p.get("tot_pct") is not None and p.get(cost) is not None),
        key=lambda p: (p["tot_pct"], p[cost]),
    ):
        if not out or point[cost] < out[-1][cost]:
            out.append(point)
    return out


def at_equal_tot(
    points: Sequence[Mapping[str, Any]], target: float, cost: str = "requests_per_hour"
) -> dict[str, Any]:
    """``cost`` of a swept family at time out of tolerance ``target`` (%).

    Interpolated on the family's frontier (:func:`frontier`): log(cost) and
    log(interval) linear in time out of tolerance between the two frontier points
    that bracket ``target``. Outside the frontier the nearest end is returned with
    ``bound``: "higher" (even the freshest point is less fresh than the target, the
    true cost is higher) or "lower".
    """
    front = frontier(points, cost)
    if not front:
        return {}
    tie = 1e-9
    if target < front[0]["tot_pct"] - tie:
        p = front[0]
        return {
            "interval": p["interval"],
            cost: p[cost],
            "tot_pct": p["tot_pct"],
            "bound": "higher",
        }
    if target >= front[-1]["tot_pct"] - tie:
        p = front[-1]
        bound = None if abs(target - p["tot_pct"]) <= tie else "lower"
        return {
            "interval": p["interval"],
            cost: p[cost],
            "tot_pct": p["tot_pct"],
            "bound": bound,
        }
    hi_i = next(i for i, p in enumerate(front) if p["tot_pct"] > target)
    lo, hi = front[hi_i - 1], front[hi_i]
    w = (target - lo["tot_pct"]) / (hi["tot_pct"] - lo["tot_pct"])

    def mix(key: str) -> float:
        a, b = max(lo[key], 1e-12), max(hi[key], 1e-12)
        return math.exp((1 - w) * math.log(a) + w * math.log(b))

    return {
        "interval": mix("interval"),
        cost: mix(cost),
        "tot_pct": target,
        "bound": None,
    }


def at_equal_cost(
    points: Sequence[Mapping[str, Any]], budget: float, cost: str = "requests_per_hour"
) -> dict[str, Any]:
    """Return a swept family's freshness at ``budget`` of ``cost`` (what it buys).

    Between the two swept points whose cost brackets ``budget``, log(interval) and
    the freshness figures (``delay_p95``, ``delay_median``, ``tot_pct``) are linear in
    log(cost). Outside the sweep the nearest end is returned with ``bound`` set.
    """
    pts = sorted(
        (p for p in points if p.get(cost) and p.get("delay_p95") is not None),
        key=lambda p: p[cost],
    )
    if not pts:
        return {}
    keys = ("delay_p95", "delay_median", "tot_pct")
    if budget <= pts[0][cost] or budget >= pts[-1][cost]:
        p = pts[0] if budget <= pts[0][cost] else pts[-1]
        exact = math.isclose(budget, p[cost], rel_tol=1e-9)
        return {
            "interval": p["interval"],
            cost: p[cost],
            **{k: p[k] for k in keys},
            "bound": None if exact else "outside the sweep",
        }
    hi_i = next(i for i, p in enumerate(pts) if p[cost] > budget)
    lo, hi = pts[hi_i - 1], pts[hi_i]
    w = math.log(budget / lo[cost]) / math.log(hi[cost] / lo[cost])
    interval = math.exp(
        (1 - w) * math.log(lo["interval"]) + w * math.log(hi["interval"])
    )
    return {
        "interval": interval,
        cost: budget,
        **{k: (1 - w) * lo[k] + w * hi[k] for k in keys},
        "bound": None,
    }


def _ok(policies: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    m = policies.get(name)
    return m if m and "error" not in m else None


def _same_budget(result: Mapping[str, Any], adaptive: Mapping[str, Any]) -> str:
    """Say what static blocks buy with adaptive's requests (the price of a short p95)."""
    points = result.get("sweep", {}).get(STATIC) or []
    same = at_equal_cost(points, adaptive["requests_per_hour"])
    if not same:
        return ""
    return (
        f"; for adaptive's {adaptive['requests_per_hour']:,.0f} req/h {STATIC} read "
        f"every {same['interval']:.0f} s"
        + (f" ({same['bound']})" if same["bound"] else "")
        + f": p95 {same['delay_p95']:.1f} s, median {same['delay_median']:.1f} s, "
        f"{same['tot_pct']:.2f} % out of tolerance (adaptive {adaptive['tot_pct']:.2f} %)"
    )


def scenario_checks(name: str, result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Check the issue's targets for one scenario.

    Where the oracle itself cannot meet a ratio target, the check says so with the
    oracle's figure.
    """
    policies = result["policies"]
    adaptive = _ok(policies, ADAPTIVE)
    if adaptive is None:
        return [
            {
                "name": f"{name}: adaptive ran",
                "ok": False,
                "detail": "adaptive run failed",
            }
        ]
    checks: list[dict[str, Any]] = []
    batched = _ok(policies, ORACLE_BATCHED)
    tot = adaptive["tot_pct"]
    # A ratio target is beyond the clairvoyant reference where a poller that knows
    # the future and may stay out of tolerance as long as adaptive does (the lenient
    # oracle's frontier at adaptive's time out of tolerance) still costs more than
    # the family / target. The lenient oracle is a reference, not a proven lower
    # bound (it batches only ORACLE_LOOKAHEAD ahead), so the verdict is "beyond the
    # reference", never "impossible".
    clairvoyant = result.get("equal_tot", {}).get(ORACLE_LENIENT)
    for family, ratio in ((STATIC, STATIC_RATIO), (FIXED, FIXED_RATIO)):
        eq = result.get("equal_tot", {}).get(family)
        if not eq:
            continue
        for key, label, unit in COSTS:
            mine = max(adaptive[key], 1e-9)
            got = eq[key] / mine
            bound = eq["bound"] if key == "requests_per_hour" else eq["bound_bus"]
            detail = (
                f"{family} {eq[key]:,.1f} {unit} at {tot:.2f} % out of tolerance "
                f"(interpolated interval {eq['interval']:.1f} s"
                + (f", the true figure is {bound}: outside the sweep" if bound else "")
                + f") vs adaptive {adaptive[key]:,.1f}: {got:.2f}x, need >= {ratio:g}x"
            )
            if clairvoyant and got < ratio:
                best = eq[key] / max(clairvoyant[key], 1e-9)
                if best < ratio:
                    detail += (
                        "; BEYOND THE CLAIRVOYANT REFERENCE here: a poller that knows the "
                        f"future and may stay out of tolerance as long as adaptive does "
                        f"({ORACLE_LENIENT}, {clairvoyant['interval']:.0f} s grace) needs "
                        f"{clairvoyant[key]:,.1f} {unit}, {family} only {best:.2f}x that; "
                        f"proposed target >= {0.8 * best:.2f}x (80 % of the clairvoyant's)"
                    )
            checks.append(
                {
                    "name": f"{name}: {family} needs >= {ratio:g}x adaptive's {label} "
                    "at equal time out of tolerance",
                    "ok": got >= ratio,
                    "detail": detail,
                }
            )
    expert = _ok(policies, EXPERT)
    if expert:
        for key, label, unit in COSTS:
            checks.append(
                {
                    "name": f"{name}: expert-tuned static needs more {label} than adaptive",
                    "ok": expert[key] > adaptive[key],
                    "detail": f"{expert[key]:,.1f} vs adaptive {adaptive[key]:,.1f} {unit} "
                    f"(expert {expert['tot_pct']:.2f} % out of tolerance, adaptive "
                    f"{tot:.2f} %; intervals {expert.get('intervals')})",
                }
            )
    static15 = _ok(policies, f"{STATIC}@15s")
    if static15:
        checks.append(
            {
                "name": f"{name}: adaptive's p95 detection delay no worse than {STATIC}@15s",
                "ok": adaptive["delay_p95"] <= static15["delay_p95"] + 1e-9,
                "detail": f"{adaptive['delay_p95']:.1f} s vs {static15['delay_p95']:.1f} s "
                f"(medians {adaptive['delay_median']:.1f} vs {static15['delay_median']:.1f} s)"
                + _same_budget(result, adaptive),
            }
        )
    if batched:
        ratio = adaptive["requests_per_hour"] / max(batched["requests_per_hour"], 1e-9)
        gated = name in ORACLE_SCENARIOS
        checks.append(
            {
                "name": f"{name}: adaptive <= {ORACLE_RATIO:g}x the batched oracle's requests"
                + ("" if gated else " (reported only)"),
                "ok": ratio <= ORACLE_RATIO or not gated,
                "detail": f"{adaptive['requests_per_hour']:,.1f} vs "
                f"{batched['requests_per_hour']:,.1f} req/h ({ratio:.2f}x); the oracle is "
                f"{batched['tot_pct']:.2f} % out of tolerance, adaptive {tot:.2f} %",
            }
        )
    fixed15 = _ok(policies, f"{FIXED}@15s")
    if name == "pv" and fixed15:
        mine = adaptive.get("incident_delays") or []
        theirs = fixed15.get("incident_delays") or []
        days = list(range(SUNRISE_FROM_DAY - 1, min(len(mine), len(theirs))))
        late = [
            d
            for d in days
            if mine[d] is None
            or theirs[d] is None
            or mine[d] > SUNRISE_FACTOR * max(theirs[d], 1.0)
        ]
        shown = ", ".join(
            f"day {d + 1}: {_fmt(mine[d])} vs {_fmt(theirs[d])} s"
            for d in range(len(mine))
        )
        checks.append(
            {
                "name": f"pv: sunrise seen within {SUNRISE_FACTOR:g}x fixed-15 s's delay "
                f"from day {SUNRISE_FROM_DAY} on",
                "ok": bool(days) and not late,
                "detail": f"adaptive vs {FIXED}@15s {shown}"
                + ("" if days else f"; the run has no day {SUNRISE_FROM_DAY}"),
            }
        )
        night = adaptive.get("night_requests_per_hour")
        day = adaptive.get("day_requests_per_hour")
        if night is not None and day:
            checks.append(
                {
                    "name": f"pv: night requests < {NIGHT_SHARE:.0%} of day requests",
                    "ok": night < NIGHT_SHARE * day,
                    "detail": f"{night:,.1f} vs {day:,.1f} req/h ({night / day:.1%})"
                    + _night_floor_note(result, adaptive, batched),
                }
            )
    optimized = _ok(policies, ADAPTIVE_OPTIMIZER)
    if optimized:
        checks.append(optimizer_check(name, adaptive, optimized))
        if name in BETTER_SCENARIOS:
            checks.append(
                optimizer_better_check(
                    name, adaptive, optimized, since=result.get("final_from_hours")
                )
            )
    return checks


def _night_floor_note(
    result: Mapping[str, Any],
    adaptive: Mapping[str, Any],
    batched: Mapping[str, Any] | None,
) -> str:
    """Say what keeping the maximum interval costs by night, and whether the oracle can.

    The floor is one read per table per maximum interval; the batched oracle is held
    to the same maximum. Where the floor or the oracle's own night already reaches
    :data:`NIGHT_SHARE` of adaptive's day, the target is beyond what any poller that
    keeps the maximum can do, and the note proposes the target the oracle supports.
    """
    floor = result.get("night_floor")
    day = adaptive["day_requests_per_hour"]
    note = ""
    if floor:
        note += (
            f"; the floor under the {floor['max_interval']:g} s maximum (one read per "
            f"table per maximum interval) is {floor['requests_per_hour']:,.1f} req/h, "
            f"{floor['requests_per_hour'] / day:.1%} of adaptive's day"
        )
    learned = adaptive.get("learned_night_requests_per_hour")
    if learned is not None:
        note += f"; nights after the second sunrise {learned:,.1f} req/h"
    if not batched or batched.get("night_requests_per_hour") is None:
        return note
    o_night, o_day = (
        batched["night_requests_per_hour"],
        batched["day_requests_per_hour"],
    )
    o_learned = batched.get("learned_night_requests_per_hour", o_night)
    note += (
        f"; {ORACLE_BATCHED} held to the same maximum: {o_night:,.1f} by night vs "
        f"{o_day:,.1f} by day ({o_night / max(o_day, 1e-9):.1%})"
    )
    beyond = o_night >= NIGHT_SHARE * day or (
        floor is not None and floor["requests_per_hour"] >= NIGHT_SHARE * day
    )
    if beyond:
        note += (
            f"; BEYOND THE ORACLE: keeping the maximum costs more than {NIGHT_SHARE:.0%}"
            f" of adaptive's day by itself; proposed target: nights after the second "
            f"sunrise <= {NIGHT_ORACLE_RATIO:g}x the oracle's then "
            f"({NIGHT_ORACLE_RATIO * o_learned:,.1f} req/h)"
        )
    return note


# the optimizer may cost this much more (requests, bus time, time out of tolerance)
# than adaptive and still count as no worse: the medians of 3 phases move that much
OPTIMIZER_SLACK = 0.05


def optimizer_check(
    name: str, adaptive: Mapping[str, Any], optimized: Mapping[str, Any]
) -> dict[str, Any]:
    """Check that ``adaptive+optimizer`` is no worse than ``adaptive`` (within the slack).

    Gated: the issue asks the loop to end no worse than adaptive anywhere.
    """
    worse = [
        f"{label} {optimized[key]:,.2f} vs {adaptive[key]:,.2f}"
        for key, label in (
            ("requests_per_hour", "req/h"),
            ("bus_s_per_hour", "bus s/h"),
            ("tot_pct", "% out of tolerance"),
        )
        if optimized[key] > adaptive[key] * (1 + OPTIMIZER_SLACK) + 1e-9
    ]
    detail = (
        f"req/h {optimized['requests_per_hour']:,.1f} vs {adaptive['requests_per_hour']:,.1f}, "
        f"bus {optimized['bus_s_per_hour']:,.1f} vs {adaptive['bus_s_per_hour']:,.1f} s/h, "
        f"out of tolerance {optimized['tot_pct']:.2f} vs {adaptive['tot_pct']:.2f} %, "
        f"errors {optimized['errors']} vs {adaptive['errors']}"
    )
    return {
        "name": f"{name}: adaptive+optimizer no worse than adaptive "
        f"(within {OPTIMIZER_SLACK:.0%})",
        "ok": not worse,
        "detail": detail + (f"; WORSE: {'; '.join(worse)}" if worse else ""),
    }


# where the defaults are wrong the loop must end clearly better than adaptive: over
# the final stretch (the last quarter of the run) at least this much fewer requests
# or bus time ...
BETTER_SAVING = 0.20
# ... at a time out of tolerance at most this much worse (relative) than adaptive's
BETTER_TOT_SLACK = 0.05
BETTER_SCENARIOS = ("wrongdefaults",)
FINAL_KEYS = (
    ("final_requests_per_hour", "req/h"),
    ("final_bus_s_per_hour", "bus s/h"),
)


def _pct(mine: float, base: float) -> str:
    return f"{100.0 * (mine / base - 1.0):+.1f} %" if base > 0 else "n/a"


def optimizer_better_check(
    name: str,
    adaptive: Mapping[str, Any],
    optimized: Mapping[str, Any],
    *,
    since: float | None = None,
) -> dict[str, Any]:
    """Check that ``adaptive+optimizer`` ends clearly better than ``adaptive``.

    Over the final stretch (``final_*`` figures): at least :data:`BETTER_SAVING`
    fewer requests or bus time, at a time out of tolerance no more than
    :data:`BETTER_TOT_SLACK` worse (relative). Gated on :data:`BETTER_SCENARIOS`.
    """
    title = (
        f"{name}: adaptive+optimizer clearly better where the defaults are wrong "
        f"(final quarter: >= {BETTER_SAVING:.0%} fewer requests or bus time at a time "
        f"out of tolerance <= {BETTER_TOT_SLACK:.0%} worse)"
    )
    keys = [key for key, _ in FINAL_KEYS] + ["final_tot_pct"]
    missing = [
        key for key in keys if adaptive.get(key) is None or optimized.get(key) is None
    ]
    if missing:
        return {
            "name": title,
            "ok": False,
            "detail": f"not measured: {', '.join(missing)} missing",
        }
    saved = {
        unit: 1.0 - optimized[key] / adaptive[key] if adaptive[key] > 0 else 0.0
        for key, unit in FINAL_KEYS
    }
    cheaper = [unit for unit, share in saved.items() if share >= BETTER_SAVING - 1e-9]
    tot_mine, tot_base = optimized["final_tot_pct"], adaptive["final_tot_pct"]
    fresh = tot_mine <= tot_base * (1 + BETTER_TOT_SLACK) + 1e-9
    where = (
        f"final quarter (from {since:g} h)" if since is not None else "final quarter"
    )
    detail = (
        f"{where}: req/h {optimized['final_requests_per_hour']:,.1f} vs "
        f"{adaptive['final_requests_per_hour']:,.1f} "
        f"({_pct(optimized['final_requests_per_hour'], adaptive['final_requests_per_hour'])}), "
        f"bus {optimized['final_bus_s_per_hour']:,.2f} vs "
        f"{adaptive['final_bus_s_per_hour']:,.2f} s/h "
        f"({_pct(optimized['final_bus_s_per_hour'], adaptive['final_bus_s_per_hour'])}), "
        f"out of tolerance {tot_mine:.2f} vs {tot_base:.2f} % ({_pct(tot_mine, tot_base)}"
        f", allowed +{BETTER_TOT_SLACK:.0%}); need -{BETTER_SAVING:.0%} on requests or "
        "bus time"
    )
    if not cheaper:
        detail += f"; NOT {BETTER_SAVING:.0%} CHEAPER"
    if not fresh:
        detail += "; LESS FRESH beyond the slack"
    return {"name": title, "ok": bool(cheaper) and fresh, "detail": detail}


def _change(mine: float, base: float) -> str:
    if base <= 0:
        return ""
    pct = 100.0 * (mine / base - 1.0)
    return f" ({pct:+.0f} %)" if round(pct) else ""


def _loop_note(runs: Sequence[Mapping[str, Any] | None]) -> str:
    """Summarise what the loop kept, rolled back and had approved, over the phases."""
    runs = [r for r in runs if r]
    if not runs:
        return "n/a"
    kept: dict[str, int] = {}
    for run in runs:
        for what in sorted(set(run["kept"])):
            kept[what] = kept.get(what, 0) + 1
    rolled = sum(len(run["rolled_back"]) for run in runs)
    approved = sum(len(run["approved"]) for run in runs)
    parts = [
        f"{what} ({n} of {len(runs)} phases)"
        for what, n in sorted(kept.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    ]
    if len(kept) > 3:
        parts.append(f"{len(kept) - 3} more")
    text = "kept: " + ("; ".join(parts) if parts else "nothing")
    text += f"; rolled back: {rolled}"
    if approved:
        text += f"; approved: {approved}"
    return text


def optimizer_table(results: Mapping[str, Any]) -> str:
    """Render the adaptive+optimizer policies against adaptive, per scenario (Markdown)."""
    meta = results.get("meta", {})
    lines = [
        (
            f"From `{meta.get('command', 'scripts/bench')}` (seed {meta.get('seed')}, "
            f"medians over {meta.get('phases')} phases; the optimizer runs at "
            "adaptive's phases; balanced goal). *Whole run*: over the scenario's "
            "duration, including the first hours before the loop has evidence; *last "
            "quarter*: the final quarter of the same runs (from the hour in brackets), "
            "where the loop ends."
        ),
        "",
        (
            "| scenario | policy | requests/h | bus s/h | time out of tolerance % "
            "| last quarter: requests/h | last quarter: bus s/h "
            "| last quarter: time out of tolerance % "
            "| errors | what the loop did (all phases) |"
        ),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, result in results["scenarios"].items():
        policies = result["policies"]
        adaptive = _ok(policies, ADAPTIVE)
        if adaptive is None:
            continue
        hours = result.get("hours", 0)
        since = result.get("final_from_hours")
        label = f"{hours:g} h" + (f"; last quarter from {since:g} h" if since else "")
        lines.append(
            f"| {name} ({label}) | adaptive | {_rate(adaptive['requests_per_hour'])} "
            f"| {_fmt(adaptive['bus_s_per_hour'], 2)} | {_fmt(adaptive['tot_pct'], 2)} "
            f"| {_final(adaptive, adaptive, 'final_requests_per_hour')} "
            f"| {_final(adaptive, adaptive, 'final_bus_s_per_hour')} "
            f"| {_final(adaptive, adaptive, 'final_tot_pct')} "
            f"| {_fmt(adaptive['errors'], 0)} | |"
        )
        for policy in (ADAPTIVE_OPTIMIZER, ADAPTIVE_OPTIMIZER_APPROVE):
            m = _ok(policies, policy)
            if m is None:
                continue
            lines.append(
                f"| | {policy} | {_rate(m['requests_per_hour'])}"
                f"{_change(m['requests_per_hour'], adaptive['requests_per_hour'])} "
                f"| {_fmt(m['bus_s_per_hour'], 2)}"
                f"{_change(m['bus_s_per_hour'], adaptive['bus_s_per_hour'])} "
                f"| {_fmt(m['tot_pct'], 2)}"
                f"{_change(m['tot_pct'], adaptive['tot_pct'])} "
                f"| {_final(m, adaptive, 'final_requests_per_hour')} "
                f"| {_final(m, adaptive, 'final_bus_s_per_hour')} "
                f"| {_final(m, adaptive, 'final_tot_pct')} "
                f"| {_fmt(m['errors'], 0)} | {_loop_note(m.get('loop') or [])} |"
            )
    return "\n".join(lines)


def _final(m: Mapping[str, Any], adaptive: Mapping[str, Any], key: str) -> str:
    """Format a final-stretch figure with its change vs adaptive ("n/a": not measured)."""
    mine = m.get(key)
    if mine is None:
        return "n/a"
    text = _rate(mine) if key == "final_requests_per_hour" else _fmt(mine, 2)
    base = adaptive.get(key)
    return text if m is adaptive or base is None else text + _change(mine, base)


STATE_BYTES = 1024


def overhead_checks(overhead: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Engine CPU per cycle at 1,000 registers and growth vs n log n.

    The figures are medians over the overhead's rounds; their min-max is shown.
    """
    checks = []
    rows = {r["registers"]: r for r in overhead.get("sizes", [])}
    if 1000 in rows:
        row = rows[1000]
        split = row["adaptive_sched_plan_ms"]
        checks.append(
            {
                "name": f"overhead: scheduler + planner <= {CYCLE_MS_1000} ms CPU per "
                "steady adaptive cycle at 1,000 registers",
                "ok": split <= CYCLE_MS_1000,
                "detail": f"scheduler + planner {split:.2f} ms"
                f"{_overhead_spread(row, 'adaptive_sched_plan_ms')} of a steady-state adaptive "
                f"cycle of {row['adaptive_cycle_ms']:.2f} ms"
                f"{_overhead_spread(row, 'adaptive_cycle_ms')} with "
                f"{row['adaptive_due_per_cycle']:.0f} registers due; full cycle (all due) "
                f"{row['full_cycle_ms']:.1f} ms, scheduler + planner "
                f"{row['full_sched_plan_ms']:.2f} ms",
            }
        )
    if 1000 in rows and "state_bytes_per_register" in rows[1000]:
        row = rows[1000]
        checks.append(
            {
                "name": f"learned state: <= {STATE_BYTES} B per register with full patterns",
                "ok": row["state_bytes_per_register"] <= STATE_BYTES,
                "detail": f"{row['state_bytes_per_register']:,.0f} B/register as JSON"
                f" ({row['state_store_bytes_per_register']:,.0f} in the Store's indented"
                f" file); one save of 1,000 registers {row['state_save_ms']:.1f} ms CPU",
            }
        )
    if 1000 in rows and "adaptive_per_read_us" in rows[1000]:
        per_read = rows[1000]["adaptive_per_read_us"]
        checks.append(
            {
                "name": f"overhead: <= {PER_READ_US:g} us CPU per register read in all "
                "(1,000 registers)",
                "ok": per_read <= PER_READ_US,
                "detail": f"{per_read:.1f} us per register read"
                f"{_overhead_spread(rows[1000], 'adaptive_per_read_us')}, decode and models "
                "included",
            }
        )
    growth = overhead.get("growth") or {}
    if growth:
        checks.append(_growth_check(growth))
    return checks


def _growth_check(growth: Mapping[str, Any]) -> dict[str, Any]:
    """Growth of the engine's work per register from 1,000 to 10,000 registers vs n log n.

    Judged at equal data volume (one engine of 10,000 registers against ten of
    1,000 polled in turn, ``work_*``) when the overhead run measured it: against one
    engine of 1,000 registers the ratio also counts the machine's shared cache,
    which holds the small engine's data and not the large one's (see
    ``benchmarks.overhead._Fleet``); that plain ratio is shown beside it. Without
    the fleet the plain ratios are judged.
    """
    plain = (
        "per-register cost ratio of a full cycle "
        f"{growth['full_cycle_ratio']:.2f}{_ratio_spread(growth, 'full_cycle_ratio')}"
        f", of its scheduler + planner {growth.get('sched_plan_ratio', math.nan):.2f}"
        f"{_ratio_spread(growth, 'sched_plan_ratio')}"
    )
    adaptive = (
        f"steady-state adaptive, noisier: {growth['adaptive_ratio']:.2f}"
        f"{_ratio_spread(growth, 'adaptive_ratio')}"
    )
    bound = growth["bound"]
    if "work_ratio" in growth:
        worst = max(growth["work_ratio"], growth.get("work_sched_plan_ratio", 0.0))
        detail = (
            "one engine of 10,000 registers vs ten of 1,000 polled in turn (the same "
            f"data): per-register cost ratio of a full cycle {growth['work_ratio']:.2f}"
            f"{_ratio_spread(growth, 'work_ratio')}, of its scheduler + planner "
            f"{growth.get('work_sched_plan_ratio', math.nan):.2f}"
            f"{_ratio_spread(growth, 'work_sched_plan_ratio')}; n log n allows "
            f"{bound:.2f}. Against one engine of 1,000 registers, whose data stays in "
            f"the shared cache: {plain} ({adaptive}); ratios of the medians over the "
            "rounds"
        )
    else:
        worst = max(growth["full_cycle_ratio"], growth.get("sched_plan_ratio", 0.0))
        detail = (
            f"{plain}; n log n allows {bound:.2f} ({adaptive}); ratios of the medians "
            "over the rounds"
        )
    return {
        "name": "overhead: grows no worse than n log n (1,000 -> 10,000 registers)",
        "ok": worst <= bound,
        "detail": detail,
    }


def _rounds_note(sizes: list[dict[str, Any]]) -> str:
    """``; medians over 5 rounds (3 at 10,000)`` for the overhead table's heading."""
    repeats = {r["registers"]: r.get("repeats", 1) for r in sizes}
    if not repeats or max(repeats.values()) < 2:
        return ""
    most = max(repeats.values(), key=list(repeats.values()).count)
    fewer = ", ".join(f"{n} at {size:,}" for size, n in repeats.items() if n != most)
    return f"; medians over {most} rounds" + (f" ({fewer})" if fewer else "")


def _overhead_spread(row: Mapping[str, Any], key: str) -> str:
    """`` (min-max over N rounds)`` of an overhead figure, or nothing for one round."""
    spread = (row.get("spread") or {}).get(key)
    if not spread or row.get("repeats", 1) < 2:
        return ""
    digits = 2 if key.endswith("_ms") else 1
    low, high = spread
    return f" ({low:.{digits}f}-{high:.{digits}f} over {row['repeats']} rounds)"


def _ratio_spread(growth: Mapping[str, Any], key: str) -> str:
    spread = growth.get(f"{key}_spread")
    return f" (rounds {spread[0]:.2f}-{spread[1]:.2f})" if spread else ""


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "never"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _rate(value: float) -> str:
    """Format requests per hour: decimals where they matter (slow traces, oracles)."""
    return _fmt(value, 0 if value >= 100 else 1 if value >= 10 else 2)


def _spread(m: Mapping[str, Any], key: str, digits: int) -> str:
    lo, mid, hi = m.get("spread", {}).get(key, [m[key]] * 3)
    if hi - lo < 0.5 * 10**-digits:
        return _fmt(mid, digits)
    return f"{_fmt(mid, digits)} ({_fmt(lo, digits)}-{_fmt(hi, digits)})"


def table(results: Mapping[str, Any]) -> str:
    """Render the results as Markdown tables.

    One per scenario (medians over phases, spread in brackets), the equal-freshness
    view, overhead and checks.
    """
    lines: list[str] = []
    phases = results.get("meta", {}).get("phases", 1)
    for name, result in results["scenarios"].items():
        lines.append(
            f"**{name}** - {result['title']}; {result['values']} values / "
            f"{result['registers']} registers on {result['units']} unit(s), bus "
            f"{result['bus']}; medians over {phases} seeded phase(s), (min-max)"
        )
        lines.append("")
        lines.append(
            "| policy | req/h | bus s/h | time out of tolerance % | delay median s "
            "| delay p95 s | stale p95 s | incident delay s |"
        )
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for policy, m in result["policies"].items():
            if "error" in m:
                lines.append(f"| {policy} | failed: {m['error']} |||||||")
                continue
            incident = "n/a"
            if result["incidents"]:
                per = m.get("incident_delays") or []
                incident = (
                    " / ".join(_fmt(d, 0) for d in per)
                    if name == "pv"
                    else _fmt(m["incident_delay"], 1)
                )
            lines.append(
                f"| {policy} | {_rate(m['requests_per_hour'])}"
                f" | {_fmt(m['bus_s_per_hour'], 1)}"
                f" | {_spread(m, 'tot_pct', 2)} | {_fmt(m['delay_median'], 1)}"
                f" | {_spread(m, 'delay_p95', 1)} | {_fmt(m['stale_p95'], 0)}"
                f" | {incident} |"
            )
        eq = result.get("equal_tot", {})
        adaptive = result["policies"].get(ADAPTIVE, {})
        if eq and "requests_per_hour" in adaptive:
            parts = [
                f"{family} {_rate(v['requests_per_hour'])} req/h "
                f"({v['requests_per_hour'] / max(adaptive['requests_per_hour'], 1e-9):.2f}x), "
                f"{v['bus_s_per_hour']:,.1f} bus s/h "
                f"({v['bus_s_per_hour'] / max(adaptive['bus_s_per_hour'], 1e-9):.2f}x) at "
                + (
                    f"{v['interval']:.0f} s grace"
                    if family == ORACLE_LENIENT
                    else f"{v['interval']:.1f} s"
                )
                + (f" (bound: {v['bound']})" if v.get("bound") else "")
                for family, v in eq.items()
            ]
            lines.append("")
            lines.append(
                f"At adaptive's time out of tolerance ({adaptive['tot_pct']:.2f} %): "
                + "; ".join(parts)
                + "."
            )
        if name == "pv" and "night_requests_per_hour" in adaptive:
            lines.append(
                f"Adaptive by night {adaptive['night_requests_per_hour']:,.1f} req/h, by day "
                f"{adaptive['day_requests_per_hour']:,.1f} req/h. Incident delay: per sunrise."
            )
        lines.append("")
    overhead = results.get("overhead")
    if overhead:
        lines.append(
            "**Engine overhead** (CPU of scheduler + planner + decode + interval models;"
            " instant transport" + _rounds_note(overhead["sizes"]) + ")"
        )
        lines.append("")
        lines.append(
            "| registers | full cycle ms | µs/register | sched+plan ms (full) "
            "| adaptive cycle ms | due/cycle | sched+plan ms (adaptive) | µs/read (adaptive) "
            "| memory B/register |"
        )
        lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        lines.extend(
            f"| {r['registers']:,} | {r['full_cycle_ms']:.2f} | {r['full_per_register_us']:.1f}"
            f" | {r['full_sched_plan_ms']:.2f} | {r['adaptive_cycle_ms']:.2f}"
            f" | {r['adaptive_due_per_cycle']:.0f} | {r['adaptive_sched_plan_ms']:.2f}"
            f" | {r['adaptive_per_read_us']:.1f} | {r['memory_per_register_bytes']:,.0f} |"
            for r in overhead["sizes"]
        )
        lines.append("")
        if all("state_bytes_per_register" in r for r in overhead["sizes"]):
            lines.append(
                "**Learned state** (every register with full time-of-week patterns and noise"
                " window; save = export + JSON, CPU)"
            )
            lines.append("")
            lines.append(
                "| registers | B/register (JSON) | B/register (Store file) | save ms |"
            )
            lines.append("|---:|---:|---:|---:|")
            lines.extend(
                f"| {r['registers']:,} | {r['state_bytes_per_register']:,.0f}"
                f" | {r['state_store_bytes_per_register']:,.0f} | {r['state_save_ms']:.1f} |"
                for r in overhead["sizes"]
            )
            lines.append("")
    checks = results.get("checks", [])
    if checks:
        lines.append("**Targets**")
        lines.append("")
        lines.extend(
            f"- {'PASS' if check['ok'] else 'MISS'} {check['name']}: {check['detail']}"
            for check in checks
        )
        lines.append("")
    return "\n".join(lines)


def plots(
    results: Mapping[str, Any], extras: Mapping[str, Any], out: Path
) -> list[Path]:
    """Write the PNG plots; returns their paths."""
    import matplotlib as mpl  # noqa: PLC0415 - optional until plotting

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    written = []
    scenarios = results["scenarios"]
    # 1. the frontiers: requests and bus time vs time out of tolerance
    for key, label, filename in (
        ("requests_per_hour", "requests per hour", "frontier_requests.png"),
        ("bus_s_per_hour", "bus seconds per hour", "frontier_bus.png"),
    ):
        fig, axes = plt.subplots(
            1, len(scenarios), figsize=(4.2 * len(scenarios), 4), squeeze=False
        )
        for ax, (name, result) in zip(axes[0], scenarios.items(), strict=True):
            sweep = result.get("sweep", {})
            for family, marker in (
                (FIXED, "o-"),
                (STATIC, "s-"),
                (ORACLE_LENIENT, "^--"),
            ):
                pts = sorted(
                    (p for p in sweep.get(family, []) if "tot_pct" in p),
                    key=lambda p: p["interval"],
                )
                if pts:
                    ax.plot(
                        [p["tot_pct"] for p in pts],
                        [max(p[key], 1e-3) for p in pts],
                        marker,
                        label=family,
                    )
                    for p in pts:
                        ax.annotate(
                            f"{p['interval']:g}s",
                            (p["tot_pct"], max(p[key], 1e-3)),
                            fontsize=7,
                            xytext=(3, 3),
                            textcoords="offset points",
                        )
            for policy, marker in (
                (ADAPTIVE, "*"),
                ("adaptive-no-patterns", "x"),
                (EXPERT, "P"),
                (ORACLE, "D"),
                (ORACLE_BATCHED, "d"),
            ):
                m = result["policies"].get(policy)
                if m and "error" not in m:
                    lo, _, hi = m.get("spread", {}).get("tot_pct", [m["tot_pct"]] * 3)
                    ax.errorbar(
                        [m["tot_pct"]],
                        [max(m[key], 1e-3)],
                        xerr=[[m["tot_pct"] - lo], [hi - m["tot_pct"]]],
                        fmt=marker,
                        markersize=10,
                        label=policy,
                    )
            ax.set_yscale("log")
            ax.set_xlabel("time out of tolerance (%)")
            ax.set_ylabel(label)
            ax.set_title(name)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=6)
        fig.suptitle(
            f"{label.capitalize()} vs time out of tolerance (lower-left is better)"
        )
        fig.tight_layout()
        path = out / filename
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    # 2. demo timeline: requests per 5 minutes per policy, and a register's truth vs adaptive
    timeline = extras.get("timeline")
    if timeline:
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
        hours = timeline["hours"]
        top.plot(hours, timeline["truth"], lw=0.6, color="grey", label="true value")
        top.step(
            timeline["shown_hours"],
            timeline["shown"],
            where="post",
            lw=1.0,
            label="adaptive shows",
        )
        top.set_ylabel(timeline["label"])
        top.legend(fontsize=8)
        for policy, series in timeline["rates"].items():
            bottom.stairs(
                series["requests"], series["edges"], label=policy, lw=1, baseline=None
            )
        bottom.set_yscale("log")
        bottom.set_ylabel("requests per 5 min")
        bottom.set_xlabel("virtual hours")
        bottom.legend(fontsize=8)
        for incident in timeline["incidents"]:
            for ax in (top, bottom):
                ax.axvline(incident, color="red", lw=0.6, ls="--")
        fig.suptitle(f"{timeline['scenario']}: what adaptive polling does over time")
        fig.tight_layout()
        path = out / "demo_timeline.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written
