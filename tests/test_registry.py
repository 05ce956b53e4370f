"""REGISTRY, ``models/<name>.py`` and ``conf/model/<name>.yaml`` are one-to-one, and agree."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lra.check.inputs import one_thread
from models import REGISTRY, Attention, accepted_options, attention_options, build, build_attention
from tasks.spec import TaskSpec


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread per test (restored after): the tensors here are tiny."""
    with one_thread():
        yield


ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf" / "model"
NAMES = sorted(REGISTRY)
YAMLS = sorted(p.stem for p in CONF.glob("*.yaml"))
SPEC = TaskSpec(name="toy", vocab_size=12, max_len=16, num_classes=3)
TINY = {"layers": 1, "heads": 2, "dim": 8, "mlp_dim": 16, "pooling": "cls"}


def resolve(target: str) -> object:
    module, _, attr = target.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def test_registry_is_not_empty_and_holds_attention_classes():
    assert "transformer" in REGISTRY and "transformer_naive" in REGISTRY
    for name, cls in REGISTRY.items():
        assert issubclass(cls, Attention) and cls.name == name


@pytest.mark.parametrize("name", NAMES)
def test_registered_method_has_its_file_and_yaml(name):
    cls = REGISTRY[name]
    assert (ROOT / "models" / f"{name}.py").is_file(), f"models/{name}.py missing"
    assert cls.__module__ == f"models.{name}", f"{name} lives in {cls.__module__}"
    path = CONF / f"{name}.yaml"
    assert path.is_file(), f"conf/model/{name}.yaml missing"
    cfg = OmegaConf.load(path)
    assert cfg.name == name
    assert resolve(cfg._target_) is cls
    bad = sorted(set(attention_options(cfg)) - set(accepted_options(cls)))
    assert not bad, f"conf/model/{name}.yaml has options {cls.__name__} does not take: {bad}"


@pytest.mark.parametrize("stem", YAMLS)
def test_every_model_yaml_is_registered(stem):
    assert stem in REGISTRY, f"conf/model/{stem}.yaml has no registered method"


@pytest.mark.parametrize("stem", YAMLS)
def test_every_model_yaml_builds_a_classifier(stem):
    model = build(SPEC, OmegaConf.create(TINY), OmegaConf.load(CONF / f"{stem}.yaml"))
    assert model.num_params() > 0


def test_unknown_name_lists_registered_names():
    with pytest.raises(KeyError) as err:
        build_attention("no_such_attention", 8, 2)
    assert ", ".join(NAMES) in str(err.value)
    with pytest.raises(KeyError, match="no_such_attention"):
        build(SPEC, TINY, {"name": "no_such_attention"})


def test_unknown_option_names_the_option_and_the_accepted_ones():
    with pytest.raises(TypeError) as err:
        build_attention("transformer", 8, 2, window=4)
    assert "window" in str(err.value) and "dropout" in str(err.value)
    with pytest.raises(TypeError, match="window"):
        build(SPEC, TINY, {"name": "transformer", "window": 4})


def test_target_must_match_the_registered_class():
    with pytest.raises(ValueError, match="_target_"):
        build(SPEC, TINY, {"name": "transformer", "_target_": "models.x.Other"})


def test_attention_options_drop_meta_keys():
    cfg = OmegaConf.create({"_target_": "a.B", "name": "b", "window": 3})
    assert attention_options(cfg) == {"window": 3}


def test_a_class_builds_like_its_name_and_is_checked_alike():
    cls = REGISTRY["local"]
    assert type(build_attention(cls, 8, 2, block_size=4)) is cls
    with pytest.raises(TypeError, match="window"):
        build_attention(cls, 8, 2, window=4)
    with pytest.raises(TypeError, match="not a models.Attention"):
        build_attention(dict, 8, 2)


def test_accepted_options_follow_kwargs_up_to_the_base_that_takes_them():
    assert accepted_options(REGISTRY["fnet"]) == ["dropout", "qkv_dim"]  # no __init__ of its own
    assert accepted_options(REGISTRY["xl"]) == ["dropout", "mem_len", "qkv_dim", "segment_len"]
    compressive = accepted_options(REGISTRY["compressive"])
    assert {"segment_len", "mem_len", "cmem_len", "compression_rate"} <= set(compressive)
