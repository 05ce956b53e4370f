"""Every conformance check can fail: each runs on a deliberately broken toy attention class
defined here and must report failure (and passes on the class the toy breaks)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lra.check.conformance import CHECKS, largest_saved_tensor
from lra.check.inputs import one_thread
from models import ProjectedAttention
from models.local import LocalAttention
from models.reformer import ReformerAttention
from models.transformer import SoftmaxAttention
from models.transformer_naive import NaiveSoftmaxAttention


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread per test (restored after): the tensors here are tiny."""
    with one_thread():
        yield


# --------------------------------------------------------------------------- broken toys
class WrongShape(SoftmaxAttention):
    """Drops the last position."""

    def forward(self, x, mask):
        return super().forward(x, mask)[:, :-1]


class InfAtPadding(ProjectedAttention):
    """Divides by the mask: infinite outputs at padded queries."""

    complexity = "n"

    def attend(self, q, k, v, mask):
        return v / mask[:, None, :, None].to(v.dtype)


class LeaksPadding(ProjectedAttention):
    """Averages the values of every position, padded ones included."""

    complexity = "n"

    def attend(self, q, k, v, mask):
        return v.mean(2, keepdim=True).expand_as(v)


class FalselyLengthDependent(SoftmaxAttention):
    """Claims a length-dependent pattern it does not have."""

    length_dependent = True


class UnusedParameter(SoftmaxAttention):
    """A parameter no loss reaches."""

    def __init__(self, dim, heads, dropout=0.0, qkv_dim=None):
        super().__init__(dim, heads, dropout, qkv_dim)
        self.unused = nn.Parameter(torch.ones(3))


class FalselyAuxOnly(SoftmaxAttention):
    """Declares the output projection aux-only, but the task loss trains it."""

    aux_only_params = ("to_out",)


class DropoutInEval(SoftmaxAttention):
    """Drops outputs in eval mode too."""

    def attend(self, q, k, v, mask):
        return F.dropout(super().attend(q, k, v, mask), p=self.dropout, training=True)


class WronglyScaledExact(NaiveSoftmaxAttention):
    """Claims exactness with scores scaled by 1/Dh instead of 1/sqrt(Dh)."""

    def attend(self, q, k, v, mask):
        return super().attend(q / self.head_dim**0.5, k, v, mask)


class CoveringBlock(LocalAttention):
    """Test options whose block covers the whole test length: full softmax, untested."""

    test_options = {"block_size": 128}


class ClaimsLinear(NaiveSoftmaxAttention):
    """``transformer_naive`` (a materialised n x n score matrix) claiming linear cost."""

    complexity = "n"


class SwallowsOptions(SoftmaxAttention):
    """Accepts and ignores any keyword."""

    def __init__(self, dim, heads, dropout=0.0, qkv_dim=None, **ignored):
        super().__init__(dim, heads, dropout, qkv_dim)


class UncheckedWindow(LocalAttention):
    """An option without validation."""

    test_options = {"window": 4}

    def __init__(self, dim, heads, dropout=0.0, qkv_dim=None, window: int = 4):
        super().__init__(dim, heads, dropout, qkv_dim, block_size=16)
        self.window = window


class Bloated(SoftmaxAttention):
    """+30 % parameters at the Text recipe, undeclared."""

    def __init__(self, dim, heads, dropout=0.0, qkv_dim=None):
        super().__init__(dim, heads, dropout, qkv_dim)
        self.extra = nn.Linear(dim, 4 * dim)


class FalseParamException(SoftmaxAttention):
    """Declares an exception to the 10 % rule it does not need."""

    param_exception = "claims to be outside the rule"


class NaNWithoutKeys(NaiveSoftmaxAttention):
    """Masks with -inf without a fallback: NaN for a row without real keys."""

    def attend(self, q, k, v, mask):
        scores = (q @ k.transpose(-2, -1)) * self.head_dim**-0.5
        return scores.masked_fill(~mask[:, None, None, :], float("-inf")).softmax(-1) @ v


class BatchCoupled(SoftmaxAttention):
    """Adds the batch mean: one item changes the other."""

    def attend(self, q, k, v, mask):
        out = super().attend(q, k, v, mask)
        return out + out.mean(0, keepdim=True)


class UnknownTestOption(SoftmaxAttention):
    """Test options the constructor does not take."""

    test_options = {"block_size": 4}


class AdHocFlag(SoftmaxAttention):
    """A capability attribute the base does not declare."""

    sneaky_capability = True


class HashesRoundedQueries(ReformerAttention):
    """Hashes the autocast (bf16/fp16) projection: tokens cross bucket borders."""

    def forward(self, x, mask):
        q, v = self.project(x)
        return self.to_out(self.merge_heads(self.attend_shared(q, v, mask)))


class MasksInAutocastDtype(NaiveSoftmaxAttention):
    """Fills masked scores with float32's minimum in bf16/fp16: overflows under autocast."""

    def attend(self, q, k, v, mask):
        scores = (q @ k.transpose(-2, -1)) * self.head_dim**-0.5
        scores = scores.masked_fill(~mask[:, None, None, :], torch.finfo(torch.float32).min)
        return scores.softmax(-1) @ v


class CompiledDiffers(SoftmaxAttention):
    """Takes another path when traced by torch.compile (a compile-only defect)."""

    def attend(self, q, k, v, mask):
        out = super().attend(q, k, v, mask)
        return out * 1.01 if torch.compiler.is_compiling() else out


BROKEN = [
    ("flags", UnknownTestOption, SoftmaxAttention),
    ("flags", AdHocFlag, SoftmaxAttention),
    ("shape", WrongShape, SoftmaxAttention),
    ("finite", InfAtPadding, SoftmaxAttention),
    ("padding", LeaksPadding, SoftmaxAttention),
    ("padding", FalselyLengthDependent, SoftmaxAttention),
    ("gradients", UnusedParameter, SoftmaxAttention),
    ("gradients", FalselyAuxOnly, SoftmaxAttention),
    ("determinism", DropoutInEval, SoftmaxAttention),
    ("exact", WronglyScaledExact, NaiveSoftmaxAttention),
    ("non_trivial", CoveringBlock, LocalAttention),
    ("memory", ClaimsLinear, LocalAttention),
    ("unknown_option", SwallowsOptions, SoftmaxAttention),
    ("option_values", UncheckedWindow, LocalAttention),
    ("param_rule", Bloated, SoftmaxAttention),
    ("param_rule", FalseParamException, SoftmaxAttention),
    ("all_padding", NaNWithoutKeys, NaiveSoftmaxAttention),
    ("all_padding", BatchCoupled, SoftmaxAttention),
    ("precision", HashesRoundedQueries, ReformerAttention),
    ("precision", MasksInAutocastDtype, NaiveSoftmaxAttention),
    ("compile", CompiledDiffers, SoftmaxAttention),
]


@pytest.mark.parametrize(
    ("check", "toy", "sound"),
    [
        pytest.param(c, t, s, id=f"{c}-{t.__name__}", marks=[pytest.mark.slow] * CHECKS[c].slow)
        for c, t, s in BROKEN
    ],
)
def test_check_reports_the_broken_toy(check, toy, sound):
    result = CHECKS[check](toy)
    assert result.applicable and not result.passed, result.describe()
    assert result.method == toy.__qualname__
    assert CHECKS[check](sound).passed, CHECKS[check](sound).describe()


def test_every_check_has_a_broken_toy():
    assert {check for check, _, _ in BROKEN} == set(CHECKS)


def test_the_memory_probe_sees_the_naive_score_matrix():
    """transformer_naive keeps [B, H, n, n] scores for backward; the probe measures them."""
    n = 256
    assert largest_saved_tensor(NaiveSoftmaxAttention, {}, n) >= 2 * n * n
    assert largest_saved_tensor(LocalAttention, {"block_size": 16}, n) < 2 * n * n // 8


def test_a_crash_is_reported_as_a_failure():
    class Crashes(SoftmaxAttention):
        def attend(self, q, k, v, mask):
            raise RuntimeError("boom")

    result = CHECKS["shape"](Crashes)
    assert not result.passed and "RuntimeError: boom" in result.message
