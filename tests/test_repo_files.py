"""Repository files that tools outside the test suite read: brand icon, CI workflows, hooks."""

from __future__ import annotations

from pathlib import Path
import tomllib

from PIL import Image
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BRAND = ROOT / "custom_components" / "adaptive_modbus" / "brand"


@pytest.mark.parametrize(("name", "size"), [("icon.png", 256), ("icon@2x.png", 512)])
def test_brand_icon_where_hacs_and_ha_look(name: str, size: int) -> None:
    """Test that the brand icons are where HACS and HA look for them."""
    # HACS' brands check and HA 2026.3+ read custom_components/<domain>/brand/icon.png
    with Image.open(BRAND / name) as image:
        assert image.format == "PNG"
        assert image.size == (size, size)
        assert image.mode == "RGBA"
        assert image.getpixel((0, 0))[3] == 0  # transparent corners (rounded square)


def test_validation_workflow_runs_hassfest_and_hacs() -> None:
    """Test that the validation workflow runs hassfest and the HACS action."""
    workflow = yaml.safe_load(
        (ROOT / ".github" / "workflows" / "validate.yml").read_text()
    )
    steps = {
        step["uses"].split("@")[0]: step
        for job in workflow["jobs"].values()
        for step in job["steps"]
    }
    assert "home-assistant/actions/hassfest" in steps
    hacs = steps["hacs/action"]
    assert hacs["with"]["category"] == "integration"
    assert "ignore" not in hacs["with"]  # the brand icon ships, nothing to ignore


def test_pre_commit_runs_ruff_and_mypy_from_the_project_venv() -> None:
    """Test that pre-commit runs ruff and mypy from the project's venv."""
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    for hook_id in ("ruff", "ruff-format", "mypy"):
        assert hooks[hook_id]["entry"].startswith(".venv/bin/"), hook_id
        assert (ROOT / hooks[hook_id]["entry"].split()[0]).name in {"ruff", "mypy"}


def test_tool_settings_live_in_pyproject() -> None:
    """Test that tool settings live in pyproject.toml, not setup.cfg."""
    assert not (ROOT / "setup.cfg").exists()
    tools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    assert tools["mypy"]["strict"] is True
    assert tools["pytest"]["ini_options"]["asyncio_mode"] == "auto"
    assert tools["coverage"]["run"]["source"] == ["custom_components/adaptive_modbus"]
