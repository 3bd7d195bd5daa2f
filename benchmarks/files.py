"""File tables (issue 15) beside DVC: a folder of many files, versions that each change a few percent of them.

    python benchmarks/files.py                                   # 10,000 files, 1 GB, 20 versions changing 1%
    python benchmarks/files.py --files 2000 --megabytes 100      # a quick run
    python benchmarks/files.py --dvc /path/to/venv/bin/dvc       # DVC from its own venv (default /work/wt/dvc-venv)

Half the files are random bytes (incompressible), half base64 text of random bytes (zstd saves ~25%); sizes vary
around the mean. Each version rewrites `--change` of the files with new content. One workspace folder serves both
tools: per version, logstore runs `store.add_files` on it and DVC runs `dvc add` + `git commit` in it.

Measured, in one run:
* bytes: the logstore store (all of it: records, change files, blobs) and DVC's cache (.dvc/cache), against the unique
  content (every distinct file content of every version, counted once);
* add: the median time of an add of a version against the floor "list the folder (stat every file) + SHA-256 of the
  changed files", measured on the same folder just before each add; and DVC's `dvc add` + `git commit`; as a
  reference (not the goal), the floor plus fsynced copies of the changed files, which any durable store pays;
* checkout of version 0: into a workspace holding the latest version (what `git checkout` + `dvc checkout` do), and
  into an empty directory, `--checkouts` times, logstore and DVC alternately (the median is reported, and every
  time with the load average: the machine is shared and its disk noisy); every checkout of either tool is compared
  byte for byte with the folder as it was.
Goals (issue 15): bytes <= 1.05x unique content and below DVC's cache; add <= 1.5x the floor; checkout of an old
version at least as fast as DVC's.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import logstore  # noqa: E402
from logstore import filetable  # noqa: E402

DEFAULT_DVC = "/work/wt/dvc-venv/bin/dvc"


def content(rng: random.Random, size: int, text: bool) -> bytes:
    if text:
        raw = rng.randbytes(size * 3 // 4 + 3)
        return base64.encodebytes(raw)[:size]
    return rng.randbytes(size)


def make_folder(root: Path, files: int, total: int, rng: random.Random) -> dict[str, int]:
    """The folder of version 0; returns {path: mean-size class} for rewriting files later."""
    mean = total // files
    sizes = {}
    for i in range(files):
        path = f"d{i % 50:02d}/s{(i // 50) % 10}/file{i:05d}.{'txt' if i % 2 else 'bin'}"
        size = max(1, int(rng.uniform(0.2, 1.8) * mean))
        sizes[path] = size
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content(rng, size, i % 2 == 1))
    return sizes


def folder_state(root: Path) -> dict[str, str]:
    state = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            full = Path(dirpath) / name
            state[full.relative_to(root).as_posix()] = hashlib.sha256(full.read_bytes()).hexdigest()
    return state


def floor_seconds(root: Path, changed: list[str]) -> float:
    """List the folder (stat every file), then SHA-256 the changed files: what any tool must at least do."""
    started = time.perf_counter()
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            os.stat(os.path.join(dirpath, name))
    for path in changed:
        with open(root / path, "rb") as f:
            hashlib.file_digest(f, "sha256")
    return time.perf_counter() - started


def durable_floor_seconds(root: Path, changed: list[str], scratch: Path) -> float:
    """The floor plus the least that storing the changed files durably costs (a reference, not the goal's floor):
    list the folder (stat every file), then read and SHA-256 each changed file and write a copy of it fsynced (8 at
    a time, as logstore does), then fsync the copies' directory once."""
    scratch.mkdir(parents=True, exist_ok=True)

    def copy(item: tuple[int, str]) -> None:
        with open(root / item[1], "rb") as f:
            data = f.read()
        hashlib.sha256(data).hexdigest()
        with open(scratch / str(item[0]), "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())

    started = time.perf_counter()
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            os.stat(os.path.join(dirpath, name))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(copy, enumerate(changed)))
    fd = os.open(scratch, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - started
    shutil.rmtree(scratch)
    return seconds


def du(root: Path, skip: str | None = None) -> int:
    total = 0
    for dirpath, dirs, names in os.walk(root):
        if skip is not None and skip in dirs:
            dirs.remove(skip)
        total += sum(os.path.getsize(os.path.join(dirpath, n)) for n in names)
    return total


def run(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def empty_checkouts(table, work: Path, repo: Path, args: argparse.Namespace, state: dict[str, str], use_dvc: bool) -> tuple[list[float], list[float]]:
    """Version 0 checked out into an empty directory `args.checkouts` times, logstore then DVC (`dvc checkout` after
    removing its workspace folder, as the first session measured it), each checked byte for byte."""
    ls_times: list[float] = []
    dvc_times: list[float] = []
    out = work / "ls-fresh"
    for i in range(args.checkouts):
        shutil.rmtree(out, ignore_errors=True)
        load = os.getloadavg()[0]
        ls_times.append(timed(lambda: table.checkout(out, version=0)))
        assert folder_state(out) == state
        line = f"checkout into an empty directory {i + 1}: logstore {ls_times[-1]:.3f}s (load {load:.2f})"
        if use_dvc:
            shutil.rmtree(repo / "data")
            load = os.getloadavg()[0]
            dvc_times.append(timed(lambda: run([args.dvc, "checkout", "-q", "data.dvc"], repo)))
            assert folder_state(repo / "data") == state
            line += f", dvc {dvc_times[-1]:.3f}s (load {load:.2f}): {ls_times[-1] / dvc_times[-1]:.2f}x"
        print(line, flush=True)
    return ls_times, dvc_times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--megabytes", type=int, default=1024)
    parser.add_argument("--versions", type=int, default=20, help="versions after the first")
    parser.add_argument("--change", type=float, default=0.01, help="fraction of the files each version rewrites")
    parser.add_argument("--dvc", default=os.environ.get("DVC", DEFAULT_DVC), help="the dvc executable ('' to skip DVC)")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--keep", help="work in this directory and keep it")
    parser.add_argument("--checkouts", type=int, default=3, help="checkouts into an empty directory, each tool alternately")
    parser.add_argument("--cold", action="store_true", help="forget the head's rows before each add (as a new process, e.g. the CLI, starts)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="files-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    repo = work / "repo"
    data = repo / "data"
    data.mkdir(parents=True)
    use_dvc = bool(args.dvc)
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@example.com", "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "b@example.com"}
    os.environ.update(env)
    if use_dvc:
        run(["git", "init", "-q"], repo)
        run([args.dvc, "init", "-q"], repo)
        run([args.dvc, "config", "core.analytics", "false"], repo)
        run(["git", "commit", "-qm", "dvc init"], repo)

    print(f"generating {args.files} files, {args.megabytes} MB ...", flush=True)
    sizes = make_folder(data, args.files, args.megabytes * 1024 * 1024, rng)
    store = logstore.init(work / "store")
    states: list[dict[str, str]] = []
    unique: dict[str, int] = {}
    ls_add: list[float] = []
    floors: list[float] = []
    durable_floors: list[float] = []
    dvc_add: list[float] = []
    loads: list[float] = []  # the 1-minute load average after each version: the machine is shared
    paths = sorted(sizes)
    changed: list[str] = paths
    for v in range(args.versions + 1):
        if v > 0:
            changed = rng.sample(paths, max(1, int(len(paths) * args.change)))
            for path in changed:
                (data / path).write_bytes(content(rng, sizes[path], path.endswith(".txt")))
        state = folder_state(data)
        states.append(state)
        for path, digest in state.items():
            unique[digest] = os.path.getsize(data / path)
        floor = floor_seconds(data, changed)
        durable = durable_floor_seconds(data, changed, work / "scratch") if v > 0 else 0.0
        if args.cold:
            filetable._known_heads.clear()
        seconds = timed(lambda: store.add_files("data", data, message=f"v{v}"))
        if v > 0:
            floors.append(floor)
            durable_floors.append(durable)
            ls_add.append(seconds)
        if use_dvc:
            d = timed(lambda: (run([args.dvc, "add", "-q", "data"], repo), run(["git", "add", "data.dvc", ".gitignore"], repo), run(["git", "commit", "-qm", f"v{v}"], repo)))
            if v > 0:
                dvc_add.append(d)
        loads.append(os.getloadavg()[0])
        print(f"version {v}: logstore add {seconds:.3f}s (floor {floor:.3f}s, durable floor {durable:.3f}s)" + (f", dvc add+commit {d:.2f}s" if use_dvc else "") + f"; load {loads[-1]:.2f}", flush=True)
    table = store.table("data")
    assert table.version == args.versions

    # checkout of version 0 into a workspace at the latest version, and into an empty directory
    ls_work = work / "ls-work"
    table.checkout(ls_work)
    ls_old = timed(lambda: table.checkout(ls_work, version=0, overwrite=True))
    assert folder_state(ls_work) == states[0]
    if use_dvc:
        first = subprocess.run(["git", "rev-list", "--max-parents=0", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.split()
        commits = subprocess.run(["git", "log", "--format=%H", "--reverse"], cwd=repo, capture_output=True, text=True).stdout.split()
        v0 = commits[1] if first else commits[0]
        dvc_cache = du(repo / ".dvc" / "cache")

        def dvc_checkout() -> None:
            run(["git", "checkout", "-q", v0, "--", "data.dvc"], repo)
            run([args.dvc, "checkout", "-q", "data.dvc"], repo)

        dvc_old = timed(dvc_checkout)
        assert folder_state(data) == states[0]
    ls_fresh, dvc_fresh = empty_checkouts(table, work, repo, args, states[0], use_dvc)
    unique_bytes = sum(unique.values())
    store_bytes = du(work / "store", skip="_staging")
    rows = [
        ("unique content (MB)", unique_bytes / 1e6, None, None),
        ("stored bytes (MB)", store_bytes / 1e6, None, store_bytes / unique_bytes),
        ("add of a version, median (s)", statistics.median(ls_add), None, statistics.median(ls_add) / statistics.median(floors)),
        ("  floor: list folder + hash changed (s)", statistics.median(floors), None, None),
        ("  ref: floor + fsynced copies of changed (s)", statistics.median(durable_floors), None, statistics.median(ls_add) / statistics.median(durable_floors)),
        ("checkout v0 into latest workspace (s)", ls_old, None, None),
        ("checkout v0 into empty dir, median (s)", statistics.median(ls_fresh), None, None),
    ]
    if use_dvc:
        rows[1] = (rows[1][0], rows[1][1], dvc_cache / 1e6, store_bytes / unique_bytes)
        rows[2] = (rows[2][0], rows[2][1], statistics.median(dvc_add), rows[2][3])
        rows[5] = (rows[5][0], ls_old, dvc_old, ls_old / dvc_old)
        rows[6] = (rows[6][0], statistics.median(ls_fresh), statistics.median(dvc_fresh), statistics.median(ls_fresh) / statistics.median(dvc_fresh))
    print()
    print(f"{args.files} files, {args.megabytes} MB, {args.versions} versions changing {args.change:.0%} each; logstore {logstore.__version__}")
    print(f"{'':42} {'logstore':>10} {'dvc':>10} {'ratio':>8}")
    for name, mine, theirs, ratio in rows:
        print(f"{name:42} {mine:10.3f} {'' if theirs is None else f'{theirs:10.3f}':>10} {'' if ratio is None else f'{ratio:8.2f}x':>8}")
    if use_dvc:
        print(f"{'DVC cache vs logstore store':42} {'':10} {'':10} {dvc_cache / store_bytes:7.2f}x")
    print(f"load average (1 min) during the adds: {min(loads):.2f}-{max(loads):.2f}, at the end {os.getloadavg()[0]:.2f}")
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
