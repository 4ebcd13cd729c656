"""``python -m benchmarks.run``: run the scenarios, print the table, write JSON and plots.

``scripts/bench`` wraps this with the repository's virtualenv. ``--check`` exits 1
when a target is missed; ``--quick`` is the seconds-long smoke version.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
import dataclasses
import datetime as dt
import json
from pathlib import Path
import platform
import shutil
import statistics
import sys
import time
from typing import Any
import zlib

import numpy as np

from adaptive_modbus_engine import planning as planning_mod

from . import overhead as overhead_mod, policies as pol
from .bus import BusModel
from .expert import pick_intervals, run_expert
from .metrics import FINAL_SHARE, compute, final_start, shown_series, stream_chunk
from .oracle import night_floor, run_oracle
from .report import (
    RESULTS_DIR,
    at_equal_tot,
    optimizer_table,
    overhead_checks,
    plots,
    scenario_checks,
    table,
)
from .scenarios import SCENARIOS, Scenario
from .simulate import RunRecord, SpanIndex, run_engine
from .trace import EXAMPLE_MAP, EXAMPLE_TRACE, MAX_GAP, load_trace

DEFAULT_SCENARIOS = ("demo", "install200", "stress2000", "pv", "trace", "wrongdefaults")
QUICK_SCENARIOS = ("demo", "install200", "trace")
QUICK_SECONDS = 600
QUICK_SECONDS_PV = 5400  # the first sunrise is 43 min in
QUICK_SWEEP = (5.0, 15.0, 60.0)
DEFAULT_PHASES = 3
QUICK_PHASES = 2
MAX_PHASE = 300.0  # s: phases are drawn from [0, 300), the replay's round-time grid
SPREAD_KEYS = (
    "requests_per_hour",
    "bus_s_per_hour",
    "tot_pct",
    "delay_median",
    "delay_p95",
    "final_requests_per_hour",
    "final_bus_s_per_hour",
    "final_tot_pct",
)


def truncate(scenario: Scenario, seconds: int) -> Scenario:
    """Return the scenario cut to its first ``seconds`` (for quick runs)."""
    if scenario.duration <= seconds:
        return scenario
    end = scenario.start + seconds
    return dataclasses.replace(
        scenario,
        duration=seconds,
        truth=scenario.truth[:, : seconds + 1],
        incidents=tuple(t for t in scenario.incidents if t < end),
    )


def build_scenarios(args: argparse.Namespace) -> list[Scenario]:
    """Build the scenarios asked for on the command line."""
    bus = BusModel.parse(args.bus) if args.bus else None
    out = []
    names = args.scenarios or ",".join(
        QUICK_SCENARIOS if args.quick else DEFAULT_SCENARIOS
    )
    for name in (part.strip() for part in names.split(",")):
        if name == "trace":
            scenario = load_trace(
                Path(args.trace),
                Path(args.map),
                unit_id=args.trace_unit,
                bus=bus,
                incidents=tuple(args.incident),
                max_gap=args.trace_gap,
                hold=args.trace_hold,
                end=args.trace_end,
            )
        elif name in SCENARIOS:
            hours = {
                "stress2000": args.stress_hours,
                "install200": args.install_hours,
                "pv": args.pv_hours,
            }.get(name, args.hours)
            if args.quick:
                hours = min(
                    hours, (QUICK_SECONDS_PV if name == "pv" else QUICK_SECONDS) / 3600
                )
            scenario = SCENARIOS[name](hours=hours, seed=args.seed, bus=bus)
        else:
            raise SystemExit(
                f"unknown scenario {name!r}: choose from {', '.join([*SCENARIOS, 'trace'])}"
            )
        if args.quick:
            scenario = truncate(
                scenario, QUICK_SECONDS_PV if name == "pv" else QUICK_SECONDS
            )
            scenario = dataclasses.replace(scenario, sweep=QUICK_SWEEP)
        out.append(scenario)
    return out


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def phases_of(seed: int, policy: str, count: int) -> list[float]:
    """Return the seeded polling phases (s) of one policy: ``count`` draws from [0, 300)."""
    rng = np.random.default_rng([seed, zlib.crc32(policy.encode())])
    return [float(x) for x in rng.uniform(0.0, MAX_PHASE, count)]


def _median(values: list[Any]) -> Any:
    known = [v for v in values if v is not None]
    return float(statistics.median(known)) if known else None


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Combine the metrics of several phases.

    Medians (element-wise for per-register and per-incident lists) and the spread
    [min, median, max] of the main figures.
    """
    out = dict(runs[0])
    for key, first in runs[0].items():
        values = [run[key] for run in runs]
        if isinstance(first, (bool, str)):
            continue
        if isinstance(first, (int, float)) or first is None:
            if all(v is None or isinstance(v, (int, float)) for v in values):
                out[key] = _median(values)
        elif isinstance(first, list):
            out[key] = [
                _median([run[key][i] for run in runs]) for i in range(len(first))
            ]
    out["phases"] = [run.get("phase", 0.0) for run in runs]
    out["spread"] = {
        key: [min(v), _median(v), max(v)]
        for key in SPREAD_KEYS
        if (v := [run[key] for run in runs if run.get(key) is not None])
    }
    return out


def day_night(scenario: Scenario, record: RunRecord) -> dict[str, float]:
    """Return requests per hour by day and by night (scenarios with a ``day`` mask)."""
    if scenario.day is None:
        return {}
    day = scenario.day
    requests = [0, 0]
    # nights after the second sunrise: a whole day and night seen before them
    sunrises = np.flatnonzero(np.diff(day[: scenario.duration].astype(np.int8)) == 1)
    learned_from = int(sunrises[1]) + 1 if len(sunrises) > 1 else scenario.duration
    learned = 0
    for when, count in record.timeline:
        second = min(max(int(when - scenario.start), 0), len(day) - 1)
        requests[int(bool(day[second]))] += count
        if second >= learned_from and not day[second]:
            learned += count
    day_hours = float(day[: scenario.duration].sum()) / 3600
    night_hours = scenario.duration / 3600 - day_hours
    learned_hours = float((~day[learned_from : scenario.duration]).sum()) / 3600
    out = {
        "day_requests_per_hour": requests[1] / max(day_hours, 1e-9),
        "night_requests_per_hour": requests[0] / max(night_hours, 1e-9),
    }
    if learned_hours > 0:
        out["learned_night_requests_per_hour"] = learned / learned_hours
    return out


def _measure(
    scenario: Scenario, record: RunRecord, min_interval: float, phase: float
) -> dict[str, Any]:
    metrics = compute(scenario, record, min_interval=min_interval).as_dict()
    metrics.update(day_night(scenario, record))
    metrics["phase"] = round(phase, 1)
    if record.optimizer is not None:
        metrics["loop"] = loop_summary(record.optimizer)
    return metrics


def loop_summary(statistics: dict[str, Any]) -> dict[str, Any]:
    """Summarise what the loop did in one run: changes kept, rolled back, approved."""
    kept: list[str] = []
    rolled_back: list[str] = []
    approved: list[str] = []
    for entry in statistics.get("audit", []):
        what = f"{entry.get('extra', {}).get('parameter')} of {entry.get('target')}"
        if entry.get("action") == "approve":
            approved.append(what)
        elif str(entry.get("action", "")).startswith("strategy:"):
            if entry.get("outcome") == "kept":
                kept.append(what)
            elif entry.get("outcome") == "rolled_back":
                rolled_back.append(what)
    return {"kept": kept, "rolled_back": rolled_back, "approved": approved}


def run_scenario(
    scenario: Scenario,
    *,
    progress: bool,
    sweep: bool,
    min_interval: float = 5.0,
    max_interval: float = 300.0,
    phases: int = DEFAULT_PHASES,
    seed: int = 42,
    only: Sequence[str] | None = None,
) -> tuple[dict[str, Any], dict[str, RunRecord]]:
    """Run every policy on one scenario over ``phases`` seeded phases.

    Metrics per policy (medians and spread), sweeps, expert-tuned static, equal
    time out of tolerance.
    """
    result: dict[str, Any] = {
        "title": scenario.title,
        "values": len(scenario.specs),
        "registers": scenario.registers,
        "units": scenario.units,
        "bus": scenario.bus.name,
        "hours": scenario.duration / 3600,
        # the final stretch's figures (final_*) are from here to the end
        "final_from_hours": (final_start(scenario) - scenario.start) / 3600,
        "final_share": FINAL_SHARE,
        "incidents": len(scenario.incidents),
        "phases": phases,
        "policies": {},
        "sweep": {pol.FIXED: [], pol.STATIC: []},
    }
    if scenario.day is not None:  # what keeping the maximum costs by night at least
        result["night_floor"] = {
            "max_interval": max_interval,
            "requests_per_hour": night_floor(scenario, max_interval),
        }
    records: dict[str, RunRecord] = {}
    index = SpanIndex(scenario.specs)
    todo = pol.standard(
        scenario.limits, min_interval=min_interval, max_interval=max_interval
    )
    if sweep:
        todo += pol.sweep(scenario.sweep, scenario.limits)
    if only:
        todo += pol.optional(
            scenario.limits, min_interval=min_interval, max_interval=max_interval
        )
        todo = [policy for policy in todo if policy.name in only]
    by_interval: dict[float, list[float | None]] = {}
    keep: RunRecord | None = None
    for policy in todo:
        started = time.monotonic()
        runs = []
        try:
            if policy.config is None:  # the oracle reads every second: no phase
                lookahead = (
                    pol.ORACLE_LOOKAHEAD if policy.name == pol.ORACLE_BATCHED else 0
                )
                record = run_oracle(
                    scenario,
                    progress=progress,
                    lookahead=lookahead,
                    name=policy.name,
                    max_interval=max_interval,
                )
                runs.append(_measure(scenario, record, min_interval, 0.0))
            else:
                # the optimizer runs at adaptive's phases: a paired comparison
                paired = pol.ADAPTIVE if policy.optimizer else policy.name
                for k, phase in enumerate(phases_of(seed, paired, phases)):
                    record = asyncio.run(
                        run_engine(
                            scenario,
                            policy.config,
                            policy.name,
                            progress=progress,
                            index=index,
                            phase=phase,
                            optimizer=policy.optimizer,
                            approve=policy.approve,
                            chunk=stream_chunk(scenario),
                        )
                    )
                    runs.append(_measure(scenario, record, min_interval, phase))
                    if k == 0 and scenario.name == "demo":
                        keep = record
        # one policy failing is reported in the results; the others still run
        except Exception as err:  # noqa: BLE001
            _log(f"  {scenario.name} / {policy.name}: FAILED: {err!r}")
            result["policies"][policy.name] = {"error": repr(err)}
            continue
        metrics = combine(runs)
        if policy.optimizer:
            metrics["loop"] = [run.get("loop") for run in runs]
        spread = metrics["spread"]["tot_pct"]
        _log(
            f"  {scenario.name} / {policy.name}: {metrics['requests_per_hour']:,.1f} req/h, "
            f"out of tolerance {spread[1]:.2f} % ({spread[0]:.2f}-{spread[2]:.2f}) over "
            f"{len(runs)} phase(s) ({time.monotonic() - started:.1f} s)"
        )
        if policy.interval is None or policy.interval == pol.DEFAULT_INTERVAL:
            result["policies"][policy.name] = metrics
        if policy.family in (pol.FIXED, pol.STATIC):
            result["sweep"][policy.family].append(
                {"interval": policy.interval, **metrics}
            )
        if policy.family == pol.FIXED and policy.interval is not None:
            by_interval[policy.interval] = metrics["tot_per_register"]
        if (
            scenario.name == "demo"
            and policy.name
            in (
                pol.ADAPTIVE,
                f"{pol.FIXED}@15s",
                f"{pol.STATIC}@15s",
            )
            and keep is not None
        ):
            records[policy.name] = keep
        elif scenario.name == "demo" and policy.name == pol.ORACLE:
            records[policy.name] = record
    adaptive = result["policies"].get(pol.ADAPTIVE, {})
    if "tot_pct" in adaptive and sweep and by_interval:
        started = time.monotonic()
        intervals = pick_intervals(
            by_interval, adaptive["tot_per_register"], scenario.specs
        )
        runs = [
            _measure(
                scenario,
                run_expert(scenario, intervals, phase=phase),
                min_interval,
                phase,
            )
            for phase in phases_of(seed, pol.EXPERT, phases)
        ]
        expert = combine(runs)
        expert["intervals"] = {
            f"{i:g}": intervals.count(i) for i in sorted(set(intervals))
        }
        result["policies"][pol.EXPERT] = expert
        _log(
            f"  {scenario.name} / {pol.EXPERT}: {expert['requests_per_hour']:,.1f} req/h, "
            f"intervals {expert['intervals']} ({time.monotonic() - started:.1f} s)"
        )
    if "tot_pct" in adaptive and sweep:
        started = time.monotonic()
        result["sweep"][pol.ORACLE_LENIENT] = [
            {
                "interval": float(grace),
                **_measure(
                    scenario,
                    run_oracle(
                        scenario,
                        lookahead=pol.ORACLE_LOOKAHEAD,
                        grace=grace,
                        name=f"{pol.ORACLE_LENIENT}@{grace}s",
                        max_interval=max_interval,
                    ),
                    min_interval,
                    0.0,
                ),
            }
            for grace in pol.ORACLE_GRACES
        ]
        _log(
            f"  {scenario.name} / {pol.ORACLE_LENIENT}: {len(pol.ORACLE_GRACES)} graces "
            f"({time.monotonic() - started:.1f} s)"
        )
    if "tot_pct" in adaptive:
        for label, target in (("equal_tot", adaptive["tot_pct"]),):
            result[label] = {}
            for family in (pol.FIXED, pol.STATIC, pol.ORACLE_LENIENT):
                if not result["sweep"].get(family):
                    continue
                points = result["sweep"][family]
                eq = at_equal_tot(points, target, "requests_per_hour")
                eq_bus = at_equal_tot(points, target, "bus_s_per_hour")
                if eq and eq_bus:
                    result[label][family] = {
                        "tot_pct": target,
                        "interval": eq["interval"],
                        "requests_per_hour": eq["requests_per_hour"],
                        "bus_s_per_hour": eq_bus["bus_s_per_hour"],
                        "bound": eq["bound"],
                        "bound_bus": eq_bus["bound"],
                    }
    return result, records


def timeline(scenario: Scenario, records: dict[str, RunRecord]) -> dict[str, Any]:
    """Return the data of the demo timeline plot."""
    keys = [spec.key for spec in scenario.specs]
    row = keys.index("active_power") if "active_power" in keys else 0
    samples = scenario.start + np.arange(scenario.truth.shape[1], dtype=np.float64)
    data: dict[str, Any] = {
        "scenario": scenario.name,
        "label": keys[row],
        "hours": ((samples - scenario.start) / 3600).tolist(),
        "truth": scenario.truth[row].tolist(),
        "incidents": [(t - scenario.start) / 3600 for t in scenario.incidents],
        "rates": {},
    }
    adaptive = records.get(pol.ADAPTIVE)
    if adaptive is not None:
        shown, _ = shown_series(*adaptive.reads[row], samples)
        data["shown_hours"] = data["hours"]
        data["shown"] = shown.tolist()
    bins = np.arange(0, scenario.duration + 300, 300)
    for name, record in records.items():
        if not record.timeline:
            continue
        t = np.array([when - scenario.start for when, _ in record.timeline])
        n = np.array([count for _, count in record.timeline], dtype=np.float64)
        counts, _ = np.histogram(t, bins=bins, weights=n)
        data["rates"][name] = {
            "edges": (bins / 3600).tolist(),
            "requests": np.maximum(counts, 0.5).tolist(),
        }
    return data


README = Path(__file__).resolve().parent.parent / "README.md"
README_START = "<!-- bench:results -->"
README_END = "<!-- /bench:results -->"
OPTIMIZER_START = "<!-- bench:optimizer -->"
OPTIMIZER_END = "<!-- /bench:optimizer -->"


def readme_results(results: dict[str, Any], text: str) -> str:
    """Render the README's results block: the figures' source, the plots, the tables."""
    meta = results["meta"]
    return (
        f"From `{meta['command']}` on the 2-core development machine (Python "
        f"{meta['python']}, seed {meta['seed']}, {meta['phases']} phases per policy; the run "
        f"took {meta['wall_seconds']:.0f} s wall on a machine shared with other jobs). The "
        "scenario figures are deterministic (same seed, same numbers on every machine); "
        "only the overhead table depends on the machine.\n\n"
        "![Requests vs time out of tolerance](benchmarks/results/README-frontier_requests.png)"
        "\n\n![Bus time vs time out of tolerance](benchmarks/results/README-frontier_bus.png)"
        "\n\n*Cost against time out of tolerance for every policy; the fixed policies are "
        "swept from 5 s to 300 s (medians over phases, bars: min-max), the clairvoyant "
        "frontier (oracle-lenient) over its grace from 2 s to 320 s. Lower-left is "
        "better.*\n\n" + text
    )


def update_readme(
    path: Path, block: str, markers: tuple[str, str] = (README_START, README_END)
) -> bool:
    """Replace the text between the README's results markers; False without markers."""
    if not path.exists():
        return False
    text = path.read_text(encoding="utf-8")
    start, end = text.find(markers[0]), text.find(markers[1])
    if start < 0 or end < start:
        return False
    head = text[: start + len(markers[0])]
    path.write_text(f"{head}\n{block.rstrip()}\n{text[end:]}", encoding="utf-8")
    return True


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: minutes of virtual time"
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a target is missed"
    )
    parser.add_argument(
        "--hours", type=float, default=4.0, help="virtual hours of the demo"
    )
    parser.add_argument(
        "--install-hours", type=float, default=2.0, help="hours of install200"
    )
    parser.add_argument(
        "--stress-hours", type=float, default=0.5, help="hours of stress2000"
    )
    parser.add_argument(
        "--pv-hours", type=float, default=52.0, help="hours of pv (3 sunrises in 52 h)"
    )
    parser.add_argument(
        "--phases",
        type=int,
        default=None,
        help=f"seeded polling phases per policy (default {DEFAULT_PHASES}; --quick "
        f"{QUICK_PHASES}); figures are medians over them",
    )
    parser.add_argument(
        "--scenarios",
        default=None,
        help="comma-separated from demo,install200,stress2000,pv,trace,wrongdefaults "
        f"(default {','.join(DEFAULT_SCENARIOS)}; --quick: "
        f"{','.join(QUICK_SCENARIOS)})",
    )
    parser.add_argument(
        "--bus", help="override the bus: rtu9600, rtu19200, tcp10ms, tcp25ms ..."
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--trace", default=str(EXAMPLE_TRACE), help="trace CSV: timestamp,key,value"
    )
    parser.add_argument(
        "--map", default=str(EXAMPLE_MAP), help="YAML register map of the trace"
    )
    parser.add_argument(
        "--trace-unit", type=int, default=1, help="unit id of the trace's map"
    )
    parser.add_argument(
        "--trace-gap",
        type=float,
        default=MAX_GAP,
        help="a trace silent this long (s, all keys) has a gap: missing truth",
    )
    parser.add_argument(
        "--trace-hold",
        action="store_true",
        help="replay trace gaps as a flat signal instead",
    )
    parser.add_argument(
        "--trace-end",
        default=None,
        help="where a change-only trace ends (its timestamp format)",
    )
    parser.add_argument(
        "--incident",
        type=float,
        action="append",
        default=[],
        help="seconds from the trace start of an incident to time (repeatable)",
    )
    parser.add_argument(
        "--min-interval",
        type=float,
        default=5.0,
        help="adaptive engine's min interval (s)",
    )
    parser.add_argument(
        "--max-interval",
        type=float,
        default=300.0,
        help="adaptive engine's max interval (s)",
    )
    parser.add_argument(
        "--riders",
        type=float,
        default=None,
        metavar="VALUE",
        help="free riders: a read grows over neighbours whose staleness is worth "
        f"VALUE x a request (engine default: {planning_mod.RIDER_VALUE:g}; 0: off)",
    )
    parser.add_argument(
        "--no-sweep", action="store_true", help="skip the fixed-interval sweep"
    )
    parser.add_argument(
        "--policies",
        default=None,
        help="comma-separated policy names to run, e.g. adaptive,adaptive+optimizer "
        "(default: all; the sweep, expert-tuned static and the checks that need "
        "other policies then drop out)",
    )
    parser.add_argument(
        "--no-overhead", action="store_true", help="skip the overhead measurement"
    )
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--out", default=str(RESULTS_DIR), help="results directory")
    parser.add_argument(
        "--readme",
        action="store_true",
        help="also write README-results.json, README-table.md, README-*.png",
    )
    parser.add_argument(
        "--optimizer-readme",
        action="store_true",
        help="write the adaptive vs adaptive+optimizer table into the README's "
        "optimization section (run with --policies adaptive,adaptive+optimizer,...)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress line on stderr (default: when stderr is a terminal)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    args = parse_args(argv)
    if args.riders is not None:
        planning_mod.RIDER_VALUE = args.riders
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    phases = args.phases or (QUICK_PHASES if args.quick else DEFAULT_PHASES)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    cpu0 = time.process_time()
    results: dict[str, Any] = {
        "meta": {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": " ".join(
                ["scripts/bench", *(argv if argv is not None else sys.argv[1:])]
            ),
            "seed": args.seed,
            "quick": args.quick,
            "phases": phases,
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        },
        "scenarios": {},
        "checks": [],
    }
    extras: dict[str, Any] = {}
    for scenario in build_scenarios(args):
        _log(f"{scenario.name}: {scenario.title}")
        result, records = run_scenario(
            scenario,
            progress=progress,
            sweep=not args.no_sweep,
            min_interval=args.min_interval,
            max_interval=args.max_interval,
            phases=phases,
            seed=args.seed,
            only=args.policies.split(",") if args.policies else None,
        )
        results["scenarios"][scenario.name] = result
        results["checks"] += scenario_checks(scenario.name, result)
        if scenario.name == "demo" and records:
            extras["timeline"] = timeline(scenario, records)
    if not args.no_overhead:
        _log("overhead: engine CPU and memory at 100 / 1,000 / 10,000 registers")
        sizes = (100, 1000) if args.quick else (100, 1000, 10_000)
        measured = overhead_mod.measure(sizes, quick=args.quick)
        results["overhead"] = {
            "sizes": measured,
            "growth": overhead_mod.growth(measured),
        }
        results["checks"] += overhead_checks(results["overhead"])
    results["meta"]["wall_seconds"] = round(time.monotonic() - started, 1)
    results["meta"]["cpu_seconds"] = round(time.process_time() - cpu0, 1)
    text = table(results)
    print(text)
    print(
        f"(run took {results['meta']['wall_seconds']} s wall, "
        f"{results['meta']['cpu_seconds']} s CPU)"
    )
    (out / "results.json").write_text(
        json.dumps(results, indent=1, allow_nan=False) + "\n"
    )
    if args.readme:
        (out / "README-results.json").write_text(json.dumps(results, indent=1) + "\n")
        (out / "README-table.md").write_text(text + "\n")
        if out.resolve() == RESULTS_DIR.resolve() and update_readme(
            README, readme_results(results, text)
        ):
            _log(f"updated {README}")
    if args.optimizer_readme:
        block = optimizer_table(results)
        (out / "optimizer-table.md").write_text(block + "\n")
        if update_readme(README, block, (OPTIMIZER_START, OPTIMIZER_END)):
            _log(f"updated the optimization table in {README}")
    if not args.no_plots:
        for path in plots(results, extras, out):
            _log(f"wrote {path}")
            if args.readme:  # the README's copies, which later runs leave alone
                shutil.copyfile(path, out / f"README-{path.name}")
    _log(f"wrote {out / 'results.json'}")
    missed = [c for c in results["checks"] if not c["ok"]]
    if args.check and missed:
        _log(f"--check: {len(missed)} target(s) missed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
