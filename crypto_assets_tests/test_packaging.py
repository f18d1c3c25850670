"""What the package imports is what it declares, and what make install pins satisfies it."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def declared() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(line) for line in project["dependencies"]]
    return {canonicalize_name(r.name): r for r in requirements}


def locked() -> dict[str, str]:
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    pins = (line.split("==", 1) for line in lines if "==" in line and not line.startswith("#"))
    return {canonicalize_name(name): version.strip() for name, version in pins}


def imported_modules() -> set[str]:
    """Top-level modules that crypto_assets imports, anywhere in its code (also inside functions)."""
    found = set()
    for path in (ROOT / "crypto_assets").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"crypto_assets", "__future__"}


def test_every_third_party_module_the_package_imports_is_a_declared_dependency():
    """Imported, not only installed as someone else's dependency (which could drop or move it)."""
    distributions = packages_distributions()
    requirements = declared()
    undeclared = {
        module: distributions.get(module)
        for module in imported_modules()
        if not any(canonicalize_name(d) in requirements for d in distributions.get(module, []))
    }
    assert not undeclared, f"imported but not in pyproject.toml's dependencies: {undeclared}"


def test_the_lock_pins_every_dependency_within_its_declared_range():
    pins = locked()
    outside = {
        name: (str(requirement.specifier), pins.get(name))
        for name, requirement in declared().items()
        if pins.get(name) is None or not requirement.specifier.contains(pins[name], prereleases=True)
    }
    assert not outside, f"requirements.lock does not satisfy pyproject.toml: {outside}"
