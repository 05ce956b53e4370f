"""``lra-bench``: speed and peak memory of attention methods, as in LRA Table 2.

    lra-bench                                    # all methods, Text recipe, L = 1K..4K, batch 32
    lra-bench methods=[transformer,transformer_naive] lengths=[1024,2048] batch_sizes=[1]
    lra-bench mode=both device=cuda dtype=bf16   # also the attention layer alone
    lra-bench model=external model.target=my_pkg.attn:MyAttention model.k=8   # beside references

For each method x mode x batch size x length (a *point*) it times one training step of the full
classifier at the task's recipe (``mode=step``: forward, backward, AdamW) and/or one attention
layer's forward + backward (``mode=attention``); what exactly is timed and how peak memory is
counted is in :mod:`lra.bench.worker`. Every point runs in its own fresh process by default
(``isolate=true``: needed for CPU peak memory, and a point that crashes, runs out of memory or
past ``timeout_s`` is killed and recorded without stopping the run). Once a point ends ``oom``
or ``timeout``, the longer lengths of the same method, mode and batch are ``skipped``.

Writes (``out_dir``, default ``$LRA_RESULTS_DIR/bench`` or, without that variable,
``outputs/results/bench`` (git-ignored); the committed tables only with
``out_dir=results/bench``; file stem ``out``, default ``<device type>_<task>``):

* ``<out>.csv``: one tidy row per point (:data:`lra.records.BENCH_COLUMNS`), appended, so
  several runs share one file. Every row carries the id of its ``lra-bench`` call
  (``bench_id``: UTC start + random suffix, :func:`new_bench_id`) and the host's fingerprint
  (``machine``, :func:`machine_fingerprint`). A CSV with the header of before these columns is
  rewritten once with the new header (its rows get ``legacy-...`` ids by
  :func:`lra.report.bench_tables.legacy_bench_ids`, ``machine`` empty), then appended to.
* ``<out>_relative.csv`` / ``.md``: per invocation and length, speed (steps/s ratio) and
  peak-memory ratio of each method versus each of ``references`` (``transformer_naive`` and
  ``transformer``) measured in the same invocation, as the relative numbers of LRA Table 2
  (Tay et al. 2021, §3.4), and parameters with LRA's 10 % rule.
  The numbers and their rendering are the report's (:mod:`lra.report.bench_tables`,
  :func:`lra.report.formats.efficiency_tables`), so ``lra-bench`` and ``lra-report`` print the
  same table. The Markdown is printed too; ``render_only=true`` rewrites these two files from
  ``<out>.csv`` without measuring.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

import models
from lra import runtime
from lra.bench.worker import RESULT_KEYS, measure_point, rss_mb
from lra.config import CONF_DIR, default_data_dir, load_group
from lra.provenance import device_label, git_sha
from lra.records import BENCH_COLUMNS, BENCH_LEGACY_COLUMNS
from lra.report.bench_tables import efficiency_frame, read_bench_csv, with_bench_ids
from lra.report.formats import efficiency_tables, markdown

if TYPE_CHECKING:
    from tasks.spec import TaskSpec

MODES = ("step", "attention")
POLL_S = 0.05  # how often the parent checks a worker's time and RSS


class BenchError(ValueError):
    """A bad ``lra-bench`` option; the message names it and the valid values."""


# --------------------------------------------------------------------------- options
def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def resolve_methods(methods: Any, option: str = "methods") -> list[str]:
    """``"all"`` -> every ``REGISTRY`` name (sorted); a list of registered names, installed
    entry-point names and import paths ``package.module:ClassName`` (:mod:`models.external`)
    is checked: each must resolve to an attention class."""
    methods = _plain(methods)
    if methods == "all":
        return sorted(models.REGISTRY)
    names = [methods] if isinstance(methods, str) else list(methods or [])
    if not names:
        raise BenchError(f"{option} is empty; {option}=all or a list of: {_known()}")
    for name in names:
        try:
            models.attention_class(str(name))
        except KeyError:
            raise BenchError(
                f"{option}: unknown method {name!r}; all or a list of: {_known()}"
            ) from None
        except ValueError as err:  # models.external.MethodError: names the target
            raise BenchError(f"{option}: {err}") from None
    return list(dict.fromkeys(map(str, names)))


def _known() -> str:
    from models.external import entry_points

    names = sorted(models.REGISTRY) + sorted(set(entry_points()) - set(models.REGISTRY))
    return ", ".join(names) + ", or package.module:ClassName"


def _positive_ints(name: str, values: Any) -> list[int]:
    values = _plain(values)
    values = [values] if isinstance(values, int) else values
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values)
    ):
        raise BenchError(f"{name} must be a non-empty list of positive ints, got {values!r}")
    return values


def _bools(name: str, values: Any) -> list[bool]:
    values = _plain(values)
    values = [values] if isinstance(values, bool) else values
    if not isinstance(values, list) or not values or not all(isinstance(v, bool) for v in values):
        raise BenchError(f"{name} must be true, false or a list of them, got {values!r}")
    return list(dict.fromkeys(values))


def recipe_backbone(task_cfg: DictConfig) -> dict[str, Any]:
    """The task recipe's backbone (``task.backbone``), validated, with every field filled."""
    try:
        return dataclasses.asdict(models.BackboneConfig.parse(task_cfg.backbone))
    except ValueError as err:
        raise BenchError(f"task {task_cfg.name!r} backbone: {err}") from None


def task_spec(task_cfg: DictConfig, length: int) -> TaskSpec:
    """The task's TaskSpec with ``max_len = length`` (read from the task class; no data)."""
    import tasks

    name = task_cfg.name
    if name not in tasks.TASKS:
        raise BenchError(f"task {name!r} has no class in tasks/; valid: {', '.join(tasks.TASKS)}")
    try:
        spec = tasks.TASKS[name](task_cfg, default_data_dir()).spec
    except (OSError, KeyError, ValueError) as err:
        raise BenchError(f"task {name!r}: cannot read its TaskSpec: {err}") from None
    return dataclasses.replace(spec, max_len=length)


def model_config(
    method: str,
    options: dict[str, Any],
    backbone: dict[str, Any] | None = None,
    positions: int = 1024,
) -> dict[str, Any]:
    """``conf/model/<method>.yaml``, or for a method from outside ``conf/model`` its name and
    ``target`` (:func:`lra.method_configs.method_node`), plus option overrides: names checked,
    and with a ``backbone`` the values too (one layer is built at ``positions``)."""
    from lra.method_configs import method_node

    try:
        cfg = _plain(load_group("model", method))
    except KeyError:
        cfg = method_node(method, method)
    valid = models.accepted_options(models.method_class(cfg))
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise BenchError(f"options.{method}: unknown option(s) {unknown}; accepted: {valid}")
    cfg = {**cfg, **options}
    if backbone is not None:
        try:
            models.recipe_layer(cfg, backbone, positions)
        except (TypeError, ValueError) as err:
            raise BenchError(f"{method}: {err}") from None
    return cfg


def plan(cfg: DictConfig) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """All points of the run (method-major, lengths ascending) and the fields common to the rows."""
    methods = resolve_methods(cfg.methods)
    if cfg.mode not in (*MODES, "both"):
        raise BenchError(f"mode must be one of step, attention, both; got {cfg.mode!r}")
    modes = list(MODES) if cfg.mode == "both" else [cfg.mode]
    lengths = sorted(set(_positive_ints("lengths", cfg.lengths)))
    task_cfg = cfg.task  # conf/task/<task>.yaml, composed by Hydra with its overrides
    backbone = recipe_backbone(task_cfg)
    batches = _positive_ints(
        "batch_sizes", cfg.batch_sizes if cfg.batch_sizes is not None else task_cfg.optim.batch_size
    )
    batches = list(dict.fromkeys(batches))  # one invocation measures each point once
    compiles = _bools("compile", cfg.compile)
    if cfg.dtype not in ("auto", *runtime.PRECISIONS):
        choices = ", ".join(runtime.PRECISIONS)
        raise BenchError(f"dtype must be one of auto, {choices}; got {cfg.dtype!r}")
    if int(cfg.repeats) < 1 or int(cfg.warmup) < 0:
        raise BenchError(f"need repeats >= 1 and warmup >= 0, got {cfg.repeats}, {cfg.warmup}")
    options = _plain(cfg.options) or {}
    unknown = sorted(set(options) - set(models.REGISTRY) - set(methods))
    if unknown:
        raise BenchError(f"options for unknown method(s) {unknown}; valid: {_known()}")
    resolve_methods(cfg.references, "references")

    try:
        device = runtime.resolve_device(str(cfg.device), key="device")
    except ValueError as err:
        raise BenchError(str(err)) from None
    dtype = cfg.dtype if cfg.dtype != "auto" else ("bf16" if device.type == "cuda" else "fp32")
    threads = cfg.threads or (1 if device.type == "cpu" else torch.get_num_threads())
    common = {
        "task": task_cfg.name,
        "device": device_label(device),
        "dtype": runtime.precision_name(runtime.PRECISIONS[dtype]),
        "threads": int(threads),
        "warmup": int(cfg.warmup),
        "repeats": int(cfg.repeats),
        "git_sha": git_sha(),
        "torch": torch.__version__,
    }
    optim = {k: _plain(task_cfg.optim.get(k)) for k in ("betas", "eps", "weight_decay")}
    specs = {n: dataclasses.asdict(task_spec(task_cfg, n)) for n in lengths}
    model_cfgs = {
        m: model_config(m, options.get(m) or {}, backbone, max(lengths) + 1) for m in methods
    }
    points = [
        {
            "method": method,
            "mode": mode,
            "length": length,
            "batch": batch,
            "spec": specs[length],
            "backbone": backbone,
            "model_cfg": model_cfgs[method],
            "optim": {k: v for k, v in optim.items() if v is not None},
            "device": str(device),
            "dtype": dtype,
            "threads": int(threads),
            "warmup": int(cfg.warmup),
            "repeats": int(cfg.repeats),
            "seed": int(cfg.seed),
            "compile": compile_,
        }
        for method in methods
        for compile_ in compiles
        for mode in modes
        for batch in batches
        for length in lengths
    ]
    return points, common


# --------------------------------------------------------------------------- provenance
def new_bench_id(now: datetime | None = None) -> str:
    """The id of one ``lra-bench`` call: UTC start and a random suffix, ``20261123T201645Z-3fa9c2``."""
    now = now or datetime.now(timezone.utc)
    return f"{now.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _ram_gib() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
    except (ValueError, OSError, AttributeError):
        return None


def _gpu_names() -> list[str]:
    """The GPUs of the host: ``nvidia-smi`` (all of them, no CUDA context in this process);
    torch's visible devices when it is missing; none without CUDA."""
    if not torch.cuda.is_available():
        return []
    if smi := shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                [smi, "--query-gpu=name", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=30, check=True,
            ).stdout  # fmt: skip
            names = [" ".join(n.split()) for n in out.splitlines() if n.strip()]
            if names:
                return names
        except (OSError, subprocess.SubprocessError):
            pass
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def machine_fingerprint() -> str:
    """What the host is, short and stable, without host or user names: CPU model, logical
    cores, total RAM (GiB), GPU names (``2x NVIDIA H200``) or ``no GPU``, torch version, e.g.
    ``AMD EPYC 7B13 · 2 cores · 8 GiB · no GPU · torch 2.13.0+cpu``."""
    ram = _ram_gib()
    gpus = _gpu_names()
    counts = {name: gpus.count(name) for name in dict.fromkeys(gpus)}
    gpu = " + ".join(f"{k}x {n}" if k > 1 else n for n, k in counts.items()) or "no GPU"
    parts = [_cpu_model(), f"{os.cpu_count() or '?'} cores"]
    parts += [f"{ram} GiB" if ram is not None else "? GiB", gpu, f"torch {torch.__version__}"]
    return " · ".join(parts)


# --------------------------------------------------------------------------- running points
def worker_command(result_path: Path) -> list[str]:
    """The command of one isolated point (reads the point on stdin, writes ``result_path``)."""
    return [sys.executable, "-m", "lra.bench.worker", str(result_path)]


def run_isolated(
    point: dict[str, Any], timeout_s: float | None, mem_limit_mb: float | None
) -> dict[str, Any]:
    """Measure ``point`` in a fresh ``python -m lra.bench.worker`` process.

    The worker is killed when it runs past ``timeout_s`` (status ``timeout``) or its RSS
    exceeds ``mem_limit_mb`` (status ``oom``); death by SIGKILL without a result is ``oom``
    too (the kernel's out-of-memory killer), any other death ``error`` with its last output.
    """
    start = time.monotonic()
    point = {**point, "deadline": time.time() + timeout_s if timeout_s else None}
    env = {**os.environ, "OMP_NUM_THREADS": str(point["threads"])}
    with tempfile.TemporaryDirectory(prefix="lra-bench-") as tmp:
        result_path, log_path = Path(tmp) / "result.json", Path(tmp) / "worker.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                worker_command(result_path),
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                text=True,
            )
            killed: tuple[str, str] | None = None
            try:
                try:
                    proc.stdin.write(json.dumps(point))
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
                while proc.poll() is None:
                    time.sleep(POLL_S)
                    if timeout_s and time.monotonic() - start > timeout_s:
                        killed = ("timeout", f"killed after timeout_s={timeout_s}")
                    elif mem_limit_mb and (rss := rss_mb(proc.pid) or 0) > mem_limit_mb:
                        killed = (
                            "oom",
                            f"killed at RSS {rss:.0f} MB > mem_limit_mb={mem_limit_mb}",
                        )
                    if killed:
                        proc.kill()
                        proc.wait()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        result = dict.fromkeys(RESULT_KEYS)
        if result_path.is_file():  # written before any kill: the worker's own verdict stands
            return result | json.loads(result_path.read_text())
        if killed:
            return result | {"status": killed[0], "error": killed[1]}
        tail = " | ".join(log_path.read_text(errors="replace").strip().splitlines()[-3:])
        if proc.returncode == -signal.SIGKILL:
            return result | {
                "status": "oom",
                "error": f"worker killed by SIGKILL (OOM killer?) {tail}",
            }
        return result | {
            "status": "error",
            "error": f"worker exited with code {proc.returncode}: {tail}"[:500],
        }


def _format(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.6g}")
    return value


def upgrade_legacy_csv(path: Path) -> int:
    """Rewrite a CSV with an older header (before ``bench_id``/``machine``, or before
    ``compile``) in the current one.

    Every cell is kept as written; a missing ``bench_id`` comes from
    :func:`lra.report.bench_tables.legacy_bench_ids` (``legacy-...``), a missing ``machine``
    stays empty, ``compile`` is false. The file is replaced atomically. Returns the number of
    rows.
    """
    old = pd.read_csv(path, dtype=str, keep_default_na=False)
    new = with_bench_ids(old).fillna("")
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=BENCH_COLUMNS)
        writer.writeheader()
        for row in new.to_dict("records"):
            writer.writerow({k: row.get(k, "") for k in BENCH_COLUMNS})
    os.replace(tmp, path)
    return len(new)


def _is_legacy_header(header: list[str]) -> bool:
    """A header of an older lra-bench: only known columns, all of the first version's, and
    fewer than now."""
    return set(BENCH_LEGACY_COLUMNS) <= set(header) < set(BENCH_COLUMNS)


def append_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Append rows to the CSV at ``path`` (header written once). A CSV with the legacy header
    (no ``bench_id``/``machine``) is first rewritten with the current one
    (:func:`upgrade_legacy_csv`); any other header is an error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    exists = path.is_file() and path.stat().st_size > 0
    if exists:
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
        if tuple(header) != BENCH_COLUMNS:
            if not _is_legacy_header(header):
                raise BenchError(
                    f"{path} has other columns ({header}); pick another out= or move it"
                )
            n = upgrade_legacy_csv(path)
            print(
                f"note: {path} had an older header; rewrote its {n} rows with the current one "
                "(missing: bench_id legacy-..., machine empty, compile false)",
                file=sys.stderr,
            )
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=BENCH_COLUMNS)
        if not exists:
            writer.writeheader()
        for row in rows:
            writer.writerow({k: _format(row.get(k)) for k in BENCH_COLUMNS})


# --------------------------------------------------------------------------- relative table
def write_relative(rows_csv: Path, references: list[str]) -> str:
    """Write ``<stem>_relative.csv`` and ``.md`` next to ``rows_csv``; return the Markdown.

    The table is the report's efficiency table over the rows of this one CSV: one table per
    setting and invocation (``bench_id``; legacy rows get theirs on reading).
    """
    frame = efficiency_frame(read_bench_csv(rows_csv), references)
    stem = rows_csv.with_suffix("")
    frame.to_csv(f"{stem}_relative.csv", index=False, float_format="%.4g")
    parts = [f"### {t.title}\n\n{markdown(t)}\n" + "".join(f"\n{n}\n" for n in t.notes)
             for t in efficiency_tables(frame, references)]  # fmt: skip
    text = "\n".join(parts)
    Path(f"{stem}_relative.md").write_text(text)
    return text


# --------------------------------------------------------------------------- the app
def output_paths(cfg: DictConfig, device_type: str) -> dict[str, Path]:
    stem = str(cfg.out or f"{device_type}_{cfg.task.name}").removesuffix(".csv")
    folder = Path(cfg.out_dir)
    return {
        "rows": folder / f"{stem}.csv",
        "relative": folder / f"{stem}_relative.csv",
        "markdown": folder / f"{stem}_relative.md",
    }


def render_only(cfg: DictConfig) -> str:
    """``render_only=true``: rewrite the relative tables of an existing ``<out>.csv``."""
    device = runtime.resolve_device(str(cfg.device), key="device")
    paths = output_paths(cfg, device.type)
    if not paths["rows"].is_file():
        raise BenchError(f"render_only: {paths['rows']} does not exist; set out= and out_dir=")
    text = write_relative(paths["rows"], list(_plain(cfg.references)))
    print(text)
    return text


def run(cfg: DictConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Measure every point of ``cfg`` (``conf/bench.yaml``), append the rows, write the tables.

    Every row gets this call's ``bench_id`` and the ``machine`` fingerprint.
    Returns ``(rows of this run, relative table over the whole CSV)``.
    """
    points, common = plan(cfg)
    common |= {"bench_id": new_bench_id(), "machine": machine_fingerprint()}
    print(f"lra-bench: invocation {common['bench_id']} on {common['machine']}", file=sys.stderr)
    references = list(_plain(cfg.references))
    paths = output_paths(cfg, torch.device(points[0]["device"]).type)
    timeout = float(cfg.timeout_s) if cfg.timeout_s else None
    mem_limit = float(cfg.mem_limit_mb) if cfg.mem_limit_mb else None
    rows: list[dict[str, Any]] = []
    failed: dict[tuple, tuple[str, int]] = {}  # (method, mode, batch, compile) -> (status, length)
    bar = tqdm(
        points,
        desc="lra-bench",
        disable=not cfg.progress,
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0.5 if sys.stderr.isatty() else 30,
    )
    for point in bar:
        where = (point["method"], point["mode"], point["batch"], point["compile"])
        bar.set_postfix_str(f"{where[0]} {where[1]} B={where[2]} L={point['length']}")
        if cfg.skip_larger and where in failed:
            status, length = failed[where]
            result = dict.fromkeys(RESULT_KEYS) | {
                "status": "skipped",
                "error": f"{status} at length {length}",
            }
        elif cfg.isolate:
            result = run_isolated(point, timeout, mem_limit)
        else:
            deadline = time.time() + timeout if timeout else None
            result = measure_point({**point, "deadline": deadline})
        if result["status"] in ("oom", "timeout"):
            failed.setdefault(where, (result["status"], point["length"]))
        row = {k: point[k] for k in ("method", "mode", "length", "batch", "compile")}
        row |= common | result
        row["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        append_rows(paths["rows"], [row])
        rows.append(row)
        bar.write(_summary(row))
    print(write_relative(paths["rows"], references))
    print(f"rows: {paths['rows']}\nrelative: {paths['relative']} (and {paths['markdown'].name})")
    return pd.DataFrame(rows, columns=BENCH_COLUMNS), pd.read_csv(paths["relative"])


def _summary(row: dict[str, Any]) -> str:
    head = f"{row['method']} {row['mode']} L={row['length']} B={row['batch']}: {row['status']}"
    if row["status"] != "ok":
        return f"{head} ({row['error']})"
    mem = "" if row["peak_mb"] is None else f", peak {row['peak_mb']:.0f} MB"
    return f"{head} {row['step_ms']:.1f} ms/step (IQR {row['step_ms_iqr']:.1f}){mem}"


_MODEL: dict[str, Any] = {}  # the method named lra-train's way on the command line (main)


def with_model(cfg: DictConfig, method: str, options: dict[str, Any], listed: bool) -> DictConfig:
    """``cfg`` measuring ``method`` (with ``options``) too: beside its ``references`` unless
    ``methods=`` was ``listed`` (then added to that list)."""
    cfg = cfg.copy()
    OmegaConf.set_struct(cfg, False)
    methods = resolve_methods(cfg.methods) if listed else list(_plain(cfg.references))
    cfg.methods = list(dict.fromkeys([*methods, method]))
    cfg.options = {**(_plain(cfg.options) or {}), **({method: options} if options else {})}
    return cfg


@hydra.main(config_path=str(CONF_DIR), config_name="bench", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    try:
        if _MODEL:
            cfg = with_model(cfg, **_MODEL)
        render_only(cfg) if cfg.render_only else run(cfg)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


def main() -> None:
    """Console entry point ``lra-bench``. A method may also be named as ``lra-train`` names it
    (``model=<name>`` or ``model=external model.target=pkg.module:Class``, options as
    ``model.<option>=``): it is measured beside the ``references`` (or added to ``methods=``)."""
    from lra.method_configs import split_model_args

    rest, method, options = split_model_args(sys.argv[1:])
    if method:
        listed = any(a.split("=")[0].lstrip("+") == "methods" for a in rest)
        _MODEL.update(method=method, options=options, listed=listed)
        sys.argv = [sys.argv[0], *rest]
    _hydra_main()


if __name__ == "__main__":
    main()
