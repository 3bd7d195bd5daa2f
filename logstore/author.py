"""Who a commit is by when the caller does not say: one rule for the Python API and the CLI.

`author=None` (the default of every write, and of the CLI without --author) records `default_author()`:

1. the LOGSTORE_AUTHOR environment variable, if set and not blank;
2. else `git config user.name` (as git itself would answer it in the current directory);
3. else the login name;
4. else no author (None).

Steps 2 and 3 ask the machine once per process (the answer is cached); LOGSTORE_AUTHOR is read at every commit.
"""

from __future__ import annotations

import functools
import getpass
import os
import subprocess

ENV = "LOGSTORE_AUTHOR"
GIT_TIMEOUT = 5.0  # seconds


def default_author() -> str | None:
    """The author recorded for a commit made without one (see the module docstring)."""
    named = os.environ.get(ENV, "").strip()
    if named:
        return named
    return machine_author()


@functools.lru_cache(maxsize=1)
def machine_author() -> str | None:
    """`git config user.name`, else the login name, else None (cached: call machine_author.cache_clear() to ask again)."""
    try:
        done = subprocess.run(["git", "config", "user.name"], capture_output=True, text=True, timeout=GIT_TIMEOUT, check=False)
        name = done.stdout.strip()
        if done.returncode == 0 and name:
            return name
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return getpass.getuser() or None
    except Exception:  # noqa: BLE001 - getuser raises OSError or KeyError when there is no login name
        return None
