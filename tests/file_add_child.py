"""Child process for test_file_tables_kill.py: one `add_files` of a folder, killed by the parent at a random moment.

usage: python file_add_child.py STORE_PATH FOLDER
"""

from __future__ import annotations

import sys

import logstore
import logstore.storage

if __name__ == "__main__":
    logstore.storage._fsync = lambda path: None  # durability is not what the kill test checks
    store = logstore.open(sys.argv[1])
    print("ready", flush=True)  # imported and opened: the parent's random moment falls within the add itself
    commit = store.add_files("f", sys.argv[2])
    print(commit.version, flush=True)
