"""The built card and panel: size budget, one module, what the integration serves."""

from __future__ import annotations

from pathlib import Path
import re

from custom_components.adaptive_modbus import panel

ROOT = Path(__file__).resolve().parents[2]
BUILT = panel.FRONTEND_DIR / panel.SCRIPT_FILE
BUDGET = 150 * 1024  # bytes, card and panel together (stated in the README)


def test_built_module_within_the_size_budget() -> None:
    """Test the committed build: card + panel in one module of at most 150 kB."""
    size = BUILT.stat().st_size
    assert 10_000 < size <= BUDGET
    assert "150 kB" in (ROOT / "README.md").read_text()


def test_built_module_defines_the_card_the_editor_and_the_panel() -> None:
    """Test that the one module defines all three elements and registers the card."""
    text = BUILT.read_text()
    for name in (
        "adaptive-modbus-card",
        "adaptive-modbus-card-editor",
        panel.PANEL_ELEMENT,
    ):
        assert f'"{name}"' in text
    assert "window.customCards" in text
    # no network at run time: nothing loaded from another host
    assert not re.search(
        r"https?://(?!github\.com/adaptive-modbus)", text.split("/*!")[0]
    )
    assert "import(" not in text
    # the browser tests excuse a stackless "Transition was skipped": never ours
    assert "startViewTransition" not in text


def test_script_url_carries_the_content_hash() -> None:
    """Test that the URL changes with the built file (browsers reload after an update)."""
    version = panel.script_version()
    assert re.fullmatch(r"[0-9a-f]{12}", version)
    assert (
        panel.script_url(version)
        == f"/adaptive_modbus_static/adaptive-modbus.js?v={version}"
    )


def test_build_script_and_lock_file_are_committed() -> None:
    """Test that the sources, the lock file and the build script are where they belong."""
    assert (ROOT / "frontend" / "package-lock.json").is_file()
    assert (ROOT / "frontend" / "src" / "index.js").is_file()
    script = ROOT / "scripts" / "build_frontend"
    assert script.stat().st_mode & 0o111
    assert "npm ci" in script.read_text()
