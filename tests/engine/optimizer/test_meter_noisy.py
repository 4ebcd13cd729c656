"""A register found noisy counts in no window's staleness, also in those measured before.

The loop marks registers whose noise exceeds their tolerance as noisy when it runs
and leaves them out of the staleness figures. A change applied at that run is
measured against the window before it, which was metered while the register still
counted: its noise read as changes seen late made the window before look staler,
and any change look fresher (a noise-margin change on wrongdefaults measured +71 %).
"""

from __future__ import annotations

from adaptive_modbus_engine.optimizer.measure import WindowMeter

START = 6000.0  # a whole minute: windows count whole minutes


def metered() -> WindowMeter:
    """Ten minutes of a noisy register (a change beyond tolerance every read) and a calm one."""
    meter = WindowMeter({"noisy": 0.1, "calm": 1.0}, START)
    values = {"noisy": 20.0, "calm": 5.0}
    last: dict[str, float | None] = {"noisy": None, "calm": None}
    for k in range(0, 600, 10):
        t = START + k
        values["noisy"] += 0.3 if (k // 10) % 2 else -0.3  # 3 tolerances each read
        if k % 120 == 0:
            values["calm"] += 2.0  # two tolerances every other minute
        for uid in ("noisy", "calm"):
            if uid == "noisy" or k % 60 == 0:
                meter.on_read(uid, t, values[uid], last[uid])
                last[uid] = t
    return meter


def test_a_register_found_noisy_leaves_windows_measured_before() -> None:
    """The same window's figures drop the register once it is marked noisy."""
    meter = metered()
    before = meter.figures(START, START + 600)
    assert before["changes"] > 50  # the noisy register's reads counted as changes

    meter.noisy = {"noisy"}
    after = meter.figures(START, START + 600)
    calm_only = WindowMeter({"calm": 1.0}, START)
    last = None
    value = 5.0
    for k in range(0, 600, 60):
        if k % 120 == 0:
            value += 2.0
        calm_only.on_read("calm", START + k, value, last)
        last = START + k
    expected = calm_only.figures(START, START + 600)
    # as if only the calm register had ever been metered
    assert after["changes"] == expected["changes"] > 0
    assert after["time_out_of_tolerance"] == expected["time_out_of_tolerance"] > 0
    assert after["first_change_delay"] == expected["first_change_delay"]
    assert after["moved"] == expected["moved"]
    assert after["time_out_of_tolerance"] < before["time_out_of_tolerance"]
    # minute by minute (the significance tests) the same
    minutes = meter.per_minute(START, START + 600)
    assert sum(m["changes"] for m in minutes) == after["changes"]
