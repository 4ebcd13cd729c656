"""quality_scale.yaml lists every rule of HA's quality scale, and its claims hold.

Where a "done" can be checked from the source it is checked here; the rest is
covered by the tests of the feature itself (config flow, diagnostics, ...).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
INTEGRATION = ROOT / "custom_components" / "adaptive_modbus"
RULES = yaml.safe_load((INTEGRATION / "quality_scale.yaml").read_text())["rules"]

BRONZE = {
    "action-setup", "appropriate-polling", "brands", "common-modules",
    "config-flow-test-coverage", "config-flow", "dependency-transparency", "docs-actions",
    "docs-high-level-description", "docs-installation-instructions",
    "docs-removal-instructions", "entity-event-setup", "entity-unique-id",
    "has-entity-name", "runtime-data", "test-before-configure", "test-before-setup",
    "unique-config-entry",
}  # fmt: skip
SILVER = {
    "action-exceptions", "config-entry-unloading", "docs-configuration-parameters",
    "docs-installation-parameters", "entity-unavailable", "integration-owner",
    "log-when-unavailable", "parallel-updates", "reauthentication-flow", "test-coverage",
}  # fmt: skip
GOLD = {
    "devices", "diagnostics", "discovery-update-info", "discovery", "docs-data-update",
    "docs-examples", "docs-known-limitations", "docs-supported-devices",
    "docs-supported-functions", "docs-troubleshooting", "docs-use-cases",
    "dynamic-devices", "entity-category", "entity-device-class",
    "entity-disabled-by-default", "entity-translations", "exception-translations",
    "icon-translations", "reconfiguration-flow", "repair-issues", "stale-devices",
}  # fmt: skip
PLATINUM = {"async-dependency", "inject-websession", "strict-typing"}


def status(rule: str) -> str:
    """Return a rule's status, whether written short or with a comment."""
    value = RULES[rule]
    return value if isinstance(value, str) else value["status"]


def source(name: str) -> str:
    """Return the text of one of the integration's modules."""
    return (INTEGRATION / name).read_text()


def test_every_rule_is_listed_with_a_valid_status() -> None:
    """Each tier's rules are all there; exempt and todo say why."""
    assert set(RULES) >= BRONZE | SILVER | GOLD | PLATINUM
    for rule, value in RULES.items():
        assert status(rule) in {"done", "todo", "exempt"}, rule
        if status(rule) != "done":
            assert isinstance(value, dict), rule
            assert value.get("comment", "").strip(), f"{rule} needs a reason"


def test_platform_modules_set_parallel_updates() -> None:
    """parallel-updates: every entity platform module sets PARALLEL_UPDATES."""
    assert status("parallel-updates") == "done"
    for platform in ("sensor", "binary_sensor", "number", "switch"):
        tree = ast.parse(source(f"{platform}.py"))
        names = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        assert "PARALLEL_UPDATES" in names, platform


def test_done_claims_that_the_source_shows() -> None:
    """Claims checkable from the source: runtime data, typing, flows, brands, actions."""
    init = source("__init__.py")
    assert "runtime_data" in init and status("runtime-data") == "done"
    assert (
        "async_remove_config_entry_device" in init and status("stale-devices") == "done"
    )
    assert "async_step_reconfigure" in source("config_flow.py")
    assert (INTEGRATION / "diagnostics.py").is_file()
    assert "_attr_has_entity_name = True" in source("entity.py")
    assert (INTEGRATION / "brand" / "icon.png").is_file() and status("brands") == "done"
    assert (INTEGRATION / "engine" / "py.typed").is_file()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert "strict = true" in pyproject and status("strict-typing") == "done"
    strings = json.loads(source("strings.json"))
    assert strings["entity"] and strings["exceptions"]
    if status("action-setup") == "done":
        setup = ast.parse(init)
        async_setup = next(
            node
            for node in setup.body
            if isinstance(node, ast.AsyncFunctionDef) and node.name == "async_setup"
        )
        assert "services" in ast.unparse(async_setup)
        assert (INTEGRATION / "services.yaml").is_file()
        assert strings["services"]


def test_docs_rules_have_a_readme_section() -> None:
    """The docs-* rules marked done point at sections that exist in the README."""
    readme = (ROOT / "README.md").read_text()
    sections = {
        "docs-installation-instructions": "## Install (HACS)",
        "docs-removal-instructions": "## Removing",
        "docs-troubleshooting": "## Troubleshooting",
        "docs-known-limitations": "## Known limitations",
        "docs-configuration-parameters": "**Options**",
        "docs-supported-devices": "profile",
    }
    for rule, heading in sections.items():
        assert status(rule) == "done", rule
        assert heading in readme, rule
