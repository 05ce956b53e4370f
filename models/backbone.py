"""The one backbone of every method: embeddings, pre-LN blocks, pooling and classifier heads.

Follows the LRA encoder (Tay et al. 2021, ``lra_benchmarks/models/transformer``; blocks as in
Vaswani et al. 2017 with the LayerNorm moved before each sub-layer):

    ids [B, L] -> Embedding (+ CLS, + positions) -> Dropout -> Block x layers -> LayerNorm
        -> pool (CLS state, first token's state, or mean over real tokens) [B, D]
        -> head -> logits [B, C]

Only the attention differs between methods; :func:`attention_from_recipe` builds it (a
``REGISTRY`` name or a class) with the recipe's dim, heads, dropout and qkv_dim.
Details kept from the LRA code: token embedding N(0, 1); sinusoidal positions (interleaved
sin/cos) or learned N(0, 0.02); learned CLS vector initialised to zero and added to position 0;
MLP Dense -> GELU (tanh form, Flax's default) -> Dropout -> Dense -> Dropout with Xavier-uniform
kernels and ~zero biases; LayerNorm eps 1e-6; head Dense(mlp_dim) -> ReLU -> Dense(classes).
Pairs (Retrieval): one shared-weight encoder on both documents, then ``pair_head``:
``concat`` is LRA's ``classifier_head_dual`` (``lra_benchmarks/models/layers/common_layers.py``
@ 6d5e5ca, the code behind the published numbers): ``[u, v]`` -> Dense(mlp_dim) -> ReLU ->
Dense(mlp_dim // 2) -> ReLU -> Dense(classes); ``nli`` is the paper's description:
``[u, v, u*v, u-v]`` -> the single-sequence head. LRA's dual encoder adds no CLS token and its
"CLS" pooling takes the first byte's state: ``pooling: first`` here.
Departures (deliberate): the CLS position is always real (LRA copies the first token's padding
bit); mean pooling averages real tokens only (LRA averages every position, padding included).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from models.base import Attention, ProjectedAttention, attention_class, build_attention

if TYPE_CHECKING:  # models reads a TaskSpec's fields only; no import-time tie to tasks/
    from tasks.spec import TaskSpec

POS_CHOICES = ("sinusoidal", "learned")
POOL_CHOICES = ("cls", "first", "mean")
PAIR_HEADS = ("concat", "nli")
REQUIRED_KEYS = ("layers", "heads", "dim", "mlp_dim", "pooling")


# --------------------------------------------------------------------------- backbone config
@dataclass(frozen=True)
class BackboneConfig:
    """The task's backbone recipe (``conf/task/<task>.yaml: backbone``).

    ``pooling`` is required: the recipe alone decides it (a ``segment_recurrent`` method pools
    by the mean whatever it says): ``cls`` (a learned CLS vector prepended, its final state),
    ``first`` (no CLS; the first token's final state) or ``mean`` (over real tokens).
    ``qkv_dim`` None means ``dim`` (LRA's Image recipe uses qkv 64 with embedding 128).
    ``pair_head`` (``concat`` or ``nli``) is the head of a pair task (see the module docstring).
    ``mean_over_padding`` and ``projection_bias`` are set by ``quirks=lra`` (:mod:`lra.quirks`),
    not by task recipes: mean pooling over every position, padding included, and attention
    projections without biases, as in the original LRA code.
    """

    layers: int
    heads: int
    dim: int
    mlp_dim: int
    pooling: str
    dropout: float = 0.1
    attn_dropout: float = 0.1
    pos: str = "sinusoidal"
    qkv_dim: int | None = None
    pair_head: str = "concat"
    mean_over_padding: bool = False
    projection_bias: bool = True

    @classmethod
    def parse(cls, cfg: Mapping[str, Any] | DictConfig | BackboneConfig) -> BackboneConfig:
        """Validate a mapping: unknown or missing keys and bad values raise ``ValueError``."""
        if isinstance(cfg, BackboneConfig):
            return cfg
        if isinstance(cfg, DictConfig):
            cfg = OmegaConf.to_container(cfg, resolve=True)
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(cfg) - set(known))
        if unknown:
            raise ValueError(f"unknown backbone key(s) {unknown}; valid keys: {known}")
        missing = [k for k in REQUIRED_KEYS if k not in cfg]
        if missing:
            raise ValueError(f"backbone config lacks required key(s) {missing}")
        return cls(**cfg)

    def __post_init__(self) -> None:
        for key in ("layers", "heads", "dim", "mlp_dim", "qkv_dim"):
            value = getattr(self, key)
            if value is None and key == "qkv_dim":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"backbone {key} must be a positive int, got {value!r}")
        for key in ("dropout", "attn_dropout"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
                raise ValueError(f"backbone {key} must be in [0, 1), got {value!r}")
        if self.pos not in POS_CHOICES:
            raise ValueError(f"backbone pos must be one of {list(POS_CHOICES)}, got {self.pos!r}")
        if self.pooling not in POOL_CHOICES:
            raise ValueError(
                f"backbone pooling must be one of {list(POOL_CHOICES)}, got {self.pooling!r}"
            )
        for key in ("mean_over_padding", "projection_bias"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(
                    f"backbone {key} must be true or false, got {getattr(self, key)!r}"
                )
        if self.pair_head not in PAIR_HEADS:
            raise ValueError(
                f"backbone pair_head must be one of {list(PAIR_HEADS)}, got {self.pair_head!r}"
            )


def attention_from_recipe(
    method: str | type[Attention],
    options: Mapping[str, Any] | None,
    backbone: Mapping[str, Any] | DictConfig | BackboneConfig,
    positions: int,
) -> Attention:
    """One attention layer as the backbone recipe wires it.

    Args:
        method: a ``REGISTRY`` name or an :class:`Attention` subclass.
        options: the method's own options (``conf/model/<name>.yaml`` without its meta keys).
        backbone: the task's recipe: gives ``dim``, ``heads``, ``dropout`` (= ``attn_dropout``)
            and ``qkv_dim`` (None = ``dim``).
        positions: the longest sequence the layer will see; passed as ``max_len`` to
            ``needs_max_len`` methods (the encoder: its position table, CLS included; the
            attention-only benchmark: the input length).

    Raises:
        ValueError: ``options`` sets something the recipe gives.
        KeyError, TypeError: as :func:`models.base.build_attention`.
    """
    cfg, cls = BackboneConfig.parse(backbone), attention_class(method)
    options = dict(options or {})
    given: dict[str, Any] = {"dropout": cfg.attn_dropout, "qkv_dim": cfg.qkv_dim or cfg.dim}
    if cls.needs_max_len:
        given["max_len"] = positions
    clash = sorted(set(options) & (set(given) | {"dim", "heads"}))
    if clash:
        raise ValueError(f"attention option(s) {clash} are set by the backbone recipe")
    return build_attention(cls, cfg.dim, cfg.heads, **given, **options)


# --------------------------------------------------------------------------- modules
def sinusoidal_positions(length: int, dim: int) -> Tensor:
    """Fixed table [length, dim]: sin at even, cos at odd features (Vaswani et al. 2017)."""
    pos = torch.arange(length, dtype=torch.float64)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table.float()


class Embedding(nn.Module):
    """Token embedding N(0, 1), optional learned CLS vector, then positions.

    The LRA Flax encoder prepends a zero-initialised learned ``cls`` parameter to the token
    embeddings before adding positions; we do the same (equivalent to a dedicated CLS token
    id whose embedding starts at zero). The position table covers ``max_len`` (+1 with CLS).
    """

    def __init__(self, vocab_size: int, dim: int, max_len: int, pos: str, cls_token: bool):
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, dim)
        nn.init.normal_(self.tokens.weight, std=1.0)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim)) if cls_token else None
        self.max_len = max_len
        self.length = max_len + int(cls_token)  # positions the table covers
        if pos == "sinusoidal":
            self.register_buffer("pos", sinusoidal_positions(self.length, dim), persistent=False)
        else:
            self.pos = nn.Parameter(torch.randn(self.length, dim) * 0.02)

    def forward(self, ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """ids [B, L] long, mask [B, L] bool -> x [B, L', D], mask [B, L'] (L' = L + CLS)."""
        if ids.dim() != 2:
            raise ValueError(f"input_ids must be [B, L], got shape {tuple(ids.shape)}")
        if ids.shape[1] > self.max_len:
            raise ValueError(
                f"input length {ids.shape[1]} is longer than the model's max_len "
                f"{self.max_len} (TaskSpec.max_len); positions cover no more"
            )
        x = self.tokens(ids)
        if self.cls is not None:
            x = torch.cat([self.cls.expand(x.shape[0], 1, -1), x], dim=1)
            mask = torch.cat([mask.new_ones(mask.shape[0], 1), mask], dim=1)
        return x + self.pos[: x.shape[1]], mask


class MLP(nn.Sequential):
    """Dense(mlp_dim) -> GELU -> Dropout -> Dense(dim) -> Dropout, on [B, N, D]."""

    def __init__(self, dim: int, mlp_dim: int, dropout: float):
        super().__init__(
            nn.Linear(dim, mlp_dim),
            nn.GELU(approximate="tanh"),
            nn.Dropout(dropout),
            nn.Linear(mlp_dim, dim),
            nn.Dropout(dropout),
        )
        for layer in (self[0], self[3]):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)


class Block(nn.Module):
    """Pre-LN block: x + Drop(Attn(LN(x), mask)); x + MLP(LN(x)). [B, N, D] -> [B, N, D]."""

    def __init__(self, attention: Attention, dim: int, mlp_dim: int, dropout: float):
        super().__init__()
        self.norm1, self.attn, self.drop = (
            nn.LayerNorm(dim, eps=1e-6),
            attention,
            nn.Dropout(dropout),
        )
        self.norm2, self.mlp = nn.LayerNorm(dim, eps=1e-6), MLP(dim, mlp_dim, dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x + self.drop(self.attn(self.norm1(x), mask))
        return x + self.mlp(self.norm2(x))


def pool(x: Tensor, mask: Tensor, mode: str, over_padding: bool = False) -> Tensor:
    """x [B, N, D], mask [B, N] bool -> [B, D]: the first position (``cls``: the CLS vector's
    state; ``first``: the first token's) or the mean of real tokens (``mean``); with
    ``over_padding`` the mean of every position, padding included (the original LRA code).

    Padded positions are excluded with ``masked_fill`` (not a product), so even non-finite
    values there cannot leak; a sequence without real tokens pools to zeros.
    """
    if mode in ("cls", "first"):
        return x[:, 0]
    if over_padding:
        return x.mean(dim=1)
    total = x.masked_fill(~mask[..., None], 0.0).sum(dim=1)
    return total / mask.sum(dim=1, keepdim=True).clamp(min=1).to(x.dtype)


class Encoder(nn.Module):
    """ids [B, L], mask [B, L] -> pooled features [B, D] for one attention method.

    Args:
        spec: the task contract (vocab, max_len).
        backbone_cfg: the task's ``backbone`` recipe (see :class:`BackboneConfig`), which also
            names the pooling; a ``segment_recurrent`` method pools by the mean instead.
        attention: a ``REGISTRY`` name or an :class:`Attention` subclass.
        attention_options: the method's own options (``conf/model/<name>.yaml``); the rest
            comes from the recipe (:func:`attention_from_recipe`, with ``max_len`` = the
            positions the embedding covers, CLS included).
    """

    def __init__(
        self,
        spec: TaskSpec,
        backbone_cfg: Mapping[str, Any] | DictConfig | BackboneConfig,
        attention: str | type[Attention],
        attention_options: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        cfg, cls = BackboneConfig.parse(backbone_cfg), attention_class(attention)
        self.cfg, self.dim = cfg, cfg.dim
        # segment recurrence: a CLS at position 0 would see only the first segment
        self.pooling = "mean" if cls.segment_recurrent else cfg.pooling
        self.embed = Embedding(
            spec.vocab_size, cfg.dim, spec.max_len, cfg.pos, self.pooling == "cls"
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            Block(
                attention_from_recipe(cls, attention_options, cfg, self.embed.length),
                cfg.dim,
                cfg.mlp_dim,
                cfg.dropout,
            )
            for _ in range(cfg.layers)
        )
        self.norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        if not cfg.projection_bias:
            for module in self.modules():
                if isinstance(module, ProjectedAttention):
                    drop_projection_biases(module)

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        """ids [B, L] long, mask [B, L] bool (True = real) -> [B, D]."""
        x, mask = self.embed(ids, mask.bool())
        x = self.drop(x)
        for block in self.blocks:
            x = block(x, mask)
        return pool(self.norm(x), mask, self.pooling, self.cfg.mean_over_padding)


def drop_projection_biases(attention: ProjectedAttention) -> None:
    """Remove the biases of ``attention``'s input and output projections (LRA's had none)."""
    for name in (f"to_{attention.projections}", "to_out"):
        getattr(attention, name).register_parameter("bias", None)


class Classifier(nn.Module):
    """Encoder + head: ``forward(batch) -> logits [B, num_classes]``.

    Single sequence: pooled [B, D] -> Dense(mlp_dim) -> ReLU -> Dense(num_classes). Pair
    (``spec.pair``, LRA Retrieval): one shared-weight encoder on both documents, then the
    recipe's ``pair_head``: ``concat`` ``[u, v]`` [B, 2D] -> Dense(mlp_dim) -> ReLU ->
    Dense(mlp_dim // 2) -> ReLU -> Dense(num_classes) (LRA's code), or ``nli``
    ``[u, v, u*v, u-v]`` [B, 4D] -> the single-sequence head (the paper).
    """

    def __init__(
        self,
        spec: TaskSpec,
        backbone_cfg: Mapping[str, Any] | DictConfig | BackboneConfig,
        attention: str | type[Attention],
        attention_options: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        self.spec = spec
        self.encoder = Encoder(spec, backbone_cfg, attention, attention_options)
        cfg, dim = self.encoder.cfg, self.encoder.dim
        self.pair_head = cfg.pair_head if spec.pair else None
        if self.pair_head == "concat":
            self.head = nn.Sequential(
                nn.Linear(2 * dim, cfg.mlp_dim),
                nn.ReLU(),
                nn.Linear(cfg.mlp_dim, cfg.mlp_dim // 2),
                nn.ReLU(),
                nn.Linear(cfg.mlp_dim // 2, spec.num_classes),
            )
        else:
            features = dim * (4 if self.pair_head == "nli" else 1)
            self.head = nn.Sequential(
                nn.Linear(features, cfg.mlp_dim),
                nn.ReLU(),
                nn.Linear(cfg.mlp_dim, spec.num_classes),
            )

    def forward(self, batch: Mapping[str, Tensor]) -> Tensor:
        """batch: ``input_ids`` [B, L] long, ``mask`` [B, L] bool (+ ``_2`` for pairs)."""
        u = self.encoder(batch["input_ids"], batch["mask"])
        if self.spec.pair:
            v = self.encoder(batch["input_ids_2"], batch["mask_2"])
            pair = [u, v] if self.pair_head == "concat" else [u, v, u * v, u - v]
            u = torch.cat(pair, dim=-1)
        return self.head(u)

    def aux_loss(self) -> Tensor:
        """Sum of the attention modules' auxiliary losses of the last forward (0-dim)."""
        total = torch.zeros((), device=self.head[0].weight.device)
        for module in self.modules():
            if isinstance(module, Attention) and (loss := module.aux_loss()) is not None:
                total = total + loss
        return total

    def num_params(self) -> int:
        """Number of parameters (the fixed sinusoidal table is a buffer, not counted)."""
        return sum(p.numel() for p in self.parameters())
