"""Install footprint: the default install against the same install with the HuggingFace extra (what
the default was before that path became an extra), each in a fresh virtual environment, in the
same run on the same machine and pip cache.

    python -m docassist.bench.footprint --out bench/results/footprint.json

Reported: the size of each environment on disk, the wall time of its `pip install`, and what the
extra adds (its largest packages). The llama-cpp-python wheel comes from pip's cache on both sides
after the first build, so the times compare the rest of the install, not a compiler.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from docassist.evals.cli import source_commit

ROOT = Path(__file__).resolve().parents[1]
SIDES = {
    "default": ["pip install ."],
    "with the hf extra": ["pip install torch==2.13.0", "pip install '.[hf]'"],
}


def size_mb(path: Path) -> float:
    out = subprocess.run(["du", "-sm", str(path)], capture_output=True, text=True, check=True).stdout
    return float(out.split()[0])


def largest_packages(venv: Path, n: int = 8) -> list[tuple[str, float]]:
    site = next(venv.glob("lib/python3*/site-packages"))
    sizes = [(p.name, size_mb(p)) for p in site.iterdir() if p.is_dir() and not p.name.endswith(".dist-info")]
    return sorted(sizes, key=lambda x: -x[1])[:n]


def install(commands: list[str], workdir: Path) -> dict:
    venv = workdir / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "PIP_PROGRESS_BAR": "off", "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    started = time.perf_counter()
    for command in commands:
        subprocess.run(f"{command} -q", shell=True, cwd=ROOT, env=env, check=True)
    seconds = time.perf_counter() - started
    return {
        "commands": commands,
        "install_s": round(seconds, 1),
        "size_mb": size_mb(venv),
        "largest": largest_packages(venv),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m docassist.bench.footprint",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "footprint.json")
    args = parser.parse_args(argv)
    report: dict = {
        "date": date.today().isoformat(),
        "commit": source_commit(),
        "sides": {},
    }
    for name, commands in SIDES.items():
        with tempfile.TemporaryDirectory(prefix="docassist-footprint-") as tmp:
            print(f"footprint: {name} …", flush=True)
            report["sides"][name] = install(commands, Path(tmp))
            print(
                f"  {report['sides'][name]['size_mb']:.0f} MB in {report['sides'][name]['install_s']:.0f}s", flush=True
            )
    base, extra = report["sides"]["default"], report["sides"]["with the hf extra"]
    report["size_ratio"] = round(base["size_mb"] / extra["size_mb"], 3)
    report["install_time_ratio"] = round(base["install_s"] / extra["install_s"], 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "sides"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
