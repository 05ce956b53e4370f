"""``lra-eval``: a finished or interrupted run's checkpoint evaluated on val and test.

    lra-eval task=listops model=performer seed=1            # best.pt of that run, val and test
    lra-eval experiment=smoke --checkpoint last --splits test
    lra-eval experiment=smoke run_dir=outputs/listops/transformer/seed0/experiment=smoke --write

The run is named by the same overrides as the ``lra-train`` command that made it: its folder
is the one under ``outputs/`` or ``multirun/`` whose saved config (``.hydra/config.yaml``)
has the same configuration hash, or ``run_dir=``. ``best.pt`` is the best-val checkpoint,
``last.pt`` the latest (an interrupted run has it). Like the original LRA trainers'
``--test_only``; nothing is written unless ``--write`` is given, and then only
``<run_dir>/eval_<checkpoint>.json``: the run's record is never changed.
Exit codes: 0 done, 1 no run folder or checkpoint, 2 usage error.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lra.config import compose
from lra.identity import config_hash, make_run_id
from lra.run.overrides import check_overrides

SEARCH_ROOTS = ("outputs", "multirun")
USAGE = "lra-eval [overrides of the run] [run_dir=DIR] [--checkpoint best|last] [--splits val,test] [--write]"


def find_run_dir(cfg: DictConfig, roots: tuple[str, ...] = SEARCH_ROOTS) -> Path | None:
    """The newest run folder under ``roots`` whose saved config hashes like ``cfg``."""
    wanted = config_hash(cfg)
    found = []
    for root in roots:
        for saved in Path(root).glob("**/.hydra/config.yaml"):
            try:
                other = OmegaConf.load(saved)
            except Exception:  # noqa: BLE001 - an unreadable folder is not this run
                continue
            if config_hash(other) == wanted:
                found.append(saved.parent.parent)
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def evaluate_run(
    cfg: DictConfig, run_dir: Path, checkpoint: str, splits: list[str]
) -> dict[str, Any]:
    """Accuracy and examples counted per split for ``checkpoint`` (``best`` or ``last``)."""
    from lra.run.checkpoint import load_checkpoint, load_weights
    from lra.run.loop import Trainer
    from tasks import task_from_config

    task = task_from_config(cfg.task, cfg.data_dir)
    task.prepare()
    trainer = Trainer(cfg, run_dir, task)
    if checkpoint == "best":
        trainer.model.load_state_dict(load_weights(trainer.best_path, trainer.device))
        step = None
    else:
        ckpt = load_checkpoint(trainer.last_path, trainer.cfg_hash, trainer.device)
        trainer.model.load_state_dict(ckpt["model"])
        step = ckpt["state"]["step"]
    result: dict[str, Any] = {"run_id": trainer.run_id, "run_dir": str(run_dir)}
    result |= {"checkpoint": checkpoint, "step": step}
    for split in splits:
        result[f"{split}_acc"] = trainer.evaluate(split)
        result[f"n_{split}"] = trainer.evaluated[split]
    result["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return result


def _options(argv: list[str]) -> tuple[list[str], dict[str, Any]] | str:
    """Overrides and options, or the usage error."""
    opts: dict[str, Any] = {"checkpoint": "best", "splits": ["val", "test"], "write": False}
    rest, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--write":
            opts["write"] = True
        elif arg in ("--checkpoint", "--splits"):
            if i + 1 >= len(argv):
                return f"{arg} needs a value"
            i += 1
            opts[arg[2:]] = argv[i] if arg == "--checkpoint" else argv[i].split(",")
        elif arg.startswith("--"):
            return f"unknown option {arg}"
        else:
            rest.append(arg)
        i += 1
    if opts["checkpoint"] not in ("best", "last"):
        return f"--checkpoint must be best or last, got {opts['checkpoint']!r}"
    bad = [s for s in opts["splits"] if s not in ("val", "test")]
    if bad:
        return f"--splits takes val and/or test, got {bad}"
    return rest, opts


def main(argv: list[str] | None = None) -> int:
    """Console entry point ``lra-eval``; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a in ("-h", "--help") for a in argv):
        print(f"usage: {USAGE}\n\n{__doc__}")
        return 0
    parsed = _options(argv)
    if isinstance(parsed, str):
        print(f"lra-eval: {parsed}; usage: {USAGE}", file=sys.stderr)
        return 2
    overrides, opts = parsed
    run_dir_arg = next((a.split("=", 1)[1] for a in overrides if a.startswith("run_dir=")), None)
    overrides = [a for a in overrides if not a.startswith("run_dir=")]
    problem = check_overrides(overrides)
    if problem:
        print(f"lra-eval: {problem}", file=sys.stderr)
        return 2
    cfg = compose("train", overrides)
    run_dir = Path(run_dir_arg) if run_dir_arg else find_run_dir(cfg)
    if run_dir is None:
        print(
            f"lra-eval: no run folder of {make_run_id(cfg)} under {', '.join(SEARCH_ROOTS)}; "
            "give the lra-train command's overrides, or run_dir=DIR",
            file=sys.stderr,
        )
        return 1
    path = run_dir / f"{opts['checkpoint']}.pt"
    if not path.is_file():
        print(f"lra-eval: {path} does not exist (try --checkpoint last)", file=sys.stderr)
        return 1
    from lra.run.checkpoint import CheckpointError

    try:
        result = evaluate_run(cfg, run_dir, opts["checkpoint"], opts["splits"])
    except CheckpointError as err:
        print(f"lra-eval: {err}", file=sys.stderr)
        return 1
    accs = ", ".join(
        f"{s} {100 * result[f'{s}_acc']:.2f}% (n={result[f'n_{s}']})" for s in opts["splits"]
    )
    print(f"{result['run_id']} {opts['checkpoint']}.pt: {accs}")
    if opts["write"]:
        out = run_dir / f"eval_{opts['checkpoint']}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
