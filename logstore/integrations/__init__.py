"""Integrations with experiment trackers and dataset libraries, each an optional extra imported lazily:

- `logstore.integrations.mlflow` (extra `mlflow`: mlflow-skinny): log a version as a run's dataset input, load it back;
- `logstore.integrations.wandb` (extra `wandb`): record a version as an input artifact of a W&B run, load it back;
- `logstore.integrations.hf` (extra `hf`: datasets): a version as a Hugging Face `datasets.Dataset` (`Table.to_hf`).

Each records the version's dataset URI (logstore/uri.py), which names the store, the table, the exact version and
its fingerprint, so what a run saw can be read back exactly: `logstore.read_uri(uri)`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import ExtraNotInstalledError


def require(module: str, extra: str) -> ModuleType:
    """Import `module`, or raise ExtraNotInstalledError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExtraNotInstalledError(extra, module) from None
