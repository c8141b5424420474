"""Time a complete run of the pipeline on the embedded sample (target: <= 90 s wall).

Runs ``sentiment-pipeline run --config configs/sample.yaml`` in a fresh work directory as a
subprocess (so start-up is included), then prints the wall time, the per-component durations
recorded in ML Metadata, the peak RSS of the run, and writes bench/results/sample-latest.json.

    make bench-sample         # or: .venv/bin/python bench/sample_run.py [--keep]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()

    warnings.filterwarnings("ignore")  # library import noise; the figures are what matter
    from pipeline.config import load_config
    from pipeline.status import read_run

    work = Path(tempfile.mkdtemp(prefix="sentiment-bench-"))
    cli = Path(sys.executable).with_name("sentiment-pipeline")
    cmd = [str(cli), "run", "--config", "configs/sample.yaml", "--set", f"pipeline.work_dir={work}"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr, sep="\n")
        return proc.returncode
    peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    cfg = load_config(REPO / "configs/sample.yaml", [f"pipeline.work_dir={work}"])
    status = read_run(cfg.pipeline.resolved_metadata_path, cfg.pipeline.name)
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": len(__import__("os").sched_getaffinity(0)),
        "wall_seconds_total": round(wall, 1),
        "component_seconds": {c.node_id: round(c.seconds, 1) for c in status.components},
        "peak_rss_mb": round(peak_rss_mb),
        "blessed": status.blessed,
        "pushed": status.pushed,
        "metrics": status.metrics,
    }
    out = REPO / "bench" / "results" / "sample-latest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"\nsample run: {wall:.1f} s wall (target <= 90 s); written to {out}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
