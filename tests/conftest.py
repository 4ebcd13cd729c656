# ruff: noqa: I001  (custom_components must be imported before anything else)
"""Root test configuration.

HA's test plugin puts its own ``custom_components`` package first on the import
path; importing ours here, before anything else, makes HA find the integration.
"""

import custom_components  # noqa: F401  (must stay the first import)

import asyncio
import os
from pathlib import Path
import shutil
import subprocess
import time
import warnings
from collections.abc import Generator, Iterator

import pytest
from hypothesis import settings

# CI runs the property tests on a fixed sequence of examples (a gate must be
# reproducible); local runs keep exploring new random examples.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def _current_event_loop() -> asyncio.AbstractEventLoop | None:
    """Return the event loop set for this thread, or None (never makes one)."""
    with warnings.catch_warnings():
        # Python 3.13 would create a loop here, after a DeprecationWarning, when none
        # was ever set; as an error, that warning stops it before it does
        warnings.simplefilter("error", DeprecationWarning)
        try:
            return asyncio.get_event_loop()
        except (RuntimeError, DeprecationWarning):
            return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """Give the thread its event loop back when a test's ``asyncio.run()`` unset it.

    ``asyncio.run()`` (the benchmark CLI, the synchronous benchmark smoke tests) ends
    with ``set_event_loop(None)``. Newer HA test plugins (0.13.316 for HA 2026.2) no
    longer hand every test a fresh loop: their autouse fixtures call
    ``asyncio.get_event_loop()`` in every test, sync ones too, and without this every
    later synchronous test failed in setup ("There is no current event loop").
    """
    before = _current_event_loop()
    try:
        return (yield)
    finally:
        if (
            before is not None
            and not before.is_closed()
            and _current_event_loop() is None
        ):
            asyncio.set_event_loop(before)


@pytest.fixture
def pty_pair(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two linked pseudo terminals made by socat: (server end, client end)."""
    socat = shutil.which("socat")
    if socat is None:
        pytest.skip("socat is not installed (scripts/setup installs it with apt-get)")
    end_a, end_b = tmp_path / "ttyA", tmp_path / "ttyB"
    proc = subprocess.Popen(
        [
            socat,
            "-d",
            "-d",
            f"pty,raw,echo=0,link={end_a}",
            f"pty,raw,echo=0,link={end_b}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while not (end_a.exists() and end_b.exists()):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("socat did not create the pty pair")
            time.sleep(0.01)
        yield str(end_a), str(end_b)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait()
