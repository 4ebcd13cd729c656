"""Anomalies: robust z-scores, time-of-week baselines, and the demo incident."""

from __future__ import annotations

import json

import pytest

from adaptive_modbus_engine.analytics import AnomalyDetector
from adaptive_modbus_engine.simulator import signals

from .fleet import T0, Run

WEEK = 7 * 86_400.0


def feed(
    detector: AnomalyDetector,
    values: list[float],
    start: float = T0,
    step: float = 60.0,
    **kw: float,
) -> list[object]:
    """Feed evenly spaced reads; return what fired."""
    return [
        a
        for i, v in enumerate(values)
        if (a := detector.observe("r", start + i * step, v, **kw)) is not None
    ]


def test_a_register_read_every_two_seconds_gets_a_baseline() -> None:
    """Fast reads: the ring keeps one read per slot, so it reaches half an hour back.

    Without that, 256 reads every 2 s cover 8.5 minutes and never reach
    ``min_span``: no baseline, no anomaly, ever.
    """
    detector = AnomalyDetector()
    base = [10.0 + ((i * 7) % 11 - 5) / 10 for i in range(40 * 30)]  # 40 min
    assert feed(detector, base, step=2.0) == []
    found = detector.observe("r", T0 + len(base) * 2.0, 20.0)
    assert found is not None
    assert found.expected_low < 10.0 < found.expected_high < 20.0


def test_a_jump_far_outside_recent_behaviour_fires_with_its_figures() -> None:
    """Median and MAD of the last half hour; the anomaly carries value, range, score."""
    detector = AnomalyDetector()
    # 10 ± 0.5 in eleven steps, evenly spread: median 10, MAD 0.3
    base = [10.0 + ((i * 7) % 11 - 5) / 10 for i in range(44)]
    assert feed(detector, base) == []
    found = detector.observe("r", T0 + 44 * 60, 20.0, unit_id=3)
    assert found is not None
    assert found.score == pytest.approx(10.0 / (1.4826 * 0.3), rel=0.05)
    assert found.expected_low < 10.0 < found.expected_high < 20.0
    assert (found.uid, found.unit_id, found.value, found.baseline) == (
        "r",
        3,
        20.0,
        "recent",
    )


def test_threshold_is_configurable_and_cooldown_merges_an_episode() -> None:
    """A laxer threshold ignores what 3.0 flags; one episode is one anomaly."""
    base = [10.0 + ((i * 7) % 11 - 5) / 10 for i in range(44)]
    lax = AnomalyDetector(threshold=30.0)
    feed(lax, base)
    assert lax.observe("r", T0 + 44 * 60, 20.0) is None
    strict = AnomalyDetector()
    feed(strict, base)
    fired = feed(strict, [30.0] * 4, start=T0 + 44 * 60)
    assert len(fired) == 1  # four reads within the 5 min cooldown
    with pytest.raises(ValueError):
        AnomalyDetector(threshold=0)


def test_no_baseline_no_anomaly_until_the_window_is_covered() -> None:
    """The first half hour of a register is its baseline, never an anomaly."""
    detector = AnomalyDetector()
    assert feed(detector, [1.0] * 20 + [1000.0]) == []  # 20 min of reads


def test_noise_alone_never_fires_on_a_noisy_register() -> None:
    """A register whose noise exceeds its tolerance: noise-sized deviations stay quiet."""
    detector = AnomalyDetector()
    # a flat signal, then reads off by the noise: the scale's floor is the noise
    # figure (the RMS read-to-read difference, here that of alternating ±0.1)
    values = [50.0] * 35 + [50.0 + (0.1 if i % 2 else -0.1) for i in range(30)]
    assert feed(detector, values, noise=0.2, tolerance=0.02) == []
    # without the noise figure the same reads would fire
    assert feed(AnomalyDetector(), values, tolerance=0.02)


def test_time_of_week_baseline_knows_the_usual_busy_hour() -> None:
    """A value usual at Monday 10:00 is not an anomaly then, but is at 11:00."""
    detector = AnomalyDetector()
    monday = T0 + 4 * 86_400.0  # 2026-01-05 00:00 UTC, a Monday

    def week(start: float) -> None:
        # every 5 min for a day: 100 from 10:00 to 11:00, 0 otherwise
        for i in range(288):
            at = start + i * 300
            hour = (at - start) // 3600
            detector.observe("r", at, 100.0 if hour == 10 else 0.0)

    week(monday)
    assert detector.has_profile("r", monday + WEEK + 10 * 3600)
    assert not detector.has_profile("r", monday + 2 * 86_400)  # Wednesday: no data
    # next Monday: quiet until 10:00, then the usual 100 is usual
    for i in range(120):
        detector.observe("r", monday + WEEK + i * 300, 0.0)
    at10 = monday + WEEK + 10 * 3600 + 60
    assert detector.observe("r", at10, 100.0) is None
    at11 = monday + WEEK + 11 * 3600 + 60
    found = detector.observe("r", at11, 100.0)
    assert found is not None and found.baseline == "time_of_week"
    # the profiles persist, packed: a day learned takes a few hundred bytes
    state = detector.export_state()
    assert len(json.dumps(state)) < 600
    restored = AnomalyDetector()
    assert restored.import_state(state) == []
    assert restored.has_profile("r", at10)
    assert restored.observe("r", at10 + 60, 100.0) is None
    assert restored.observe("r", at11 + 60, 100.0) is not None
    assert restored.import_state({"version": 99}) != []
    assert restored.import_state({"version": 1, "profiles": {"x": "not base64!"}}) != []


async def test_demo_incident_fires_in_escalation_and_peak_not_when_stable() -> None:
    """Two incident cycles of the demo: anomalies in escalation and peak only.

    The grid frequency (noisier than its tolerance) and the on/off registers never
    fire; each incident register fires in both escalations and both peaks.
    """
    run = Run()
    await run.run_until(T0 + 2 * signals.CYCLE_SECONDS)
    phases: dict[str, set[tuple[int, str]]] = {}
    for a in run.anomalies:
        scenario = a.at - T0
        phase = signals.phase_at(scenario)
        phases.setdefault(a.uid, set()).add(
            (signals.cycle_index(scenario), phase.value)
        )
    assert run.anomalies
    for uid, seen in phases.items():
        assert all(p != "stable" for _, p in seen), (uid, seen)
    for key in ("active_power", "supply_temperature", "compressor_power", "flow_rate"):
        seen = phases[run.uid(key)]
        for cycle in (0, 1):
            assert (cycle, "escalation") in seen, (key, seen)
            assert (cycle, "peak") in seen, (key, seen)
    snap = run.engine.snapshot()
    assert snap.registers[run.uid("grid_frequency")].noisy
    assert run.uid("grid_frequency") not in phases
    assert run.uid("status_fault") not in phases  # on/off flags are not scored
    # every anomaly names its unit and a range the value is outside of
    for a in run.anomalies:
        assert a.unit_id == 1
        assert not a.expected_low <= a.value <= a.expected_high
