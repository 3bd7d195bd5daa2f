"""Child process for test_remotes.py: push a store to a remote slowly (each file and record published takes DELAY
seconds more), so that the parent can SIGKILL it half-way.

usage: python sync_child.py STORE REMOTE DELAY
"""

from __future__ import annotations

import sys
import time


def main() -> None:
    import logstore
    import logstore.object_storage
    import logstore.storage

    path, remote, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
    for cls in (logstore.storage.LocalStorage, logstore.object_storage.ObjectStorage):
        original = cls.put_if_absent

        def slow(self, name, data, original=original):
            time.sleep(delay)
            return original(self, name, data)

        cls.put_if_absent = slow
    logstore.open(path).push(remote)
    print("done", flush=True)


if __name__ == "__main__":
    main()
