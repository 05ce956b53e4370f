"""The dependency rules of the layout: ``tasks`` is a library that never imports the harness."""

from __future__ import annotations

import ast
import subprocess
import sys


def loaded_after(statement: str, prefixes: tuple[str, ...]) -> list[str]:
    """Modules whose names start with one of ``prefixes`` once ``statement`` ran in a fresh
    interpreter."""
    script = (
        f"import sys\n{statement}\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {prefixes!r}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return ast.literal_eval(done.stdout)


def test_tasks_import_nothing_from_lra():
    assert loaded_after("import tasks", ("lra",)) == []


def test_the_probe_sees_what_is_imported():
    assert loaded_after("import lra.config", ("lra",)) == ["lra", "lra.config"]
