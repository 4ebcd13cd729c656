"""A synchronous test may use ``asyncio.run()`` without breaking the tests after it.

The two tests run in file order: the first unsets the thread's event loop the way
``asyncio.run()`` does; the second only passes when the loop was given back before
the HA test plugin's autouse fixtures (which call ``asyncio.get_event_loop()`` in
every test) set it up.
"""

from __future__ import annotations

import asyncio


async def _answer() -> int:
    await asyncio.sleep(0)
    return 42


def test_a_sync_test_may_call_asyncio_run() -> None:
    """Test that a synchronous test may call asyncio.run()."""
    assert asyncio.run(_answer()) == 42


def test_the_next_sync_test_still_has_an_event_loop() -> None:
    """Test that the next synchronous test still has an event loop."""
    loop = asyncio.get_event_loop()
    assert not loop.is_closed()
    assert loop.run_until_complete(_answer()) == 42


async def test_an_async_test_after_them_runs_on_a_working_loop() -> None:
    """Test that an async test after them runs on a working loop."""
    assert await _answer() == 42
