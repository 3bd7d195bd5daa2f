"""Child process for test_kill.py's purge and expire kills: open the table, say "ready", run one operation.

usage: python retention_child.py STORE_PATH OPERATION READY_FILE   (OPERATION: purge | expire)
"""

from __future__ import annotations

import sys
import time

MARKER = "jane@example.org"


def run(table, operation: str):
    if operation == "purge":
        return table.purge(where=f"email = '{MARKER}'", message="erasure")
    return table.expire(keep_last=3)


def main() -> None:
    import logstore

    path, operation, ready = sys.argv[1], sys.argv[2], sys.argv[3]
    table = logstore.open(path).table("t")
    table.read()  # imports and connections warm: the kill lands in the operation, not in start-up
    with open(ready, "w") as f:
        f.write("ready\n")
    started = time.monotonic()
    run(table, operation)
    with open(ready, "a") as f:
        f.write(f"done {time.monotonic() - started:.3f}\n")


if __name__ == "__main__":
    main()
