"""Segment-recurrent methods (``xl``, ``compressive``) against explicit segment-by-segment loops.

The references here process segments in order with a detached cache (and, for Compressive, the
paper's FIFO memory / compressed memory and Algorithm 2's loss), with the relative encoding
written out position by position; the modules compute everything in one pass. Padding,
gradients (the compression trained by the aux loss alone), eval determinism and memory are
registry-wide (``tests/test_conformance.py``).
"""

from __future__ import annotations

import math

import pytest
import torch

from lra.check.inputs import DIM, HEADS, make, one_thread, projected_softmax_reference
from lra.check.inputs import inputs as _inputs
from models import REGISTRY, build, build_attention
from models.compressive import CompressiveAttention
from tasks.spec import TaskSpec


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread per test (restored after): the tensors here are tiny."""
    with one_thread():
        yield


METHODS = ("xl", "compressive")


def inputs(n: int = 24, pad: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    """x [2, n, DIM]; item 1's last ``pad`` positions are padding."""
    return _inputs(n, tail=pad, gaps=())


# ----------------------------------------------------------------------------- references
def sinusoid(d: int, dim: int) -> torch.Tensor:
    """R_d [dim]: sin of d / 10000^(2k/dim) for the first half, cos for the second."""
    half = [d / 10000 ** (2 * k / dim) for k in range(dim // 2)]
    return torch.tensor(
        [math.sin(a) for a in half] + [math.cos(a) for a in half], dtype=torch.float64
    )


def ref_attention(attn, h: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
    """One segment h [B, L, D] over [ctx; h] (ctx [B, E, D]), XL scores written per (i, j)."""
    b, seg, _ = h.shape
    e, hd, dh = ctx.shape[1], attn.heads, attn.head_dim
    d = attn.qkv_dim
    w, bias = attn.to_qkv.weight, attn.to_qkv.bias
    q = (h @ w[:d].T + bias[:d]).view(b, seg, hd, dh)
    keys_in = torch.cat([ctx, h], dim=1)
    k = (keys_in @ w[d : 2 * d].T + bias[d : 2 * d]).view(b, e + seg, hd, dh)
    v = (keys_in @ w[2 * d :].T + bias[2 * d :]).view(b, e + seg, hd, dh)
    scores = torch.zeros(b, hd, seg, e + seg, dtype=h.dtype)
    dists = range(-seg + 1, e + seg)
    table = torch.stack([sinusoid(dist, attn.dim) for dist in dists]).to(h.dtype)
    rel = dict(zip(dists, attn.r_proj(table).view(-1, hd, dh), strict=True))  # W_R R_dist
    for i in range(seg):
        for j in range(e + seg):
            r = rel[e + i - j]
            a_c = ((q[:, i] + attn.u) * k[:, j]).sum(-1)  # q.k + u.k
            b_d = ((q[:, i] + attn.v) * r).sum(-1)  # q.W_R R + v.W_R R
            scores[:, :, i, j] = (a_c + b_d) / math.sqrt(dh)
    out = torch.einsum("bhij,bjhd->bihd", scores.softmax(-1), v).reshape(b, seg, d)
    return attn.to_out(out)


def ref_xl(attn, x: torch.Tensor) -> torch.Tensor:
    """Segments in order; memory = last mem_len cached (detached) inputs."""
    cache, outs = x[:, :0], []
    for start in range(0, x.shape[1], attn.segment_len):
        h = x[:, start : start + attn.segment_len]
        mem = cache[:, max(cache.shape[1] - attn.mem_len, 0) :] if attn.mem_len else cache[:, :0]
        outs.append(ref_attention(attn, h, mem))
        cache = torch.cat([cache, h.detach()], dim=1)
    return torch.cat(outs, dim=1)


def ref_content(attn, h: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Algorithm 2's attn(h, m) = softmax((h W_q)(m W_k)^T / sqrt(Dh)) (m W_v) per head."""
    d, hd, dh = attn.qkv_dim, attn.heads, attn.head_dim
    w, bias = attn.to_qkv.weight, attn.to_qkv.bias
    q = (h @ w[:d].T + bias[:d]).view(*h.shape[:2], hd, dh).transpose(1, 2)
    k = (m @ w[d : 2 * d].T + bias[d : 2 * d]).view(*m.shape[:2], hd, dh).transpose(1, 2)
    v = (m @ w[2 * d :].T + bias[2 * d :]).view(*m.shape[:2], hd, dh).transpose(1, 2)
    return ((q @ k.transpose(-2, -1)) / math.sqrt(dh)).softmax(-1) @ v


def ref_compressive(attn, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rae et al. 2020, Algorithm 1 (FIFO memory and compressed memory) + Algorithm 2's loss."""
    mem, cmem = x[:, :0], x[:, :0]
    outs, aux = [], torch.zeros((), dtype=x.dtype)
    for start in range(0, x.shape[1], attn.segment_len):
        h = x[:, start : start + attn.segment_len]
        outs.append(ref_attention(attn, h, torch.cat([cmem, mem], dim=1)))
        everything = torch.cat([mem, h.detach()], dim=1)
        old = everything[:, : max(everything.shape[1] - attn.mem_len, 0)]
        mem = everything[:, everything.shape[1] - min(attn.mem_len, everything.shape[1]) :]
        if old.shape[1] and h.shape[1] == attn.segment_len:  # (a partial last one: unused)
            new = attn.compress(old.transpose(1, 2)).transpose(1, 2)
            diff = ref_content(attn, h.detach(), old) - ref_content(attn, h.detach(), new)
            aux = aux + diff.pow(2).mean()
            cmem = torch.cat([cmem, new.detach()], dim=1)
            cmem = cmem[:, cmem.shape[1] - min(attn.cmem_len, cmem.shape[1]) :]
    return torch.cat(outs, dim=1), aux


# ----------------------------------------------------------------------------- exactness
@pytest.mark.parametrize("padded", [False, True], ids=["no-padding", "padding"])
@pytest.mark.parametrize("name", METHODS)
def test_one_segment_without_relative_terms_is_softmax(name, padded):
    attn = make(name, segment_len=32, mem_len=32)
    with torch.no_grad():
        attn.r_proj.weight.zero_(), attn.u.zero_(), attn.v.zero_()
    x, mask = inputs(pad=7 if padded else 0)
    ref = projected_softmax_reference(attn, x, mask)
    torch.testing.assert_close(attn(x, mask)[mask], ref[mask], atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("name", METHODS)
def test_input_shorter_than_a_segment_skips_padding_and_context(name):
    """n <= segment_len runs one unpadded segment without context; padding the same input past
    one segment (two segments, a fully masked context) must give the same real-token outputs."""
    attn = make(name, segment_len=16, mem_len=16, **({"cmem_len": 4} if name != "xl" else {}))
    x, mask = inputs(n=12, pad=3)
    padded = torch.cat([x, torch.randn(2, 9, DIM, dtype=x.dtype)], dim=1)  # 21 > 16: two segments
    padded_mask = torch.cat([mask, torch.zeros(2, 9, dtype=torch.bool)], dim=1)
    short = attn(x, mask)
    if name == "compressive":  # nothing evicted: a zero that keeps f_c in the graph
        assert attn.aux_loss() == 0 and attn.aux_loss().requires_grad
    long = attn(padded, padded_mask)[:, :12]
    torch.testing.assert_close(short[mask], long[mask], atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize(("seg", "mem"), [(23, 0), (5, 0), (5, 7), (4, 8)])
def test_xl_equals_segment_loop_with_relative_encoding(seg, mem):
    attn = make("xl", segment_len=seg, mem_len=mem)
    x, mask = inputs(n=23, pad=0)
    torch.testing.assert_close(attn(x, mask), ref_xl(attn, x), atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize(("seg", "mem", "cmem", "rate"), [(4, 4, 4, 2), (4, 8, 3, 2), (6, 6, 2, 3)])
def test_compressive_equals_paper_algorithm(seg, mem, cmem, rate):
    attn = make("compressive", segment_len=seg, mem_len=mem, cmem_len=cmem, compression_rate=rate)
    x, mask = inputs(n=26, pad=0)  # a partial last segment
    torch.testing.assert_close(attn(x, mask), ref_compressive(attn, x)[0], atol=1e-10, rtol=1e-9)
    # whole segments for the loss (a partial last segment evicts a whole, padded, segment here)
    y = attn(x[:, :24], mask[:, :24])
    ref, ref_aux = ref_compressive(attn, x[:, :24])
    torch.testing.assert_close(y, ref, atol=1e-10, rtol=1e-9)
    torch.testing.assert_close(attn.aux_loss(), ref_aux, atol=1e-12, rtol=1e-9)
    assert ref_aux > 0


TOY_SPEC = TaskSpec(name="toy", vocab_size=12, max_len=32, num_classes=3)
TWO_LAYERS = {
    "layers": 2,
    "heads": HEADS,
    "dim": DIM,
    "mlp_dim": 32,
    "dropout": 0.0,
    "pooling": "mean",
}


def test_backbone_stack_equals_segment_by_segment_loop():
    """Two pre-LN blocks: one pass == segments in order with a per-layer detached cache."""
    spec, backbone = TOY_SPEC, TWO_LAYERS
    torch.manual_seed(0)
    enc = build(spec, backbone, {"name": "xl", "segment_len": 6, "mem_len": 6}).encoder
    enc = enc.double().eval()
    x, mask = inputs(n=20, pad=0)
    full = x
    for block in enc.blocks:
        full = block(full, mask)
    caches = [x[:, :0] for _ in enc.blocks]
    outs = []
    for start in range(0, 20, 6):
        h = x[:, start : start + 6]
        for li, block in enumerate(enc.blocks):
            normed = block.norm1(h)
            h = h + ref_attention(block.attn, normed, caches[li][:, -6:])
            h = h + block.mlp(block.norm2(h))
            caches[li] = torch.cat([caches[li], normed.detach()], dim=1)
        outs.append(h)
    torch.testing.assert_close(full, torch.cat(outs, dim=1), atol=1e-10, rtol=1e-9)


# ----------------------------------------------------------------------------- recurrence
@pytest.mark.parametrize("name", METHODS)
def test_memory_carries_forward_but_no_gradient_into_the_cache(name):
    spec, backbone = TOY_SPEC, TWO_LAYERS
    options = {"segment_len": 8, "mem_len": 8}
    torch.manual_seed(0)
    enc = build(spec, backbone, {"name": name, **options}).encoder.double().eval()
    x, mask = inputs(n=16, pad=0)

    def hidden(x):
        for block in enc.blocks:
            x = block(x, mask)
        return x

    x.requires_grad_(True)
    y = hidden(x)
    changed = x.detach().clone()
    changed[:, 2] += torch.randn(DIM, dtype=x.dtype)  # a token of segment 1 (positions 0-7)
    y2 = hidden(changed)
    assert not torch.allclose(y2[:, 8:], y[:, 8:].detach())  # segment 2 saw it via memory
    y[:, 8:].pow(2).sum().backward()
    assert x.grad[:, :8].abs().max() == 0  # detached cache: no gradient into segment 1
    assert x.grad[:, 8:].abs().sum() > 0


# ----------------------------------------------------------------------------- compressive aux
def test_aux_loss_trains_only_the_compression():
    attn = make("compressive", segment_len=4, mem_len=4, cmem_len=4).train()
    x, mask = inputs(n=20)
    x.requires_grad_(True)
    attn(x, mask)
    aux = attn.aux_loss()
    assert aux.dim() == 0 and torch.isfinite(aux) and aux > 0
    aux.backward()
    assert x.grad is None
    for pname, p in attn.named_parameters():
        trained = p.grad is not None and p.grad.abs().sum() > 0
        assert trained == pname.startswith("compress."), pname
    attn(x[:, :4], mask[:, :4])  # one segment: nothing evicted, zero loss
    assert attn.aux_loss() == 0


@pytest.mark.parametrize(
    ("option", "value"),
    [("segment_len", 0), ("mem_len", -1), ("cmem_len", 1.5), ("compression_rate", 3)],
)
def test_bad_options_name_the_option(option, value):
    with pytest.raises(ValueError, match=option):
        build_attention("compressive", DIM, HEADS, **{option: value})
    with pytest.raises(ValueError, match="mem_len"):
        build_attention("compressive", DIM, HEADS, segment_len=4, mem_len=6)


def test_encoder_pools_the_mean_over_all_segments():
    spec = TaskSpec(name="toy", vocab_size=12, max_len=32, num_classes=3)
    backbone = {"layers": 1, "heads": 2, "dim": 8, "mlp_dim": 16, "pooling": "cls"}
    for name in METHODS:
        assert REGISTRY[name].segment_recurrent
        model = build(spec, backbone, {"name": name})
        assert model.encoder.pooling == "mean" and model.encoder.embed.cls is None
    other = build(spec, backbone, {"name": "local"})
    assert other.encoder.pooling == "cls"  # only segment-recurrent methods change it


# ----------------------------------------------------------------------------- the loop
@pytest.mark.slow
def test_compressive_trains_in_the_loop_with_its_aux_loss(tiny_overrides, tmp_path, monkeypatch):
    from lra.config import compose
    from lra.run import train

    seen = []
    original = CompressiveAttention.aux_loss

    def spy(self):
        loss = original(self)
        seen.append(float(loss.detach()))
        return loss

    monkeypatch.setattr(CompressiveAttention, "aux_loss", spy)
    overrides = [
        "model=compressive",
        "model.segment_len=16",
        "model.mem_len=16",
        "model.cmem_len=8",
        "task.optim.steps=10",
        "task.optim.eval_every=5",
    ]
    cfg = compose("train", tiny_overrides + overrides)
    record = train.run(cfg, tmp_path / "run")
    assert record["status"] == "ok" and record["model"] == "compressive"
    assert len(seen) >= 10 and all(math.isfinite(v) for v in seen) and max(seen) > 0
