"""The README's commands stay true: every ``lra-train`` / ``lra-data`` / ``lra-eval`` line quoted in its bash
blocks names keys that exist and composes (the first job of a sweep, with its group choices)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from lra.config import compose
from lra.run.overrides import check_overrides
from lra.run.sweep import job_overrides

README = Path(__file__).resolve().parents[1] / "README.md"
COMMANDS = ("lra-train", "lra-data", "lra-eval")


def quoted_commands() -> list[tuple[int, str, list[str]]]:
    """``(line number, command, arguments)`` of each lra-train/lra-data line in a bash block;
    a ``PYTHONPATH=...`` prefix stays as the first argument."""
    found, in_bash = [], False
    for number, line in enumerate(README.read_text().splitlines(), start=1):
        if line.startswith("```"):
            in_bash = line.strip() == "```bash" if not in_bash else False
            continue
        if not in_bash:
            continue
        words = shlex.split(line.split(" #")[0], posix=True) if line.strip() else []
        env = []
        while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # LRA_RESULTS_DIR=... prefix
            env += [words[0]] if words[0].startswith("PYTHONPATH=") else []
            words = words[1:]
        if words and words[0] in COMMANDS:
            found.append((number, words[0], env + words[1:]))
    return found


def test_the_readme_quotes_commands():
    commands = quoted_commands()
    assert len(commands) >= 20, commands  # the extraction itself works
    assert any("--dry-run" in args for _, _, args in commands)


@pytest.mark.parametrize(
    ("number", "command", "args"), quoted_commands(), ids=lambda v: str(v)[:40]
)
def test_each_quoted_command_is_valid(number, command, args, monkeypatch):
    config = "data" if command == "lra-data" else "train"
    for path in [a.split("=", 1)[1] for a in args if a.startswith("PYTHONPATH=")]:
        monkeypatch.syspath_prepend(str(README.parent / path))  # relative to the repository
    args = [a for a in args if not a.startswith("PYTHONPATH=")]
    args = [a for a in args if a != "--dry-run"]
    if command == "lra-eval":
        from lra.run.evaluate import _options

        args = [a for a in _options(args)[0] if not a.startswith("run_dir=")]
    problem = check_overrides(args, config)
    assert problem is None, f"README line {number}: {problem}"
    if command == "lra-train":
        first_job = job_overrides(args)[0]
        compose("train", [o for o in first_job if not o.startswith("hydra")])
    else:
        compose("data", [a for a in args if not a.startswith("-")])


def test_a_wrong_key_in_a_quoted_command_would_fail():
    assert check_overrides(["experiment=smoke", "task.optim.stpes=3"]) is not None
