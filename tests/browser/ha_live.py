"""A live Home Assistant started the way ``scripts/develop`` starts it, onboarded over REST.

``hass -c <config>`` runs in a subprocess with ``scripts/develop_config`` (the demo
device, the demo dashboard) on a free loopback port; the owner is created through the
onboarding API and a second, non-admin user through the auth websocket commands.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
from dataclasses import dataclass, field
import json
from pathlib import Path
import shutil
import socket
import subprocess
import sys
import time
from typing import Any
import urllib.error
import urllib.parse
import urllib.request

ROOT = Path(__file__).resolve().parents[2]
DEVELOP_CONFIG = ROOT / "scripts" / "develop_config"
START_TIMEOUT = 300.0  # a first start on a busy machine


def free_port() -> int:
    """Return a free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Tokens:
    """OAuth tokens of one user, as the frontend keeps them in ``hassTokens``."""

    access_token: str
    refresh_token: str
    expires_in: int

    def local_storage(self, url: str) -> dict[str, Any]:
        """Return the ``localStorage.hassTokens`` value for the frontend."""
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "hassUrl": url,
            "clientId": f"{url}/",
            "expires": int(time.time() * 1000) + self.expires_in * 1000,
        }


@dataclass
class LiveHA:
    """A running HA subprocess and its users' tokens."""

    config: Path
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    admin: Tokens | None = None
    users: dict[str, Tokens] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Return the base URL."""
        return f"http://127.0.0.1:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        form: bool = False,
    ) -> Any:
        """Send one HTTP request; return the decoded JSON answer."""
        headers = {}
        data = None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            if form:
                data = urllib.parse.urlencode(body).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
        req = urllib.request.Request(
            self.url + path, data=data, headers=headers, method=method
        )
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (loopback)
            text = resp.read().decode()
        return json.loads(text) if text else None

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call the REST API as the owner."""
        assert self.admin is not None
        return self.request(method, path, body, token=self.admin.access_token)

    def states(self) -> dict[str, dict[str, Any]]:
        """Return every state by entity id (REST ``/api/states``)."""
        return {s["entity_id"]: s for s in self.api("GET", "/api/states")}

    def tokens_from_code(self, code: str) -> Tokens:
        """Trade an authorization code for tokens."""
        answer = self.request(
            "POST",
            "/auth/token",
            {
                "grant_type": "authorization_code",
                "code": code,
                "client_id": f"{self.url}/",
            },
            form=True,
        )
        return Tokens(
            answer["access_token"], answer["refresh_token"], int(answer["expires_in"])
        )

    def onboard(self, username: str, password: str) -> None:
        """Create the owner and finish the onboarding steps."""
        client_id = f"{self.url}/"
        answer = self.request(
            "POST",
            "/api/onboarding/users",
            {
                "client_id": client_id,
                "name": "Owner",
                "username": username,
                "password": password,
                "language": "en",
            },
        )
        self.admin = self.tokens_from_code(answer["auth_code"])
        self.api("POST", "/api/onboarding/core_config")
        self.api("POST", "/api/onboarding/analytics")
        self.api(
            "POST",
            "/api/onboarding/integration",
            {"client_id": client_id, "redirect_uri": f"{self.url}/?auth_callback=1"},
        )

    def login(self, username: str, password: str) -> Tokens:
        """Log a user in through the login flow (as the login page does)."""
        client_id = f"{self.url}/"
        flow = self.request(
            "POST",
            "/auth/login_flow",
            {
                "client_id": client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": f"{self.url}/?auth_callback=1",
            },
        )
        result = self.request(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            {"client_id": client_id, "username": username, "password": password},
        )
        assert result["type"] == "create_entry", result
        return self.tokens_from_code(result["result"])


def _wait_until_up(ha: LiveHA) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if ha.process.poll() is not None:
            raise RuntimeError(
                f"hass exited with {ha.process.returncode}:\n{ha.log.read_text()[-3000:]}"
            )
        with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
            if ha.request("GET", "/api/onboarding") is not None:
                return
        time.sleep(1.0)
    raise TimeoutError(
        f"hass did not answer in {START_TIMEOUT:.0f} s:\n{ha.log.read_text()[-3000:]}"
    )


def make_config(config: Path, port: int) -> None:
    """Copy the develop config (as scripts/develop does) and move HA to ``port``."""
    for template in DEVELOP_CONFIG.iterdir():
        target = config / template.name
        if template.is_dir():
            shutil.copytree(template, target)
        else:
            shutil.copy(template, target)
    (config / "custom_components").symlink_to(ROOT / "custom_components")
    yaml = config / "configuration.yaml"
    text = yaml.read_text()
    assert "server_port: 8123" in text
    yaml.write_text(text.replace("server_port: 8123", f"server_port: {port}"))


@contextlib.contextmanager
def live_home_assistant(config: Path) -> Iterator[LiveHA]:
    """Start ``hass -c config`` with the develop config on a free port; stop it after."""
    port = free_port()
    make_config(config, port)
    hass = Path(sys.executable).parent / "hass"
    log = config / "hass.stdout.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 (our own venv's hass)
            [str(hass), "-c", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    ha = LiveHA(config=config, port=port, process=process, log=log)
    try:
        _wait_until_up(ha)
        yield ha
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
