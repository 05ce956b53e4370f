"""Our attention layers beside the public PyTorch implementations of the same methods, at the
same shapes: time and peak memory of one layer's forward + backward, CPU, one thread.

    pip install performer-pytorch==1.1.4 linformer==0.2.3 h-transformer-1d==0.1.9 \\
        sinkhorn-transformer==0.11.4
    python scripts/bench_public.py [--lengths 1024 2048 4096 8192] [--repeats 3] [--rounds 1]
        [--out results/bench/cpu_public.csv]

The public implementations are lucidrains' packages, the ones most PyTorch users of these
methods run. Shapes follow the LRA Text recipe (width 256, 4 heads of 64), batch 1, dropout 0,
no padding; each method's options are set equal on both sides:

* ``performer``: 256 random features, no feature redraw during timing (theirs redraws every
  1000 calls by default; ours is set to the same), softmax kernel on both sides;
* ``linformer``: k = 16 (our recipe); theirs projects keys and values with separate length
  projections E and F (``share_kv=False``; ``share_kv=True`` would also make values equal
  keys), ours with one E shared by keys and values (as LRA), so theirs does slightly more work;
* ``htransformer``: block size 32;
* ``sinkhorn``: blocks of 64 (theirs needs the length to be a multiple), 5 Sinkhorn
  iterations, temperature 0.75.

Each point runs in a fresh process (``--point``), as ``lra-bench`` does: median of
``--repeats`` timed calls (3) after 1 warm-up call, measured ``--rounds`` times (1), ours and
theirs taking turns, so that a busy moment of the machine hits both; peak memory is the
process's peak RSS less its RSS after each side's imports (and, for ours, reading the recipe),
before the layer and inputs are built (:mod:`lra.bench.worker`). Rows (method, impl, length, step_ms, peak_mb, ...) are appended to
``--out`` with one ``bench_id`` per call; ``ratio`` columns compare ours to theirs within the
call: time ours/theirs (< 1: ours is faster), memory ours/theirs (< 1: ours uses less).
"""

from __future__ import annotations

import argparse
import csv
import importlib
import itertools
import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DIM, HEADS = 256, 4
PACKAGES = {
    "performer": "performer-pytorch",
    "linformer": "linformer",
    "htransformer": "h-transformer-1d",
    "sinkhorn": "sinkhorn-transformer",
}
PUBLIC_MODULES = {  # what public_layer imports
    "performer": "performer_pytorch",
    "linformer": "linformer",
    "htransformer": "h_transformer_1d.h_transformer_1d",
    "sinkhorn": "sinkhorn_transformer.sinkhorn_transformer",
}
OURS_OPTIONS = {
    "performer": {"nb_features": 256, "redraw_interval": 1000},
    "linformer": {"k": 16},
    "htransformer": {"block_size": 32},
    "sinkhorn": {"block_size": 64, "sinkhorn_iters": 5, "temperature": 0.75},
}
FIELDS = ["method", "impl", "package", "length", "step_ms", "peak_mb", "status", "error"]
FIELDS += ["threads", "torch", "git_sha", "machine", "bench_id", "created", "repeats", "round"]


def public_layer(method: str, length: int) -> torch.nn.Module:
    """The public implementation of ``method`` at the Text recipe's shapes."""
    head = DIM // HEADS
    if method == "performer":
        from performer_pytorch import SelfAttention

        return SelfAttention(DIM, heads=HEADS, dim_head=head, nb_features=256)
    if method == "linformer":
        from linformer import LinformerSelfAttention

        return LinformerSelfAttention(DIM, seq_len=length, k=16, heads=HEADS, dim_head=head)
    if method == "htransformer":
        from h_transformer_1d.h_transformer_1d import HAttention1D

        return HAttention1D(DIM, heads=HEADS, dim_head=head, block_size=32)
    if method == "sinkhorn":
        from sinkhorn_transformer.sinkhorn_transformer import SinkhornSelfAttention

        return SinkhornSelfAttention(
            DIM, bucket_size=64, max_seq_len=length, heads=HEADS, dim_head=head,
            sinkhorn_iter=5, temperature=0.75,
        )  # fmt: skip
    raise KeyError(method)


def measure(point: dict) -> dict:
    """Time and peak memory of one point, in this (fresh) process."""
    from lra.bench.worker import peak_rss_mb, reset_peak_rss, rss_mb

    torch.set_num_threads(1)
    torch.manual_seed(0)
    method, length = point["method"], point["length"]
    # imports and config reading first: the baseline counts neither side's start-up
    if point["impl"] == "ours":
        from omegaconf import OmegaConf

        import models
        from lra.config import compose

        text = compose("train", ["task=text"]).task.backbone  # width 256, 4 heads
        recipe = OmegaConf.to_container(text) | {"dropout": 0.0, "attn_dropout": 0.0}
        assert (recipe["dim"], recipe["heads"]) == (DIM, HEADS)
    else:
        importlib.import_module(PUBLIC_MODULES[method])
    baseline = rss_mb() if reset_peak_rss() else None
    x = torch.randn(1, length, DIM, requires_grad=True)
    grad_out = torch.randn(1, length, DIM)
    if point["impl"] == "ours":
        layer = models.attention_from_recipe(method, OURS_OPTIONS[method], recipe, length)
        mask = torch.ones(1, length, dtype=torch.bool)

        def call():
            return layer(x, mask)
    else:
        layer = public_layer(method, length)

        def call():
            return layer(x)

    layer.train()
    times = []
    for i in range(1 + point.get("repeats", 3)):  # 1 warm-up, then the timed calls
        start = time.perf_counter()
        (call() * grad_out).sum().backward()
        x.grad = None
        layer.zero_grad(set_to_none=True)
        if i:
            times.append((time.perf_counter() - start) * 1000)
    peak = peak_rss_mb()
    return {
        "step_ms": round(float(np.median(times)), 3),
        "peak_mb": None if baseline is None or peak is None else round(peak - baseline, 1),
        "status": "ok",
        "error": "",
    }


def run_point(point: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--point", json.dumps(point)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if proc.returncode:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"step_ms": None, "peak_mb": None, "status": "error", "error": tail[:300]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096, 8192])
    parser.add_argument("--methods", nargs="+", default=list(PACKAGES))
    parser.add_argument("--out", type=Path, default=Path("outputs/results/bench/cpu_public.csv"))
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per point")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="fresh processes per point, ours and theirs taking turns",
    )
    parser.add_argument("--point", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.point:
        print(json.dumps(measure(json.loads(args.point))))
        return

    from lra.bench.cli import machine_fingerprint, new_bench_id
    from lra.provenance import git_sha

    common = {"threads": 1, "torch": torch.__version__, "git_sha": git_sha()}
    common |= {"machine": machine_fingerprint(), "bench_id": new_bench_id()}
    upgrade_header(args.out)
    new = not args.out.exists()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    with open(args.out, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        for method in args.methods:
            package = f"{PACKAGES[method]}=={version(PACKAGES[method])}"
            for length in args.lengths:
                for turn, impl in itertools.product(range(args.rounds), ("ours", "public")):
                    point = {"method": method, "impl": impl, "length": length}
                    row = point | {"package": "lra" if impl == "ours" else package}
                    row |= run_point(point | {"repeats": args.repeats}) | common
                    row |= {"repeats": args.repeats, "round": turn}
                    row["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
                    writer.writerow(row)
                    f.flush()
                    rows.append(row)
                    print(f"{method} {impl} {length}: {row['status']} {row['step_ms']} ms, "
                          f"{row['peak_mb']} MB", flush=True)  # fmt: skip
    print("\nours / public (time, memory; medians over rounds), this call only:")
    for method in args.methods:
        for length in args.lengths:
            ours, theirs = (
                [
                    r
                    for r in rows
                    if (r["method"], r["impl"], r["length"]) == (method, i, length)
                    and r["status"] == "ok"
                ]
                for i in ("ours", "public")
            )
            if ours and theirs:
                t = _median(ours, "step_ms") / _median(theirs, "step_ms")
                m = _median(ours, "peak_mb") / _median(theirs, "peak_mb")
                print(f"  {method:13s} {length:6d}: time {t:.2f}x, memory {m:.2f}x")


def _median(rows: list[dict], key: str) -> float:
    values = [r[key] for r in rows if r[key] is not None]
    return float(np.median(values)) if values else float("nan")


def upgrade_header(path: Path) -> None:
    """A CSV written before the ``repeats``/``round`` columns gets them (3 timed calls, one
    round: what the script did then)."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames == FIELDS:
            return
        old = list(reader)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows({"repeats": 3, "round": 0} | row for row in old)


if __name__ == "__main__":
    main()
