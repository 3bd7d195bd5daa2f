"""MLflow: one version of a table as a dataset input of a run, and the exact rows read back from the run (extra
`mlflow`, which installs mlflow-skinny).

    from logstore.integrations import mlflow as lm
    with mlflow.start_run() as run:
        lm.log_input(events, tag="v1.0")                  # name = table, digest = fingerprint, source = dataset URI
    lm.load_input(run.info.run_id, "events")             # a pyarrow.Table: exactly the rows the run logged

The input is an MLflow dataset of this module's own kind (LogstoreDataset): name = the table's name, digest = the
version's fingerprint, source = a LogstoreDatasetSource of source type "logstore" whose JSON is `{"uri": <dataset
URI>}` (logstore/uri.py), schema = the version's columns (MLflow's `mlflow_colspec` where every column type has an
MLflow counterpart, and always `logstore_schema`: name, Arrow type and nullability of each column), profile = the
row count, version and fingerprint. The source type is registered with MLflow when this module is imported and
through the `mlflow.dataset_source` entry point, so `mlflow.data.get_source(dataset_input).load()` reads the rows too.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..errors import RunInputNotFoundError
from ..uri import SCHEME, parse
from ..uri import read as read_uri
from . import require

require("mlflow", "mlflow")

import mlflow  # noqa: E402 - after require() has turned a missing mlflow into an error naming the extra
from mlflow.data.dataset import Dataset  # noqa: E402
from mlflow.data.dataset_source import DatasetSource  # noqa: E402
from mlflow.data.dataset_source_registry import register_dataset_source  # noqa: E402
from mlflow.entities import DatasetInput, InputTag  # noqa: E402
from mlflow.types import ColSpec, DataType, Schema  # noqa: E402
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT  # noqa: E402

if TYPE_CHECKING:
    from ..selectors import Moment, Tag, Version
    from ..store import Location, Store
    from ..table import Table

SOURCE_TYPE = "logstore"


class LogstoreDatasetSource(DatasetSource):
    """The source of a logstore dataset: its dataset URI. `load()` reads exactly that version (fingerprint checked)."""

    def __init__(self, uri: str) -> None:
        parse(uri)  # DatasetURIError if malformed
        self.uri = uri

    @staticmethod
    def _get_source_type() -> str:
        return SOURCE_TYPE

    def load(self, **kwargs: Any) -> pa.Table:
        """The rows of the version the URI names (kwargs: `store=`, `storage_options=`, as for logstore.read_uri)."""
        return read_uri(self.uri, **kwargs)

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return isinstance(raw_source, str) and raw_source.startswith(SCHEME)

    @classmethod
    def _resolve(cls, raw_source: Any) -> LogstoreDatasetSource:
        return cls(raw_source)

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self.uri}

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> LogstoreDatasetSource:
        return cls(source_dict["uri"])


class LogstoreDataset(Dataset):
    """One version of a logstore table as an MLflow dataset: name = table, digest = fingerprint, source = its URI."""

    def __init__(self, uri: str, *, name: str, num_rows: int, schema: pa.Schema) -> None:
        self.uri = uri
        self.num_rows = num_rows
        self.arrow_schema = schema
        super().__init__(source=LogstoreDatasetSource(uri), name=name, digest=parse(uri).fingerprint)

    def _compute_digest(self) -> str:
        return parse(self.uri).fingerprint

    @property
    def profile(self) -> dict[str, Any]:
        parsed = parse(self.uri)
        return {"num_rows": self.num_rows, "version": parsed.version, "fingerprint": parsed.fingerprint}

    @property
    def schema(self) -> Schema | None:
        """The columns as an MLflow Schema, or None if a column's type has no MLflow counterpart (lists, structs,
        decimals, dates...: `logstore_schema` in the logged schema has every column)."""
        specs: list[Any] = []
        for f in self.arrow_schema:
            kind = _mlflow_type(f.type)
            if kind is None:
                return None
            specs.append(ColSpec(kind, f.name, required=not f.nullable))
        return Schema(specs) if specs else None

    def to_dict(self) -> dict[str, str]:
        config: dict[str, str] = super().to_dict()
        ours = [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in self.arrow_schema]
        mlflow_schema = self.schema
        schema: dict[str, Any] = {"logstore_schema": ours}
        if mlflow_schema is not None:
            schema["mlflow_colspec"] = mlflow_schema.to_dict()
        config["schema"] = json.dumps(schema)
        config["profile"] = json.dumps(self.profile)
        return config

    def load(self, **kwargs: Any) -> pa.Table:
        return self.source.load(**kwargs)


def _mlflow_type(arrow_type: pa.DataType) -> DataType | None:
    checks = (
        (pa.types.is_boolean, DataType.boolean),
        (pa.types.is_int64, DataType.long),
        (lambda t: pa.types.is_integer(t) and t.bit_width <= 32 and pa.types.is_signed_integer(t), DataType.integer),
        (pa.types.is_float32, DataType.float),
        (pa.types.is_float64, DataType.double),
        (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), DataType.string),
        (lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t), DataType.binary),
        (pa.types.is_timestamp, DataType.datetime),
    )
    return next((kind for check, kind in checks if check(arrow_type)), None)


register_dataset_source(LogstoreDatasetSource)  # type: ignore[arg-type]  # MLflow registers classes (its annotation says instance)


def dataset(table: Table, *, version: Version | None = None, as_of: Moment | None = None, tag: Tag | None = None) -> LogstoreDataset:
    """One version of `table` (the latest by default) as a LogstoreDataset, to log with mlflow.log_input yourself."""
    uri = table.uri(version=version, as_of=as_of, tag=tag)
    number = parse(uri).version
    return LogstoreDataset(uri, name=table.name, num_rows=table.commit_info(version=number).num_rows, schema=table.schema(number))


def log_input(
    table: Table,
    *,
    version: Version | None = None,
    as_of: Moment | None = None,
    tag: Tag | None = None,
    context: str | None = "training",
    run_id: str | None = None,
) -> LogstoreDataset:
    """Log one version of `table` (the latest by default) as a dataset input of run `run_id`, else of the active
    run (started if there is none, as mlflow.log_input does); returns the dataset logged."""
    logged = dataset(table, version=version, as_of=as_of, tag=tag)
    if run_id is None:
        mlflow.log_input(logged, context=context)
    else:
        tags = [InputTag(key=MLFLOW_DATASET_CONTEXT, value=context)] if context else []
        mlflow.MlflowClient().log_inputs(run_id, [DatasetInput(dataset=logged._to_mlflow_entity(), tags=tags)])
    return logged


def inputs(run_id: str) -> list[tuple[str, str, str | None]]:
    """The logstore inputs of a run: (name, dataset URI, context) of each, in the order MLflow lists them."""
    run = mlflow.MlflowClient().get_run(run_id)
    found = []
    for item in run.inputs.dataset_inputs if run.inputs is not None else []:
        if item.dataset.source_type != SOURCE_TYPE:
            continue
        context = next((t.value for t in item.tags if t.key == MLFLOW_DATASET_CONTEXT), None)
        found.append((item.dataset.name, LogstoreDatasetSource.from_dict(json.loads(item.dataset.source)).uri, context))
    return found


def load_input(
    run_id: str,
    name: str | None = None,
    *,
    store: Store | Location | None = None,
    storage_options: dict[str, Any] | None = None,
) -> pa.Table:
    """Exactly the rows of the logstore input `name` (the run's only one if None) that run `run_id` logged, read
    through its dataset URI (fingerprint checked). `store=` reads them from where the store is now if it moved (see
    logstore.read_uri). RunInputNotFoundError if the run has no such input, or several and none is named."""
    logged = inputs(run_id)
    matching = {uri for n, uri, _ in logged if name is None or n == name}
    if len(matching) != 1:
        raise RunInputNotFoundError(run_id, name, [n for n, _, _ in logged])
    return read_uri(matching.pop(), store=store, storage_options=storage_options)
