"""A small JSON Schema checker for the visualization export (jsonschema is not installed).

It implements the keywords the export's schema uses: type (one or a list), enum,
const, required, properties, additionalProperties (bool or schema), items,
minItems, minimum, maximum, anyOf and local ``$ref`` into ``$defs``. An unknown
keyword fails loudly, so the schema cannot silently use one this checker ignores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_PATH = (
    Path(__file__).parent.parent
    / "custom_components/adaptive_modbus/engine/schema/visualization.schema.json"
)

_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}
_KNOWN = {
    "$schema", "$id", "$defs", "$ref", "title", "description", "type", "enum", "const",
    "required", "properties", "additionalProperties", "items", "minItems", "minimum",
    "maximum", "anyOf",
}  # fmt: skip


def load_schema() -> dict[str, Any]:
    """Return the export schema as written in the repository."""
    return dict(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def errors(instance: Any, schema: dict[str, Any], root: dict[str, Any] | None = None,
           path: str = "$") -> list[str]:  # fmt: skip
    """Every violation of ``schema`` by ``instance``, as ``path: message`` strings."""
    root = schema if root is None else root
    unknown = set(schema) - _KNOWN
    if unknown:
        raise ValueError(f"{path}: schema keywords not supported: {sorted(unknown)}")
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return errors(instance, root["$defs"][name], root, path)
    found: list[str] = []
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(instance, n) for n in names):
            return [f"{path}: {instance!r:.60} is not of type {names}"]
    if "enum" in schema and instance not in schema["enum"]:
        found.append(f"{path}: {instance!r} not in {schema['enum']}")
    if "const" in schema and instance != schema["const"]:
        found.append(f"{path}: {instance!r} != {schema['const']!r}")
    if "anyOf" in schema and all(
        errors(instance, s, root, path) for s in schema["anyOf"]
    ):
        found.append(f"{path}: matches none of anyOf")
    if isinstance(instance, int | float) and not isinstance(instance, bool):
        if "minimum" in schema and instance < schema["minimum"]:
            found.append(f"{path}: {instance} < {schema['minimum']}")
        if "maximum" in schema and instance > schema["maximum"]:
            found.append(f"{path}: {instance} > {schema['maximum']}")
    if isinstance(instance, dict):
        found.extend(
            f"{path}: missing {key!r}"
            for key in schema.get("required", ())
            if key not in instance
        )
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, value in instance.items():
            if key in props:
                found += errors(value, props[key], root, f"{path}.{key}")
            elif extra is False:
                found.append(f"{path}: unexpected {key!r}")
            elif isinstance(extra, dict):
                found += errors(value, extra, root, f"{path}.{key}")
    if isinstance(instance, list):
        if len(instance) < schema.get("minItems", 0):
            found.append(f"{path}: fewer than {schema['minItems']} items")
        if "items" in schema:
            for i, item in enumerate(instance):
                found += errors(item, schema["items"], root, f"{path}[{i}]")
    return found


def validate(
    instance: Any, schema: dict[str, Any] | None = None, ref: str | None = None
) -> None:
    """Raise AssertionError listing the violations (``ref``: a ``$defs`` name to check)."""
    root = load_schema() if schema is None else schema
    target = root if ref is None else {"$ref": f"#/$defs/{ref}"}
    found = errors(instance, target, root)
    assert not found, "\n".join(found[:20])
