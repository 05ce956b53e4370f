"""One benchmark point of ``lra-bench``: time and peak memory of one (method, mode, length, batch).

``lra-bench`` runs every point in a fresh process, ``python -m lra.bench.worker RESULT.json``,
with the point (a JSON object, see :func:`measure_point`) on stdin; the worker writes one JSON
result to ``RESULT.json``. The same :func:`measure_point` also runs in-process
(``lra-bench isolate=false``).

What a point times (median over ``repeats`` steps after ``warmup`` untimed steps):

* ``mode=step``: one training step of the whole classifier (``models.build``): forward on random
  token ids [B, L] (all ``mask`` True, no padding), cross-entropy on random labels plus the
  methods' auxiliary losses, backward, ``AdamW.step()`` and ``zero_grad``. Train mode, so the
  recipe's dropout is on, as in LRA Table 2 (Tay et al. 2021, §3.4: training steps per second).
* ``mode=attention``: one attention layer alone, wired from the recipe exactly as the backbone
  wires it (``models.attention_from_recipe`` with ``positions = length``): forward on x [B, L, D] ~ N(0, 1) and backward of
  ``sum(out * g)`` for a fixed random g [B, L, D]; no optimiser.

With ``compile`` the model (or layer) runs under ``torch.compile``; its first call, which
compiles, comes before the warm-up and is reported apart (``compile_s``: that call's time less
the median step). After the timed steps, one more untimed step runs under the profiler to
record which kernels of ``scaled_dot_product_attention`` ran (``sdpa_backend``).

CUDA steps are timed with CUDA events and synchronised after each step; CPU steps with
``time.perf_counter``.

Peak memory (``peak_mb``, its meaning in ``mem_kind``):

* CUDA (``cuda_max_allocated``): ``torch.cuda.max_memory_allocated`` over warm-up and timed
  steps, after ``reset_peak_memory_stats`` once the model and inputs exist. It therefore counts
  everything live on the device at the peak: weights, inputs, optimiser state, gradients,
  activations and temporaries (not the allocator's unused cache, not the CUDA context).
* CPU in a fresh process (``rss_peak_minus_baseline``): peak resident set size (``VmHWM``)
  minus the baseline RSS taken right after the imports (torch, ``models``, ``tasks``, and the
  modules torch imports lazily when an optimiser is first built, which ``_prime`` triggers on a
  one-element tensor) and before anything of the point is built; the high-water mark is reset
  at that moment through ``/proc/self/clear_refs``. It counts everything the point makes
  resident: weights, inputs, optimiser state, gradients, activations, allocator slack, and
  thread pools or kernel code first touched by the point.
* CPU in-process (``isolate=false``): not measured (null): memory freed by earlier points stays
  resident and would hide the point's own peak.
"""

from __future__ import annotations

import gc
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import models
from lra import runtime
from tasks.spec import TaskSpec

STATUSES = ("ok", "oom", "timeout", "error", "skipped")
RESULT_KEYS = (
    "status",
    "error",
    "step_ms",
    "step_ms_iqr",
    "steps_per_s",
    "tokens_per_s",
    "peak_mb",
    "mem_kind",
    "params",
    "compile_s",
    "sdpa_backend",
)
# substrings of the aten ops behind each kernel of scaled_dot_product_attention
SDPA_KERNELS = {
    "flash": "_scaled_dot_product_flash_attention",
    "efficient": "_scaled_dot_product_efficient_attention",
    "cudnn": "_scaled_dot_product_cudnn_attention",
    "math": "_scaled_dot_product_attention_math",
}


class PointTimeout(Exception):
    """The point ran past its deadline (checked between steps)."""


# --------------------------------------------------------------------------- process memory
def _status_kib(field: str, pid: int | str = "self") -> int | None:
    """``field`` (``VmRSS``, ``VmHWM``) of ``/proc/<pid>/status`` in KiB; None if unreadable."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def rss_mb(pid: int | str = "self") -> float | None:
    """Current resident set size of a process in MiB (Linux), or None."""
    kib = _status_kib("VmRSS", pid)
    return None if kib is None else kib / 1024


def reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark to its current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float | None:
    """This process's RSS high-water mark (``VmHWM``) in MiB, or None."""
    kib = _status_kib("VmHWM")
    return None if kib is None else kib / 1024


# --------------------------------------------------------------------------- the measured work
def build_step(point: dict[str, Any], device: torch.device):
    """Build the module, inputs and one step closure of ``point``; return ``(step, params)``."""
    dtype = runtime.PRECISIONS[point["dtype"]]
    batch, length = int(point["batch"]), int(point["length"])
    backbone, model_cfg = point["backbone"], point["model_cfg"]
    if point["mode"] == "step":
        spec = TaskSpec(**point["spec"])
        model = models.build(spec, backbone, model_cfg).to(device).train()
        forward = runtime.maybe_compile(model, bool(point.get("compile")))
        inputs: dict[str, torch.Tensor] = {}
        for suffix in ("", "_2") if spec.pair else ("",):
            inputs[f"input_ids{suffix}"] = torch.randint(
                spec.vocab_size, (batch, length), device=device
            )
            inputs[f"mask{suffix}"] = torch.ones(batch, length, dtype=torch.bool, device=device)
        labels = torch.randint(spec.num_classes, (batch,), device=device)
        optimizer = runtime.adamw(model.parameters(), point.get("optim", {}), lr=1e-4)

        def step() -> None:
            with runtime.autocast(device, dtype):
                logits = forward(inputs)
                loss = F.cross_entropy(logits.float(), labels) + model.aux_loss()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        return step, model.num_params()

    # mode == "attention": the layer as the backbone wires it, for inputs of ``length`` positions
    attn = models.recipe_layer(model_cfg, backbone, positions=length)
    attn = attn.to(device).train()
    forward_attn = runtime.maybe_compile(attn, bool(point.get("compile")))
    dim = int(backbone["dim"])
    x = torch.randn(batch, length, dim, device=device, requires_grad=True)
    mask = torch.ones(batch, length, dtype=torch.bool, device=device)
    grad_out = torch.randn(batch, length, dim, device=device)

    def step() -> None:
        with runtime.autocast(device, dtype):
            out = forward_attn(x, mask)
            aux = attn.aux_loss()
        loss = (out.float() * grad_out).sum()
        if aux is not None:
            loss = loss + aux
        loss.backward()
        x.grad = None
        attn.zero_grad(set_to_none=True)

    return step, sum(p.numel() for p in attn.parameters())


def _timed(step, device: torch.device) -> float:
    """Run ``step`` once; wall time in ms (CUDA: events, synchronised)."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end))
    start_s = time.perf_counter()
    step()
    return (time.perf_counter() - start_s) * 1000


def sdpa_backend(step) -> str:
    """The kernels of ``scaled_dot_product_attention`` that one (untimed) call of ``step`` ran,
    read from the profiler's aten op names: ``flash``, ``efficient``, ``cudnn``, ``math``,
    joined by ``+``; ``""`` when the method calls none."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        step()
    names = {event.name for event in prof.events()}
    return "+".join(k for k, op in SDPA_KERNELS.items() if any(op in n for n in names))


def classify(err: BaseException) -> str:
    """Status of a failed point: ``oom``, ``timeout`` or ``error``."""
    if isinstance(err, PointTimeout):
        return "timeout"
    if isinstance(err, MemoryError | torch.OutOfMemoryError):
        return "oom"
    text = str(err).lower()
    if isinstance(err, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    ):
        return "oom"
    return "error"


def measure_point(point: dict[str, Any], baseline_mb: float | None = None) -> dict[str, Any]:
    """Measure one point; never raises for a failing point (its status says what happened).

    Args:
        point: ``method, mode (step|attention), length, batch, spec`` (TaskSpec fields, with
            ``max_len`` = length), ``backbone`` (resolved recipe), ``model_cfg`` (the method's
            YAML plus overrides), ``optim`` (betas, eps, weight_decay), ``device``, ``dtype``
            (fp32|bf16|fp16), ``threads`` (None = torch's default), ``warmup``, ``repeats``,
            ``seed``, ``deadline`` (``time.time()`` after which the point stops, or None).
        baseline_mb: RSS of this fresh process after its imports, when its high-water mark
            was reset at that moment; CPU peak memory is measured only then.

    Returns:
        the ``RESULT_KEYS`` fields; measured values are None unless ``status == "ok"``.
    """
    result: dict[str, Any] = dict.fromkeys(RESULT_KEYS)
    device = torch.device(point["device"])
    if point.get("threads"):
        torch.set_num_threads(int(point["threads"]))
    torch.manual_seed(int(point.get("seed", 0)))
    deadline = point.get("deadline")
    step = None
    try:
        step, result["params"] = build_step(point, device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        first_ms = _timed(step, device) if point.get("compile") else None  # compiles
        times = []
        for i in range(int(point["warmup"]) + int(point["repeats"])):
            if deadline is not None and time.time() > deadline:
                raise PointTimeout(f"deadline passed after {i} step(s)")
            ms = _timed(step, device)
            if i >= int(point["warmup"]):
                times.append(ms)
        median = float(np.median(times))
        q1, q3 = np.percentile(times, [25, 75])
        tokens = int(point["batch"]) * int(point["length"])
        if point["mode"] == "step" and point["spec"].get("pair"):
            tokens *= 2
        result |= {
            "status": "ok",
            "step_ms": round(median, 3),
            "step_ms_iqr": round(float(q3 - q1), 3),
            "steps_per_s": 1000 / median,
            "tokens_per_s": tokens * 1000 / median,
            "compile_s": None if first_ms is None else round((first_ms - median) / 1000, 3),
        }
        if device.type == "cuda":
            result["peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
            result["mem_kind"] = "cuda_max_allocated"
        elif baseline_mb is not None and (peak := peak_rss_mb()) is not None:
            result["peak_mb"] = peak - baseline_mb
            result["mem_kind"] = "rss_peak_minus_baseline"
        result["sdpa_backend"] = sdpa_backend(step)  # after the peak: the profiler costs memory
    except Exception as err:  # noqa: BLE001 - every failure becomes the point's status
        result["status"] = classify(err)
        result["error"] = f"{type(err).__name__}: {err}"[:500]
    del step
    if result["status"] != "ok":  # a traceback may keep tensors alive through frame cycles
        gc.collect()
    if device.type == "cuda":  # in-process runs: start the next point from an empty cache
        torch.cuda.empty_cache()
    return result


def _prime() -> None:
    """Trigger torch's lazy imports (building an optimiser imports ``torch._dynamo`` and sympy,
    ~75 MB and ~1 s) so that library code is part of the baseline, not of a point's peak."""
    weight = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.AdamW([weight])
    weight.sum().backward()
    optimizer.step()


def main(argv: list[str] | None = None) -> None:
    """``python -m lra.bench.worker RESULT.json`` with the point as JSON on stdin."""
    _prime()
    # the imports are done: the baseline and the high-water mark start here
    baseline = rss_mb() if reset_peak_rss() else None
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m lra.bench.worker RESULT.json < point.json")
    point = json.loads(sys.stdin.read())
    result = measure_point(point, baseline_mb=baseline)
    tmp = Path(args[0]).with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, args[0])


if __name__ == "__main__":
    main()
