"""The model zoo: one backbone (``models.backbone``) around one attention method per file.

Importing this package imports every module of the folder, so each method file registers its
class in ``REGISTRY`` and a new method needs no edit here; ``conf/model/<name>.yaml`` names
the class (``_target_``) and its options.

>>> model = build(spec, cfg.task.backbone, cfg.model)   # Classifier
>>> attn = attention_from_recipe("linformer", {"k": 16}, cfg.task.backbone, positions=4097)
>>> attn = build_attention("transformer", dim=64, heads=4)
>>> attn = build_attention("my_pkg.attn:MyAttention", dim=64, heads=4)   # models.external
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from models.backbone import BackboneConfig, Classifier, Encoder, attention_from_recipe
from models.base import (
    REGISTRY,
    Attention,
    ProjectedAttention,
    accepted_options,
    attention_class,
    build_attention,
    dropout_p,
    register,
)

if TYPE_CHECKING:
    from tasks.spec import TaskSpec

META_KEYS = ("_target_", "name", "target")

# method modules register themselves on import (one file per REGISTRY name)
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")


def _as_dict(model_cfg: Mapping[str, Any] | DictConfig) -> dict[str, Any]:
    if isinstance(model_cfg, DictConfig):
        return OmegaConf.to_container(model_cfg, resolve=True)
    return dict(model_cfg)


def attention_options(model_cfg: Mapping[str, Any] | DictConfig) -> dict[str, Any]:
    """The method options of a composed ``conf/model/<name>.yaml``: all but ``_target_``/``name``."""
    return {k: v for k, v in _as_dict(model_cfg).items() if k not in META_KEYS}


def method_class(model_cfg: Mapping[str, Any] | DictConfig) -> type[Attention]:
    """The attention class of a composed model config: its ``target`` (an import path or an
    installed entry point, :mod:`models.external`) when set, else its ``name``.

    A registered ``name`` whose ``_target_`` is not that class's import path is an error (the
    YAML and the registry must agree).
    """
    cfg = _as_dict(model_cfg)
    if cfg.get("target"):
        return attention_class(str(cfg["target"]))
    if "name" not in cfg:
        raise ValueError(f"model config has no 'name'; registered: {', '.join(sorted(REGISTRY))}")
    cls = attention_class(cfg["name"])
    target = f"{cls.__module__}.{cls.__qualname__}"
    if cfg.get("_target_", target) != target:
        raise ValueError(f"model {cfg['name']!r}: _target_ {cfg['_target_']!r} is not {target!r}")
    return cls


def recipe_layer(
    model_cfg: Mapping[str, Any] | DictConfig,
    backbone: Mapping[str, Any] | DictConfig | BackboneConfig,
    positions: int,
) -> Attention:
    """One attention layer of a composed model config (:func:`method_class` and its options)
    as the backbone recipe wires it (:func:`attention_from_recipe`)."""
    return attention_from_recipe(
        method_class(model_cfg), attention_options(model_cfg), backbone, positions
    )


def build(
    spec: TaskSpec,
    backbone_cfg: Mapping[str, Any] | DictConfig,
    model_cfg: Mapping[str, Any] | DictConfig,
) -> Classifier:
    """Classifier for ``spec`` with the task's backbone recipe and the method of ``model_cfg``
    (:func:`method_class`) with its options."""
    return Classifier(spec, backbone_cfg, method_class(model_cfg), attention_options(model_cfg))


__all__ = [
    "REGISTRY",
    "Attention",
    "BackboneConfig",
    "Classifier",
    "Encoder",
    "ProjectedAttention",
    "accepted_options",
    "attention_class",
    "attention_from_recipe",
    "attention_options",
    "build",
    "build_attention",
    "dropout_p",
    "method_class",
    "recipe_layer",
    "register",
]
