"""The measuring scripts whose outputs are committed under ``results/``: ``bench_public.py``
(ours beside the public implementations) and ``time_smoke.py`` (a smoke preset end to end)."""

from __future__ import annotations

import csv
import importlib.util
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str):
    """``scripts/<name>.py`` as a module (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"script_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench_public():
    return load_script("bench_public")


def test_bench_public_measures_ours_in_a_fresh_process(bench_public):
    """A point runs in its own process and comes back as one ok row with a time and a peak."""
    row = bench_public.run_point(
        {"method": "htransformer", "impl": "ours", "length": 256, "repeats": 1}
    )
    assert row["status"] == "ok", row["error"]
    assert row["step_ms"] > 0
    assert row["peak_mb"] is None or row["peak_mb"] >= 0


def test_bench_public_point_that_fails_is_an_error_row(bench_public):
    """A point whose process fails (here: no such public package) is recorded, not raised,
    with the last line of its error."""
    row = bench_public.run_point({"method": "no_such_method", "impl": "public", "length": 64})
    assert row["status"] == "error"
    assert "no_such_method" in row["error"]
    assert row["step_ms"] is None


def test_bench_public_upgrades_an_old_header(bench_public, tmp_path):
    """Rows written before the repeats/round columns get the values the script used then."""
    old = [f for f in bench_public.FIELDS if f not in ("repeats", "round")]
    path = tmp_path / "cpu_public.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=old)
        writer.writeheader()
        writer.writerow({"method": "performer", "impl": "ours", "length": 1024})
    bench_public.upgrade_header(path)
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == bench_public.FIELDS
    assert (rows[0]["method"], rows[0]["repeats"], rows[0]["round"]) == ("performer", "3", "0")


def touched(mib: int) -> bytearray:
    """A buffer of ``mib`` MiB with every page written (so it counts in the RSS)."""
    buffer = bytearray(mib * 2**20)
    buffer[::4096] = b"x" * len(buffer[::4096])
    return buffer


def test_time_smoke_timed_reports_the_child_peak_and_exit():
    """``timed`` reads the child's own peak RSS and exit status, however large this process
    is: a child that exits at once stays small while this process holds 400 MiB."""
    timed = load_script("time_smoke").timed
    grow = "import sys; b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096]); sys.exit(3)"
    wall, rss, code = timed([sys.executable, "-c", grow])
    assert code == 3 and rss >= 300 and wall > 0
    held = touched(400)
    _, small, code = timed([sys.executable, "-c", "pass"])
    assert code == 0 and small < 200, f"{small:.0f} MiB: the parent's memory was counted"
    del held


@pytest.mark.slow
def test_time_smoke_writes_rows_without_touching_results(tmp_path):
    """The Path-X smoke preset with ``local``: a data row and a run row, both exit 0, the
    temporary folder hidden as $TMP in the commands, and nothing written under results/."""
    import subprocess

    out = tmp_path / "timing.csv"
    before = sorted(p.name for p in (ROOT / "results" / "runs").iterdir())
    subprocess.run(
        [sys.executable, "scripts/time_smoke.py", "--task", "pathx", "--models", "local"]
        + ["--out", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == ["-", "local"]
    assert all(r["exit"] == "0" and float(r["wall_s"]) > 0 for r in rows)
    hidden = tempfile.gettempdir()
    assert all("$TMP" in r["command"] and hidden not in r["command"] for r in rows)
    assert sorted(p.name for p in (ROOT / "results" / "runs").iterdir()) == before
