"""The lock files (requirements/, made by scripts/lock) pin a version of every dependency that
pyproject.toml allows: a range changed without re-locking fails here, not on a user's machine."""

from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

_PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;]+)", re.MULTILINE)


def pins(lock: str) -> dict[str, str]:
    text = (ROOT / "requirements" / f"{lock}.txt").read_text()
    return {canonicalize_name(name): version for name, version in _PIN.findall(text)}


def declared(extra: str | None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] + (project["optional-dependencies"][extra] if extra else [])
    return [Requirement(line) for line in listed]


def unmet(requirement: Requirement, pinned: dict[str, str]) -> bool:
    version = pinned.get(canonicalize_name(requirement.name))
    return version is None or not requirement.specifier.contains(version, prereleases=True)


@pytest.mark.parametrize(("lock", "extra"), [("app", None), ("test", "test")])
def test_every_dependency_is_pinned_within_its_range(lock, extra):
    pinned = pins(lock)
    wrong = [str(requirement) for requirement in declared(extra) if unmet(requirement, pinned)]
    assert wrong == [], "run scripts/lock"


def test_the_server_pins_the_same_versions_with_and_without_the_test_tools():
    app, test = pins("app"), pins("test")
    assert {name: test.get(name) for name in app} == app


def test_every_pin_carries_a_hash():
    for lock in ("app", "test"):
        text = (ROOT / "requirements" / f"{lock}.txt").read_text()
        entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
        assert all("--hash=sha256:" in entry for entry in entries if _PIN.match(entry)), lock
