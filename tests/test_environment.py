"""The environment descriptions agree with each other and with what is installed."""
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _pins(lines):
    pins = {}
    for line in lines:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line.strip())
        if match:
            pins[match[1].lower().replace("_", "-")] = match[2]
    return pins


def pyproject_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + [d for group in project["optional-dependencies"].values() for d in group]
    return _pins(lines)


def environment_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return _pins(pip)


def test_pyproject_and_environment_yml_list_the_same_pins():
    assert pyproject_pins() == environment_pins()


def test_lock_file_agrees_with_the_pins():
    lock = _pins((ROOT / "requirements-lock.txt").read_text().splitlines())
    for name, pin in pyproject_pins().items():
        if name in lock:
            assert lock[name] == pin, f"{name}: pyproject {pin}, lock {lock[name]}"


def test_installed_versions_match_the_pins():
    for name, pin in pyproject_pins().items():
        assert version(name).split("+")[0] == pin, name
