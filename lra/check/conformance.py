"""Conformance checks: what every attention class must do, measured on the class itself.

Each check takes an :class:`~models.Attention` subclass (registered or not) and its options
(default: the class's ``test_options``, or for ``param_rule`` its recipe options) and returns a
:class:`CheckResult` with the measured value and what was expected. The registry-wide tests
run every check on every ``REGISTRY`` class; a check that does not apply to a class (by its
flags) reports ``applicable=False``.

Setting: ``DIM = 16``, ``HEADS = 2``, float64 unless stated, length ``N = 70`` (not a multiple
of the test blocks) with item 1 padded at the tail and in a gap that covers whole blocks of 8,
``max_len = MAX_LEN`` for ``needs_max_len`` methods.
"""

from __future__ import annotations

import functools
import math
import sys
import traceback
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

import torch
from omegaconf import OmegaConf
from torch import Tensor

from lra.check.inputs import (
    DIM,
    HEADS,
    inputs,
    one_thread,
    projected_softmax_reference,
    with_garbage_padding,
)
from lra.config import CONF_DIR
from models import (
    Attention,
    Classifier,
    ProjectedAttention,
    accepted_options,
    build_attention,
)
from models.base import option_defaults
from models.external import method_label
from models.transformer import SoftmaxAttention
from tasks import bytes_tokens
from tasks import text as text_task

N = 70  # conformance length
EXTRA = 26  # padding appended by the padding-invariance check (96 positions in all)
TAIL, GAPS = 13, ((16, 33),)  # item 1's padding: the last 13 positions and [16, 33)
MAX_LEN = 128  # max_len of needs_max_len methods, >= every length used here
PROBE_N = 1024  # length of the no-n x n probe
PAD_TOL = 1e-7  # padding may move real outputs by this much (float64)
EXACT_TOL = 1e-8  # exact methods vs the dense reference (float64)
TRIVIAL_TOL = 1e-3  # below this a non-exact method counts as full softmax
PARAM_RULE = 0.10  # LRA: at most 10 % more (or fewer) parameters than the Transformer
# Relative L2 error allowed under autocast against float32 (outputs, input gradients):
# about 4x the error of bf16/fp16 rounding through one attention layer.
PRECISION_TOL = {torch.bfloat16: 2e-2, torch.float16: 3e-3}
# A ReLU or argmax feature whose sign flips under rounding moves single tokens' gradients
# (cosformer: one token of 110 holds most of its error); this worst fraction is left out.
GRAD_OUTLIERS = 0.01
COMPILE_TOL = 1e-4  # compiled vs eager, float32: fused kernels reorder sums
BOGUS = "no_such_option"
BASE_OPTIONS = ("dropout", "qkv_dim")  # the recipe's, validated by the backbone


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one class."""

    check: str
    method: str
    passed: bool
    measured: Any
    expected: str
    message: str = ""
    applicable: bool = True

    def describe(self) -> str:
        """One line: ``method check: PASS|FAIL|n/a measured=... expected=... message``."""
        status = "n/a" if not self.applicable else "PASS" if self.passed else "FAIL"
        text = f"{self.method} {self.check}: {status} measured={self.measured!r}"
        text += f" expected={self.expected}"
        return f"{text} ({self.message})" if self.message else text


class Verdict(NamedTuple):
    """What a check function returns; :class:`Check` adds the names."""

    passed: bool
    measured: Any
    expected: str
    message: str = ""


@dataclass(frozen=True)
class Check:
    """A named check: ``check(cls, options=None) -> CheckResult``; never raises.

    ``options`` None means the class's ``test_options`` (``recipe=False``) or its recipe
    options (``recipe=True``: ``conf/model/<name>.yaml`` of a registered class, else none).
    An exception inside the check is a failure that names it.
    """

    name: str
    fn: Callable[[type[Attention], dict[str, Any]], Verdict]
    applies: Callable[[type[Attention]], bool]
    doc: str
    recipe: bool = False
    slow: bool = False  # takes seconds to minutes (the test suite runs it in its slow tier)

    def __call__(
        self, cls: type[Attention], options: Mapping[str, Any] | None = None
    ) -> CheckResult:
        label = method_label(cls)
        if not self.applies(cls):
            return CheckResult(self.name, label, True, None, "-", "does not apply", False)
        if options is None:
            options = recipe_options(cls) if self.recipe else cls.test_options
        try:
            with torch.random.fork_rng(devices=[]), one_thread():
                verdict = self.fn(cls, dict(options))
        except Exception as err:  # a crash is a failure of the method, reported as such
            frame = traceback.extract_tb(err.__traceback__)[-1]
            where = f"{Path(frame.filename).name}:{frame.lineno}"
            message = f"raised {type(err).__name__}: {err} (at {where})"
            return CheckResult(self.name, label, False, None, "no exception", message)
        return CheckResult(self.name, label, *verdict)


CHECKS: dict[str, Check] = {}


def check(
    name: str,
    applies: Callable[[type[Attention]], bool] | None = None,
    recipe: bool = False,
    slow: bool = False,
):
    """Decorator: register ``fn(cls, options) -> Verdict`` as the check ``name``."""

    def decorate(fn: Callable[[type[Attention], dict[str, Any]], Verdict]) -> Check:
        doc = (fn.__doc__ or "").strip().splitlines()[0]
        CHECKS[name] = Check(name, fn, applies or (lambda cls: True), doc, recipe, slow)
        return CHECKS[name]

    return decorate


def run_checks(
    cls: type[Attention],
    test_options: Mapping[str, Any] | None = None,
    recipe_options: Mapping[str, Any] | None = None,
) -> list[CheckResult]:
    """Every check on ``cls``, in order."""
    return [c(cls, recipe_options if c.recipe else test_options) for c in CHECKS.values()]


# --------------------------------------------------------------------------- helpers
def recipe_options(cls: type[Attention]) -> dict[str, Any]:
    """The options of ``conf/model/<name>.yaml`` for a registered class, else none."""
    path = CONF_DIR / "model" / f"{vars(cls).get('name', '')}.yaml"
    if not vars(cls).get("name") or not path.is_file():
        return {}
    cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    return {k: v for k, v in cfg.items() if k not in ("_target_", "name")}


def with_max_len(cls: type[Attention], options: Mapping[str, Any], max_len: int) -> dict:
    """``options`` plus ``max_len`` for a ``needs_max_len`` class (unless given)."""
    options = dict(options)
    if cls.needs_max_len:
        options.setdefault("max_len", max_len)
    return options


def build(
    cls: type[Attention],
    options: Mapping[str, Any],
    dropout: float = 0.0,
    dtype: torch.dtype = torch.float64,
    max_len: int = MAX_LEN,
    seed: int = 0,
) -> Attention:
    """``cls`` at ``DIM``/``HEADS`` in eval mode, built after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    attn = build_attention(cls, DIM, HEADS, dropout=dropout, **with_max_len(cls, options, max_len))
    return attn.to(dtype).eval()


def batch(n: int = N, dtype: torch.dtype = torch.float64, seed: int = 1) -> tuple[Tensor, Tensor]:
    """x [2, n, DIM], mask [2, n]: item 0 all real, item 1 padded at ``TAIL`` and ``GAPS``."""
    return inputs(n, b=2, dim=DIM, tail=TAIL, gaps=GAPS, seed=seed, dtype=dtype)


def declared_flags(cls: type[Attention]) -> dict[str, Any]:
    """Names declared ``ClassVar[...]`` by ``cls`` or its bases up to :class:`Attention`,
    each with the runtime type its annotation names."""
    flags: dict[str, Any] = {}
    for klass in reversed(cls.__mro__[: cls.__mro__.index(Attention) + 1]):
        namespace = vars(sys.modules[klass.__module__])
        for name, hint in vars(klass).get("__annotations__", {}).items():
            if isinstance(hint, str):
                try:
                    hint = eval(hint, namespace)  # postponed annotation (PEP 563)
                except Exception:
                    continue
            if typing.get_origin(hint) is typing.ClassVar:
                inner = typing.get_args(hint)[0]
                flags[name] = typing.get_origin(inner) or inner
    return flags


def _max_abs(a: Tensor, b: Tensor) -> float:
    return (a - b).abs().max().item() if a.numel() else 0.0


def _is_subquadratic(cls: type[Attention]) -> bool:
    return cls.subquadratic()


def _has_qkv(cls: type[Attention]) -> bool:
    return issubclass(cls, ProjectedAttention) and cls.projections == "qkv"


# --------------------------------------------------------------------------- the checks
@check("flags")
def check_flags(cls: type[Attention], options: dict[str, Any]) -> Verdict:
    """Capability flags have their declared types; no undeclared class attributes; test
    options are accepted; aux-only parameters exist."""
    problems: list[str] = []
    flags = declared_flags(cls)
    for name, kind in flags.items():
        if kind is not Any and not isinstance(getattr(cls, name), kind):
            problems.append(f"{name}={getattr(cls, name)!r} is not {kind.__name__}")
    for klass in cls.__mro__[: cls.__mro__.index(Attention)]:
        for name, value in vars(klass).items():
            plain = not callable(value) and not isinstance(value, property | classmethod)
            if plain and not name.startswith("_") and name not in flags:
                problems.append(f"{klass.__name__}.{name} is not declared (ClassVar[...])")
    if not cls.complexity.strip():
        problems.append("complexity is empty")
    accepted = accepted_options(cls)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        problems.append(f"test options {unknown} are not accepted ({accepted})")
    if "max_len" in options:
        problems.append("test options set max_len (the recipe gives it)")
    if cls.needs_max_len != ("max_len" in accepted):
        problems.append(f"needs_max_len={cls.needs_max_len} but max_len accepted: {accepted}")
    if cls.exact and not _has_qkv(cls):
        problems.append("exact but without to_qkv (no reference to compare with)")
    if not unknown:
        attn = build(cls, options)
        params = {n.split(".")[0] for n, _ in attn.named_parameters()}
        missing = sorted(set(cls.aux_only_params) - params)
        if missing:
            problems.append(f"aux_only_params {missing} are not parameters")
    return Verdict(not problems, problems, "no problems", "; ".join(problems))


@check("shape")
def check_shape(cls: type[Attention], options: dict[str, Any]) -> Verdict:
    """Output [B, N, D] in the input's dtype; aux_loss() None or a finite 0-dim tensor."""
    x, mask = batch()
    attn = build(cls, options)
    y = attn(x, mask)
    aux = attn.aux_loss()
    measured = f"{tuple(y.shape)} {y.dtype}"
    expected = f"{tuple(x.shape)} {x.dtype}"
    message = ""
    if aux is not None and not (isinstance(aux, Tensor) and aux.dim() == 0 and aux.isfinite()):
        message = f"aux_loss() is {aux!r}, not a finite 0-dim tensor"
    return Verdict(measured == expected and not message, measured, expected, message)


@check("finite")
def check_finite(cls: type[Attention], options: dict[str, Any]) -> Verdict:
    """float32 outputs are finite at every position, real and padded."""
    x, mask = batch(dtype=torch.float32)
    y = build(cls, options, dtype=torch.float32)(x, mask)
    bad = int((~torch.isfinite(y)).sum())
    return Verdict(bad == 0, bad, "0 non-finite outputs")


def padding_leak(cls: type[Attention], options: dict[str, Any]) -> float:
    """Largest change of a real output (or of the aux loss) when ``EXTRA`` padded positions
    are appended and every padded position holds garbage (float64)."""
    attn = build(cls, options)
    x, mask = batch()
    y, aux = attn(x, mask), attn.aux_loss()
    x_long, mask_long = with_garbage_padding(x, mask, EXTRA)
    y_long, aux_long = attn(x_long, mask_long)[:, : x.shape[1]], attn.aux_loss()
    leak = _max_abs(y_long[mask], y[mask])
    if aux is not None and aux_long is not None:
        leak = max(leak, abs(aux_long.item() - aux.item()))
    return leak


@check("padding", applies=lambda cls: cls.supports_mask)
def check_padding(cls: type[Attention], options: dict[str, Any]) -> Verdict:
    """Appended padding and garbage at padded positions leave real outputs alone, unless the
    class is ``length_dependent`` (then they must not: the flag is true)."""
    leak = padding_leak(cls, options)
    if cls.length_dependent:
        return Verdict(leak > PAD_TOL, leak, f"> {PAD_TOL} (length_dependent)")
    return Verdict(leak <= PAD_TOL, leak, f"<= {PAD_TOL}")


def _grad_problem(name: str, grad: Tensor | None) -> str | None:
    if grad is None:
        return f"{name}: no gradient"
    if not torch.isfinite(grad).all():
        return f"{name}: non-finite gradient"
    if grad.abs().sum() == 0:
        return f"{name}: zero gradient"
    return None


@check("gradients")
def check_gradients(cls: type[Attention], options: dict[str, Any]) -> Verdict:
    """The task loss (real outputs) reaches the input and every parameter except
    ``aux_only_params``, finitely; those get none from it and some from ``aux_loss()``."""
    attn = build(cls, options).train()
    x, mask = batch()
    x.requires_grad_(True)
    attn(x, mask)[mask].pow(2).sum().backward()
    problems = [p for p in [_grad_problem("input", x.grad)] if p]
    aux_only = set(cls.aux_only_params)
    for name, param in attn.named_parameters():
        if name.split(".")[0] not in aux_only:
            problems += [p for p in [_grad_problem(name, param.grad)] if p]
        elif param.grad is not None and param.grad.abs().sum() > 0:
            problems.append(f"{name}: aux-only but the task loss reaches it")
    if aux_only:
        attn.zero_grad(set_to_none=True)
        attn(x.detach(), mask)
        aux = attn.aux_loss()
        if aux is None:
            problems.append("aux_only_params declared but aux_loss() is None")
        else:
            aux.backward()
            for name, param in attn.named_parameters():
                if name.split(".")[0] in aux_only:
                    problems += [p for p in [_grad_problem(f"{name} (aux)", param.grad)] if p]
    total = sum(1 for _ in attn.parameters())
    measured = problems or f"all {total} parameters"
    return Verdict(
        not problems, measured, "a finite, nonzero gradient for each", "; ".join(problems)
    )


def _autocast_run(
    attn: Attention, x: Tensor, mask: Tensor, weight: Tensor, dtype: torch.dtype | None
) -> tuple[Tensor, Tensor, list[Tensor]]:
    """Forward (under autocast to ``dtype`` on ``x``'s device, or plain float32 for None) and
    backward of ``sum(weight * y)`` over real tokens -> float32 outputs, input gradient,
    parameter grads."""
    attn.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_(True)
    autocast_on = dtype is not None
    with torch.autocast(x.device.type, dtype=dtype or torch.bfloat16, enabled=autocast_on):
        y = attn(x, mask)
    (y.float() * weight)[mask].sum().backward()
    grads = [p.grad for p in attn.parameters() if p.grad is not None]
    return y.detach().float(), x.grad, grads


def token_rel_error(a: Tensor, ref: Tensor, mask: Tensor, drop: float = 0.0) -> float:
    """Relative L2 error of ``a`` against ``ref`` [B, N, D] over real tokens, leaving out the
    worst ``drop`` fraction of tokens (rounded up; 0 = none)."""
    per_token = (a - ref)[mask].pow(2).sum(-1)  # [real tokens]
    worst = math.ceil(drop * per_token.numel())
    if worst:
        per_token = per_token.sort().values[:-worst]
    return (per_token.sum().sqrt() / ref[mask].norm()).item()


def run_errors(
    run: tuple[Tensor, Tensor, list[Tensor]],
    reference: tuple[Tensor, Tensor, list[Tensor]],
    mask: Tensor,
    grad_drop: float = 0.0,
) -> dict[str, float]:
    """Errors of one :func:`_autocast_run` against another: relative L2 of the outputs and of
    the input gradients (leaving out the worst ``grad_drop`` of tokens), and the count of
    non-finite values in the run's outputs and all its gradients."""
    (y, g, grads), (y_ref, g_ref, _) = run, reference
    return {
        "out": token_rel_error(y, y_ref, mask),
        "grad": token_rel_error(g, g_ref, mask, drop=grad_drop),
        "nonfinite": sum(int((~torch.isfinite(t)).sum()) for t in (y, g, *grads)),
    }


def precision_errors(
    cls: type[Attention], options: Mapping[str, Any], device: torch.device | str = "cpu"
) -> dict[str, dict[str, float]]:
    """Per low precision (``bfloat16``, ``float16``): relative L2 error of the outputs and input
    gradients under autocast against float32 on ``device``, and the count of non-finite values
    in outputs and all gradients."""
    attn = build(cls, options, dtype=torch.float32).to(device)
    x, mask = (t.to(device) for t in batch(dtype=torch.float32))
    weight = torch.randn(x.shape, generator=torch.Generator().manual_seed(3)).to(device)
    fp32 = _autocast_run(attn, x, mask, weight, None)
    return {
        str(dtype).removeprefix("torch."): run_errors(
            _autocast_run(attn, x, mask, weight, dtype), fp32, mask, grad_drop=GRAD_OUTLIERS
        )
        for dtype in PRECISION_TOL
    }


@check("precision")
def check_precision(cls: type[Attention], options: dict[str, Any]) -> Verdict:
    """bf16 and fp16 autocast (CPU): outputs and all gradients finite; outputs and input
    gradients within ``PRECISION_TOL`` (relative L2) of float32."""
    measured, problems = {}, []
    for label, err in precision_errors(cls, options).items():
        tol = PRECISION_TOL[getattr(torch, label)]
        shown = {"out": f"{err['out']:.2g}", "grad": f"{err['grad']:.2g}"}
        measured[label] = shown | {"nonfinite": err["nonfinite"]}
        if err["nonfinite"] or not (err["out"] <= tol and err["grad"] <= tol):
            problems.append(
                f"{label}: out {shown['out']}, grad {shown['grad']}, {err['nonfinite']} non-finite"
            )
    expected = ", ".join(f"{str(d)[6:]} <= {t:g}" for d, t in PRECISION_TOL.items())
    return Verdict(not problems, measured, f"finite; {expected}", "; ".join(problems))


@check("compile", slow=True)
def check_compile(cls: type[Attention], options: dict[str, Any]) -> Verdict:
    """torch.compile (inductor; graph breaks allowed): outputs and input gradients equal eager
    within ``COMPILE_TOL`` (relative L2, float32)."""
    attn = build(cls, options, dtype=torch.float32)
    x, mask = batch(dtype=torch.float32)
    weight = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    eager = _autocast_run(attn, x, mask, weight, None)
    torch._dynamo.reset()  # compile afresh, whatever ran before in this process
    err = run_errors(_autocast_run(torch.compile(attn), x, mask, weight, None), eager, mask)
    out_err, grad_err, bad = err["out"], err["grad"], err["nonfinite"]
    measured = {"out": f"{out_err:.2g}", "grad": f"{grad_err:.2g}", "nonfinite": bad}
    passed = not bad and out_err <= COMPILE_TOL and grad_err <= COMPILE_TOL
    problem = "" if passed else f"out {out_err:.2g}, grad {grad_err:.2g}, {bad} non-finite"
    return Verdict(passed, measured, f"finite; <= {COMPILE_TOL:g}", problem)


@check("determinism")
def check_determinism(cls: type[Attention], options: dict[str, Any]) -> Verdict:
    """Eval mode with dropout 0.3: two calls give identical outputs."""
    attn = build(cls, options, dropout=0.3)
    x, mask = batch()
    diff = _max_abs(attn(x, mask), attn(x, mask))
    return Verdict(diff == 0, diff, "0")


@check("exact", applies=lambda cls: cls.exact)
def check_exact(cls: type[Attention], options: dict[str, Any]) -> Verdict:
    """An ``exact`` class equals dense softmax attention through its own projections."""
    attn = build(cls, options)
    x, mask = batch()
    diff = _max_abs(attn(x, mask)[mask], projected_softmax_reference(attn, x, mask)[mask])
    return Verdict(diff <= EXACT_TOL, diff, f"<= {EXACT_TOL}")


@check("non_trivial", applies=lambda cls: not cls.exact and _has_qkv(cls))
def check_non_trivial(cls: type[Attention], options: dict[str, Any]) -> Verdict:
    """At these options and length N the method is not full softmax attention (its blocks,
    windows, landmarks ... are smaller than N)."""
    attn = build(cls, options)
    x, mask = batch()
    diff = _max_abs(attn(x, mask)[mask], projected_softmax_reference(attn, x, mask)[mask])
    return Verdict(diff > TRIVIAL_TOL, diff, f"> {TRIVIAL_TOL} from full softmax")


def largest_saved_tensor(cls: type[Attention], options: dict[str, Any], n: int) -> int:
    """Elements of the largest tensor autograd keeps for backward: one forward and backward
    (with the aux loss) at length ``n``, batch 1, float32, training mode."""
    attn = build(cls, options, dtype=torch.float32, max_len=n).train()
    x = torch.randn(1, n, DIM, requires_grad=True)
    mask = torch.ones(1, n, dtype=torch.bool)
    largest = 0

    def pack(t: Tensor) -> Tensor:
        nonlocal largest
        largest = max(largest, t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = attn(x, mask).sum()
        aux = attn.aux_loss()
        if aux is not None:
            loss = loss + aux
    loss.backward()
    return largest


@check("memory", applies=_is_subquadratic)
def check_memory(cls: type[Attention], options: dict[str, Any]) -> Verdict:
    """Sub-quadratic ``complexity``: no tensor kept for backward reaches n^2 / 8 elements per
    head at n = PROBE_N."""
    limit = HEADS * PROBE_N * PROBE_N // 8
    largest = largest_saved_tensor(cls, options, PROBE_N)
    return Verdict(largest < limit, largest, f"< {limit} (H n^2 / 8 at n = {PROBE_N})")


@check("unknown_option")
def check_unknown_option(cls: type[Attention], options: dict[str, Any]) -> Verdict:
    """An unknown option raises TypeError naming it and the accepted ones, from the builder
    and from the constructor itself."""
    problems: list[str] = []
    bogus = {**with_max_len(cls, options, MAX_LEN), BOGUS: 1}
    try:
        build_attention(cls, DIM, HEADS, **bogus)
        problems.append("build_attention accepted it")
    except TypeError as err:
        missing = [w for w in [BOGUS, *accepted_options(cls)] if w not in str(err)]
        if missing:
            problems.append(f"the message lacks {missing}")
    try:
        cls(DIM, HEADS, **bogus)
        problems.append("the constructor accepted it")
    except TypeError:
        pass
    return Verdict(not problems, problems or "TypeError", "TypeError", "; ".join(problems))


def bad_value(default: Any) -> Any:
    """A value no option with this default should accept: -1 for numbers (and None
    defaults), a nonsense choice for strings."""
    return "no_such_choice" if isinstance(default, str) else -1


@check("option_values")
def check_option_values(cls: type[Attention], options: dict[str, Any]) -> Verdict:
    """Construction with the test options works; a bad value of each own option raises
    ValueError naming the option."""
    build(cls, options)
    accepted = []
    own = {k: v for k, v in option_defaults(cls).items() if k not in BASE_OPTIONS}
    for name, default in own.items():
        trial = {**with_max_len(cls, options, MAX_LEN), name: bad_value(default)}
        try:
            cls(DIM, HEADS, **trial)
            accepted.append(f"{name}={trial[name]!r}")
        except ValueError as err:
            if name not in str(err):
                accepted.append(f"{name}: ValueError without its name")
    measured = accepted or f"{len(own)} options rejected"
    return Verdict(not accepted, measured, "ValueError for each", "; ".join(accepted))


def text_recipe_params(cls: type[Attention], options: Mapping[str, Any]) -> int:
    """Parameters of the classifier at the Text recipe (``conf/task/text.yaml``: its
    ``backbone`` and ``seq_len``; byte vocabulary, two classes)."""
    text = OmegaConf.load(CONF_DIR / "task" / "text.yaml")
    backbone = OmegaConf.to_container(text.backbone, resolve=True)
    spec = SimpleNamespace(
        vocab_size=bytes_tokens.VOCAB_SIZE,
        max_len=int(text.seq_len),
        num_classes=text_task.NUM_CLASSES,
        pair=False,
    )
    torch.manual_seed(0)
    return Classifier(spec, backbone, cls, options).num_params()


@functools.cache
def _transformer_text_params() -> int:
    return text_recipe_params(SoftmaxAttention, {})


@check("param_rule", recipe=True)
def check_param_rule(cls: type[Attention], options: dict[str, Any]) -> Verdict:
    """LRA's rule at the Text recipe: within 10 % of the Transformer's parameters, or a
    declared ``param_exception`` that really is outside."""
    ratio = text_recipe_params(cls, options) / _transformer_text_params()
    change = ratio - 1
    measured = f"{change:+.1%}"
    if cls.param_exception:
        return Verdict(
            abs(change) > PARAM_RULE,
            measured,
            f"outside +-{PARAM_RULE:.0%} (declared exception)",
            cls.param_exception,
        )
    return Verdict(abs(change) <= PARAM_RULE, measured, f"within +-{PARAM_RULE:.0%}")


@check("all_padding", applies=lambda cls: cls.supports_mask)
def check_all_padding(cls: type[Attention], options: dict[str, Any]) -> Verdict:
    """An item without real tokens: finite outputs and gradients (float32), and the other
    item's real outputs equal those it gets alone."""
    attn = build(cls, options, dtype=torch.float32)
    x, mask = batch(dtype=torch.float32)
    mask[0] = False
    x.requires_grad_(True)
    y = attn(x, mask)
    aux = attn.aux_loss()
    (y.sum() + (aux if aux is not None else 0)).backward()
    grads = [x.grad, *(p.grad for p in attn.parameters() if p.grad is not None)]
    measured = {
        "non-finite outputs": int((~torch.isfinite(y)).sum()),
        "non-finite grads": sum(int((~torch.isfinite(g)).sum()) for g in grads),
    }
    with torch.no_grad():
        alone = attn(x[1:], mask[1:])[0]
    other = y[1].detach()[mask[1]]
    measured["other item change"] = _max_abs(other, alone[mask[1]])
    ok = torch.allclose(other, alone[mask[1]], rtol=1e-5, atol=1e-5)
    passed = ok and measured["non-finite outputs"] == 0 and measured["non-finite grads"] == 0
    return Verdict(passed, measured, "all finite; other item within 1e-5")


__all__ = [
    "CHECKS",
    "PRECISION_TOL",
    "precision_errors",
    "Check",
    "CheckResult",
    "Verdict",
    "padding_leak",
    "largest_saved_tensor",
    "recipe_options",
    "run_checks",
    "text_recipe_params",
]
