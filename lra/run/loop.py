"""The training loop: AdamW on the task's LRA schedule, evaluation, checkpoints, test.

One :class:`Trainer` is one run. ``fit`` trains to ``task.optim.steps``, evaluating on val every
``task.optim.eval_every`` steps (keeping ``best.pt``) and writing ``last.pt`` every
``trainer.ckpt_every`` steps; ``test`` gives test accuracy at the best-val step and at the last
step. Under ``torchrun`` every rank trains its slice of each global batch (:mod:`.distributed`).
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

import models
from lra import runtime
from lra.identity import config_hash, make_run_id
from lra.quirks import Quirks
from lra.run import distributed
from lra.run.batches import BatchOrder, EpochOrder, eval_batches, eval_starts, train_loader
from lra.run.checkpoint import (
    load_checkpoint,
    load_weights,
    rng_state,
    save_atomic,
    set_rng_state,
)
from lra.run.preempt import PreemptGuard
from lra.run.schedules import lr_at
from tasks import Task


@dataclass
class LoopState:
    """Everything about progress that a checkpoint must carry besides the weights."""

    step: int = 0
    best_val_acc: float | None = None
    best_step: int | None = None
    train_s: float = 0.0  # time in optimiser steps, less the steps that compiled
    tokens: int = 0  # real tokens of the steps in train_s
    timed_steps: int = 0  # the steps in train_s
    compile_s: float = 0.0  # time of the steps during which torch.compile built graphs
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_checkpoint(cls, state: dict[str, Any]) -> LoopState:
        """The state saved in ``last.pt``; a checkpoint from before ``timed_steps`` timed every
        one of its steps into ``train_s``."""
        return cls(**({"timed_steps": state["step"]} | state))


PROJECT_AFTER_STEPS = 5  # measured steps before the time projection is printed
LONG_CPU_RUN_S = 3600.0  # a projected CPU run longer than this gets the advice to shorten it
EVAL_BAR_MIN = 20  # evaluations of fewer batches show no progress bar


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


class Trainer:
    """One run: model, optimiser, schedule, checkpoints; ``fit`` then ``test``."""

    def __init__(self, cfg: DictConfig, run_dir: Path, task: Task):
        self.cfg, self.run_dir, self.task = cfg, Path(run_dir), task
        self.optim_cfg, self.tcfg = cfg.task.optim, cfg.trainer
        self.run_id, self.cfg_hash = make_run_id(cfg), config_hash(cfg)
        self.dist = distributed.from_env()
        self.device = runtime.resolve_device(self.tcfg.device, self.dist.local_rank)
        self.dtype = runtime.resolve_precision(self.tcfg.precision, self.device)
        self.steps, self.eval_every = int(self.optim_cfg.steps), int(self.optim_cfg.eval_every)
        self.ckpt_every = int(self.tcfg.ckpt_every or self.eval_every)
        self.grad_accum = int(self.tcfg.grad_accum)
        self.batch_size = int(self.optim_cfg.batch_size)
        if self.batch_size % self.grad_accum:
            raise ValueError(
                f"task.optim.batch_size {self.batch_size} is not divisible by "
                f"trainer.grad_accum {self.grad_accum}"
            )
        distributed.check_batch(self.batch_size, self.dist.world_size, self.grad_accum)
        distributed.setup(self.dist, self.device)  # no-op if run() did it or single process

        self.quirks = Quirks.of(cfg.get("quirks"), task.name)
        torch.manual_seed(cfg.seed)
        backbone = self.quirks.backbone(OmegaConf.to_container(cfg.task.backbone, resolve=True))
        self.model = models.build(task.spec, backbone, cfg.model).to(self.device)
        self.ddp = distributed.wrap(self.model, self.dist, self.device, int(cfg.seed))
        # what the steps and evaluations call: the (compiled) DDP wrapper and model
        self.train_forward = runtime.maybe_compile(self.ddp, bool(self.tcfg.compile))
        self.eval_forward = runtime.maybe_compile(self.model, bool(self.tcfg.compile))
        self.optimizer = runtime.adamw(self.model.parameters(), self.optim_cfg)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)
        # trimming a batch to its longest sequence only removes padding, unless the method's
        # pattern depends on the padded length (then every batch keeps the task's length)
        length_dependent = models.method_class(cfg.model).length_dependent
        self.trim = bool(self.tcfg.trim_padding) and not length_dependent
        self.state = LoopState()
        self.last_path, self.best_path = self.run_dir / "last.pt", self.run_dir / "best.pt"
        self.evaluated: dict[str, int] = {}  # split -> examples its last evaluation counted

    def _lr(self, step: int) -> float:
        o = self.optim_cfg
        return lr_at(step + 1, o.schedule, float(o.lr), int(o.warmup), self.steps)

    # -- checkpoints ---------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        """Write ``last.pt`` (rank 0; every rank must call: the RNG states are gathered)."""
        rng_ranks = distributed.gather_objects(rng_state()) if self.dist.enabled else None
        if self.dist.is_main:
            parts = ("model", "optimizer", "scheduler", "scaler")
            ckpt = {name: getattr(self, name).state_dict() for name in parts}
            ckpt |= {"config_hash": self.cfg_hash, "state": asdict(self.state)}
            save_atomic(ckpt | {"rng": rng_state(), "rng_ranks": rng_ranks}, self.last_path)

    def maybe_resume(self) -> bool:
        """Load ``last.pt`` if present and resuming is on; refuse a checkpoint of another config."""
        if not (self.tcfg.resume and self.last_path.is_file()):
            return False
        ckpt = load_checkpoint(self.last_path, self.cfg_hash, self.device)
        for name in ("model", "optimizer", "scheduler", "scaler"):
            getattr(self, name).load_state_dict(ckpt[name])
        self.state = LoopState.from_checkpoint(ckpt["state"])
        ranks = ckpt.get("rng_ranks")
        same_world = self.dist.enabled and ranks and len(ranks) == self.dist.world_size
        set_rng_state(ranks[self.dist.rank] if same_world else ckpt["rng"])
        return True

    # -- what the user sees ---------------------------------------------------------------
    def start_summary(self, record_file: Path) -> str:
        """Lines printed before training: what runs, on what, for how long, and where to."""
        sizes = self.task.summary().get("sizes", {})
        data = ", ".join(f"{k} {v:,}" for k, v in sizes.items())
        params = self.model.num_params()
        return "\n".join(
            [
                f"run {self.run_id}: task {self.task.name}, model {self.cfg.model.name}, "
                f"{params:,} parameters",
                f"  {self.steps:,} steps of batch {self.batch_size}, eval every "
                f"{self.eval_every:,}; data {data}",
                f"  device {self.device}, precision {self.tcfg.precision} ({self.dtype}); "
                f"record -> {record_file}",
            ]
        )

    def projection(self, per_step: float) -> str:
        """The measured ``per_step`` seconds and the projected rest of training; on a CPU,
        when that is long, how to shorten the run."""
        left = (self.steps - self.state.step) * per_step
        text = (
            f"timing: {per_step:.3g} s/step; the remaining {self.steps - self.state.step:,} "
            f"steps take about {_duration(left)} (evaluation not included)"
        )
        if self.device.type == "cpu" and left > LONG_CPU_RUN_S:
            text += (
                "\n  this is long for a CPU: experiment=smoke runs a CPU-sized recipe (ListOps, "
                "Pathfinder, Path-X), or shorten this one with task.optim.steps=N "
                "task.optim.eval_every=M (and smaller data: task.num_train=... for ListOps)"
            )
        return text

    # -- training ------------------------------------------------------------------------
    def train_step(self, batch: dict[str, torch.Tensor]) -> float:
        """One optimiser step over ``grad_accum`` micro-batches; returns the mean loss."""
        total = 0.0
        for i, micro in enumerate(_chunks(batch, self.grad_accum)):
            micro = runtime.to_device(micro, self.device)
            sync = self.ddp is self.model or i == self.grad_accum - 1  # DDP: reduce once
            with contextlib.nullcontext() if sync else self.ddp.no_sync():
                with runtime.autocast(self.device, self.dtype):
                    logits = self.train_forward(micro)
                    share = len(micro["label"]) / len(batch["label"])
                    loss = F.cross_entropy(logits.float(), micro["label"]) * share
                    loss = loss + self.model.aux_loss() / self.grad_accum
                self.scaler.scale(loss).backward()
            total += float(loss.detach())
        if self.dist.enabled:  # the global batch's mean loss (equal slices)
            total = distributed.all_reduce_sum([total], self.device)[0] / self.dist.world_size
        if not math.isfinite(total):
            raise Diverged(f"loss became {total} at step {self.state.step + 1}")
        if self.optim_cfg.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), float(self.optim_cfg.grad_clip))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        return total

    def fit(self, logger, guard: PreemptGuard | None = None) -> str:
        """Train to ``steps``; returns the status (``ok`` or ``diverged``).

        If ``guard`` caught a signal, the step in progress finishes, ``last.pt`` is written and
        :class:`lra.run.preempt.Preempted` is raised (all ranks agree on the step).
        """
        split = self.task.split("train")
        order_class = BatchOrder if self.quirks.batch_shuffle else EpochOrder
        order = order_class(len(split), self.batch_size, int(self.cfg.seed))
        if self.dist.enabled:
            order = distributed.ShardedOrder(order, self.dist.rank, self.dist.world_size)
        workers = int(self.tcfg.num_workers)
        loader = train_loader(split, order, self.state.step, self.steps, self.trim, workers)
        bar = self._progress_bar()
        self.model.train()
        projected = False
        train_s_at_start, timed_at_start = self.state.train_s, self.state.timed_steps
        try:
            for batch in loader:
                start, graphs = time.perf_counter(), runtime.compiled_graphs()
                batch = self.quirks.batch(batch)
                try:
                    loss = self.train_step(batch)
                except Diverged as err:
                    bar.write(f"diverged: {err}")
                    return "diverged"
                runtime.synchronize(self.device)
                seconds = time.perf_counter() - start
                tokens, stop = real_tokens(batch), guard is not None and guard.requested
                if self.dist.enabled:
                    tokens, stop = distributed.all_reduce_sum([tokens, stop], self.device)
                if runtime.compiled_graphs() > graphs:  # compile time is reported apart
                    self.state.compile_s += seconds
                else:
                    self.state.train_s += seconds
                    self.state.tokens += int(tokens)
                    self.state.timed_steps += 1
                self.state.step = step = self.state.step + 1
                timed = self.state.timed_steps - timed_at_start
                if not projected and timed >= PROJECT_AFTER_STEPS and self.dist.is_main:
                    projected = True
                    bar.write(self.projection((self.state.train_s - train_s_at_start) / timed))
                if self.tcfg.log_every and step % int(self.tcfg.log_every) == 0:
                    logger.log({"train_loss": loss, "lr": self.scheduler.get_last_lr()[0]}, step)
                if step % self.eval_every == 0 or step == self.steps:
                    val = self.validate(loss, logger)
                    best = self.state.best_val_acc
                    bar.set_postfix(loss=f"{loss:.3f}", val=f"{val:.3f}", best=f"{best:.3f}")
                if step % self.ckpt_every == 0 or step == self.steps:
                    self.save_checkpoint()
                bar.update(1)
                if stop and step < self.steps:
                    self._stop_on_signal(guard, bar)
        finally:
            bar.close()
        return "ok"

    def _stop_on_signal(self, guard: PreemptGuard, bar) -> None:
        if self.state.step % self.ckpt_every:
            self.save_checkpoint()
        distributed.barrier()
        bar.write(f"signal: saved {self.last_path} at step {self.state.step}; stopping")
        if guard.signum is None:  # another rank got the signal
            guard.signum = signal.SIGTERM
        guard.stop(self.state.step)

    def _progress_bar(self) -> tqdm:
        return tqdm(
            total=self.steps,
            initial=self.state.step,
            disable=not self.tcfg.progress or not self.dist.is_main,
            desc=self.run_id,
            dynamic_ncols=True,
            file=sys.stderr,
            mininterval=0.5 if sys.stderr.isatty() else 30,
        )

    # -- evaluation ----------------------------------------------------------------------
    def validate(self, loss: float, logger) -> float:
        """Val accuracy now; a new best writes ``best.pt``; the eval curve grows by one entry."""
        val_acc, step = self.evaluate("val"), self.state.step
        if self.state.best_val_acc is None or val_acc > self.state.best_val_acc:
            self.state.best_val_acc, self.state.best_step = val_acc, step
            if self.dist.is_main:
                save_atomic(self.model.state_dict(), self.best_path)
        entry = {"step": step, "train_loss": loss, "val_acc": val_acc}
        entry["lr"] = self.scheduler.get_last_lr()[0]
        self.state.history.append(entry)
        logger.log({k: v for k, v in entry.items() if k != "step"}, step)
        return val_acc

    @torch.inference_mode()
    def evaluate(self, split_name: str) -> float:
        """Accuracy on a prepared split. Under DDP rank ``r`` takes eval batches ``r, r + world,
        ...`` and the counts are summed, so every rank returns the whole split's accuracy.
        With ``quirks.drop_last_eval_batch`` the batches are training-sized and the last partial
        one is left out, as in the original."""
        drop_last = self.quirks.drop_last_eval_batch
        eval_size = self.batch_size if drop_last else self.tcfg.eval_batch_size
        batch_size = int(eval_size or self.batch_size)
        split = self.task.split(split_name)
        batches = eval_batches(
            split, batch_size, self.trim, self.tcfg.max_eval_batches, drop_last=drop_last
        )
        count = len(eval_starts(len(split), batch_size, self.tcfg.max_eval_batches, drop_last))
        batches = tqdm(
            batches,
            total=count,
            desc=f"eval {split_name}",
            leave=False,
            disable=not self.tcfg.progress or not self.dist.is_main or count < EVAL_BAR_MIN,
            dynamic_ncols=True,
            file=sys.stderr,
            mininterval=0.5 if sys.stderr.isatty() else 30,
        )
        self.model.eval()
        correct = total = 0
        for i, batch in enumerate(batches):
            if i % self.dist.world_size != self.dist.rank:
                continue
            batch = runtime.to_device(self.quirks.batch(batch), self.device)
            with runtime.autocast(self.device, self.dtype):
                logits = self.eval_forward(batch)
            correct += int((logits.argmax(-1) == batch["label"]).sum())
            total += len(batch["label"])
        self.model.train()
        correct, total = distributed.all_reduce_sum([correct, total], self.device)
        self.evaluated[split_name] = int(total)
        return correct / max(total, 1)

    def test(self) -> tuple[float | None, float | None]:
        """Test accuracy at the best-val checkpoint and at the last step (both the last step's
        with ``quirks.last_checkpoint``, as the original reported)."""
        last = self.evaluate("test")
        if self.quirks.last_checkpoint:
            return last, last
        if self.state.best_step is None or self.state.best_step == self.state.step:
            return (last if self.state.best_step is not None else None), last
        distributed.barrier()  # best.pt is written by rank 0
        self.model.load_state_dict(load_weights(self.best_path, self.device))
        return self.evaluate("test"), last


def _duration(seconds: float) -> str:
    """``42 s``, ``12 min``, ``3.4 h`` or ``2.1 days``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def real_tokens(batch: dict[str, torch.Tensor]) -> int:
    """Number of real (unpadded) tokens in a batch, both documents of a pair counted."""
    return int(sum(batch[k].sum() for k in ("mask", "mask_2") if k in batch))


def _chunks(batch: dict[str, torch.Tensor], parts: int):
    """``parts`` equal micro-batches of ``batch`` (the batch itself when ``parts == 1``)."""
    if parts == 1:
        yield batch
        return
    pieces = {k: v.chunk(parts) for k, v in batch.items()}
    for i in range(len(pieces["label"])):
        yield {k: v[i] for k, v in pieces.items()}
