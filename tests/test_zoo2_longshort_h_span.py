"""``longshort``, ``htransformer`` and ``adaptive_span`` against dense versions of their papers.

Each method's maths is rebuilt densely HERE (n x n scores, small n) from its definition and
compared with the module's blockwise/hierarchical output; covering configurations equal full
softmax; padding, gradients and the adaptive-span auxiliary loss, down to the training loop,
are checked. Memory and the parameter rule are registry-wide (``tests/test_conformance.py``).
"""

from __future__ import annotations

import math

import pytest
import torch

from lra.check.inputs import HEAD_DIM as DH
from lra.check.inputs import HEADS as H
from lra.check.inputs import make, one_thread, qkv
from lra.check.inputs import softmax_over as softmax_ref
from models import build, build_attention
from tasks.spec import TaskSpec


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread per test (restored after): the tensors here are tiny."""
    with one_thread():
        yield


def real_rows(mask, out):
    """The key mask [B, N] expanded to ``out`` [B, H, N, Dh]."""
    return mask[:, None, :, None].expand_as(out)


# ------------------------------------------------------------------ dense references
def h_reference(q, k, v, mask, block: int, levels: int | None):
    """Scores replaced by the mean over the level's (query group, key group) of real tokens."""
    n = q.shape[2]
    i = torch.arange(n)
    level = torch.full((n, n), -1)
    for lv in range(20):
        seg = i // (block * 2**lv)
        level[(seg[:, None] == seg[None, :]) & (level < 0)] = lv
    real = mask.double()
    scores = torch.zeros(q.shape[0], H, n, n, dtype=q.dtype)
    for lv in level.unique().tolist():
        group = i // (2 ** (lv - 1) if lv else 1)
        same = (group[:, None] == group[None, :]).double() * real[:, None, :]  # [B, n, n]
        avg = same / same.sum(-1, keepdim=True).clamp_min(1)
        qbar, kbar = avg[:, None] @ q, avg[:, None] @ k
        scores = torch.where(level == lv, qbar @ kbar.transpose(-2, -1) / math.sqrt(DH), scores)
    allowed = mask[:, None, None, :] & (level <= (levels if levels is not None else 99))
    return softmax_ref(scores, allowed, v)


def longshort_reference(attn, q, k, v, mask, window: int):
    """One softmax over segment-window keys (LN_S) and r projected keys (LN_L), densely."""
    n, s = q.shape[2], max(window // 2, 1)
    logits = torch.einsum("bhnd,hdr->bhnr", k, attn.w_p)
    p = logits.masked_fill(~mask[:, None, :, None], float("-inf")).softmax(2)
    k_long = attn.norm_long(p.transpose(-2, -1) @ k)
    v_long = attn.norm_long(p.transpose(-2, -1) @ v)
    seg = torch.arange(n) // s
    near = (seg[:, None] - seg[None, :]).abs() <= 1
    scores = torch.cat([q @ attn.norm_short(k).transpose(-2, -1), q @ k_long.transpose(-2, -1)], -1)
    allowed = torch.cat(
        [
            (near & mask[:, None, None, :]).expand(-1, H, -1, -1),
            torch.ones(*q.shape[:3], attn.rank, dtype=torch.bool),
        ],
        -1,
    )
    values = torch.cat([attn.norm_short(v), v_long], 2)
    return softmax_ref(scores / math.sqrt(DH), allowed, values)


def span_reference(attn, q, k, v, mask):
    """m_z(|i-j|) exp(s_ij) / sum, keys with |i - j| < max_span, from the paper's formula."""
    n = q.shape[2]
    i = torch.arange(n)
    dist = (i[:, None] - i[None, :]).abs().double()
    z = attn.span_frac.detach().clamp(0, 1)[:, None, None] * attn.max_span
    m = ((attn.ramp + z - dist) / attn.ramp).clamp(0, 1) * (dist < attn.max_span)
    w = (q @ k.transpose(-2, -1) / math.sqrt(DH)).exp() * m * mask[:, None, None, :]
    return (w / w.sum(-1, keepdim=True)) @ v


def with_spans(attn, fracs):
    with torch.no_grad():
        attn.span_frac.copy_(torch.tensor(fracs, dtype=attn.span_frac.dtype))
    return attn


CASES = {
    "htransformer-b4": (
        lambda: make("htransformer", block_size=4),
        lambda a, q, k, v, m: h_reference(q, k, v, m, 4, None),
    ),
    "htransformer-b3-levels2": (
        lambda: make("htransformer", block_size=3, levels=2),
        lambda a, q, k, v, m: h_reference(q, k, v, m, 3, 2),
    ),
    "longshort-w8-r4": (
        lambda: make("longshort", window=8, rank=4),
        lambda a, q, k, v, m: longshort_reference(a, q, k, v, m, 8),
    ),
    "longshort-w5-r3": (
        lambda: make("longshort", window=5, rank=3),
        lambda a, q, k, v, m: longshort_reference(a, q, k, v, m, 5),
    ),
    "adaptive_span-s12-r4": (
        lambda: with_spans(make("adaptive_span", max_span=12, ramp=4), [0.1, 0.6]),
        span_reference,
    ),
    "adaptive_span-s7-r3-clamped": (
        lambda: with_spans(make("adaptive_span", max_span=7, ramp=3), [-0.5, 1.4]),
        span_reference,
    ),
}


@pytest.mark.parametrize("n", [37, 40], ids=["n37", "n40"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_dense_definition(case, n):
    build_it, reference = CASES[case]
    attn = build_it()
    q, k, v, mask = qkv(n)
    out = attn.attend(q, k, v, mask)
    ref = reference(attn, q, k, v, mask)
    full = softmax_ref(q @ k.transpose(-2, -1) / math.sqrt(DH), mask[:, None, None, :], v)
    real = real_rows(mask, out)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[real], ref[real].detach(), atol=1e-10, rtol=1e-10)
    assert (out[real] - full[real]).abs().max() > 1e-3, "the case must differ from full softmax"


@pytest.mark.parametrize("levels", [None, 2], ids=["all-levels", "levels2"])
def test_htransformer_without_padding_matches_dense_definition(levels):
    """A batch without padding at a length of b * 2^levels takes the path that skips masking
    (group means folded into the score scale): outputs and gradients match the definition."""
    attn = make("htransformer", block_size=4, levels=levels)
    q, k, v, _ = qkv(32 if levels is None else 16)
    mask = torch.ones(q.shape[0], q.shape[2], dtype=torch.bool)
    inputs = [t.clone().requires_grad_() for t in (q, k, v)]
    copies = [t.clone().requires_grad_() for t in (q, k, v)]
    out, ref = attn.attend(*inputs, mask), h_reference(*copies, mask, 4, levels)
    grad = torch.randn_like(out)
    (out * grad).sum().backward()
    (ref * grad).sum().backward()
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=1e-10)
    for mine, theirs in zip(inputs, copies, strict=True):
        torch.testing.assert_close(mine.grad, theirs.grad, atol=1e-10, rtol=1e-10)
    full = softmax_ref(q @ k.transpose(-2, -1) / math.sqrt(DH), mask[:, None, None, :], v)
    assert (out - full).abs().max() > 1e-3, "the case must differ from full softmax"


COVERING = {
    "htransformer-block>=n": lambda: make("htransformer", block_size=64),
    "htransformer-one-level-2b>=n": lambda: make("htransformer", block_size=19, levels=1),
    "adaptive_span-span>=n-mask=1": lambda: with_spans(
        make("adaptive_span", max_span=40, ramp=1), [1.0, 1.0]
    ),
}


@pytest.mark.parametrize("case", sorted(COVERING))
def test_covering_configuration_equals_full_softmax(case):
    attn = COVERING[case]()
    q, k, v, mask = qkv(37)
    ref = softmax_ref(q @ k.transpose(-2, -1) / math.sqrt(DH), mask[:, None, None, :], v)
    out = attn.attend(q, k, v, mask)
    torch.testing.assert_close(
        out[real_rows(mask, out)], ref[real_rows(mask, ref)], atol=1e-10, rtol=0
    )


def test_htransformer_level_count():
    """Automatic levels cover the sequence; an int caps them."""
    attn = make("htransformer", block_size=10, levels=None)
    assert attn.num_levels(37) == 2 and attn.num_levels(10) == 0
    assert make("htransformer", block_size=4, levels=1).num_levels(37) == 1


@pytest.mark.parametrize("case", sorted(CASES))
def test_padded_keys_never_reach_real_queries_and_padding_can_be_appended(case):
    attn = CASES[case][0]()
    q, k, v, mask = qkv(37)
    k.requires_grad_(True)
    v.requires_grad_(True)
    out = attn.attend(q, k, v, mask)
    real = real_rows(mask, out)
    out[real].sum().backward()
    pad = ~real_rows(mask, k)
    assert k.grad[pad].abs().max() == 0 and v.grad[pad].abs().max() == 0
    assert k.grad[~pad].abs().sum() > 0 and torch.isfinite(k.grad).all()
    extra = 11
    long = [torch.cat([t.detach(), 1e3 * torch.randn_like(t[:, :, :extra])], 2) for t in (q, k, v)]
    mask_long = torch.cat([mask, torch.zeros(2, extra, dtype=torch.bool)], 1)
    out_long = attn.attend(*long, mask_long)[:, :, :37]
    torch.testing.assert_close(out_long[real], out[real].detach(), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("case", sorted(CASES))
def test_fully_padded_item_is_finite_and_leaves_others_alone(case):
    attn = CASES[case][0]().train()
    q, k, v, mask = qkv(37)
    mask[0] = False
    q.requires_grad_(True)
    out = attn.attend(q, k, v, mask)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(q.grad).all()
    torch.testing.assert_close(out[1], attn.attend(q[1:], k[1:], v[1:], mask[1:])[0])


DROPOUT_OPTIONS = {
    "htransformer": {"block_size": 16},
    "longshort": {"window": 32, "rank": 8},
    "adaptive_span": {"max_span": 64},
}


@pytest.mark.parametrize("name", sorted(DROPOUT_OPTIONS))
def test_attention_dropout_only_in_training(name):
    attn = build_attention(name, H * DH, H, dropout=0.5, **DROPOUT_OPTIONS[name]).train()
    q, k, v, mask = qkv(40, dtype=torch.float32)
    assert not torch.allclose(attn.attend(q, k, v, mask), attn.attend(q, k, v, mask))
    attn.eval()
    torch.testing.assert_close(
        attn.attend(q, k, v, mask), attn.attend(q, k, v, mask), atol=0, rtol=0
    )


# ------------------------------------------------------------------ adaptive span's loss
def test_span_loss_is_coef_times_mean_span_and_follows_the_span():
    attn = with_spans(make("adaptive_span", max_span=16, ramp=4, span_loss_coef=0.5), [0.25, 0.5])
    assert attn.aux_loss() is None  # nothing before a forward pass
    q, k, v, mask = qkv(20)
    attn.attend(q, k, v, mask)
    loss = attn.aux_loss()
    assert loss.dim() == 0 and torch.isfinite(loss)
    torch.testing.assert_close(loss.item(), 0.5 * (4 + 8) / 2)
    loss.backward()
    torch.testing.assert_close(
        attn.span_frac.grad, torch.full((H,), 0.5 * 16 / H, dtype=torch.double)
    )
    with_spans(attn, [0.75, 1.5])  # the second head is clamped at max_span
    attn.attend(q, k, v, mask)
    torch.testing.assert_close(attn.aux_loss().item(), 0.5 * (12 + 16) / 2)


def test_span_mask_gradient_reaches_the_span_parameter():
    attn = with_spans(make("adaptive_span", max_span=16, ramp=4), [0.2, 0.4])
    q, k, v, mask = qkv(30)
    attn.attend(q, k, v, mask).pow(2).sum().backward()
    assert torch.isfinite(attn.span_frac.grad).all() and (attn.span_frac.grad != 0).all()


def test_classifier_sums_the_span_loss_of_every_layer():
    spec = TaskSpec(name="toy", vocab_size=12, max_len=40, num_classes=3)
    backbone = {"layers": 2, "heads": 2, "dim": 16, "mlp_dim": 32, "pooling": "cls"}
    model = build(spec, backbone, {"name": "adaptive_span", "max_span": 8, "span_loss_coef": 1.0})
    for layer_attn, frac in zip(
        (m for m in model.modules() if hasattr(m, "span_frac")), (0.5, 0.25), strict=True
    ):
        with torch.no_grad():
            layer_attn.span_frac.fill_(frac)
    ids = torch.randint(1, 12, (2, 30))
    model(dict(input_ids=ids, mask=torch.ones(2, 30, dtype=torch.bool)))
    torch.testing.assert_close(model.aux_loss().item(), 8 * 0.5 + 8 * 0.25)


@pytest.mark.slow
def test_span_loss_reaches_the_training_loop(tiny_overrides, tmp_path):
    """A large penalty drives every span to 0 through the loop's optimiser; the run is ok."""
    from lra.config import compose
    from lra.run import train

    cfg = compose(
        "train",
        tiny_overrides
        + ["model=adaptive_span", "model.max_span=16", "model.span_loss_coef=10.0"]
        + ["task.optim.steps=8", "task.optim.eval_every=8", "task.optim.warmup=2"],
    )
    record = train.run(cfg, tmp_path / "run")
    assert record["status"] == "ok" and record["model"] == "adaptive_span"
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["model"]
    fracs = [t for name, t in state.items() if name.endswith("span_frac")]
    assert fracs and all((f < 0).all() for f in fracs), fracs


# ------------------------------------------------------------------ options, backbone, size
BAD_OPTIONS = [
    ("longshort", {"window": 0}, "window"),
    ("longshort", {"rank": 0}, "rank"),
    ("htransformer", {"block_size": 0}, "block_size"),
    ("htransformer", {"levels": -1}, "levels"),
    ("adaptive_span", {"max_span": 0}, "max_span"),
    ("adaptive_span", {"ramp": 1.5}, "ramp"),
    ("adaptive_span", {"span_loss_coef": -1.0}, "span_loss_coef"),
]


@pytest.mark.parametrize(("name", "options", "match"), BAD_OPTIONS)
def test_bad_option_values_name_the_option(name, options, match):
    with pytest.raises(ValueError, match=match):
        build_attention(name, 16, 2, **options)
