"""Hassfest-like checks that run here: manifest, hacs.json, strings, translations, icons.

HA's own hassfest lives in the core repository, not in the homeassistant wheel, so
the rules it applies to custom integrations are checked here directly.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
import re
from typing import Any

from awesomeversion import AwesomeVersion
from packaging.requirements import Requirement
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
INTEGRATION = ROOT / "custom_components" / "adaptive_modbus"
MANIFEST = json.loads((INTEGRATION / "manifest.json").read_text())
STRINGS = json.loads((INTEGRATION / "strings.json").read_text())

IOT_CLASSES = {
    "assumed_state", "cloud_polling", "cloud_push", "local_polling", "local_push", "calculated",
}  # fmt: skip
INTEGRATION_TYPES = {
    "device",
    "entity",
    "hardware",
    "helper",
    "hub",
    "service",
    "system",
}
HACS_KEYS = {
    "name", "content_in_root", "zip_release", "filename", "hide_default_branch", "country",
    "homeassistant", "persistent_directory", "render_readme", "hacs",
}  # fmt: skip


def test_manifest_keys_and_values() -> None:
    """Test the manifest's keys and values."""
    assert MANIFEST["domain"] == INTEGRATION.name
    assert MANIFEST["name"] == "Adaptive Modbus"
    assert MANIFEST["config_flow"] is True
    assert (
        MANIFEST["iot_class"] == "local_polling"
        and MANIFEST["iot_class"] in IOT_CLASSES
    )
    assert (
        MANIFEST["integration_type"] == "hub"
        and MANIFEST["integration_type"] in INTEGRATION_TYPES
    )
    assert AwesomeVersion(MANIFEST["version"]).valid
    assert all(owner.startswith("@") for owner in MANIFEST["codeowners"])
    assert MANIFEST["documentation"].startswith("https://")
    # hassfest: domain and name first, the rest sorted
    keys = list(MANIFEST)
    assert keys[:2] == ["domain", "name"] and keys[2:] == sorted(keys[2:])


@pytest.mark.parametrize("version", ["3.8.3", "3.11.2", "3.13.1", "3.16.1"])
def test_pymodbus_requirement_admits_supported_range(version: str) -> None:
    """Test that the pymodbus requirement admits every supported version."""
    requirements = {
        Requirement(r).name: Requirement(r) for r in MANIFEST["requirements"]
    }
    assert requirements["pymodbus"].specifier.contains(version)
    assert not requirements["pymodbus"].specifier.contains("3.8.2")


def test_hacs_json() -> None:
    """Test that hacs.json holds only known keys, the name and HA 2025.4 or newer."""
    hacs = json.loads((ROOT / "hacs.json").read_text())
    assert set(hacs) <= HACS_KEYS
    assert hacs["name"] == MANIFEST["name"]
    assert AwesomeVersion(hacs["homeassistant"]) >= AwesomeVersion("2025.4.0")
    assert hacs.get("content_in_root", False) is False  # custom_components/<domain>/


def test_translations_match_strings() -> None:
    """Test that the English translations equal strings.json."""
    english = json.loads((INTEGRATION / "translations" / "en.json").read_text())
    assert english == STRINGS


def _leaves(node: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [
            leaf
            for k, v in node.items()
            for leaf in _leaves(v, f"{path}.{k}".lstrip("."))
        ]
    return [(path, node)]


def test_strings_are_non_empty_and_placeholders_are_well_formed() -> None:
    """Test that strings are non-empty and their placeholders well formed."""
    for path, text in _leaves(STRINGS):
        assert isinstance(text, str) and text.strip(), path
        assert text.count("{") == text.count("}"), path
        for placeholder in re.findall(r"\{([^}]*)\}", text):
            assert re.fullmatch(r"[a-z_]+", placeholder), f"{path}: {{{placeholder}}}"


def _literal_keywords(name: str) -> set[str]:
    """Every literal string passed as keyword ``name`` anywhere in the integration's code."""
    found: set[str] = set()
    for path in INTEGRATION.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.keyword)
                and node.arg == name
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                found.add(node.value.value)
    return found


def test_exception_translation_keys_exist() -> None:
    """Test that every translation key used in code exists in strings.json."""
    exceptions = STRINGS.get("exceptions", {})
    entity_keys = {
        k for platform in STRINGS.get("entity", {}).values() for k in platform
    }
    selector_keys = set(STRINGS.get("selector", {}))
    issue_keys = set(STRINGS.get("issues", {}))
    for key in _literal_keywords("translation_key"):
        assert (
            key in exceptions
            or key in entity_keys
            or key in selector_keys
            or key in issue_keys
        ), f"translation_key {key!r} has no string"
    for key in exceptions:
        assert "message" in exceptions[key]


def test_icons_refer_to_translated_entities() -> None:
    """Test that icons refer to translated entities and services have strings."""
    icons = json.loads((INTEGRATION / "icons.json").read_text())
    for platform, entries in icons.get("entity", {}).items():
        for key, icon in entries.items():
            assert key in STRINGS["entity"][platform], (
                f"icon for unknown {platform}.{key}"
            )
            assert icon["default"].startswith("mdi:")
    services = INTEGRATION / "services.yaml"
    # every service needs strings (and an icon) like core integrations
    if services.exists():
        for service in yaml.safe_load(services.read_text()) or {}:
            assert service in STRINGS["services"]
            assert service in icons["services"]


def test_no_forbidden_ha_patterns() -> None:
    """Forward-compatibility rules from DESIGN.md."""
    for path in INTEGRATION.glob("*.py"):
        text = path.read_text()
        assert "hass.helpers" not in text, path.name
        assert "async_forward_entry_setup(" not in text, path.name
        assert "self.config_entry =" not in text, path.name
        assert "register_static_path(" not in text, path.name


def test_engine_imports_nothing_from_home_assistant() -> None:
    """Test that no engine module imports Home Assistant."""
    engine = INTEGRATION / "engine"
    for path in engine.rglob("*.py"):
        depth = len(path.relative_to(engine).parts) - 1  # packages below engine/
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
                if node.level > depth + 1:  # relative import reaching out of engine/
                    names.append("..")
            else:
                continue
            for name in names:
                assert not name.startswith("homeassistant"), f"{path}: imports {name}"
                assert name != "..", f"{path}: relative import out of the engine"
