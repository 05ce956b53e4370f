"""What a result row records about where it came from: code version, device, library versions."""

from __future__ import annotations

import platform
import subprocess
from functools import cache
from pathlib import Path

import torch

from lra.config import REPO_ROOT


@cache
def git_sha() -> str | None:
    """Commit of the checkout this code runs from, with ``-dirty`` if tracked files changed;
    None outside git. Changes under ``results/`` do not count: they are what runs write (a
    benchmark appends to its CSV, the next one in the same checkout would look dirty)."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!results"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return sha + ("-dirty" if dirty else "")


def device_name(device: torch.device) -> str:
    """Human-readable device, e.g. ``cuda:NVIDIA H100 80GB HBM3`` or ``cpu:2 threads``."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{torch.get_num_threads()} threads"


def device_label(device: torch.device) -> str:
    """``cuda:<GPU name>`` or ``cpu:<CPU model>``: the hardware a benchmark row ran on."""
    if device.type == "cuda":
        return device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return "cpu:" + line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"cpu:{platform.processor() or platform.machine()}"
