"""The GPU check's dry run: every step of ``scripts/gpu_check.sh`` on the CPU, small."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from lra.check.gpu import peak_tflops

ROOT = Path(__file__).resolve().parents[1]


def test_peak_table_knows_the_usual_cards_and_nothing_else():
    assert peak_tflops("NVIDIA H100 80GB HBM3") == pytest.approx(989.4)
    assert peak_tflops("NVIDIA H100 PCIe") == pytest.approx(756.0)
    assert peak_tflops("NVIDIA H200") == pytest.approx(989.4)
    assert peak_tflops("NVIDIA A100-SXM4-80GB") == pytest.approx(312.0)
    assert peak_tflops("NVIDIA GeForce RTX 3090") is None


@pytest.mark.slow
def test_dry_run_runs_every_step_and_writes_its_files(tmp_path):
    proc = subprocess.run(
        [str(ROOT / "scripts" / "gpu_check.sh"), "--dry", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = (tmp_path / "summary.md").read_text()
    assert "all steps passed" in summary and "--dry" in summary
    assert json.loads((tmp_path / "device.json").read_text())["device"] == "cpu"
    precision = pd.read_csv(tmp_path / "precision.csv")
    assert precision["passed"].all() and len(precision) == 2 * precision["method"].nunique()
    bench = pd.read_csv(tmp_path / "bench" / "cpu_text.csv")
    assert set(bench["status"]) == {"ok"} and set(bench["method"]) == {"transformer", "local"}
    compiled = pd.read_csv(tmp_path / "bench" / "cpu_text_compile.csv")
    assert sorted(compiled["compile"]) == [False, False, True, True]
    assert (compiled.loc[compiled["compile"], "compile_s"] > 0).all()
    mfu = json.loads((tmp_path / "mfu.json").read_text())
    assert mfu["step_flops"] > 0 and mfu["achieved_tflops"] > 0 and mfu["mfu"] is None
    assert (tmp_path / "listops" / "run" / "record.json").is_file()
    assert len(pd.read_csv(tmp_path / "loader.csv")) == 4
