"""Packaging: the public exports, the dependency floors CI tests (ci/lowest-constraints.txt) and the README's examples."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

import logstore
import logstore.errors

ROOT = Path(__file__).resolve().parent.parent
LOWEST = ROOT / "ci" / "lowest-constraints.txt"


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _floors() -> dict[str, str]:
    """pyproject's runtime dependencies: name -> the version after `>=` (each must have one, and no other bound)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floors = {}
    for requirement in project["dependencies"]:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9][0-9A-Za-z.]*)", requirement.replace(" ", ""))
        assert match, f"dependency {requirement!r} must be NAME>=FLOOR (the floor is tested: ci/lowest-constraints.txt)"
        floors[_name(match[1])] = match[2]
    return floors


def _pins() -> dict[str, str]:
    pins = {}
    for line in LOWEST.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{LOWEST.name}: {line!r} must be NAME==VERSION"
            pins[_name(name)] = version.strip()
    return pins


def test_every_error_class_is_exported():
    errors = {
        name
        for name, value in vars(logstore.errors).items()
        if inspect.isclass(value) and issubclass(value, logstore.LogstoreError) and value.__module__ == "logstore.errors"
    }
    assert errors - set(logstore.__all__) == set()
    for name in logstore.__all__:
        assert hasattr(logstore, name), name


def test_all_is_sorted_and_unique():
    assert logstore.__all__ == sorted(set(logstore.__all__))


def test_python_floor_matches_the_code():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"  # hashlib.file_digest (every write) is 3.11+
    assert sys.version_info >= (3, 11)


def test_lowest_constraints_pin_every_floor():
    assert _pins() == _floors(), f"{LOWEST.relative_to(ROOT)} must pin each dependency of pyproject.toml to its floor"


@pytest.mark.skipif(os.environ.get("LOGSTORE_LOWEST") != "1", reason="only in the lowest-versions run (make test-lowest)")
def test_running_on_the_floors():
    installed = {name: metadata.version(name) for name in _pins()}
    assert installed == _pins()


def test_py_typed_is_shipped():
    assert (ROOT / "logstore" / "py.typed").is_file()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data["logstore"]


def _public_callables():
    """Every function of logstore.__all__, and every public method and property of its classes (issue 11)."""
    for name in logstore.__all__:
        value = getattr(logstore, name)
        if inspect.isfunction(value):
            yield name, value
        elif inspect.isclass(value) and not issubclass(value, BaseException):
            for attr, member in vars(value).items():
                if attr.startswith("_") and attr != "__init__":
                    continue
                function = member.fget if isinstance(member, property) else member
                if inspect.isfunction(function) and function.__module__.startswith("logstore"):
                    yield f"{name}.{attr}", function


def test_public_api_is_annotated():
    # cheap and static: mypy (make lint) checks the annotations themselves; this keeps new public names annotated
    missing = []
    for name, function in _public_callables():
        signature = inspect.signature(function)
        unannotated = [p for p in list(signature.parameters)[1 if "." in name else 0 :] if signature.parameters[p].annotation is inspect.Parameter.empty]
        if unannotated or (signature.return_annotation is inspect.Signature.empty and not name.endswith("__init__")):
            missing.append(f"{name}({', '.join(unannotated)})")
    assert missing == []


def _readme_python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_python_examples_run(tmp_path, s3_server):
    """Every ```python block of the README, run in order in one namespace, in an empty directory; the object
    storage example's bucket is on the test S3 server, reached through the standard AWS environment variables."""
    blocks = _readme_python_blocks()
    assert len(blocks) >= 3
    script = "\n".join(blocks)
    s3_server.create_bucket("my-bucket")
    env = {**os.environ, **s3_server.environment()}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
