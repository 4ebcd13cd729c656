"""PollEngine.request_read: registers asked for are read by the next cycle."""

from __future__ import annotations

import pytest

from .test_scheduler import make_engine, run_until


async def test_request_read_makes_registers_due_now() -> None:
    """Test that request_read makes the registers due now."""
    engine, _device, _transport, clock = make_engine()
    await run_until(engine, clock, 300)
    snapshot = engine.snapshot()
    # a register that is not due for a while
    uid, reg = max(snapshot.registers.items(), key=lambda item: item[1].next_due or 0)
    assert reg.next_due is not None
    assert reg.next_due > clock.t + 5
    before = reg.reads
    engine.request_read([uid])
    assert engine.next_due() == clock.t
    result = await engine.poll_due()
    assert result.requests >= 1
    after = engine.snapshot().registers[uid]
    assert after.reads == before + 1
    assert after.last_read == clock.t
    # and it goes back onto its learned interval afterwards
    assert after.next_due is not None
    assert after.next_due > clock.t


async def test_request_read_plans_with_what_is_due() -> None:
    """Test that requested registers are read together with what is due."""
    engine, _device, _transport, clock = make_engine()
    await run_until(engine, clock, 300)
    snapshot = engine.snapshot()
    later = sorted(
        (
            r
            for r in snapshot.registers.values()
            if r.next_due and r.next_due > clock.t + 5
        ),
        key=lambda r: r.address,
    )
    wanted = [r.uid for r in later[:3]]
    assert len(wanted) == 3
    engine.request_read(wanted)
    result = await engine.poll_due()
    reads = engine.snapshot().registers
    for uid in wanted:
        assert reads[uid].last_read == clock.t
    # the three were not read one request each when they share a table
    assert result.requests <= 3


async def test_request_read_unknown_uid_names_it() -> None:
    """Test that request_read of an unknown uid names it."""
    engine, _, _, _clock = make_engine()
    due = engine.next_due()
    with pytest.raises(ValueError, match=r"9\.nope.*9\.other"):
        engine.request_read(["9.nope", engine.uids[0], "9.other"])
    # nothing changed for the known one either
    assert engine.next_due() == due
