"""The engine as an installable library: ``adaptive_modbus_engine`` (pyproject.toml).

The import name maps onto custom_components/adaptive_modbus/engine (installed editable
by scripts/setup; scripts/test_old_pymodbus installs it as a built package in a venv
without Home Assistant and runs the engine tests against that install).
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import inspect
import json
from pathlib import Path
import pkgutil
import subprocess
import sys
import tomllib

from packaging.requirements import Requirement
import pytest

import adaptive_modbus_engine
from adaptive_modbus_engine import AdaptiveModbusError
from adaptive_modbus_engine.register_map import PROFILES_DIR, available_profiles

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "custom_components" / "adaptive_modbus" / "engine"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
MANIFEST = json.loads((ENGINE.parent / "manifest.json").read_text(encoding="utf-8"))
DISTRIBUTION = PYPROJECT["project"]["name"]
# import name -> distribution name, for the engine's third-party imports
DISTRIBUTIONS = {
    "pymodbus": "pymodbus",
    "serial": "pyserial",
    "yaml": "PyYAML",
    "matplotlib": "matplotlib",
}


def _engine_modules() -> list[str]:
    """Every module of the package (the simulator's ``__main__`` included)."""
    packages = pkgutil.walk_packages(
        adaptive_modbus_engine.__path__, "adaptive_modbus_engine."
    )
    return ["adaptive_modbus_engine", *(info.name for info in packages)]


def test_import_name_is_this_checkouts_engine_folder() -> None:
    """Test that the editable install points at this repository's engine folder.

    A venv shared with another checkout would test that checkout's code: run
    scripts/setup.
    """
    assert Path(adaptive_modbus_engine.__file__).resolve().parent == ENGINE.resolve()


def test_importing_the_engine_imports_nothing_of_home_assistant(tmp_path: Path) -> None:
    """Test that importing the engine imports nothing of Home Assistant.

    A fresh interpreter imports every engine module and not one HA module (nor the
    integration's package, whose ``__init__`` imports HA).
    """
    code = (
        "import importlib, sys\n"
        f"for name in {_engine_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code],
        cwd=tmp_path,  # not the repository root: the name must come from the install
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    modules = result.stdout.split()
    assert "adaptive_modbus_engine.scheduler" in modules
    assert "adaptive_modbus_engine.simulator.server" in modules
    leaked = [
        name
        for name in modules
        if name.split(".")[0] in {"homeassistant", "custom_components"}
    ]
    assert leaked == []


def test_one_version_in_package_metadata_and_manifest() -> None:
    """Pyproject reads the version from the package; the manifest carries the same."""
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "adaptive_modbus_engine.__version__"
    }
    assert MANIFEST["version"] == adaptive_modbus_engine.__version__
    # the installed metadata (re-run scripts/setup after changing the version)
    assert (
        importlib.metadata.version(DISTRIBUTION) == adaptive_modbus_engine.__version__
    )


def _third_party_imports() -> set[str]:
    found: set[str] = set()
    for path in ENGINE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found.update(
                top
                for top in (name.split(".")[0] for name in names)
                if top not in sys.stdlib_module_names and top != "__future__"
            )
    return found


def test_declared_dependencies_are_what_the_engine_imports() -> None:
    """Test that the declared dependencies are exactly what the engine imports.

    The integration's manifest asks for the same pymodbus and pyserial ranges
    (HA itself ships PyYAML).
    """
    imported = _third_party_imports()
    assert imported <= set(DISTRIBUTIONS), (
        f"undeclared import(s): {imported - set(DISTRIBUTIONS)}"
    )
    extras = PYPROJECT["project"]["optional-dependencies"]
    declared = {
        Requirement(req).name: Requirement(req)
        for req in [*PYPROJECT["project"]["dependencies"], *extras["charts"]]
    }
    assert set(declared) == {DISTRIBUTIONS[name] for name in imported} | {"pyserial"}
    manifest = {
        Requirement(req).name: Requirement(req) for req in MANIFEST["requirements"]
    }
    for name, requirement in manifest.items():
        assert declared[name].specifier == requirement.specifier, name
    # installed metadata says the same
    metadata = {
        Requirement(req).name for req in importlib.metadata.requires(DISTRIBUTION) or []
    }
    assert set(declared) <= metadata


def test_profiles_and_typing_marker_are_package_data() -> None:
    """The profiles live inside the package and are declared as its data."""
    assert PROFILES_DIR.resolve() == (ENGINE / "profiles").resolve()
    assert {"demo", "sdm630", "sdm120", "custom"} <= set(available_profiles())
    data = PYPROJECT["tool"]["setuptools"]["package-data"]["adaptive_modbus_engine"]
    assert "profiles/*.yaml" in data and "py.typed" in data
    assert (ENGINE / "py.typed").is_file()
    assert not (ENGINE.parent / "profiles").exists()  # one copy, no leftover


def test_simulator_console_script() -> None:
    """``adaptive-modbus-simulator`` is the simulator's ``main``, installed as a command."""
    (entry,) = importlib.metadata.entry_points(
        group="console_scripts", name="adaptive-modbus-simulator"
    )
    main = importlib.import_module("adaptive_modbus_engine.simulator.__main__").main
    assert entry.load() is main
    assert "simulator" in PYPROJECT["project"]["optional-dependencies"]
    script = Path(sys.executable).parent / "adaptive-modbus-simulator"
    result = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, check=True, timeout=60
    )
    assert "usage: adaptive-modbus-simulator" in result.stdout


@pytest.mark.parametrize("module_name", _engine_modules())
def test_every_engine_error_derives_from_the_root(module_name: str) -> None:
    """Every public exception class the engine defines is an AdaptiveModbusError."""
    module = importlib.import_module(module_name)
    for name, obj in vars(module).items():
        if (
            inspect.isclass(obj)
            and issubclass(obj, BaseException)
            and obj.__module__ == module_name
            and not name.startswith("_")
        ):
            assert issubclass(obj, AdaptiveModbusError), f"{module_name}.{name}"


def test_readme_example_runs(tmp_path: Path) -> None:
    """The README's minimal poller runs as printed against a loopback simulator."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The engine as a library", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    result = subprocess.run(
        [sys.executable, "-I", "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=90,
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 4, result.stdout
    assert all(" request(s), " in line for line in lines[:3])
    assert int(lines[0].split()[0]) >= 1  # the first cycle reads the whole device
    assert -40 < float(lines[3]) < 100  # a supply temperature in °C
