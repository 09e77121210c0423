"""Sync: `docassist sync` of a folder in which nothing changed — walking and hashing the same files
in this process, the local work a pass cannot skip.

A folder of small text files (1,000; quick 200) is synced once (its uploads are not the figure),
then again with nothing changed, alternating with the baseline: the command's wall time from
start to exit (interpreter start, walk, hashes, one `POST /sync/diff`, nothing sent) against
walking the folder and hashing every file here. Goal: ≤ 10 s for the unchanged sync;
the ratio says what the command adds to the work it must do.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

from docassist.bench.core import Context, Result
from docassist.bench.stats import median, ratio

SPACE = "bench_sync"
REPEATS = 3
GOAL_S = 10.0
_TOPICS = ("lakes", "tea", "budgets", "rivers", "mountains", "contracts", "invoices", "minutes")


def make_folder(root: Path, files: int) -> Path:
    """`files` text files of a few sentences each, ten to a subfolder, each one's text its own."""
    for i in range(files):
        path = root / f"part{i // 10:03d}" / f"note{i:05d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        topic = _TOPICS[i % len(_TOPICS)]
        path.write_text(
            f"Note {i} is about {topic}. It was written for the folder sync benchmark. "
            f"Its number, {i}, makes its text unlike any other note's.\n",
            encoding="utf-8",
        )
    return root


def walk_and_hash(root: Path) -> int:
    """The baseline: every file under `root` read and hashed, as a pass must."""
    count = 0
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    with open(entry.path, "rb") as fh:
                        hashlib.file_digest(fh, "sha256")
                    count += 1
    return count


def sync(ctx: Context, folder: Path) -> tuple[float, str]:
    """`docassist sync` as a user runs it: (seconds to exit, its last line)."""
    command = [str(Path(sys.executable).parent / "docassist"), "sync", str(folder), "--space", SPACE]
    env = {**os.environ, "DOCASSIST_URL": ctx.service.url}
    env.pop("DOCASSIST_API_KEY", None)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"docassist sync failed ({done.returncode}): {(done.stderr or done.stdout)[-500:]}")
    return seconds, done.stdout.strip().splitlines()[-1]


def run(ctx: Context) -> Result:
    res = Result("sync", "Folder sync")
    files = ctx.sizes.sync_files
    folder = make_folder(ctx.workdir / "sync-folder", files)
    first_s, first = sync(ctx, folder)
    ctx.log(f"first sync of {files} files: {first_s:.1f}s ({first})")
    if first != f"added {files}, updated 0, deleted 0, unchanged 0, failed 0":
        raise RuntimeError(f"the first sync did not add every file: {first}")
    sync_s, hash_s = [], []
    for i in range(REPEATS):
        for side in ("hash", "sync") if i % 2 == 0 else ("sync", "hash"):
            if side == "hash":
                started = time.perf_counter()
                assert walk_and_hash(folder) == files
                hash_s.append(time.perf_counter() - started)
            else:
                seconds, line = sync(ctx, folder)
                if line != f"added 0, updated 0, deleted 0, unchanged {files}, failed 0":
                    raise RuntimeError(f"a sync with nothing changed did something: {line}")
                sync_s.append(seconds)
    s, h = median(sync_s), median(hash_s)
    res.add(
        "sync_unchanged_s", f"`docassist sync`, {files:,} files, nothing changed", round(s, 2), "s",
        goal=("<=", GOAL_S), context=f"first sync (every file uploaded): {first_s:.1f} s",
    )  # fmt: skip
    res.add(
        "sync_over_hashing", "unchanged sync ÷ walking and hashing the files", ratio(s, h),
        baseline="walk + SHA-256 of the same files in this process", context=f"{s:.2f} s vs {h * 1000:.0f} ms",
    )  # fmt: skip
    res.data = {"files": files, "first_sync_s": first_s, "sync_s": sync_s, "walk_hash_s": hash_s}
    return res
