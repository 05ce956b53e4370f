"""lra-report from hand-made records and bench rows: exact cells, averages, missing and failed
runs, best marks, published rows, LaTeX/HTML/CSV outputs, the plots and wandb hooks."""

from __future__ import annotations

import csv
import functools
import json
import re
import subprocess
import sys
import types

import pandas as pd
import pytest
from omegaconf import OmegaConf

from lra.config import compose
from lra.records import BENCH_COLUMNS as COLUMNS
from lra.records import RECORD_KEYS, records_frame, write_record
from lra.report.cli import (
    MISSING,
    ReportError,
    format_cell,
    leaderboard,
    load_bench,
    load_runs,
    run,
    write_report,
)
from lra.report.tables import leaderboard_frame, published_frame, read_published

TASKS = ["listops", "text", "retrieval", "image", "pathfinder", "pathx"]


@functools.cache
def composed(task: str, model: str, protocol: str, overrides: tuple[str, ...]) -> str:
    """The resolved config of ``lra-train task=<task> model=<model> [experiment] [overrides]``."""
    extra = [f"experiment={protocol}"] if protocol != "lra" else []
    cfg = compose("train", [f"task={task}", f"model={model}", *extra, *overrides])
    return json.dumps(OmegaConf.to_container(cfg, resolve=True))


def make_record(
    run_id, task, model, seed, acc, status="ok", protocol="lra", created="2026-01-01",
    overrides=(), val=None,
):  # fmt: skip
    record = dict.fromkeys(RECORD_KEYS)
    record.update(
        schema=2,
        run_id=run_id,
        created=created,
        task=task,
        model=model,
        seed=seed,
        status=status,
        test_acc=acc,
        val_acc=val,
        config=json.loads(composed(task, model, protocol, tuple(overrides))) | {"seed": seed},
    )
    return record


@pytest.fixture
def results(tmp_path):
    rows = [
        make_record("a0", "listops", "transformer", 0, 0.36),
        make_record("a1", "listops", "transformer", 1, 0.38),
        make_record("a2", "listops", "transformer", 2, None, status="failed"),
        make_record("b0", "listops", "performer", 0, None, status="diverged"),
        make_record("c0", "text", "performer", 0, 0.65),
        make_record("s0", "listops", "transformer", 0, 0.30, protocol="smoke"),
    ]
    for row in rows:
        write_record(tmp_path, row)
    return tmp_path


def test_cells_mean_std_n_and_missing(results):
    tables = leaderboard(records_frame(results), ["listops", "text"])
    assert set(tables) == {"lra", "smoke"}
    lra = tables["lra"]
    assert lra.loc["transformer", "listops"] == "37.00 ± 1.41 (n=2), 1 not ok"
    assert lra.loc["transformer", "text"] == MISSING
    assert lra.loc["performer", "listops"] == "diverged (n=1)"
    assert lra.loc["performer", "text"] == "65.00 (n=1)"
    assert tables["smoke"].loc["transformer", "listops"] == "30.00 (n=1)"


def test_rerun_with_same_id_counts_once(tmp_path):
    write_record(
        tmp_path, make_record("x", "listops", "transformer", 0, 0.20, created="2026-01-01")
    )
    write_record(
        tmp_path, make_record("y", "listops", "transformer", 1, 0.40, created="2026-01-01")
    )
    # a later re-run of run x overwrites its file; the frame keeps one row per run id
    write_record(
        tmp_path, make_record("x", "listops", "transformer", 0, 0.30, created="2026-01-02")
    )
    frame = records_frame(tmp_path)
    assert len(frame) == 2
    cell = leaderboard(frame, ["listops"])["lra"].loc["transformer", "listops"]
    assert cell.startswith("35.00 ± 7.07 (n=2)")


def test_format_cell_never_turns_missing_into_zero():
    assert format_cell([], []) == MISSING
    assert format_cell([None], ["failed"]) == "failed (n=1)"
    # the failed run is flagged, not averaged in as 0 (which would give 25.00)
    assert format_cell([None, 0.5], ["failed", "ok"]) == "50.00 (n=1), 1 not ok"


def test_write_report_writes_markdown(results, tmp_path):
    out = tmp_path / "out"
    text = write_report(results, out, ["listops", "text"])
    assert (out / "leaderboard.md").read_text() == text
    # deliberate format change: a source column, task titles and the two averages
    assert "| source | model | ListOps | Text | Avg-5 | Avg-6 |" in text
    assert "## protocol: smoke" in text


def test_empty_results_dir(tmp_path):
    assert "No result records" in write_report(tmp_path, tmp_path, ["listops"])
    assert "No benchmark rows" in (tmp_path / "efficiency.md").read_text()


# --------------------------------------------------------------------------- full table
PUBLISHED = """source,model,listops,text,retrieval,image,pathfinder,pathx,avg,citation,note
paper,A<B & C_1,40.00,60.00,50.00,45.00,70.00,FAIL,53.00,"Someone et al., 2021",
paper,Partial,38.36,68.40,81.95,,,,,"Other et al.",[UNVERIFIED] check
"""


@pytest.fixture
def full(tmp_path):
    """Three models with all six tasks attempted in different ways, plus a smoke run."""
    accs = {
        # model: {task: [(acc, status), ...]}
        "transformer": {
            "listops": [(0.36, "ok"), (0.38, "ok"), (None, "failed")],
            "text": [(0.64, "ok"), (0.66, "ok")],
            "retrieval": [(0.57, "ok")],
            "image": [(0.42, "ok")],
            "pathfinder": [(0.70, "ok"), (0.72, "ok")],
            "pathx": [(None, "failed"), (None, "diverged")],  # attempted and failed: 50
        },
        "performer": {  # ListOps diverged, Path-X never run
            "listops": [(None, "diverged")],
            "text": [(0.65, "ok")],
            "retrieval": [(0.55, "ok")],
            "image": [(0.44, "ok")],
            "pathfinder": [(0.75, "ok")],
        },
        "linear": {
            "listops": [(0.30, "ok")],
            "text": [(0.60, "ok")],
            "retrieval": [(0.50, "ok")],
            "image": [(0.40, "ok")],
            "pathfinder": [(0.80, "ok")],
            "pathx": [(0.60, "ok")],
        },
    }
    for model, by_task in accs.items():
        for task, runs in by_task.items():
            for seed, (acc, status) in enumerate(runs):
                write_record(
                    tmp_path, make_record(f"{task}-{model}-{seed}", task, model, seed, acc, status)
                )
    write_record(
        tmp_path, make_record("smoke-0", "listops", "transformer", 0, 0.3, protocol="smoke")
    )
    (tmp_path / "published.csv").write_text(PUBLISHED)
    return tmp_path


def report(full, **kw):
    out = full / "out"
    text = write_report(
        full, out, TASKS, published_csv=full / "published.csv", published_sources=["paper"], **kw
    )
    return out, text


def md_row(text: str, model: str, source: str = "ours") -> list[str]:
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 2 and cells[0] == source and cells[1] == model:
            return cells[2:]
    raise AssertionError(f"no row {source}/{model} in\n{text}")


def test_both_averages_exact(full):
    wide = leaderboard_frame(records_frame(full), TASKS)
    lra = wide[wide["protocol"] == "lra"].set_index("model")
    t = lra.loc["transformer"]
    assert t["avg5"] == pytest.approx((37 + 65 + 57 + 42 + 71) / 5)  # 54.4
    assert t["avg6"] == pytest.approx((37 + 65 + 57 + 42 + 71 + 50) / 6)  # failed Path-X = 50
    assert (t["avg5_tasks"], t["avg6_tasks"]) == (5, 6)
    assert t["pathx_state"] == "diverged/failed" and t["pathx_n_runs"] == 2
    p = lra.loc["performer"]  # diverged ListOps and missing Path-X are never 0 nor 50
    assert p["avg5"] == pytest.approx((65 + 55 + 44 + 75) / 4) and p["avg5_tasks"] == 4
    assert p["avg6_tasks"] == 4 and p["pathx_state"] == "missing"
    lin = lra.loc["linear"]
    assert lin["avg6"] == pytest.approx((30 + 60 + 50 + 40 + 80 + 60) / 6)
    assert t["listops_std"] == pytest.approx(1.41421356, rel=1e-6) and t["listops_n"] == 2


def test_markdown_cells_best_marks_and_incomplete_averages(full):
    _, text = report(full)
    lra, smoke = text.split("## protocol: smoke")
    t, p, lin = md_row(lra, "transformer"), md_row(lra, "performer"), md_row(lra, "linear")
    assert t == [
        "**37.00 ± 1.41 (n=2), 1 not ok**",
        "**65.00 ± 1.41 (n=2)**",  # tie at 65.00 with performer: both bold
        "**57.00 (n=1)**",
        "42.00 (n=1)",
        "71.00 ± 1.41 (n=2)",
        "diverged/failed (n=2)",
        "**54.40**",
        "**53.67**",
    ]
    assert p == [
        "diverged (n=1)",
        "**65.00 (n=1)**",
        "55.00 (n=1)",
        "**44.00 (n=1)**",
        "75.00 (n=1)",
        MISSING,
        "(59.75, 4/5)",  # incomplete: never printed as a full average, never bold
        "(59.75, 4/6)",
    ]
    assert lin[0] == "30.00 (n=1)" and lin[4] == "**80.00 (n=1)**" and lin[5] == "**60.00 (n=1)**"
    assert lin[6:] == ["52.00", "53.33"]
    # published rows below ours, after a separator, with recomputed averages
    assert lra.index("published (other code") < lra.index("| paper |")
    assert md_row(lra, "A<B & C_1", "paper")[5:] == ["FAIL", "53.00", "52.50"]
    assert md_row(lra, "Partial", "paper")[3:] == [
        MISSING,
        MISSING,
        MISSING,
        "(62.90, 3/5)",
        "(62.90, 3/6)",
    ]
    # smoke never mixes with lra and shows no published rows
    assert md_row(smoke, "transformer")[0] == "**30.00 (n=1)**"
    assert "| paper |" not in smoke and "performer" not in smoke


def test_shipped_published_rows_follow_both_conventions():
    pub = published_frame(read_published(), ["lra_table1", "s4", "mega"]).set_index("model")
    # LRA Table 1 prints the 5-task average; the S4 tables print the 6-task one (FAIL = 50)
    assert round(pub.loc["Transformer", "avg5"], 2) == 54.39
    assert round(pub.loc["Transformer", "avg6"], 2) == 53.66
    assert round(pub.loc["Reformer", "avg6"], 2) == 50.56
    assert round(pub.loc["MEGA", "avg6"], 2) == 88.21  # Mega's printed 6-task average
    with pytest.raises(ValueError, match="valid: .*lra_table1"):
        published_frame(read_published(), ["nope"])


def latex_tabulars(tex: str) -> list[tuple[int, list[str]]]:
    """(column count from the spec, body rows between \\midrule and \\bottomrule) per tabular."""
    found = []
    for spec, body in re.findall(r"\\begin\{tabular\}\{([lrc]+)\}(.*?)\\bottomrule", tex, re.S):
        rows = body.split("\\midrule", 1)[1].splitlines()
        found.append((len(spec), [r for r in rows if r.strip() and r.strip() != "\\midrule"]))
    return found


def assert_latex_structure(tex: str) -> None:
    plain = re.sub(r"\\[{}]", "", tex)  # escaped braces do not count
    assert plain.count("{") == plain.count("}")
    for env in ("table", "tabular"):
        assert tex.count(f"\\begin{{{env}}}") == tex.count(f"\\end{{{env}}}") >= 1
    tabulars = latex_tabulars(tex)
    assert tabulars
    for ncols, rows in tabulars:
        assert rows
        for row in rows:
            assert row.endswith("\\\\"), row
            assert len(re.findall(r"(?<!\\)&", row)) + 1 == ncols, row
    body = "\n".join(line for line in tex.splitlines() if not line.startswith("%"))
    assert "±" not in body and re.search(r"(?<!\\)[%_]", body) is None


def test_latex_compiles_structurally(full):
    out, _ = report(full)
    tex = (out / "leaderboard.tex").read_text()
    assert_latex_structure(tex)
    assert "\\toprule" in tex and "\\textbf{54.40}" in tex and "\\textbf{53.67}" in tex
    assert "37.00 $\\pm$ 1.41 (n=2), 1 not ok" in tex
    assert "A<B \\& C\\_1" in tex and "---" in tex
    assert len(latex_tabulars(tex)) == 2  # one per protocol


def test_html_escapes_and_marks(full):
    out, _ = report(full)
    page = (out / "leaderboard.html").read_text()
    assert page.count("<table") == 2 and "<strong>54.40</strong>" in page
    assert "A&lt;B &amp; C_1" in page and "A<B" not in page
    assert "<h2>protocol: lra</h2>" in page


def test_csv_round_trips(full):
    out, _ = report(full)
    board = pd.read_csv(out / "leaderboard.csv")
    ours = board[(board["protocol"] == "lra") & (board["source"] == "ours")].set_index("model")
    assert ours.loc["transformer", "avg5"] == pytest.approx(54.4)
    assert ours.loc["performer", "pathx_state"] == "missing"
    assert ours.loc["performer", "avg5_tasks"] == 4
    assert set(board[board["source"] == "paper"]["protocol"]) == {"lra"}
    expected = leaderboard_frame(records_frame(full), TASKS)
    back = board[board["source"] == "ours"].reset_index(drop=True)[expected.columns]
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(runs["run_id"]) == sorted(records_frame(full)["run_id"])
    assert set(runs["kind"]) == {"run"} and set(runs["protocol"]) == {"lra", "smoke"}


# --------------------------------------------------------------------------- efficiency
def bench_row(method, length, steps, peak_mb, params, status="ok", created="2026-01-01"):
    row = dict.fromkeys(COLUMNS)
    row.update(method=method, mode="step", task="text", length=length, batch=1, device="cpu")
    row.update(dtype="float32", threads=1, steps_per_s=steps, peak_mb=peak_mb, params=params)
    row.update(step_ms=None if steps is None else 1000 / steps, mem_kind="rss", status=status)
    return row | {"created": created, "bench_id": "b1"}


def write_bench(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def test_efficiency_table(tmp_path):
    write_bench(
        tmp_path / "bench" / "cpu_text.csv",
        [
            bench_row("transformer_naive", 1024, 2.0, 1024, 1000),
            bench_row("transformer", 1024, 9.0, 9999, 1000),  # superseded by the re-run below
            bench_row("transformer", 1024, 2.5, 512, 1000, created="2026-01-02"),
            bench_row("transformer_naive", 2048, 1.0, 2048, 1000),
            bench_row("transformer", 2048, 1.0, 2048, 1000),
            bench_row("performer", 1024, 4.0, 256, 1200),
            bench_row("performer", 2048, None, None, 1200, status="oom"),
        ],
    )
    (tmp_path / "bench" / "cpu_text_relative.csv").write_text("task,method\ntext,x\n")  # ignored
    bench = load_bench(tmp_path)
    assert len(bench) == 6 and set(bench["source_file"]) == {"cpu_text.csv"}
    write_report(tmp_path, tmp_path / "out", TASKS)
    text = (tmp_path / "out" / "efficiency.md").read_text()
    header = "| method | steps/s 1K | steps/s 2K | peak GB 1K | peak GB 2K | params | × transformer | ≤ 10 % |"
    assert header in text
    assert (
        "| transformer | 2.5 (1.25×, 1.00×) | 1 (1.00×, 1.00×) | 0.50 (0.50×, 1.00×) | 2.00 (1.00×, 1.00×) | 1,000 | 1.000× | yes |"
        in text
    )
    assert (
        "| performer | 4 (2.00×, 1.60×) | oom | 0.25 (0.25×, 0.50×) | oom | 1,200 | 1.200× | **no** |"
        in text
    )
    assert "## published: Tay et al." in text and "| Performer | 9.5 (1.2×) |" in text
    eff = pd.read_csv(tmp_path / "out" / "efficiency.csv")
    perf = eff[(eff["method"] == "performer") & (eff["length"] == 1024)].iloc[0]
    assert perf["speed_vs_transformer"] == pytest.approx(1.6) and bool(perf["over_10pct"])
    assert_latex_structure((tmp_path / "out" / "efficiency.tex").read_text())
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert (runs["kind"] == "bench").sum() == 6 and "performer" in set(runs["model"])


# --------------------------------------------------------------------------- hooks and CLI
def test_plots_hook(full, monkeypatch):
    calls = []
    fake = types.ModuleType("lra.report.plots")
    fake.write_plots = lambda runs, bench, out_dir: (
        calls.append((len(runs), len(bench), out_dir)) or []
    )
    monkeypatch.setitem(sys.modules, "lra.report.plots", fake)
    out, _ = report(full, plots=True)
    assert calls == [(len(records_frame(full)), 0, out)]
    calls.clear()
    report(full, plots=False)
    assert calls == []


def test_wandb_source(monkeypatch, tmp_path):
    fake = types.ModuleType("lra.report.wandb_import")
    records = [
        make_record("w", "text", "linear", 0, 0.5, created="2026-01-01"),
        make_record("w", "text", "linear", 0, 0.6, created="2026-01-02"),
    ]
    fake.records_from_wandb = lambda project, entity: records
    monkeypatch.setitem(sys.modules, "lra.report.wandb_import", fake)
    runs = load_runs(tmp_path, "wandb", "proj")
    assert len(runs) == 1 and runs["test_acc"].iloc[0] == 0.6 and runs["protocol"].iloc[0] == "lra"
    with pytest.raises(ReportError, match="files, wandb"):
        load_runs(tmp_path, "csv")
    with pytest.raises(ReportError, match="wandb_project"):
        load_runs(tmp_path, "wandb", None)


def test_cli_config_writes_every_output(full):
    out = full / "cli"
    cfg = compose("report", [f"results_dir={full}", f"out_dir={out}", "plots=false"])
    run(cfg)
    for stem in ("leaderboard", "efficiency"):
        for ext in ("md", "csv", "tex", "html"):
            assert (out / f"{stem}.{ext}").is_file()
    assert "| LRA Table 1 | Transformer |" in (out / "leaderboard.md").read_text()


def test_reporting_never_imports_torch_models_or_tasks(tmp_path):
    """``lra-report`` (tables, plots, bench rows) runs on a machine without torch: it reads files."""
    results = tmp_path / "results"
    write_record(results, make_record("r", "listops", "transformer", 0, 0.4))
    write_bench(results / "bench" / "cpu_text.csv", [bench_row("transformer", 1024, 2.0, 512, 10)])
    script = (
        "import sys\n"
        f"sys.argv = ['lra-report', 'results_dir={results}', 'out_dir={tmp_path / 'out'}']\n"
        "from lra.report.cli import main\n"
        "main()\n"
        "loaded = sorted(m for m in ('torch', 'models', 'tasks') if m in sys.modules)\n"
        "print('loaded:', loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "loaded: []" in done.stdout
    assert (tmp_path / "out" / "plots").is_dir() and (tmp_path / "out" / "efficiency.md").is_file()


# --------------------------------------------------------------------------- configurations
def write_all(tmp_path, records):
    for record in records:
        write_record(tmp_path, record)
    return tmp_path


def test_configurations_are_rows_never_pooled_as_seeds(tmp_path):
    lr = ("task.optim.lr=0.001",)
    write_all(
        tmp_path,
        [
            make_record("p0", "listops", "performer", 0, 0.30),
            make_record("p1", "listops", "performer", 1, 0.32),
            make_record("q0", "listops", "performer", 0, 0.10, overrides=lr),  # same seed
            make_record("o0", "listops", "performer", 0, 0.20, overrides=("model.nb_features=64",)),
            # the device a run used does not make another configuration
            make_record("g2", "listops", "performer", 2, 0.34, overrides=("trainer.device=cpu",)),
        ],
    )
    runs = load_runs(tmp_path)
    assert runs["fingerprint"].nunique() == 3
    wide = leaderboard_frame(runs, TASKS).set_index("model")
    assert wide.loc["performer", "listops_n"] == 3  # seeds 0, 1, 2 of the recipe
    assert wide.loc["performer", "listops_mean"] == pytest.approx(32.0)
    assert wide.loc["performer · nb_features=64", "listops_n"] == 1  # a method option: lra
    assert wide.loc["performer · nb_features=64", "protocol"] == "lra"
    assert wide.loc["performer · lr=0.001", "protocol"] == "custom"  # a recipe value
    assert wide.loc["performer · lr=0.001", "listops_mean"] == pytest.approx(10.0)


def test_custom_recipes_and_capped_evaluation_never_sit_beside_published_rows(tmp_path):
    write_all(
        tmp_path,
        [
            make_record("a", "listops", "transformer", 0, 0.36),
            make_record(
                "b", "listops", "transformer", 0, 0.125, overrides=("task.optim.steps=20",)
            ),
            make_record(
                "c", "listops", "linear", 0, 0.5, overrides=("trainer.max_eval_batches=1",)
            ),
            make_record("d", "listops", "linear", 0, 0.4, protocol="smoke"),
            make_record("e", "listops", "linear", 1, 0.4, protocol="smoke"),
            make_record(
                "f", "listops", "linear", 1, 0.2, protocol="smoke", overrides=("task.optim.lr=1",)
            ),
        ],
    )
    (tmp_path / "published.csv").write_text(PUBLISHED)
    out = tmp_path / "out"
    text = write_report(
        tmp_path, out, TASKS, published_csv=tmp_path / "published.csv", published_sources=["paper"]
    )
    sections = {s.split("\n", 1)[0]: s for s in text.split("## protocol: ")[1:]}
    assert set(sections) == {"lra", "custom", "smoke", "smoke-custom"}
    assert "| paper |" in sections["lra"] and "| paper |" not in sections["custom"]
    assert "transformer · steps=20" in sections["custom"]
    assert "linear · max_eval_batches=1" in sections["custom"]
    assert "recipe (`task.*`) differs" in sections["custom"]
    assert "40.00 ± 0.00 (n=2)" in sections["smoke"]  # two seeds of the smoke recipe
    assert "linear · lr=1" in sections["smoke-custom"]


def test_select_on_val_picks_by_validation_and_reports_test(tmp_path):
    def rec(name, seed, val, test, lr=None, task="image"):
        extra = (f"task.optim.lr={lr}",) if lr else ()
        return make_record(name, task, "performer", seed, test, overrides=extra, val=val)

    write_all(
        tmp_path,
        [
            rec("r0", 0, 0.40, 0.41),
            rec("r1", 1, 0.42, 0.43),
            rec("a0", 0, 0.50, 0.30, lr=0.001),  # best val, worse test: still chosen
            rec("a1", 1, 0.52, 0.32, lr=0.001),
            rec("b0", 0, 0.30, 0.60, lr=0.1),  # best test, never chosen
            rec("t0", 0, 0.70, 0.70, task="text"),
        ],
    )
    out = tmp_path / "out"
    text = write_report(tmp_path, out, TASKS, published_csv=None, select="val")
    section = text.split("## protocol: lra, selected on val")[1]
    assert "31.00 ± 1.41 (n=2) [lr=0.001]" in section
    assert "Text: val is the test split" in section
    assert "| paper |" not in section and "60.00" not in section
    board = pd.read_csv(out / "leaderboard.csv")
    chosen = board[board["protocol"] == "lra, selected on val"].iloc[0]
    assert chosen["image_choice"] == "performer · lr=0.001"
    with pytest.raises(ReportError, match="select"):
        write_report(tmp_path, out, TASKS, published_csv=None, select="test")


def test_selection_callback_prints_what_select_val_writes(tmp_path, capsys):
    from lra.report.callbacks import SelectionTable

    write_record(tmp_path, make_record("a", "image", "linear", 0, 0.3, val=0.5))
    write_record(
        tmp_path,
        make_record("b", "image", "linear", 0, 0.9, val=0.1, overrides=("task.optim.lr=0.1",)),
    )
    SelectionTable().on_multirun_end(OmegaConf.create({"results_dir": str(tmp_path)}))
    printed = capsys.readouterr().out
    assert "## protocol: lra, selected on val" in printed and "30.00 (n=1)" in printed
    assert "90.00" not in printed


def test_configs_without_a_recipe_to_compare_stay_apart(tmp_path):
    a = make_record("a", "listops", "linear", 0, 0.3) | {"task": "mytask"}
    b = make_record("b", "listops", "linear", 0, 0.5, overrides=("task.optim.lr=0.1",))
    b = b | {"task": "mytask"}
    write_all(tmp_path, [a, b])
    runs = load_runs(tmp_path)
    assert set(runs["protocol"]) == {"custom"}  # nothing to show it follows a recipe
    assert runs["row"].nunique() == 2 and all("config unknown" in r for r in runs["row"])
