"""Fixtures of the browser tests: a live HA (develop config), users, Chromium pages.

Chromium is Debian's ``chromium`` (``scripts/setup`` installs it with apt where it
can), driven by Playwright for Python with ``executable_path``; Playwright's own
browser download is not used. Without the browser or Playwright the tests are
skipped with a loud reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future
import contextlib
import json
from pathlib import Path
import queue
import shutil
import tempfile
import threading
import time
from typing import Any
import urllib.error
import urllib.parse
import warnings

import pytest
import pytest_socket

from custom_components.adaptive_modbus.panel import SCRIPT_FILE, STATIC_URL

from .ha_live import LiveHA, Tokens, live_home_assistant

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
OWNER = ("owner", "owner-password-1")
VIEWER = ("viewer", "viewer-password-1")
CARD = "adaptive-modbus-card"
DEMO_SENSORS = "sensor.demo_device_"  # the demo heat pump (unit 1), "Demo device" in HA
# the develop config's YAML dashboard, a view per card view
DASHBOARD = "/adaptive-modbus-demo"
# what shows that the card of a view has rendered its data
CARD_READY = {
    "registers": f"{CARD} tr.register[data-entity^='sensor.']",
    "overview": f"{CARD} [data-stat='requests_per_minute']",
    "clusters": f"{CARD} [data-hole='1.input:10']",
}
BUNDLE_PATH = f"{STATIC_URL}/{SCRIPT_FILE}"
# uncaught errors (pageerror) of every page opened, in order
_PAGE_ERRORS: dict[Any, list[dict[str, str]]] = {}


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium; scripts/setup tries)"
    try:
        import playwright.sync_api  # noqa: F401, PLC0415
    except ImportError:
        return "playwright is not installed (pip install -r requirements_test.txt)"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip the browser tests loudly when the browser cannot run here."""
    reason = _missing()
    if reason is None:
        return
    warnings.warn(f"BROWSER TESTS SKIPPED: {reason}", stacklevel=1)
    for item in items:
        if "live_ha" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(reason=f"BROWSER TESTS SKIPPED: {reason}"))


def _loopback_sockets() -> None:
    """Let a session fixture use loopback sockets (the test plugin blocks them per test)."""
    pytest_socket.enable_socket()
    pytest_socket.socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)


@pytest.fixture(scope="session")
def live_ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHA]:
    """Home Assistant with the develop config, onboarded, the demo entry loaded."""
    if _missing():
        pytest.skip(_missing() or "")
    _loopback_sockets()
    config = tmp_path_factory.mktemp("ha-config")
    with live_home_assistant(config) as ha:
        ha.onboard(*OWNER)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(  # the demo heat pump's first reads are in
                s["entity_id"].startswith(DEMO_SENSORS)
                and s["state"] not in ("unknown", "unavailable")
                for s in ha.states().values()
            ):
                break
            time.sleep(1)
        try:  # the frontend's first call: without an answer it never leaves "Loading data"
            ha.api("GET", "/api/services")
        except urllib.error.HTTPError as err:
            pytest.fail(
                f"HA cannot list its services (HTTP {err.code}), so its frontend would "
                "stay on 'Loading data' and no card could render; a requirement of one "
                "of HA's own components missing in this venv? End of HA's log:\n"
                + ha.log.read_text()[-3000:]
            )
        yield ha


class BrowserThread:
    """Playwright's sync API on a thread of its own.

    The sync API keeps an event loop running on its thread, which would clash with
    the test plugin's per-test event loop on the main thread; every browser step runs
    here instead, through :meth:`run`.
    """

    def __init__(self) -> None:
        """Start the thread; the driver starts on it."""
        self._jobs: queue.Queue[tuple[Callable[[], Any], Future[Any]] | None] = (
            queue.Queue()
        )
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=self._main, name="playwright", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(60):
            raise RuntimeError("the Playwright driver did not start")

    def _main(self) -> None:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415

        manager = sync_playwright()
        pw = manager.__enter__()
        self.chromium = pw.chromium
        self._ready.set()
        try:
            while (job := self._jobs.get()) is not None:
                fn, future = job
                try:
                    future.set_result(fn())
                except BaseException as err:  # noqa: BLE001 (handed to the test)
                    future.set_exception(err)
        finally:
            manager.__exit__(None, None, None)

    def run(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the browser thread; return its result or raise its error."""
        future: Future[Any] = Future()
        self._jobs.put((fn, future))
        return future.result()

    def stop(self) -> None:
        """End the driver and the thread."""
        self._jobs.put(None)
        self._thread.join(timeout=60)


@pytest.fixture(scope="session")
def browser_thread() -> Iterator[BrowserThread]:
    """Start the Playwright driver on its own thread (one per session)."""
    thread = BrowserThread()
    yield thread
    thread.stop()


@pytest.fixture
def in_browser(
    live_ha: LiveHA, browser_thread: BrowserThread
) -> Iterator[Callable[[Callable[[Callable[..., Any]], Any]], Any]]:
    """Run ``steps(open_page)`` on the browser thread.

    ``open_page(tokens, path, **context options)`` opens a logged-in page in a fresh
    Chromium profile; every context opened is closed after the test.
    """
    contexts: list[Any] = []
    pages: list[Any] = []
    dirs: list[str] = []

    def _open(tokens: Tokens, path: str = "/", **options: Any) -> Any:
        user_data = tempfile.mkdtemp(prefix="am-chromium-")
        dirs.append(user_data)
        context = browser_thread.chromium.launch_persistent_context(
            user_data,
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport=options.pop("viewport", {"width": 1280, "height": 900}),
            **options,
        )
        contexts.append(context)
        stored = json.dumps(tokens.local_storage(live_ha.url))
        context.add_init_script(
            f"window.localStorage.setItem('hassTokens', {json.dumps(stored)});"
        )
        page = context.pages[0] if context.pages else context.new_page()
        pages.append(page)
        errors = _PAGE_ERRORS.setdefault(page, [])
        page.on(
            "pageerror",
            lambda err: errors.append(
                {"message": err.message, "stack": err.stack or ""}
            ),
        )
        page.set_default_timeout(60_000)
        page.goto(live_ha.url + path)
        page.wait_for_function(
            "() => document.querySelector('home-assistant')?.hass?.connected === true"
        )
        return page

    def _close() -> None:
        for context in contexts:
            with contextlib.suppress(Exception):
                context.close()

    def _run(steps: Callable[[Callable[..., Any]], Any]) -> Any:
        try:
            return browser_thread.run(lambda: steps(_open))
        except BaseException:
            for number, context in enumerate(contexts):
                for page in context.pages:
                    with contextlib.suppress(Exception):
                        browser_thread.run(
                            lambda page=page, number=number: shoot(
                                page, f"failure-{number}"
                            )
                        )
            raise

    yield _run
    browser_thread.run(_close)
    for page in pages:
        _PAGE_ERRORS.pop(page, None)
    for user_data in dirs:
        shutil.rmtree(user_data, ignore_errors=True)


def page_errors(page: Any) -> list[dict[str, str]]:
    """Return the uncaught errors (``pageerror``) of a page opened by ``in_browser``."""
    return list(_PAGE_ERRORS.get(page, []))


# stackless rejections that HA's own frontend causes (see bundle_errors)
HA_OWN_STACKLESS = frozenset({"Transition was skipped"})


def bundle_errors(page: Any, since: int = 0) -> list[dict[str, str]]:
    """Return the page's uncaught errors from our bundle (from the ``since``-th on).

    An error counts as ours when a frame of its stack is in the card's script; one
    without any stack frame (a rejected promise of a plain object) cannot be put on
    anyone, so it counts too rather than being excused. The one exception: the
    browser's "Transition was skipped" rejection of a view transition, which HA
    2026.2's frontend starts on navigation (our bundle starts none; a test checks).
    """
    return [
        e
        for e in page_errors(page)[since:]
        if BUNDLE_PATH in e["stack"]
        or BUNDLE_PATH in e["message"]
        or (" at " not in e["stack"] and e["message"] not in HA_OWN_STACKLESS)
    ]


def wait_for_card(
    page: Any, view: str, timeout: float | None = None, since: int = 0
) -> Any:
    """Wait until the card of ``view`` shows its data; fail on errors of our bundle.

    ``since``: the number of the page's errors before the card's page was loaded
    (errors of pages shown earlier in the same tab are not the card's).
    """
    ready = page.wait_for_selector(CARD_READY[view], timeout=timeout)
    errors = bundle_errors(page, since)
    assert not errors, f"uncaught errors while the card loaded: {errors}"
    return ready


def open_card(
    open_page: Callable[..., Any],
    tokens: Tokens,
    view: str,
    timeout: float | None = None,
    **options: Any,
) -> Any:
    """Open the demo dashboard's ``view`` in a new browser as ``tokens``' user.

    Returns the page once the card shows its data (and nothing of ours failed).
    """
    page = open_page(tokens, f"{DASHBOARD}/{view}", **options)
    wait_for_card(page, view, timeout)
    return page


def goto_card(page: Any, path: str, view: str, timeout: float | None = None) -> Any:
    """Load ``path`` (a dashboard view with a card of ``view``) in an open page."""
    since = len(page_errors(page))
    page.goto(urllib.parse.urljoin(page.url, path))
    return wait_for_card(page, view, timeout, since)


def call_ws(page: Any, message: dict[str, Any]) -> Any:
    """Send a websocket command through the page's own HA connection."""
    return page.evaluate(
        "(msg) => document.querySelector('home-assistant').hass.callWS(msg)", message
    )


@pytest.fixture(scope="session")
def viewer_tokens(live_ha: LiveHA, browser_thread: BrowserThread) -> Tokens:
    """Create a non-admin user (group system-users) and log it in (login flow)."""
    assert live_ha.admin is not None
    admin = live_ha.admin

    def _create() -> None:
        user_data = tempfile.mkdtemp(prefix="am-chromium-")
        context = browser_thread.chromium.launch_persistent_context(
            user_data, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            stored = json.dumps(admin.local_storage(live_ha.url))
            context.add_init_script(
                f"window.localStorage.setItem('hassTokens', {json.dumps(stored)});"
            )
            page = context.pages[0] if context.pages else context.new_page()
            page.goto(live_ha.url + "/")
            page.wait_for_function(
                "() => document.querySelector('home-assistant')?.hass?.connected"
            )
            user = call_ws(
                page,
                {
                    "type": "config/auth/create",
                    "name": "Viewer",
                    "group_ids": ["system-users"],
                    "local_only": False,
                },
            )
            call_ws(
                page,
                {
                    "type": "config/auth_provider/homeassistant/create",
                    "user_id": user["user"]["id"],
                    "username": VIEWER[0],
                    "password": VIEWER[1],
                },
            )
        finally:
            context.close()
            shutil.rmtree(user_data, ignore_errors=True)

    _loopback_sockets()
    browser_thread.run(_create)
    return live_ha.login(*VIEWER)


def shoot(page: Any, name: str, docs: bool = False, target: Any = None) -> Path:
    """Save a screenshot in tests/browser/artifacts (and docs/ for the README)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    # bytes, written here: with a path the driver writes through its loop's executor,
    # whose new threads the test plugin would report as left behind
    path.write_bytes((target or page).screenshot())
    if docs:
        docs_dir = Path(__file__).parents[2] / "docs"
        docs_dir.mkdir(exist_ok=True)
        shutil.copy(path, docs_dir / f"{name}.png")
    return path
