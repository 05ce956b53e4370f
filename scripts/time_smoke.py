"""Wall time and peak memory of a smoke preset end to end, as a user runs it: ``lra-data`` for
the task, then ``lra-train experiment=smoke`` for each method, each a fresh process.

    python scripts/time_smoke.py --task pathx --models local transformer \\
        --out results/measured/smoke_timing.csv

Appends one row per command (task, model, command, wall_s, peak_rss_mb of that process,
machine, git_sha, date) to ``--out``. Records go to a temporary ``results_dir`` and run folders
to a temporary ``hydra.run.dir``, so the committed results are never touched; the data is
generated into a temporary folder (so its time is the generation's), then read by every run.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIELDS = ["task", "model", "command", "wall_s", "peak_rss_mb", "exit", "machine", "git_sha"]
FIELDS += ["date"]


# A process started from this one begins with this one's memory counted: Linux keeps the
# larger of the pre-exec and the program's own peak in ru_maxrss, and this process holds torch
# (~370 MB). So each command is started by a small launcher (a bare Python, ~10 MB), which
# times it and writes its wall seconds, its peak RSS (KiB) and its exit status to a file.
LAUNCHER = """
import os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(sys.argv[1], "w") as f:
    f.write(f"{wall} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def timed(command: list[str]) -> tuple[float, float, int]:
    """Run ``command``; its wall seconds, its own peak RSS (MiB) and exit status (negative:
    killed by that signal)."""
    with tempfile.TemporaryDirectory(prefix="lra-timed-") as tmp:
        report = Path(tmp) / "report"
        launcher = [sys.executable, "-c", LAUNCHER, str(report), *command]
        subprocess.run(launcher, cwd=ROOT, stdout=subprocess.DEVNULL, check=True)
        wall, rss_kib, code = report.read_text().split()
    return float(wall), int(rss_kib) / 1024, int(code)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="pathx")
    parser.add_argument("--models", nargs="+", default=["local", "transformer"])
    parser.add_argument("--out", type=Path, default=Path("outputs/results/smoke_timing.csv"))
    args = parser.parse_args()

    from lra.bench.cli import machine_fingerprint
    from lra.provenance import git_sha

    common = {"machine": machine_fingerprint(), "git_sha": git_sha()}
    common["date"] = datetime.now(timezone.utc).date().isoformat()
    bin_dir = Path(sys.executable).parent
    rows = []
    with tempfile.TemporaryDirectory(prefix="lra-smoke-") as tmp:
        data = f"data_dir={tmp}/data"  # generated afresh, then reused by every run
        commands = [
            ("-", [str(bin_dir / "lra-data"), "experiment=smoke", f"task={args.task}", data])
        ]
        for model in args.models:
            train = [str(bin_dir / "lra-train"), "experiment=smoke", f"task={args.task}"]
            train += [f"model={model}", "trainer.progress=false", data]
            hidden = [f"results_dir={tmp}/results", f"hydra.run.dir={tmp}/run-{model}"]
            commands.append((model, train + hidden))
        for model, command in commands:
            wall, rss, code = timed(command)
            shown = " ".join(Path(command[0]).name if i == 0 else a for i, a in enumerate(command))
            shown = shown.replace(tmp, "$TMP")
            rows.append(
                {"task": args.task, "model": model, "command": shown, "wall_s": round(wall, 1)}
                | {"peak_rss_mb": round(rss), "exit": code}
                | common
            )
            print(f"{shown}: {wall:.1f} s, peak RSS {rss:.0f} MiB, exit {code}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    new = not args.out.exists()
    with open(args.out, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        writer.writerows(rows)
    print(f"rows: {args.out}")


if __name__ == "__main__":
    main()
