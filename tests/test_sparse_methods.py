"""Block-sparse methods (``local``, ``sparse``, ``longformer``, ``bigbird``) against their papers.

The key test builds each method's boolean attention pattern densely HERE, from the paper's
definition (small n, lengths that are and are not a multiple of the block), and compares the
method's blockwise output with masked dense softmax over that pattern. Further: the covering
cases equal full softmax attention, padding never reaches real queries, BigBird's random
blocks follow the rules and stay fixed, bad options name themselves. Memory (no N x N tensor)
and the rest of the contract are registry-wide (``tests/test_conformance.py``).
"""

from __future__ import annotations

import math

import pytest
import torch

from lra.check.inputs import HEADS as H
from lra.check.inputs import make, one_thread, qkv
from lra.check.inputs import softmax_reference as dense_reference
from models import build_attention


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread per test (restored after): the tensors here are tiny."""
    with one_thread():
        yield


# ------------------------------------------------------------------ paper patterns, dense
def grid(n: int):
    i = torch.arange(n)
    return i[:, None], i[None, :]  # query, key positions


def local_pattern(n: int, b: int):
    i, j = grid(n)
    return i // b == j // b


def fixed_pattern(n: int, b: int, c: int):
    i, j = grid(n)
    return (i // b == j // b) | (j % b >= b - c)


def strided_pattern(n: int, b: int):
    i, j = grid(n)
    return ((i - j).abs() <= b) | ((i - j) % b == 0)


def longformer_pattern(n: int, w: int, g: int):
    i, j = grid(n)
    return ((j - i >= -((w - 1) // 2)) & (j - i <= w // 2)) | (i < g) | (j < g)


def bigbird_pattern(n: int, b: int, attn) -> torch.Tensor:
    """[H, n, n] from BigBird-ITC's rule and the module's drawn random blocks."""
    nb = math.ceil(n / b)
    u, v = (t // b for t in grid(n))
    glob = (u == 0) | (u == nb - 1) | (v == 0) | (v == nb - 1)
    base = glob | ((u - v).abs() <= 1)
    rand_idx, rand_ok = attn.random_pattern(nb)
    chosen = torch.zeros(H, nb, nb, dtype=torch.bool)
    for h in range(H):
        for blk in range(nb):
            chosen[h, blk, rand_idx[h, blk][rand_ok[h, blk]]] = True
    return base | chosen[:, u, v]


CASES = {
    "local-b8": ("local", {"block_size": 8}, lambda n, a: local_pattern(n, 8)),
    "sparse-fixed-b8-c3": (
        "sparse",
        {"block_size": 8, "c": 3},
        lambda n, a: fixed_pattern(n, 8, 3),
    ),
    "sparse-strided-b5": (
        "sparse",
        {"block_size": 5, "pattern": "strided"},
        lambda n, a: strided_pattern(n, 5),
    ),
    "longformer-w7-g2": (
        "longformer",
        {"window": 7, "global_tokens": 2},
        lambda n, a: longformer_pattern(n, 7, 2),
    ),
    "longformer-w6-g0": (
        "longformer",
        {"window": 6, "global_tokens": 0},
        lambda n, a: longformer_pattern(n, 6, 0),
    ),
    "bigbird-b4-r2": (
        "bigbird",
        {"block_size": 4, "random_blocks": 2},
        lambda n, a: bigbird_pattern(n, 4, a),
    ),
}


@pytest.mark.parametrize("n", [37, 40], ids=["n37", "n40"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_dense_softmax_over_the_papers_pattern(case, n):
    name, options, pattern_of = CASES[case]
    attn = make(name, **options)
    pattern = pattern_of(n, attn)
    assert not pattern.all(), "the pattern must be sparse for this test to mean anything"
    q, k, v, mask = qkv(n)
    out = attn.attend(q, k, v, mask)
    assert out.shape == q.shape and torch.isfinite(out).all()
    ref = dense_reference(q, k, v, mask, pattern)
    real = mask[:, None, :, None].expand_as(out)
    torch.testing.assert_close(out[real], ref[real], atol=1e-10, rtol=1e-10)


COVERING = {
    "local-block>=n": ("local", {"block_size": 64}),
    "sparse-fixed-block>=n": ("sparse", {"block_size": 40, "c": 10}),
    "sparse-strided-block>=n": ("sparse", {"block_size": 40, "pattern": "strided"}),
    "longformer-window>=2n": ("longformer", {"window": 73, "global_tokens": 1}),
    "longformer-all-global": ("longformer", {"window": 3, "global_tokens": 37}),
    "bigbird-5-blocks": ("bigbird", {"block_size": 8, "random_blocks": 1}),
}


@pytest.mark.parametrize("case", sorted(COVERING))
def test_covering_configuration_equals_full_softmax(case):
    name, options = COVERING[case]
    attn = make(name, **options)
    q, k, v, mask = qkv(37)
    ref = dense_reference(q, k, v, mask, torch.ones(37, 37, dtype=torch.bool))
    real = mask[:, None, :, None].expand_as(ref)
    torch.testing.assert_close(attn.attend(q, k, v, mask)[real], ref[real], atol=1e-10, rtol=0)


@pytest.mark.parametrize("case", sorted(CASES))
def test_padded_keys_never_reach_real_queries(case):
    """Gradients of real outputs w.r.t. padded keys/values are exactly 0; garbage there is inert."""
    name, options, _ = CASES[case]
    attn = make(name, **options)
    q, k, v, mask = qkv(37)
    k.requires_grad_(True)
    v.requires_grad_(True)
    out = attn.attend(q, k, v, mask)
    real = mask[:, None, :, None].expand_as(out)
    out[real].sum().backward()
    pad = ~mask[:, None, :, None].expand_as(k)
    assert k.grad[pad].abs().max() == 0 and v.grad[pad].abs().max() == 0
    assert k.grad[~pad].abs().sum() > 0 and torch.isfinite(k.grad).all()
    k2, v2 = (t.detach().masked_fill(pad, 1e4) for t in (k, v))
    torch.testing.assert_close(attn.attend(q, k2, v2, mask)[real], out[real].detach())


@pytest.mark.parametrize("case", [c for c in sorted(CASES) if not c.startswith("bigbird")])
def test_appended_padding_changes_nothing(case):
    """Patterns anchored at the start do not move when padding is appended (BigBird's last
    block is global, so its pattern depends on the padded length, as in the original)."""
    name, options, _ = CASES[case]
    attn = make(name, **options)
    q, k, v, mask = qkv(37)
    extra = 11
    long = [torch.cat([t, torch.randn_like(t[:, :, :extra])], 2) for t in (q, k, v)]
    mask_long = torch.cat([mask, torch.zeros(2, extra, dtype=torch.bool)], 1)
    out, out_long = attn.attend(q, k, v, mask), attn.attend(*long, mask_long)[:, :, :37]
    real = mask[:, None, :, None].expand_as(out)
    torch.testing.assert_close(out_long[real], out[real], atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("case", sorted(CASES))
def test_fully_padded_item_gives_zeros_and_leaves_others_alone(case):
    name, options, _ = CASES[case]
    attn = make(name, **options).train()
    q, k, v, mask = qkv(37)
    mask[0] = False
    q.requires_grad_(True)
    out = attn.attend(q, k, v, mask)
    assert torch.isfinite(out).all() and out[0].abs().max() == 0  # no key: output 0
    out.sum().backward()
    assert torch.isfinite(q.grad).all()
    torch.testing.assert_close(out[1], attn.attend(q[1:], k[1:], v[1:], mask[1:])[0])


@pytest.mark.parametrize("case", sorted(CASES))
def test_low_precision_inputs_stay_finite(case):
    name, options, _ = CASES[case]
    attn = make(name, **options)
    q, k, v, mask = qkv(37, dtype=torch.bfloat16)
    ref = attn.attend(q.double(), k.double(), v.double(), mask)
    out = attn.attend(q, k, v, mask).double()
    real = mask[:, None, :, None].expand_as(out)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[real], ref[real], atol=0.05, rtol=0.05)


# ------------------------------------------------------------------ BigBird's random blocks
def test_bigbird_random_blocks_follow_the_rules():
    attn = make("bigbird", block_size=4, random_blocks=3)
    nb = 12
    idx, ok = attn.random_pattern(nb)
    assert idx.shape == ok.shape == (H, nb, 3)
    for h in range(H):
        assert not ok[h, 0].any() and not ok[h, nb - 1].any()  # global rows read everything
        for u in range(1, nb - 1):
            picked = idx[h, u][ok[h, u]].tolist()
            eligible = {w for w in range(1, nb - 1) if abs(w - u) > 1}
            assert len(set(picked)) == len(picked) == min(3, len(eligible))
            assert set(picked) <= eligible
    assert not torch.equal(idx[0], idx[1]), "each head draws its own blocks"
    # few eligible blocks: take all of them, mark the rest unused
    idx5, ok5 = attn.random_pattern(5)
    assert ok5[:, 2].sum(-1).tolist() == [0, 0] and ok5[:, 1].sum(-1).tolist() == [1, 1]


def test_bigbird_pattern_is_fixed_seeded_and_saved():
    a = make("bigbird", seed=0, block_size=4, random_blocks=2)
    b = make("bigbird", seed=1, block_size=4, random_blocks=2)
    again = make("bigbird", seed=0, block_size=4, random_blocks=2)
    assert torch.equal(a.random_pattern(16)[0], again.random_pattern(16)[0])
    assert not torch.equal(a.random_pattern(16)[0], b.random_pattern(16)[0])
    q, k, v, mask = qkv(64)
    a.train()  # no dropout: training uses the same, never redrawn, pattern as eval
    out_train = a.attend(q, k, v, mask)
    torch.testing.assert_close(a.eval().attend(q, k, v, mask), out_train, atol=0, rtol=0)
    assert not torch.allclose(b.attend(q, k, v, mask), out_train)
    b.load_state_dict(a.state_dict())  # the seed travels in the state_dict
    torch.testing.assert_close(b.attend(q, k, v, mask), out_train, atol=0, rtol=0)


# ------------------------------------------------------------------ options and backbone
BAD_OPTIONS = [
    ("local", {"block_size": 0}, "block_size"),
    ("local", {"block_size": 2.5}, "block_size"),
    ("sparse", {"block_size": 0}, "block_size"),
    ("sparse", {"c": 0}, "option c "),
    ("sparse", {"block_size": 8, "c": 9}, "option c "),
    ("sparse", {"pattern": "dilated"}, r"pattern.*\['fixed', 'strided'\]"),
    ("longformer", {"window": 0}, "window"),
    ("longformer", {"global_tokens": -1}, "global_tokens"),
    ("bigbird", {"block_size": True}, "block_size"),
    ("bigbird", {"random_blocks": -1}, "random_blocks"),
]


@pytest.mark.parametrize(("name", "options", "match"), BAD_OPTIONS)
def test_bad_option_values_name_the_option(name, options, match):
    with pytest.raises(ValueError, match=match):
        build_attention(name, 16, 2, **options)
