"""Methods from outside the repository: import paths, installed entry points, one-line errors,
records and reports, and ``lra-check``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import models
from lra.check import cli as check_cli
from lra.config import compose
from lra.method_configs import register_method_configs
from lra.report.configs import annotate
from lra.run import train
from lra.run.checks import ConfigError, validate_run_config
from lra.run.overrides import check_overrides
from models import external

# A module of toy classes written under a fresh name per session: ``Scaled`` is a correct
# method with an option; the others are each wrong in one way.
TOY = textwrap.dedent(
    '''
    import torch
    from torch import nn
    from models import Attention, ProjectedAttention


    class Scaled(ProjectedAttention):
        """Softmax attention with logits times ``gain`` (exact at gain 1)."""

        def __init__(self, dim, heads, dropout=0.0, qkv_dim=None, gain=1.0):
            super().__init__(dim, heads, dropout, qkv_dim)
            if not isinstance(gain, (int, float)) or gain <= 0:
                raise ValueError(f"gain must be a number > 0, got {gain!r}")
            self.gain = gain

        def attend(self, q, k, v, mask):
            scores = self.gain * q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
            scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
            return scores.softmax(-1).nan_to_num() @ v


    class Leaky(Scaled):
        """Padded keys reach real queries (the mask is ignored)."""

        def attend(self, q, k, v, mask):
            return (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).softmax(-1) @ v


    class NeedsWidth(Scaled):
        def __init__(self, dim, heads, width, dropout=0.0, qkv_dim=None):
            super().__init__(dim, heads, dropout, qkv_dim)
            self.width = width


    class NotAttention(nn.Module):
        def forward(self, x, mask):
            return x


    class NoForward(ProjectedAttention):
        pass


    class BadInit(Attention):
        def __init__(self, heads, dim):
            super().__init__(dim, heads)

        def forward(self, x, mask):
            return x


    class BadForward(Attention):
        def forward(self, x):
            return x


    not_a_class = 3
    '''
)

PACKAGE, VERSION, ENTRY = "toy-attention-dist", "1.2.3", "toyscaled"


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """``(module name, site folder)``: the toy module on ``sys.path`` inside a site folder that
    also holds an installed distribution's metadata with the entry point ``toyscaled``."""
    site = tmp_path_factory.mktemp("site")
    name = f"toy_attention_{site.name.replace('-', '_')}"
    (site / f"{name}.py").write_text(TOY)
    info = site / f"{PACKAGE.replace('-', '_')}-{VERSION}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: {VERSION}\n")
    (info / "top_level.txt").write_text(f"{name}\n")
    (info / "entry_points.txt").write_text(
        f"[{external.ENTRY_POINT_GROUP}]\n{ENTRY} = {name}:Scaled\n"
    )
    sys.path.insert(0, str(site))
    external.entry_points.cache_clear()
    yield name, site
    sys.path.remove(str(site))
    external.entry_points.cache_clear()
    external.load_entry_point.cache_clear()


# --------------------------------------------------------------------------- resolving
def test_an_import_path_and_an_entry_point_give_the_class(toy):
    name, _ = toy
    by_path = models.attention_class(f"{name}:Scaled")
    assert by_path.__name__ == "Scaled" and by_path.__module__ == name
    assert models.attention_class(ENTRY) is by_path
    assert external.method_source(by_path) == {
        "target": f"{name}:Scaled",
        "package": PACKAGE,
        "version": VERSION,
    }
    built_in = external.method_source(models.REGISTRY["linformer"])
    assert built_in["target"] == "models.linformer:LinformerAttention"
    assert built_in["package"] == external.BUILT_IN_PACKAGE


@pytest.mark.parametrize(
    ("attribute", "says"),
    [
        ("NotAttention", "not an attention class: subclass models.Attention"),
        ("not_a_class", "is int, not an attention class"),
        ("NoForward", "implements neither forward(x, mask) nor attend"),
        ("BadInit", "the constructor must start (dim, heads, ...), got (heads, dim)"),
        ("BadForward", "forward must take (x, mask)"),
        ("Missing", "has no 'Missing'"),
    ],
)
def test_an_unusable_target_is_one_line_naming_it(toy, attribute, says):
    name, _ = toy
    with pytest.raises(external.MethodError) as err:
        models.attention_class(f"{name}:{attribute}")
    message = str(err.value)
    assert says in message and f"{name}:{attribute}" in message and "\n" not in message


def test_a_module_that_does_not_import_or_a_malformed_path(toy):
    with pytest.raises(external.MethodError, match="No module named 'no_such_pkg'.*installed"):
        models.attention_class("no_such_pkg.attn:Foo")
    with pytest.raises(external.MethodError, match="package.module:ClassName"):
        models.attention_class("pkg:")
    with pytest.raises(KeyError, match=f"installed: .*{ENTRY}.*package.module:ClassName"):
        models.attention_class("no_such_method")


# --------------------------------------------------------------------------- configs
def test_model_external_composes_with_the_class_options(toy):
    name, _ = toy
    cfg = compose(
        "train",
        ["experiment=smoke", "model=external", f"model.target={name}:Scaled", "model.gain=2"],
    )
    assert dict(cfg.model) == {"name": "Scaled", "target": f"{name}:Scaled", "gain": 2}
    assert models.method_class(cfg.model).__name__ == "Scaled"
    validate_run_config(cfg)  # builds at the recipe: nothing to refuse


def test_an_entry_point_is_a_model_choice_also_in_sweeps(toy):
    cfg = compose("train", ["experiment=smoke", f"model={ENTRY}", "model.gain=0.5"])
    assert cfg.model.name == ENTRY and cfg.model.gain == 0.5
    assert cfg.model.target.endswith(":Scaled")
    assert check_overrides([f"model={ENTRY},transformer", "model.gain=0.5"]) is None


def test_a_sweep_over_built_in_and_installed_methods_lists_both(toy, tmp_path, capsys):
    from lra.run.sweep import dry_run

    assert (
        dry_run(["experiment=smoke", f"model=transformer,{ENTRY}", f"results_dir={tmp_path}"]) == 0
    )
    out = capsys.readouterr().out
    assert "2 job(s)" in out and f"listops-{ENTRY}-s0-" in out and "listops-transformer-s0-" in out


def test_command_line_mistakes_get_one_line(toy):
    name, _ = toy
    target = f"model.target={name}:Scaled"
    assert "needs model=external" in check_overrides([target])
    assert "needs model.target=" in check_overrides(["model=external"])
    assert "one import path per command" in check_overrides(
        ["model=external", f"{target},{name}:Leaky"]
    )
    typo = check_overrides(["model=external", target, "model.gian=2"])
    assert typo == "unknown key model.gian; did you mean model.gain=2?"
    assert "not an attention class" in check_overrides(
        ["model=external", f"model.target={name}:NotAttention"]
    )


def test_a_rejected_option_value_is_refused_before_the_run(toy):
    name, _ = toy
    cfg = compose(
        "train",
        ["experiment=smoke", "model=external", f"model.target={name}:Scaled", "model.gain=-1"],
    )
    with pytest.raises(ConfigError) as err:
        validate_run_config(cfg)
    assert str(err.value) == (f"model.target={name}:Scaled: gain must be a number > 0, got -1")


def test_only_external_choices_register_configs():
    """A command with built-in methods only stores no node (and imports no class)."""
    from hydra.core.config_store import ConfigStore

    repo = ConfigStore.instance().repo
    before = set(repo.get("model", {}))
    register_method_configs(["model=transformer,linformer", "seed=1"])
    assert set(repo.get("model", {})) == before
    register_method_configs(["model=external"])  # the probe works: a choice stores a node
    assert set(repo["model"]) == before | {"external.yaml"}


# --------------------------------------------------------------------------- runs and reports
def test_an_entry_point_method_trains_and_its_record_and_row_name_the_package(
    toy, tiny_overrides, tmp_path
):
    cfg = compose("train", [*tiny_overrides, f"model={ENTRY}", "model.gain=0.5"])
    record = train.run(cfg, tmp_path / "run")
    assert record["status"] == "ok" and record["model"] == ENTRY
    assert record["method_target"].endswith(":Scaled")
    assert (record["method_package"], record["method_version"]) == (PACKAGE, VERSION)
    saved = json.loads(next((tmp_path / "results" / "runs").glob("*.json")).read_text())
    assert saved["method_package"] == PACKAGE
    rows = annotate(pd.DataFrame([saved]))
    # compared with the class's own defaults: of the model keys only the changed option shows
    label = rows["row"].iloc[0]
    assert label.startswith(f"{ENTRY} [{PACKAGE} {VERSION}] · gain=0.5, ")
    assert "target=" not in label and "name=" not in label


def test_a_record_of_an_uninstalled_method_never_shares_a_row(toy):
    name, _ = toy
    base = {"task": "listops", "seed": 0, "status": "ok", "test_acc": 0.4, "model": "gone"}
    config = {"task": {"name": "listops"}, "model": {"name": "gone", "target": "gone_pkg:Gone"}}
    runs = pd.DataFrame(
        [
            base | {"config": config | {"seed": 0}, "method_target": "gone_pkg:Gone"},
            base | {"config": config | {"seed": 1, "x": 1}, "method_target": "gone_pkg:Gone"},
        ]
    )
    rows = annotate(runs)["row"]
    assert rows.iloc[0] != rows.iloc[1]  # not importable: one row per configuration
    assert all(r.startswith("gone [gone_pkg:Gone]") for r in rows)


def test_lra_bench_plans_an_import_path(toy):
    from lra.bench.cli import plan

    name, _ = toy
    cfg = compose(
        "bench", [f"methods=[transformer,{name}:Scaled]", "lengths=[64]", "batch_sizes=[1]"]
    )
    points, _ = plan(cfg)
    assert [p["method"] for p in points] == ["transformer", f"{name}:Scaled"]
    assert points[1]["model_cfg"]["target"] == f"{name}:Scaled"


# --------------------------------------------------------------------------- lra-check
def test_lra_check_passes_a_good_class_and_names_each_failure(toy, tmp_path, capsys):
    name, _ = toy
    skip = ["--skip", "compile,curve", "--out", str(tmp_path)]
    assert check_cli.main([f"{name}:Scaled", "gain=0.5", *skip]) == 0
    table = pd.read_csv(tmp_path / f"{name}-Scaled_checks.csv", keep_default_na=False)
    assert set(table["result"]) == {"PASS", "n/a"} and "padding" in set(table["check"])
    capsys.readouterr()
    assert check_cli.main([f"{name}:Leaky", *skip]) == 1
    out = capsys.readouterr().out
    failed = [line for line in out.splitlines() if line.startswith("FAIL ")]
    assert [line.split(":")[0] for line in failed] == ["FAIL padding"]
    assert "expected <= 1e-07" in failed[0]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["no_such_pkg:Foo"], "No module named 'no_such_pkg'"),
        (["linformer", "kk=3"], "option(s) ['kk'] not accepted; accepted:"),
        (["linformer", "--only", "speed"], "unknown check(s) ['speed']"),
        (["model=external"], "no method given"),
        (["{toy}:NeedsWidth"], "option(s) ['width'] have no default; give width=..."),
    ],
)
def test_lra_check_bad_input_is_one_line_and_status_2(toy, argv, says, capsys):
    argv = [a.replace("{toy}", toy[0]) for a in argv]
    assert check_cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and err.startswith("lra-check: ") and "\n" not in err


def test_lra_check_reads_the_train_style_arguments(toy):
    name, _ = toy
    words = ["model=external", f"model.target={name}:Scaled", "model.gain=0.5"]
    assert check_cli.method_and_options(words) == (f"{name}:Scaled", {"gain": 0.5})
    assert check_cli.method_and_options(["linformer", "k=8"]) == ("linformer", {"k": 8})


def test_lra_check_curve_beside_transformer(toy, tmp_path):
    name, site = toy
    command = [sys.executable, "-m", "lra.check.cli", f"{name}:Scaled", "--only", "curve"]
    command += ["--lengths", "32,64", "--device", "cpu", "--out", str(tmp_path)]
    env = {**__import__("os").environ, "PYTHONPATH": str(site)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = pd.read_csv(tmp_path / f"{name}-Scaled_curve.csv")
    assert sorted(zip(rows["method"], rows["length"], strict=True)) == sorted(
        [(m, n) for m in ("transformer", f"{name}:Scaled") for n in (32, 64)]
    )
    assert (rows["status"] == "ok").all() and rows["bench_id"].nunique() == 1
    for stem in ("time", "memory"):
        assert Path(tmp_path / f"{name}-Scaled_curve_{stem}.png").stat().st_size > 0
    assert "time at 64 vs transformer" in done.stdout


@pytest.mark.slow
def test_a_sweep_of_an_external_target_runs_every_job(toy, tiny_overrides, tmp_path):
    """``lra-train -m model=external model.target=... seed=0,1``: Hydra hands each job the
    target with its colon escaped; both jobs build the class and write ``ok`` records."""
    name, site = toy
    command = ["lra-train", "-m", *tiny_overrides, "model=external", f"model.target={name}:Scaled"]
    command += ["model.gain=0.5", "seed=0,1", f"hydra.sweep.dir={tmp_path / 'multirun'}"]
    command += ["hydra.sweep.subdir=job${hydra:job.num}"]  # the tiny overrides make long names
    env = {**__import__("os").environ, "PYTHONPATH": str(site)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    records = [json.loads(p.read_text()) for p in (tmp_path / "results" / "runs").glob("*.json")]
    assert sorted((r["seed"], r["status"], r["model"]) for r in records) == [
        (0, "ok", "Scaled"),
        (1, "ok", "Scaled"),
    ]
    assert all(r["config"]["model"]["gain"] == 0.5 for r in records)


def test_an_option_without_default_must_be_given(toy):
    name, _ = toy
    base = ["experiment=smoke", "model=external", f"model.target={name}:NeedsWidth"]
    with pytest.raises(ConfigError, match="option width has no default; give model.width="):
        validate_run_config(compose("train", base))
    validate_run_config(compose("train", [*base, "model.width=3"]))


def test_lra_bench_takes_a_method_named_as_lra_train_names_it(toy):
    from lra.bench.cli import BenchError, plan, with_model
    from lra.method_configs import split_model_args

    name, _ = toy
    argv = ["model=external", f"model.target={name}:Scaled", "model.gain=0.5", "lengths=[64]"]
    rest, method, options = split_model_args(argv)
    assert (rest, method, options) == (["lengths=[64]"], f"{name}:Scaled", {"gain": 0.5})
    cfg = compose("bench", [*rest, "batch_sizes=[1]"])
    points, _ = plan(with_model(cfg, method, options, listed=False))
    assert [p["method"] for p in points] == ["transformer_naive", "transformer", method]
    assert points[-1]["model_cfg"]["gain"] == 0.5
    listed = compose("bench", ["methods=[linformer]", "lengths=[64]", "batch_sizes=[1]"])
    points, _ = plan(with_model(listed, method, options, listed=True))
    assert [p["method"] for p in points] == ["linformer", method]
    with pytest.raises(BenchError, match=f"^{method}: gain must be a number > 0, got -1$"):
        plan(with_model(cfg, method, {"gain": -1}, listed=False))


@pytest.mark.slow
def test_lra_bench_process_measures_a_method_named_as_lra_train_names_it(toy, tmp_path):
    """The whole ``lra-bench`` process with ``model=external model.target=... model.<k>=``:
    the method is measured beside the references in one invocation, with its option."""
    name, site = toy
    command = [sys.executable, "-m", "lra.bench", "model=external", f"model.target={name}:Scaled"]
    command += ["model.gain=0.5", "mode=attention", "lengths=[64]", "batch_sizes=[1]"]
    command += ["warmup=1", "repeats=1", "progress=false", f"out_dir={tmp_path}", "out=toy"]
    env = {**__import__("os").environ, "PYTHONPATH": str(site)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = pd.read_csv(tmp_path / "toy.csv")
    assert list(rows["method"]) == ["transformer_naive", "transformer", f"{name}:Scaled"]
    assert (rows["status"] == "ok").all() and rows["bench_id"].nunique() == 1
    bad = [a.replace("model.gain=0.5", "model.gain=-1") for a in command]
    refused = subprocess.run(bad, capture_output=True, text=True, env=env, timeout=600)
    assert refused.returncode == 1 and "gain must be a number > 0, got -1" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_lra_check_curve_of_a_rejected_option_value_is_a_failure(tmp_path, capsys):
    argv = ["linformer", "k=-3", "--only", "curve", "--out", str(tmp_path)]
    assert check_cli.main(argv) == 1
    out = capsys.readouterr().out
    assert "FAIL curve: measured —; expected the method builds at the Text recipe" in out
    assert "option k must be an int >= 1, got -3" in out
