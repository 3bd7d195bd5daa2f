"""MLflow (logstore/integrations/mlflow.py) against a real local tracking store (MLflow's file store in tmp_path)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow")

import logstore  # noqa: E402
from logstore import uri as uri_module  # noqa: E402
from logstore.integrations import mlflow as lm  # noqa: E402

from conftest import age_files, people  # noqa: E402

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture(autouse=True)
def tracking(tmp_path, monkeypatch, no_fsync):
    """A fresh file tracking store per test (mlflow-skinny has no sqlite store; the file store needs the opt-in)."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("LOGSTORE_AUTHOR", "tester")
    monkeypatch.delenv(uri_module.STORES_ENV, raising=False)
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


def events(store):
    t = store.create_table("events", people(range(6)), key="id", properties={"snapshot_commits": 2})
    t.update(set={"score": "score + 1"}, where="id % 2 = 0")
    t.tag("v1.0")
    t.append(people([20, 21]))
    return t


def test_log_input_then_load_input_after_the_table_changed(store):
    t = events(store)
    with mlflow.start_run() as run:
        logged = lm.log_input(t, tag="v1.0")
    expected = t.read(tag="v1.0")
    t.delete(where="id < 3")
    t.upsert(people([4, 30], names=["four", "thirty"]))
    t.compact()
    age_files(store._storage.root, 7200)
    t.vacuum(dry_run=False, older_than=0)
    assert lm.load_input(run.info.run_id, "events").equals(expected)
    assert lm.load_input(run.info.run_id).equals(expected)  # the only logstore input

    # what MLflow itself recorded, read back through its own client
    (item,) = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    ds = item.dataset
    assert (ds.name, ds.digest, ds.source_type) == ("events", t.fingerprint(version=1), "logstore")
    assert json.loads(ds.source) == {"uri": t.uri(version=1)} == {"uri": logged.uri}
    assert json.loads(ds.profile) == {"num_rows": 6, "version": 1, "fingerprint": t.fingerprint(version=1)}
    schema = json.loads(ds.schema)
    assert [c["name"] for c in schema["logstore_schema"]] == ["id", "name", "score"]
    assert [c["type"] for c in schema["mlflow_colspec"]] == ["long", "string", "double"]
    assert {(tag.key, tag.value) for tag in item.tags} == {("mlflow.data.context", "training")}
    # MLflow's own way back, through the registered "logstore" source type
    assert mlflow.data.get_source(item).load().equals(expected)


def test_run_id_context_and_several_inputs(store, tmp_path):
    t = events(store)
    labels = store.create_table("labels", people(range(3)), key="id")
    run = mlflow.MlflowClient().create_run(mlflow.MlflowClient().get_experiment_by_name("Default").experiment_id)
    run_id = run.info.run_id
    lm.log_input(t, version=0, context="eval", run_id=run_id)
    lm.log_input(labels, run_id=run_id)
    assert mlflow.active_run() is None  # nothing was started for it
    assert sorted(lm.inputs(run_id)) == [("events", t.uri(version=0), "eval"), ("labels", labels.uri(), "training")]
    assert lm.load_input(run_id, "events").equals(t.read(version=0))
    assert lm.load_input(run_id, "labels").equals(labels.read())
    with pytest.raises(logstore.RunInputNotFoundError, match="several logstore inputs"):
        lm.load_input(run_id)
    with pytest.raises(logstore.RunInputNotFoundError, match="no logstore input named 'nope'"):
        lm.load_input(run_id, "nope")


def test_other_dataset_kinds_are_left_alone(store):
    import pandas

    t = events(store)
    with mlflow.start_run() as run:
        mlflow.log_input(mlflow.data.from_pandas(pandas.DataFrame({"a": [1]}), name="events"), context="training")
    with pytest.raises(logstore.RunInputNotFoundError, match="no logstore input"):
        lm.load_input(run.info.run_id, "events")
    with mlflow.start_run(run_id=run.info.run_id):
        lm.log_input(t)
    assert lm.load_input(run.info.run_id, "events").equals(t.read())


def test_a_moved_store_loads_with_store_or_the_environment(store, tmp_path, monkeypatch):
    t = events(store)
    with mlflow.start_run() as run:
        lm.log_input(t, version=1)
    expected = t.read(version=1)
    moved = tmp_path / "moved"
    shutil.copytree(store._storage.root, moved)
    shutil.rmtree(store._storage.root)
    with pytest.raises(logstore.StoreNotFoundError):
        lm.load_input(run.info.run_id)
    assert lm.load_input(run.info.run_id, store=moved).equals(expected)
    monkeypatch.setenv(uri_module.STORES_ENV, json.dumps({str(store._storage.root): str(moved)}))
    (item,) = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    assert mlflow.data.get_source(item).load().equals(expected)


def test_a_store_whose_history_was_rewritten_is_refused(store, tmp_path):
    t = events(store)
    with mlflow.start_run() as run:
        lm.log_input(t, version=1)
    shutil.rmtree(store._storage.root)
    again = logstore.init(store._storage.root)  # same place, same table name, other rows at version 1
    again.create_table("events", people(range(6)), key="id").delete(where="id = 0")
    with pytest.raises(logstore.CorruptionError):
        lm.load_input(run.info.run_id)


def test_the_readme_example(tmp_path, monkeypatch):
    """The README's URI and MLflow examples, run as written in a directory holding 'my-store'."""
    text = README.read_text()
    section = text.split("## Which data did this model see?", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```py\n(.*?)^```", section, flags=re.S | re.M)
    monkeypatch.chdir(tmp_path)
    events(logstore.init("my-store"))
    namespace = {"logstore": logstore, "events": logstore.open("my-store").table("events")}
    exec(blocks[0], namespace)
    assert namespace["version"] == 1 and namespace["rows"].equals(namespace["events"].read(version=1))
    mlflow_block = next(b for b in blocks if "integrations import mlflow" in b)
    assert len(mlflow_block.strip().splitlines()) <= 10
    exec(mlflow_block, namespace)
    assert namespace["seen"].equals(namespace["events"].read(tag="v1.0"))


def test_mlflow_finds_the_source_type_through_the_entry_point(store, tmp_path):
    """The entry point pyproject.toml declares, installed as a distribution's metadata: a fresh MLflow resolves the
    'logstore' source type and loads the rows without anyone importing logstore.integrations.mlflow."""
    import os
    import subprocess
    import sys
    import tomllib

    declared = tomllib.loads((README.parent / "pyproject.toml").read_text())["project"]["entry-points"]["mlflow.dataset_source"]
    site = tmp_path / "site"
    info = site / "logstore_entry_point_test-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: logstore-entry-point-test\nVersion: 0\n")
    (info / "entry_points.txt").write_text("[mlflow.dataset_source]\n" + "".join(f"{k} = {v}\n" for k, v in declared.items()))
    t = events(store)
    code = (
        "import json, sys\n"
        "from mlflow.data.dataset_source_registry import get_dataset_source_from_json\n"
        "assert 'logstore.integrations.mlflow' in sys.modules  # imported by MLflow's registry, through the entry point\n"
        f"source = get_dataset_source_from_json(json.dumps({{'uri': {t.uri(version=1)!r}}}), 'logstore')\n"
        "print(source.load().num_rows)\n"
    )
    path = os.pathsep.join([str(site), str(README.parent), os.environ.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": path})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "6"
