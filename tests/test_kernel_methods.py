"""Kernel, low-rank, hashing, sorting and synthesized methods against their papers.

``linear``, ``performer``, ``linformer``, ``reformer``, ``sinkhorn``, ``synthesizer``: each is
compared with its own closed form written out densely HERE for small n (padding in the middle
and at the end, lengths that are not a multiple of a block or chunk), with full softmax
attention where the method is exact (one chunk, one block, identity projection), and checked
for: padded keys never reaching real queries (the kernel normaliser included), feature
redraw / hashing fixed in eval, and bad option values named. Padding, all-padding items,
memory and the parameter rule are registry-wide (``tests/test_conformance.py``).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lra.check.inputs import HEAD_DIM as DH
from lra.check.inputs import HEADS as H
from lra.check.inputs import kernel_reference, make, one_thread, qkv, real_rows, softmax_reference
from models.sinkhorn import sinkhorn


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread per test (restored after): the tensors here are tiny."""
    with one_thread():
        yield


# ------------------------------------------------------------------ linear (Katharopoulos)
def test_linear_equals_its_closed_form():
    q, k, v, mask = qkv(29)
    phi = lambda x: F.elu(x) + 1  # noqa: E731
    y = make("linear").attend(q, k, v, mask)
    torch.testing.assert_close(
        real_rows(y, mask), real_rows(kernel_reference(phi(q), phi(k), v, mask), mask)
    )


# ------------------------------------------------------------------ performer (FAVOR+)
def favor_phi(x, w):
    """phi(x) = exp(W x' - |x'|^2 / 2) / sqrt(M), x' = x / Dh^(1/4) (Choromanski et al., Lemma 1)."""
    x = x * x.shape[-1] ** -0.25
    return torch.exp(x @ w.T - x.pow(2).sum(-1, keepdim=True) / 2) / math.sqrt(w.shape[0])


def test_performer_equals_its_closed_form():
    q, k, v, mask = qkv(29)
    attn = make("performer", nb_features=24)
    w = attn.features
    ref = kernel_reference(favor_phi(q, w), favor_phi(k, w), v, mask)
    torch.testing.assert_close(real_rows(attn.attend(q, k, v, mask), mask), real_rows(ref, mask))


def test_performer_features_are_orthogonal_blocks_of_gaussian_length():
    attn = make("performer", nb_features=20)  # DH = 8: blocks of 8, 8 and 4 rows
    w = attn.features.double()
    for block in (w[:8], w[8:16], w[16:]):
        gram = block @ block.T
        torch.testing.assert_close(gram, torch.diag(torch.diagonal(gram)), atol=1e-5, rtol=0)
    assert not torch.allclose(w[:8].norm(dim=1), w[8:16].norm(dim=1))  # random lengths


def test_performer_error_against_softmax_shrinks_with_more_features():
    q, k, v, mask = qkv(32, scale=0.7)
    ref = real_rows(softmax_reference(q, k, v, mask), mask)
    errors = []
    for m in (8, 64, 512):
        errs = []
        for seed in range(6):
            y = real_rows(make("performer", seed=seed, nb_features=m).attend(q, k, v, mask), mask)
            errs.append(((y - ref).norm() / ref.norm()).item())
        errors.append(sum(errs) / len(errs))
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 0.6 * errors[0], errors


def test_performer_padded_keys_do_not_set_the_key_stabiliser():
    """Huge padded keys would underflow every real key's feature if they set the maximum."""
    q, k, v, mask = qkv(20)
    attn = make("performer", nb_features=16)
    k_bad = k.clone()
    k_bad[1, :, ~mask[1]] = 40.0
    y, y_bad = attn.attend(q, k, v, mask), attn.attend(q, k_bad, v, mask)
    torch.testing.assert_close(real_rows(y_bad, mask), real_rows(y, mask))
    assert real_rows(y, mask).abs().sum() > 0


def test_performer_padded_keys_cannot_overflow_into_the_gradient():
    """Large real keys shift the exponent far down; a zero padded key must not overflow."""
    q, k, v, mask = (t.float() if t.is_floating_point() else t for t in qkv(20))
    k = (30 * k).masked_fill(~mask[:, None, :, None], 0.0).requires_grad_(True)
    q = q.clone().requires_grad_(True)
    y = make("performer", nb_features=16).float().attend(q, k, v, mask)  # exp(>88) = inf
    real_rows(y, mask).sum().backward()
    assert torch.isfinite(q.grad).all() and torch.isfinite(k.grad).all()


def test_performer_redraws_in_training_only_every_interval():
    attn = make("performer", nb_features=8, redraw_interval=2).train()
    q, k, v, mask = qkv(10)
    w0 = attn.features.clone()
    attn.attend(q, k, v, mask)
    attn.attend(q, k, v, mask)
    assert torch.equal(attn.features, w0)  # calls 1 and 2 use the first draw
    attn.attend(q, k, v, mask)
    assert not torch.equal(attn.features, w0)  # call 3 redraws
    w1 = attn.features.clone()
    attn.eval()
    for _ in range(4):
        attn.attend(q, k, v, mask)
    assert torch.equal(attn.features, w1)  # never in eval
    never = make("performer", nb_features=8, redraw_interval=0).train()
    w = never.features.clone()
    for _ in range(3):
        never.attend(q, k, v, mask)
    assert torch.equal(never.features, w)


def test_performer_features_and_counter_travel_in_the_state_dict():
    a = make("performer", seed=1, nb_features=8, redraw_interval=3).train()
    q, k, v, mask = qkv(10)
    a.attend(q, k, v, mask)
    b = make("performer", seed=2, nb_features=8, redraw_interval=3)
    b.load_state_dict(a.state_dict())
    assert b.calls_since_draw == 1
    torch.testing.assert_close(b.eval().attend(q, k, v, mask), a.eval().attend(q, k, v, mask))


# ------------------------------------------------------------------ linformer
def test_linformer_with_identity_projection_is_softmax_attention():
    n = 24
    attn = make("linformer", max_len=n, k=n)
    with torch.no_grad():
        attn.proj.copy_(torch.eye(n))
    q, k, v, mask = qkv(n)
    full = torch.ones_like(mask)
    torch.testing.assert_close(attn.attend(q, k, v, full), softmax_reference(q, k, v, full))
    # with padding, the identity projection keeps padded keys as zero vectors (score 0, value 0)
    real = mask[:, None, :, None]
    y = attn.attend(q, k, v, mask)
    scores = q @ k.masked_fill(~real, 0).transpose(-2, -1) / math.sqrt(DH)
    torch.testing.assert_close(y, scores.softmax(-1) @ v.masked_fill(~real, 0))


def test_linformer_shorter_input_uses_the_first_columns_and_longer_is_an_error():
    attn = make("linformer", max_len=40, k=5)
    q, k, v, mask = qkv(23)
    e = attn.proj[:, :23].detach()
    real = mask[:, None, :, None]
    k_low, v_low = e @ k.masked_fill(~real, 0), e @ v.masked_fill(~real, 0)
    ref = (q @ k_low.transpose(-2, -1) / math.sqrt(DH)).softmax(-1) @ v_low
    torch.testing.assert_close(attn.attend(q, k, v, mask), ref)
    q, k, v, mask = qkv(41)
    with pytest.raises(ValueError, match="max_len 40"):
        attn.attend(q, k, v, mask)


def test_linformer_shares_one_projection_per_layer():
    attn = make("linformer", max_len=50, k=7)
    extra = {n: tuple(p.shape) for n, p in attn.named_parameters() if not n.startswith("to_")}
    assert extra == {"proj": (7, 50)}


# ------------------------------------------------------------------ reformer (LSH)
def shared_qk_ref(q, v, mask, inset=None):
    """Shared-QK softmax (logit q_i . q_j / |q_j|) over real keys in ``inset``, no self
    unless a query has no other key."""
    n = q.shape[2]
    scores = q @ F.normalize(q, dim=-1).transpose(-2, -1)
    eye = torch.eye(n, dtype=torch.bool)
    allowed = mask[:, None, None, :] & ~eye
    if inset is not None:
        allowed = allowed & inset
    allowed = allowed | (~allowed.any(-1, keepdim=True) & eye)
    return scores.masked_fill(~allowed, float("-inf")).softmax(-1) @ v


def chunk_window(ids: torch.Tensor, c: int) -> torch.Tensor:
    """[B, H, R, N] bucket ids -> [B, H, N, N]: key j in query i's own or previous chunk in
    some round, after sorting by (bucket, position) and cutting into chunks of c."""
    n = ids.shape[-1]
    order = (ids * n + torch.arange(n)).argsort(-1)
    chunk = order.argsort(-1) // c  # token -> chunk, per round
    gap = chunk[..., :, None] - chunk[..., None, :]
    return ((gap == 0) | (gap == 1)).any(dim=2)


@pytest.mark.parametrize("n_hashes", [1, 3])
def test_reformer_one_chunk_is_shared_qk_softmax(n_hashes):
    q, _, v, mask = qkv(29)
    attn = make("reformer", bucket_size=32, n_hashes=n_hashes)
    y = attn.attend_shared(q, v, mask)
    torch.testing.assert_close(real_rows(y, mask), real_rows(shared_qk_ref(q, v, mask), mask))


def test_reformer_logits_are_not_scaled_by_sqrt_dh():
    """The original (paper §2, trax ``attend``) uses unit keys and no 1/sqrt(Dh); the port
    that scales again would give a measurably different output on these inputs."""
    q, _, v, mask = qkv(29)
    y = make("reformer", bucket_size=32).attend_shared(q, v, mask)
    scaled = shared_qk_ref(q / q.shape[-1] ** 0.5, v, mask)
    assert (real_rows(y, mask) - real_rows(scaled, mask)).abs().max() > 1e-2
    torch.testing.assert_close(real_rows(y, mask), real_rows(shared_qk_ref(q, v, mask), mask))


@pytest.mark.parametrize("n_hashes", [1, 3])
def test_reformer_equals_softmax_over_the_union_of_its_chunk_windows(n_hashes):
    q, _, v, mask = qkv(29)  # 29: not a multiple of the chunk
    attn = make("reformer", bucket_size=4, n_hashes=n_hashes)
    window = chunk_window(attn.buckets(q, mask), 4)
    assert not window.all()  # the pattern is really sparse
    ref = shared_qk_ref(q, v, mask, window)
    y = attn.attend_shared(q, v, mask)
    torch.testing.assert_close(real_rows(y, mask), real_rows(ref, mask))


def test_reformer_attends_to_itself_only_without_other_keys():
    q, _, v, mask = qkv(12)
    attn = make("reformer", bucket_size=16)
    mask[:] = False
    mask[0, 5] = True  # item 0: one real token
    mask[1, [2, 9]] = True  # item 1: two real tokens
    y = attn.attend_shared(q, v, mask)
    torch.testing.assert_close(y[0, :, 5], v[0, :, 5])
    torch.testing.assert_close(y[1, :, 2], v[1, :, 9])
    torch.testing.assert_close(y[1, :, 9], v[1, :, 2])


def test_reformer_hash_is_angular_and_sized_by_real_length():
    q, _, _, mask = qkv(40)
    attn = make("reformer", bucket_size=4, n_hashes=2)
    ids = attn.buckets(q, mask)
    torch.testing.assert_close(attn.buckets(3.0 * q, mask), ids)  # scale-invariant
    # item 0: 40 real tokens -> 10 buckets; item 1: 32 real -> 8 buckets; pads last
    half = torch.tensor([5, 4])[:, None, None, None]
    flipped = attn.buckets(-q, mask)
    real = mask[:, None, None, :].expand_as(ids)
    assert (ids[real] < (2 * half).expand_as(ids)[real]).all()
    torch.testing.assert_close(flipped[real], ((ids + half) % (2 * half))[real])
    assert (ids[~real] == 10).all()


def test_reformer_hashing_is_random_in_training_and_fixed_in_eval():
    q, _, v, mask = qkv(29)
    attn = make("reformer", seed=3, bucket_size=4, n_hashes=2)
    torch.testing.assert_close(attn.attend_shared(q, v, mask), attn.attend_shared(q, v, mask))
    attn.train()
    assert not torch.equal(attn.attend_shared(q, v, mask), attn.attend_shared(q, v, mask))
    other = make("reformer", seed=4, bucket_size=4, n_hashes=2)
    other.load_state_dict(attn.state_dict())  # the eval seed travels in the state_dict
    torch.testing.assert_close(
        other.attend_shared(q, v, mask), attn.eval().attend_shared(q, v, mask)
    )


# ------------------------------------------------------------------ sinkhorn
def sinkhorn_ref(attn, q, k, v, mask):
    """Per block, with loops: pooled real keys -> sort scores -> masked Sinkhorn -> own block
    plus sorted block, one softmax."""
    b, (bsz, heads, n, dh) = attn.block_size, q.shape
    nb = math.ceil(n / b)
    padded = [F.pad(t, (0, 0, 0, nb * b - n)) for t in (q, k, v)]
    real = F.pad(mask, (0, nb * b - n), value=False).view(bsz, nb, b)
    w, c = attn.sort_net.weight[:nb].detach(), attn.sort_net.bias[:nb].detach()
    out = torch.zeros(bsz, heads, nb, b, dh, dtype=q.dtype)
    for i in range(bsz):
        live = real[i].any(-1)
        for h in range(heads):
            qb, kb, vb = (t[i, h].view(nb, b, dh) for t in padded)
            kb, vb = kb * real[i, ..., None], vb * real[i, ..., None]
            pooled = torch.stack(
                [kb[u][real[i, u]].mean(0) if live[u] else kb[u, 0] * 0 for u in range(nb)]
            )
            la = (pooled @ w.T + c) / attn.temperature
            for u in range(nb):
                for t in range(nb):
                    if not ((live[u] and live[t]) or (u == t and not live[u])):
                        la[u, t] = -math.inf
            p = sinkhorn(la, attn.sinkhorn_iters)
            for u in range(nb):
                ks, vs = torch.einsum("t,tjd->jd", p[u], kb), torch.einsum("t,tjd->jd", p[u], vb)
                ok = torch.cat([real[i, u], (p[u] @ real[i].double()) > 0])
                scores = qb[u] @ torch.cat([kb[u], ks]).T / math.sqrt(dh)
                probs = scores.masked_fill(~ok, -math.inf).softmax(-1).nan_to_num()
                out[i, h, u] = probs @ torch.cat([vb[u], vs])
    return out.flatten(2, 3)[:, :, :n]


def test_sinkhorn_one_block_is_softmax_attention():
    q, k, v, mask = qkv(29)
    y = make("sinkhorn", block_size=32).attend(q, k, v, mask)
    torch.testing.assert_close(
        real_rows(y, mask), real_rows(softmax_reference(q, k, v, mask), mask)
    )


@pytest.mark.parametrize("iters", [0, 3])
def test_sinkhorn_equals_blockwise_reference(iters):
    q, k, v, mask = qkv(23)  # 23 = 4 blocks of 6 with the last one partial
    mask[1, 12:18] = False  # item 1: block 2 entirely padded
    attn = make("sinkhorn", block_size=6, sinkhorn_iters=iters, temperature=0.5)
    y = attn.attend(q, k, v, mask)
    torch.testing.assert_close(
        real_rows(y, mask), real_rows(sinkhorn_ref(attn, q, k, v, mask), mask)
    )


def test_sinkhorn_normalisation_is_doubly_stochastic():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(3, 5, 5, generator=g, dtype=torch.float64)
    p0 = sinkhorn(scores, 0)
    torch.testing.assert_close(p0, scores.softmax(-1))
    p = sinkhorn(scores, 200)
    ones = torch.ones(3, 5, dtype=torch.float64)
    torch.testing.assert_close(p.sum(-1), ones)
    torch.testing.assert_close(p.sum(-2), ones)


def test_sinkhorn_ignores_appended_padding_blocks():
    q, k, v, mask = qkv(23)
    attn = make("sinkhorn", block_size=5)
    y = attn.attend(q, k, v, mask)
    extra = 14  # three more blocks, all padding, with garbage in them
    q2, k2, v2 = (
        torch.cat([t, 9 * torch.randn(2, H, extra, DH, dtype=t.dtype)], 2) for t in (q, k, v)
    )
    mask2 = torch.cat([mask, torch.zeros(2, extra, dtype=torch.bool)], 1)
    y2 = attn.attend(q2, k2, v2, mask2)
    torch.testing.assert_close(real_rows(y2[:, :, :23], mask), real_rows(y, mask))


# ------------------------------------------------------------------ synthesizer
def synthesizer_ref(attn, x, mask):
    """softmax(B + mask) (x W_v) W_o per head, B from the paper's formulas, written out."""
    bsz, n, _ = x.shape
    if attn.mode == "dense":
        hid = torch.relu(x @ attn.hidden.weight.T + attn.hidden.bias).view(bsz, n, H, -1)
        logits = (hid @ attn.logits.weight.T + attn.logits.bias)[..., :n].transpose(1, 2)
    elif attn.rank is None:
        logits = attn.random[None, :, :n, :n]
    else:
        logits = (attn.random_left @ attn.random_right.transpose(-2, -1))[None, :, :n, :n]
    probs = logits.masked_fill(~mask[:, None, None, :], -math.inf).softmax(-1)
    val = (x @ attn.to_v.weight.T + attn.to_v.bias).view(bsz, n, H, DH).transpose(1, 2)
    out = (probs @ val).transpose(1, 2).reshape(bsz, n, H * DH)
    return out @ attn.to_out.weight.T + attn.to_out.bias


@pytest.mark.parametrize(
    "options",
    [
        {"mode": "dense"},
        {"mode": "dense", "rank": 3},
        {"mode": "random"},
        {"mode": "random", "rank": 2},
    ],
    ids=["dense", "dense-rank3", "random", "random-rank2"],
)
def test_synthesizer_equals_its_closed_form(options):
    attn = make("synthesizer", max_len=40, **options)
    if options["mode"] == "random" and "rank" not in options:
        with torch.no_grad():  # the default init is near-uniform; make the test discriminating
            attn.random.normal_()
    x = torch.randn(2, 29, H * DH, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(2, 29, dtype=torch.bool)
    mask[1, 20:] = False
    mask[1, 2] = False
    y = attn(x, mask)
    torch.testing.assert_close(y[mask], synthesizer_ref(attn, x, mask)[mask])


def test_synthesizer_parameters_follow_mode_and_rank():
    shapes = lambda a: {n: tuple(p.shape) for n, p in a.named_parameters() if "to_" not in n}  # noqa: E731
    assert shapes(make("synthesizer", max_len=30, mode="dense", rank=3)) == {
        "hidden.weight": (2 * 3, H * DH),
        "hidden.bias": (6,),
        "logits.weight": (30, 3),
        "logits.bias": (30,),
    }
    assert shapes(make("synthesizer", max_len=30, mode="random")) == {"random": (H, 30, 30)}
    assert shapes(make("synthesizer", max_len=30, mode="random", rank=4)) == {
        "random_left": (H, 30, 4),
        "random_right": (H, 30, 4),
    }
    names = [n for n, _ in make("synthesizer").named_parameters()]
    assert "to_v.weight" in names and not any(n.startswith("to_qkv") for n in names)


# ------------------------------------------------------------------ options
@pytest.mark.parametrize(
    ("name", "option", "value"),
    [
        ("linformer", "k", 0),
        ("performer", "nb_features", 0),
        ("performer", "redraw_interval", -1),
        ("reformer", "bucket_size", 0),
        ("reformer", "n_hashes", 1.5),
        ("sinkhorn", "block_size", 0),
        ("sinkhorn", "sinkhorn_iters", -1),
        ("sinkhorn", "temperature", 0),
        ("synthesizer", "mode", "factorized"),
        ("synthesizer", "rank", 0),
    ],
)
def test_bad_option_values_name_the_option(name, option, value):
    with pytest.raises(ValueError, match=option):
        make(name, **{option: value})
