"""``python -m benchmarks.run``: run the scenarios, print the table, write JSON and plots.

``scripts/bench`` wraps this with the repository's virtualenv. ``--check`` exits 1
when a target is missed; ``--quick`` is the seconds-long smoke version.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import platform
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import overhead as overhead_mod
from . import policies as pol
from .bus import BusModel
from .metrics import compute, shown_series
from .oracle import run_oracle
from .report import RESULTS_DIR, equal_freshness, overhead_checks, plots, scenario_checks, table
from .scenarios import SCENARIOS, Scenario
from .simulate import RunRecord, SpanIndex, run_engine
from .trace import EXAMPLE_MAP, EXAMPLE_TRACE, load_trace

DEFAULT_SCENARIOS = ("demo", "install200", "stress2000", "trace")
QUICK_SCENARIOS = ("demo", "install200", "trace")
QUICK_SECONDS = 600
QUICK_SWEEP = (5.0, 15.0, 60.0)


def truncate(scenario: Scenario, seconds: int) -> Scenario:
    """The scenario cut to its first ``seconds`` (for quick runs)."""
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
    """The scenarios asked for on the command line."""
    bus = BusModel.parse(args.bus) if args.bus else None
    out = []
    names = args.scenarios or ",".join(QUICK_SCENARIOS if args.quick else DEFAULT_SCENARIOS)
    for name in (part.strip() for part in names.split(",")):
        if name == "trace":
            scenario = load_trace(
                Path(args.trace),
                Path(args.map),
                unit_id=args.trace_unit,
                bus=bus,
                incidents=tuple(args.incident),
            )
        elif name in SCENARIOS:
            hours = {"stress2000": args.stress_hours, "install200": args.install_hours}.get(
                name, args.hours
            )
            if args.quick:
                hours = min(hours, QUICK_SECONDS / 3600)
            scenario = SCENARIOS[name](hours=hours, seed=args.seed, bus=bus)
        else:
            raise SystemExit(
                f"unknown scenario {name!r}: choose from {', '.join([*SCENARIOS, 'trace'])}"
            )
        if args.quick:
            scenario = truncate(scenario, QUICK_SECONDS)
            scenario = dataclasses.replace(scenario, sweep=QUICK_SWEEP)
        out.append(scenario)
    return out


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def run_scenario(
    scenario: Scenario,
    *,
    progress: bool,
    sweep: bool,
    min_interval: float = 5.0,
    max_interval: float = 300.0,
) -> tuple[dict[str, Any], dict[str, RunRecord]]:
    """Every policy on one scenario: metrics per policy, sweeps, equal freshness."""
    result: dict[str, Any] = {
        "title": scenario.title,
        "values": len(scenario.specs),
        "registers": scenario.registers,
        "units": scenario.units,
        "bus": scenario.bus.name,
        "hours": scenario.duration / 3600,
        "incidents": len(scenario.incidents),
        "policies": {},
        "sweep": {pol.FIXED: [], pol.STATIC: []},
    }
    records: dict[str, RunRecord] = {}
    index = SpanIndex(scenario.specs)
    todo = pol.standard(scenario.limits, min_interval=min_interval, max_interval=max_interval)
    if sweep:
        todo += pol.sweep(scenario.sweep, scenario.limits)
    for policy in todo:
        started = time.monotonic()
        try:
            if policy.config is None:
                lookahead = pol.ORACLE_LOOKAHEAD if policy.name == pol.ORACLE_BATCHED else 0
                record = run_oracle(
                    scenario, progress=progress, lookahead=lookahead, name=policy.name
                )
            else:
                record = asyncio.run(
                    run_engine(scenario, policy.config, policy.name, progress=progress, index=index)
                )
        except Exception as err:
            _log(f"  {scenario.name} / {policy.name}: FAILED: {err!r}")
            result["policies"][policy.name] = {"error": repr(err)}
            continue
        metrics = compute(scenario, record, min_interval=min_interval).as_dict()
        _log(
            f"  {scenario.name} / {policy.name}: {metrics['requests_per_hour']:,.0f} req/h, "
            f"p95 error {metrics['err_p95']:.2f} ({time.monotonic() - started:.1f} s)"
        )
        if policy.interval is None or policy.interval == pol.DEFAULT_INTERVAL:
            result["policies"][policy.name] = metrics
        if policy.family in (pol.FIXED, pol.STATIC):
            result["sweep"][policy.family].append({"interval": policy.interval, **metrics})
        if scenario.name == "demo" and policy.name in (  # kept for the timeline plot
            pol.ADAPTIVE,
            f"{pol.FIXED}@15s",
            f"{pol.STATIC}@15s",
            pol.ORACLE,
        ):
            records[policy.name] = record
    adaptive = result["policies"].get(pol.ADAPTIVE, {})
    if "err_p95" in adaptive:
        result["equal_freshness"] = {
            family: eq
            for family in (pol.FIXED, pol.STATIC)
            if (eq := equal_freshness(result["sweep"][family], adaptive["err_p95"]))
        }
        # the same by mean error: p95 of quantised errors is coarse and often ties
        result["equal_mean_error"] = {
            family: eq
            for family in (pol.FIXED, pol.STATIC)
            if (eq := equal_freshness(result["sweep"][family], adaptive["err_mean"], "err_mean"))
        }
    return result, records


def timeline(scenario: Scenario, records: dict[str, RunRecord]) -> dict[str, Any]:
    """Data of the demo timeline plot."""
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


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run: minutes of virtual time")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--hours", type=float, default=4.0, help="virtual hours of the demo")
    parser.add_argument("--install-hours", type=float, default=2.0, help="hours of install200")
    parser.add_argument("--stress-hours", type=float, default=0.5, help="hours of stress2000")
    parser.add_argument(
        "--scenarios",
        default=None,
        help="comma-separated from demo,install200,stress2000,trace "
        f"(default {','.join(DEFAULT_SCENARIOS)}; --quick: "
        f"{','.join(QUICK_SCENARIOS)})",
    )
    parser.add_argument("--bus", help="override the bus: rtu9600, rtu19200, tcp10ms, tcp25ms ...")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--trace", default=str(EXAMPLE_TRACE), help="trace CSV: timestamp,key,value"
    )
    parser.add_argument("--map", default=str(EXAMPLE_MAP), help="YAML register map of the trace")
    parser.add_argument("--trace-unit", type=int, default=1, help="unit id of the trace's map")
    parser.add_argument(
        "--incident",
        type=float,
        action="append",
        default=[],
        help="seconds from the trace start of an incident to time (repeatable)",
    )
    parser.add_argument(
        "--min-interval", type=float, default=5.0, help="adaptive engine's min interval (s)"
    )
    parser.add_argument(
        "--max-interval", type=float, default=300.0, help="adaptive engine's max interval (s)"
    )
    parser.add_argument("--no-sweep", action="store_true", help="skip the fixed-interval sweep")
    parser.add_argument("--no-overhead", action="store_true", help="skip the overhead measurement")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--out", default=str(RESULTS_DIR), help="results directory")
    parser.add_argument(
        "--readme",
        action="store_true",
        help="also write README-results.json, README-table.md, README-*.png",
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
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    cpu0 = time.process_time()
    results: dict[str, Any] = {
        "meta": {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": " ".join(["scripts/bench", *(argv if argv is not None else sys.argv[1:])]),
            "seed": args.seed,
            "quick": args.quick,
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
        )
        results["scenarios"][scenario.name] = result
        results["checks"] += scenario_checks(scenario.name, result)
        if scenario.name == "demo" and records:
            extras["timeline"] = timeline(scenario, records)
    if not args.no_overhead:
        _log("overhead: engine CPU and memory at 100 / 1,000 / 10,000 registers")
        sizes = (100, 1000) if args.quick else (100, 1000, 10_000)
        measured = overhead_mod.measure(sizes, quick=args.quick)
        results["overhead"] = {"sizes": measured, "growth": overhead_mod.growth(measured)}
        results["checks"] += overhead_checks(results["overhead"])
    results["meta"]["wall_seconds"] = round(time.monotonic() - started, 1)
    results["meta"]["cpu_seconds"] = round(time.process_time() - cpu0, 1)
    text = table(results)
    print(text)
    print(
        f"(run took {results['meta']['wall_seconds']} s wall, "
        f"{results['meta']['cpu_seconds']} s CPU)"
    )
    (out / "results.json").write_text(json.dumps(results, indent=1, allow_nan=False) + "\n")
    if args.readme:
        (out / "README-results.json").write_text(json.dumps(results, indent=1) + "\n")
        (out / "README-table.md").write_text(text + "\n")
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
