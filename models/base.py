"""The attention interface, the q/k/v-projection base, and the registry of methods.

A method is a subclass of :class:`Attention` registered under a name with ``@register``.
Construction: ``cls(dim, heads, dropout=0.0, qkv_dim=None, **method_options)``.
Call: ``forward(x [B, N, D], mask [B, N] bool, True = real token) -> [B, N, D]``.

Two bases:

* :class:`Attention`, the interface: the constructor convention, ``forward``, ``aux_loss`` and
  every capability flag. Methods without q/k/v projections (FNet, S4D) subclass it directly
  and build only what they use.
* :class:`ProjectedAttention`, the input projections (``to_qkv``, or the subset named by
  ``projections``) and the output projection ``to_out``; most methods implement only
  ``attend(q, k, v, mask)`` on ``[B, H, N, Dh]``.

Padded keys must never influence real queries.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, ClassVar

from torch import Tensor, nn

REGISTRY: dict[str, type[Attention]] = {}

QUADRATIC = "n^2"  # the ``complexity`` of a method that may build n x n tensors


def register(name: str):
    """Class decorator: add an :class:`Attention` subclass to ``REGISTRY`` under ``name``."""

    def decorate(cls: type[Attention]) -> type[Attention]:
        if name in REGISTRY:
            raise ValueError(f"attention {name!r} registered twice")
        cls.name = name
        REGISTRY[name] = cls
        return cls

    return decorate


class Attention(nn.Module):
    """The interface of every method: ``forward(x [B, N, D], mask [B, N]) -> [B, N, D]``.

    The constructor takes the backbone's ``dim``, ``heads``, attention ``dropout`` and
    ``qkv_dim`` (None = ``dim``), then the method's own options as keywords. The class flags
    below are read by the backbone, the training loop, the benchmark, the report and the
    conformance checks (``lra.check``); a subclass sets the ones that differ.

    Auxiliary losses: a method that adds one stores it during ``forward`` and returns it from
    ``aux_loss()``; the classifier sums them and the loop adds the sum to the task loss.
    """

    name: ClassVar[str] = ""
    """The ``REGISTRY`` key (set by :func:`register`)."""

    exact: ClassVar[bool] = False
    """Equals full softmax attention ``softmax(Q K^T / sqrt(Dh)) V`` through its own
    ``to_qkv`` and ``to_out`` at every length and option (checked against the dense
    reference)."""

    needs_max_len: ClassVar[bool] = False
    """Takes the option ``max_len`` (longest sequence); the backbone passes the positions
    it covers. Longer inputs are an error."""

    supports_mask: ClassVar[bool] = True
    """Honours the key padding mask: padded positions never reach real outputs, whatever
    values they hold."""

    complexity: ClassVar[str] = QUADRATIC
    """Time and memory order in the sequence length n, e.g. ``"n^2"``, ``"n"``,
    ``"n log n"``, ``"n*b"``. Anything but ``"n^2"`` promises that no ``n x n`` tensor is
    built (the conformance probe checks that no tensor kept for backward reaches
    ``n^2 / 8`` elements per batch item and head)."""

    length_dependent: ClassVar[bool] = False
    """The attention pattern depends on the padded length itself (BigBird's global last block
    and random blocks), so appended padding changes outputs at real tokens; the loop then
    feeds every batch at the task's full length instead of trimming it, which keeps the
    pattern fixed, as in the original."""

    segment_recurrent: ClassVar[bool] = False
    """Processes the sequence in segments with a memory of earlier ones (Transformer-XL,
    Compressive); a CLS token at position 0 would see only the first segment, so the encoder
    pools by the mean over real tokens whatever the task's recipe says."""

    aux_only_params: ClassVar[tuple[str, ...]] = ()
    """Top-level parameter or submodule names trained only by ``aux_loss()``: the task loss
    gives them no gradient (Compressive's compression network)."""

    param_exception: ClassVar[str] = ""
    """Why the method is outside LRA's rule that a method adds at most 10 % parameters over
    the Transformer at the task recipe (empty: it is within the rule)."""

    test_options: ClassVar[Mapping[str, Any]] = {}
    """Small options for the conformance checks (``lra.check``) at lengths n = 64..96:
    blocks, windows, segments, landmarks, features smaller than n, so that the method does
    not reduce to full softmax attention there. Never used for training."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, qkv_dim: int | None = None):
        super().__init__()
        self.dim, self.heads, self.dropout = dim, heads, dropout
        self.qkv_dim = qkv_dim or dim

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x [B, N, D], mask [B, N] bool (True = real token) -> [B, N, D]."""
        raise NotImplementedError

    def aux_loss(self) -> Tensor | None:
        """Auxiliary loss of the last forward pass (0-dim), or None."""
        return None

    @classmethod
    def subquadratic(cls) -> bool:
        """True when ``complexity`` promises no ``n x n`` tensor."""
        return cls.complexity.replace(" ", "") != QUADRATIC

    def extra_repr(self) -> str:
        return f"dim={self.dim}, heads={self.heads}"


class ProjectedAttention(Attention):
    """Attention over projected queries, keys and values: ``to_out(attend(q, k, v, mask))``.

    Builds one input projection ``to_<projections>`` = ``Linear(dim, len(projections) *
    qkv_dim)`` and ``to_out`` = ``Linear(qkv_dim, dim)``. With the default ``"qkv"`` the
    method implements ``attend``; a method using another set (``"qv"``: shared query/key,
    ``"v"``: values only) overrides ``forward`` and calls :meth:`project`.
    """

    projections: ClassVar[str] = "qkv"
    """The input projections, in order, one letter each (``"qkv"``, ``"qv"``, ``"v"``)."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, qkv_dim: int | None = None):
        super().__init__(dim, heads, dropout, qkv_dim)
        if self.qkv_dim % heads:
            raise ValueError(f"qkv_dim {self.qkv_dim} is not divisible by heads {heads}")
        self.head_dim = self.qkv_dim // heads
        width = len(self.projections) * self.qkv_dim
        self.add_module(f"to_{self.projections}", nn.Linear(dim, width))
        self.to_out = nn.Linear(self.qkv_dim, dim)

    def project(self, x: Tensor) -> tuple[Tensor, ...]:
        """x [B, N, D] -> one [B, H, N, Dh] per letter of ``projections``."""
        proj = getattr(self, f"to_{self.projections}")
        return tuple(self.split_heads(t) for t in proj(x).chunk(len(self.projections), dim=-1))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x [B, N, D], mask [B, N] bool -> [B, N, D]."""
        q, k, v = self.project(x)
        return self.to_out(self.merge_heads(self.attend(q, k, v, mask)))

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """q, k, v [B, H, N, Dh], mask [B, N] bool -> [B, H, N, Dh]."""
        raise NotImplementedError

    def split_heads(self, t: Tensor) -> Tensor:
        """[B, N, H*Dh] -> [B, H, N, Dh]."""
        b, n, _ = t.shape
        return t.view(b, n, self.heads, self.head_dim).transpose(1, 2)

    @staticmethod
    def merge_heads(t: Tensor) -> Tensor:
        """[B, H, N, Dh] -> [B, N, H*Dh]."""
        b, h, n, d = t.shape
        return t.transpose(1, 2).reshape(b, n, h * d)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, qkv_dim={self.qkv_dim}"


def dropout_p(module: Attention) -> float:
    """Attention dropout probability to use now (0 in eval mode)."""
    return module.dropout if module.training else 0.0


# --------------------------------------------------------------------------- construction
def option_defaults(cls: type[Attention]) -> dict[str, Any]:
    """Keyword options of a method's constructor besides ``dim`` and ``heads``, with defaults
    (``inspect.Parameter.empty`` where there is none).

    Follows ``**kwargs`` up the MRO (a subclass forwarding them to its base also takes the
    base's options) and stops at the first constructor without ``**kwargs``, or at
    :class:`Attention`.
    """
    found: dict[str, Any] = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(vars(klass)["__init__"]).parameters.values()
        for p in params:
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self":
                found.setdefault(p.name, p.default)
        if klass is Attention or not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return {k: v for k, v in found.items() if k not in ("dim", "heads")}


def accepted_options(cls: type[Attention]) -> list[str]:
    """Keyword options a method's constructor takes besides ``dim`` and ``heads`` (sorted)."""
    return sorted(option_defaults(cls))


def attention_class(method: str | type[Attention]) -> type[Attention]:
    """The class of a ``REGISTRY`` name, an installed entry point's name or an import path
    ``package.module:ClassName`` (:mod:`models.external`); a class is returned as it is.

    Raises:
        KeyError: unknown name (the message lists the registered and installed names).
        models.external.MethodError: an import path or entry point that is not usable.
    """
    if isinstance(method, type):
        if not issubclass(method, Attention):
            raise TypeError(f"{method.__qualname__} is not a models.Attention subclass")
        return method
    if method in REGISTRY:
        return REGISTRY[method]
    from models.external import entry_points, external_class

    cls = external_class(method)  # an import path or an installed entry point
    if cls is None:
        installed = f"; installed: {', '.join(sorted(entry_points()))}" if entry_points() else ""
        raise KeyError(
            f"unknown attention {method!r}; registered: {', '.join(sorted(REGISTRY))}"
            f"{installed}; or an import path package.module:ClassName"
        )
    return cls


def build_attention(
    method: str | type[Attention], dim: int, heads: int, **options: Any
) -> Attention:
    """Build an attention method: a ``REGISTRY`` name or an :class:`Attention` subclass.

    Raises:
        KeyError: unknown name (the message lists the registered names).
        TypeError: an option the method's constructor does not take (names it and the
            accepted ones).
    """
    cls = attention_class(method)
    valid = accepted_options(cls)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        label = cls.name or cls.__qualname__
        raise TypeError(
            f"attention {label!r} got unknown option(s) {unknown}; accepted options: {valid}"
        )
    return cls(dim, heads, **options)


__all__ = [
    "QUADRATIC",
    "REGISTRY",
    "Attention",
    "ProjectedAttention",
    "accepted_options",
    "attention_class",
    "build_attention",
    "dropout_p",
    "option_defaults",
    "register",
]
