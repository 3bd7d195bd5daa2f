"""The integrations' optional extras: a missing one is an ExtraNotInstalledError naming the extra (this runs in every
venv, the lowest one included, where none of them is installed)."""

from __future__ import annotations

import importlib
import sys

import pytest

import logstore

from conftest import people


@pytest.mark.parametrize(("module", "extra"), [("mlflow", "mlflow"), ("wandb", "wandb")])
def test_a_missing_tracker_names_its_extra(monkeypatch, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # what `import mlflow` meets when it is not installed
    monkeypatch.delitem(sys.modules, f"logstore.integrations.{module}", raising=False)
    with pytest.raises(logstore.ExtraNotInstalledError) as e:
        importlib.import_module(f"logstore.integrations.{module}")
    assert e.value.extra == extra and f"logstore-timetravel[{extra}]" in str(e.value)
    assert isinstance(e.value, ImportError)


def test_a_missing_datasets_names_the_hf_extra(store, monkeypatch):
    t = store.create_table("t", people(range(3)))
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(logstore.ExtraNotInstalledError, match=r"logstore-timetravel\[hf\]"):
        t.to_hf()


def test_the_core_does_not_import_the_integrations():
    code = "import sys, logstore; logstore.open; print(sorted(m for m in ('mlflow', 'wandb', 'datasets') if m in sys.modules))"
    import subprocess

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
