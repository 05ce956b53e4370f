"""The GPU check: one command, about ten minutes on one GPU, that runs every part of the CUDA
path once and writes what it measured.

    python -m lra.check.gpu [--out DIR] [--dry]        (scripts/gpu_check.sh calls this)

Steps, each writing under ``DIR`` (default ``$LRA_RESULTS_DIR/gpu_check``, else
``outputs/results/gpu_check``) and printing one line:

1. ``device.json``: the device, its memory and compute capability, torch, CUDA and cuDNN.
2. ``precision.csv``: every registered method under bf16 and fp16 autocast against float32 on
   the device (forward and backward with padding, the conformance ``precision`` measurement),
   each against :data:`lra.check.conformance.PRECISION_TOL`.
3. ``bench/<device>_text.csv``: ``lra-bench`` on the LRA Table 2 protocol (Text recipe,
   batch 32, 1K-4K, every method, bf16), peak memory from ``torch.cuda.max_memory_allocated``.
4. ``bench/<device>_text_compile.csv``: eager and compiled training steps at 4K of
   ``transformer`` and two sub-quadratic methods, in one invocation (compile time apart).
5. ``mfu.json``: model FLOPs utilisation of full attention at 4K: the FLOPs of one training
   step counted by ``torch.utils.flop_counter`` over the step time of (3) and the device's dense
   bf16 peak (:data:`PEAK_BF16_TFLOPS`, from NVIDIA's datasheets; null for other devices).
6. ``listops/``: a shortened ListOps-recipe run (generated data, fewer examples and steps);
   passes when the training loss falls.
7. ``loader.csv``: the training loader's batches/s at Text 4K, batch 32
   (``scripts/bench_loader.py``), against the steps/s of ``transformer`` in (3).

``--dry`` (and any machine without CUDA) runs the same steps small, on the CPU: two methods,
lengths 128-256, batch 2, a tiny ListOps run; CI runs it so that every step keeps working.
``summary.md`` lists every step's result, the command and the time it took.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F

import models
from lra import runtime
from lra.check.conformance import PRECISION_TOL, precision_errors
from lra.config import compose, default_results_dir
from lra.provenance import device_label, git_sha

ROOT = Path(__file__).resolve().parents[2]

# dense (no sparsity) bf16 tensor-core peak, TFLOP/s, by device-name pattern (NVIDIA datasheets)
PEAK_BF16_TFLOPS = (
    (r"H100.*PCIe", 756.0),
    (r"H100.*NVL", 835.0),
    (r"H100|H200|GH200", 989.4),
    (r"A100", 312.0),
)


@dataclass(frozen=True)
class Sizes:
    """How big each step is: the full check on a GPU, or the dry run on a CPU."""

    methods: str | list[str]  # lra-bench methods of step 3
    lengths: list[int]
    batch: int
    compile_methods: list[str]  # step 4: transformer and two sub-quadratic methods
    compile_length: int
    listops: list[str] = field(default_factory=list)  # step 6 overrides
    loader: list[str] = field(default_factory=list)  # step 7 bench_loader.py arguments
    repeats: int = 5


FULL = Sizes(
    methods="all",
    lengths=[1024, 2048, 3072, 4096],
    batch=32,
    compile_methods=["transformer", "performer", "linformer"],
    compile_length=4096,
    listops=[
        "task=listops",
        "task.num_train=16000",
        "task.num_val=1000",
        "task.num_test=1000",
        "task.optim.steps=400",
        "task.optim.warmup=100",
        "task.optim.eval_every=100",
    ],
    loader=["--rows", "4000", "--seq-len", "4096", "--batches", "200"],
)
DRY = Sizes(
    methods=["transformer", "local"],
    lengths=[128, 256],
    batch=2,
    compile_methods=["transformer", "local"],
    compile_length=128,
    listops=["experiment=smoke", "task.optim.steps=120", "task.optim.eval_every=60"],
    loader=["--rows", "200", "--seq-len", "256", "--batches", "10"],
    repeats=2,
)


def default_out() -> Path:
    """``gpu_check`` under the runs' default ``results_dir`` (``conf/train.yaml``)."""
    return default_results_dir() / "gpu_check"


# --------------------------------------------------------------------------- steps
def device_info(device: torch.device) -> dict[str, Any]:
    """What ran the check: device, memory, capability, software versions."""
    info: dict[str, Any] = {
        "device": str(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "git_sha": git_sha(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info |= {
            "name": props.name,
            "memory_gib": round(props.total_memory / 2**30, 1),
            "capability": f"{props.major}.{props.minor}",
            "multiprocessors": props.multi_processor_count,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
        }
    else:
        info |= {
            "name": device_label(device),
            "threads": torch.get_num_threads(),
        }
    return info


def precision_matrix(device: torch.device) -> pd.DataFrame:
    """Every registered method x {bf16, fp16} on ``device``: errors against float32."""
    rows = []
    for name in sorted(models.REGISTRY):
        cls = models.REGISTRY[name]
        for label, err in precision_errors(cls, cls.test_options, device).items():
            tol = PRECISION_TOL[getattr(torch, label)]
            ok = not err["nonfinite"] and err["out"] <= tol and err["grad"] <= tol
            rows.append({"method": name, "dtype": label, **err, "tol": tol, "passed": ok})
    return pd.DataFrame(rows)


def bench(overrides: list[str]) -> pd.DataFrame:
    """One ``lra-bench`` invocation in this process; its rows."""
    from lra.bench.cli import run

    rows, _ = run(compose("bench", [*overrides, "isolate=false", "progress=false"]))
    return rows


def step_flops(length: int, batch: int, device: torch.device, dtype: torch.dtype) -> int:
    """FLOPs of one training step (forward + backward) of the Text-recipe Transformer classifier
    at ``batch x length``, counted by ``torch.utils.flop_counter`` (matmuls and attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    from lra.bench.cli import task_spec

    cfg = compose("train", ["task=text", "model=transformer"])
    model = models.build(task_spec(cfg.task, length), cfg.task.backbone, cfg.model).to(device)
    ids = torch.randint(1, 256, (batch, length), device=device)
    inputs = {"input_ids": ids, "mask": torch.ones_like(ids, dtype=torch.bool)}
    with FlopCounterMode(display=False) as counter, runtime.autocast(device, dtype):
        loss = F.cross_entropy(
            model(inputs).float(), torch.zeros(batch, dtype=torch.long, device=device)
        )
        loss.backward()
    return int(counter.get_total_flops())


def peak_tflops(name: str) -> float | None:
    for pattern, tflops in PEAK_BF16_TFLOPS:
        if re.search(pattern, name):
            return tflops
    return None


def listops_run(overrides: list[str], out: Path) -> dict[str, Any]:
    """A short ListOps run from scratch; its record, and whether the training loss fell: the
    mean of the last three logged losses (``metrics.jsonl``, every 10 steps) below the mean
    of the first three."""
    from lra.run import train

    settings = [f"results_dir={out}", "trainer.progress=false", "trainer.resume=false"]
    record = train.run(compose("train", [*overrides, *settings]), out / "run")
    logged = [json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [e["train_loss"] for e in logged if "train_loss" in e and "val_acc" not in e]
    first, last = (sum(part) / len(part) for part in (losses[:3], losses[-3:]))
    return {"record": record, "first": first, "last": last, "loss_fell": last < first}


def loader_rate(arguments: list[str], out: Path) -> pd.DataFrame:
    """``scripts/bench_loader.py`` into ``out`` (a CSV of sequences/s per configuration)."""
    cmd = [sys.executable, str(ROOT / "scripts" / "bench_loader.py"), *arguments, "--out", str(out)]
    subprocess.run(cmd, check=True, cwd=ROOT)
    return pd.read_csv(out)


# --------------------------------------------------------------------------- the check
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument("--dry", action="store_true", help="small CPU version of every step")
    args = parser.parse_args(argv)
    dry = args.dry or not torch.cuda.is_available()
    sizes = DRY if dry else FULL
    device = torch.device("cpu" if dry else "cuda")
    dtype_name = "fp32" if dry else "bf16"
    out = args.out or default_out()
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m lra.check.gpu" + (" --dry" if args.dry else "") + f" --out {out}"
    started = time.time()
    lines = [f"# GPU check{' (dry run, CPU)' if dry else ''}", "", f"`{command}`", ""]
    failures: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(f"- {text}")

    info = device_info(device)
    (out / "device.json").write_text(json.dumps(info, indent=2))
    say(f"device: {info['name']} ({info['device']}), torch {info['torch']}")

    precision = precision_matrix(device)
    precision.to_csv(out / "precision.csv", index=False)
    bad = precision[~precision["passed"]]
    say(f"precision: {len(precision) - len(bad)}/{len(precision)} method x dtype within tolerance")
    if len(bad):
        failures.append(
            "precision: " + ", ".join(f"{r.method} {r.dtype}" for r in bad.itertuples())
        )

    bench_dir = out / "bench"
    common = [f"out_dir={bench_dir}", f"device={device.type}", f"dtype={dtype_name}",
              f"batch_sizes=[{sizes.batch}]", f"repeats={sizes.repeats}"]  # fmt: skip
    methods = sizes.methods if isinstance(sizes.methods, str) else f"[{','.join(sizes.methods)}]"
    lengths = f"[{','.join(map(str, sizes.lengths))}]"
    rows = bench([*common, f"methods={methods}", f"lengths={lengths}"])
    failed = rows[rows["status"] != "ok"]
    say(f"lra-bench: {len(rows) - len(failed)}/{len(rows)} points ok -> {bench_dir}")
    longest = rows[(rows["method"] == "transformer") & (rows["length"] == max(sizes.lengths))]

    compiled = bench([*common, f"methods=[{','.join(sizes.compile_methods)}]",
                      f"lengths=[{sizes.compile_length}]", "compile=[false,true]",
                      f"out={device.type}_text_compile"])  # fmt: skip
    for method, group in compiled.groupby("method"):
        eager, comp = (group[group["compile"] == c].iloc[0] for c in (False, True))
        say(
            f"compile {method}: eager {eager['step_ms']:.1f} ms, compiled {comp['step_ms']:.1f} ms "
            f"(compile {comp['compile_s']:.1f} s)"
        )
    if (compiled["status"] != "ok").any():
        failures.append("compile: a point did not run")

    mfu: dict[str, Any] = {"length": max(sizes.lengths), "batch": sizes.batch}
    if len(longest) and longest.iloc[0]["status"] == "ok":
        flops = step_flops(max(sizes.lengths), sizes.batch, device, runtime.PRECISIONS[dtype_name])
        seconds = float(longest.iloc[0]["step_ms"]) / 1000
        peak = peak_tflops(str(info["name"])) if device.type == "cuda" else None
        mfu |= {"step_flops": flops, "step_s": seconds, "achieved_tflops": flops / seconds / 1e12}
        mfu |= {
            "peak_bf16_tflops": peak,
            "mfu": None if peak is None else flops / seconds / 1e12 / peak,
        }
        shown = "peak unknown" if peak is None else f"MFU {mfu['mfu']:.1%} of {peak:g}"
        say(f"transformer at {mfu['length']}: {mfu['achieved_tflops']:.2f} TFLOP/s ({shown})")
    (out / "mfu.json").write_text(json.dumps(mfu, indent=2))

    run = listops_run(sizes.listops, out / "listops")
    record = run["record"]
    say(
        f"ListOps run: {record['status']}, train loss {run['first']:.3f} (first 30 steps) -> "
        f"{run['last']:.3f} (last 30), test accuracy {record['test_acc']:.3f}, "
        f"{record['steps_per_s']:.2f} steps/s"
    )
    if record["status"] != "ok" or not run["loss_fell"]:
        failures.append("listops: the loss did not fall")

    loader = loader_rate(sizes.loader, out / "loader.csv")
    rate = loader[loader["what"].str.contains("train_loader num_workers=2")]["seqs_per_s"].iloc[-1]
    batches_per_s = float(rate) / 32  # bench_loader.py batches hold 32 sequences
    needed = float(longest.iloc[0]["steps_per_s"]) if len(longest) else float("nan")
    say(
        f"loader: {batches_per_s:.1f} batches/s of 32 sequences (2 workers); the transformer "
        f"trains {needed:.2f} steps/s at {max(sizes.lengths)} tokens"
    )
    if not dry and not batches_per_s > needed:
        failures.append("loader: slower than the transformer's steps")

    minutes = (time.time() - started) / 60
    say(
        f"took {minutes:.1f} min; {'all steps passed' if not failures else 'FAILED: ' + '; '.join(failures)}"
    )
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
