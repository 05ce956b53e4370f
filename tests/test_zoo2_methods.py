"""Attention zoo II against closed forms written out densely HERE for small n.

``nystrom`` and ``skyformer`` with one landmark per token equal softmax / exact Gaussian-kernel
attention (up to the pseudo-inverse iteration); ``cosformer`` equals its cos-re-weighted ReLU
kernel attention; ``fnet`` equals ``Re(fft2)`` of each unpadded sequence; ``s4d``'s FFT
convolution equals the naive recurrence over time in both directions; ``random_decay`` equals
dense masked softmax over its own pattern and full softmax when the window covers the
sequence. Also: pattern rules and bad options named. Memory, all-padding items and the
parameter rule are registry-wide (``tests/test_conformance.py``).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lra.check.inputs import HEAD_DIM as DH
from lra.check.inputs import HEADS as H
from lra.check.inputs import make, one_thread, qkv, real_rows
from lra.check.inputs import softmax_reference as softmax_ref
from models.nystrom import newton_pinv, segment_means


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread per test (restored after): the tensors here are tiny."""
    with one_thread():
        yield


# ------------------------------------------------------------------ nystrom
def test_segment_means_cut_the_real_tokens_only():
    x = torch.arange(12, dtype=torch.float64).view(1, 1, 12, 1).expand(2, 1, 12, 1)
    mask = torch.ones(2, 12, dtype=torch.bool)
    mask[1, [1, 2, 10, 11]] = False  # real: 0 3 4 5 6 7 8 9
    means, valid = segment_means(x, mask, 4)
    torch.testing.assert_close(means[0, 0, :, 0], torch.tensor([1.0, 4.0, 7.0, 10.0]).double())
    torch.testing.assert_close(means[1, 0, :, 0], torch.tensor([1.5, 4.5, 6.5, 8.5]).double())
    assert valid.all()
    means, valid = segment_means(x, mask, 10)  # item 1 has 8 real tokens: 2 unused landmarks
    assert valid[0].all() and valid[1].sum() == 8


def test_newton_pinv_inverts_a_softmax_matrix():
    a = torch.randn(3, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    a = a.softmax(-1)
    eye = torch.eye(6, dtype=torch.float64).expand(3, 6, 6)
    torch.testing.assert_close(a @ newton_pinv(a, 40), eye)
    assert (a @ newton_pinv(a, 2) - eye).abs().max() > 1e-3  # few iterations: not yet


def test_nystrom_one_landmark_per_token_is_softmax_attention():
    q, k, v, mask = qkv(24)
    ref = real_rows(softmax_ref(q, k, v, mask), mask)
    attn = make("nystrom", landmarks=24, pinv_iters=40, conv_kernel=0)
    torch.testing.assert_close(real_rows(attn.attend(q, k, v, mask), mask), ref)

    def err(iters: int) -> float:
        attn = make("nystrom", landmarks=24, pinv_iters=iters, conv_kernel=0)
        return (real_rows(attn.attend(q, k, v, mask), mask) - ref).abs().max().item()

    assert err(2) > err(6) > err(20)


def test_nystrom_with_few_landmarks_equals_its_closed_form():
    q, k, v, mask = qkv(23)
    attn = make("nystrom", landmarks=5, pinv_iters=6, conv_kernel=3)
    s = DH**-0.5
    out = []
    for b in range(2):
        real = mask[b]
        qb, kb, vb = q[b][:, real] * s, k[b][:, real], v[b][:, real]
        seg = torch.arange(qb.shape[1]) * 5 // qb.shape[1]  # rank r -> floor(r m / L)
        ql = torch.stack([qb[:, seg == j].mean(1) for j in range(5)], 1)
        kl = torch.stack([kb[:, seg == j].mean(1) for j in range(5)], 1)
        f, a = (qb @ kl.mT).softmax(-1), (ql @ kl.mT).softmax(-1)
        bm = (ql @ kb.mT).softmax(-1)
        y = f @ newton_pinv(a, 6) @ (bm @ vb)
        vz = v[b] * mask[b][None, :, None]
        conv = (
            F.conv1d(
                vz.transpose(1, 2).reshape(1, H * DH, -1),
                attn.conv.weight[:, 0, :, 0].repeat_interleave(DH, 0)[:, None],
                padding=1,
                groups=H * DH,
            )
            .view(H, DH, -1)
            .transpose(1, 2)
        )
        out.append((y + conv[:, real]).transpose(0, 1))
    torch.testing.assert_close(real_rows(attn.attend(q, k, v, mask), mask), torch.cat(out))


# ------------------------------------------------------------------ cosformer
def test_cosformer_equals_its_closed_form():
    q, k, v, mask = qkv(29)
    out = []
    for b in range(2):
        real = mask[b]
        m = int(real.sum())
        theta = math.pi / 2 * torch.arange(m, dtype=torch.float64) / m
        qb, kb, vb = F.relu(q[b][:, real]), F.relu(k[b][:, real]), v[b][:, real]
        a = (qb @ kb.mT) * torch.cos(theta[:, None] - theta[None, :])
        out.append(((a / a.sum(-1, keepdim=True)) @ vb).transpose(0, 1))
    y = make("cosformer").attend(q, k, v, mask)
    torch.testing.assert_close(real_rows(y, mask), torch.cat(out))


# ------------------------------------------------------------------ skyformer
def gaussian_ref(q, k, v, mask):
    d2 = torch.cdist(q, k).pow(2) / math.sqrt(q.shape[-1])
    return (torch.exp(-d2 / 2) * mask[:, None, None, :]) @ v


def test_skyformer_one_landmark_per_token_is_gaussian_kernel_attention():
    q, k, v, mask = qkv(24)
    y = make("skyformer", landmarks=24, pinv_iters=60).attend(q, k, v, mask)
    ref = real_rows(gaussian_ref(q, k, v, mask), mask)
    torch.testing.assert_close(real_rows(y, mask), ref)
    few = real_rows(make("skyformer", landmarks=3).attend(q, k, v, mask), mask)
    assert torch.isfinite(few).all() and not torch.allclose(few, ref, atol=1e-3)


# ------------------------------------------------------------------ fnet
def test_fnet_is_the_2d_fourier_transform_of_each_unpadded_sequence():
    attn = make("fnet")
    assert list(attn.parameters()) == []
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 11, H * DH, generator=g, dtype=torch.float64)
    mask = torch.ones(3, 11, dtype=torch.bool)
    mask[1, 6:] = False
    mask[2, [0, 4]] = False
    y = attn(x, mask)
    for b in range(3):
        torch.testing.assert_close(y[b][mask[b]], torch.fft.fft2(x[b][mask[b]]).real)
    assert (y[~mask] == 0).all()


# ------------------------------------------------------------------ s4d
def recurrence(attn, u):
    """Bidirectional ZOH recurrence, step by step: u [B, L, D] (padding zeroed) -> [B, L, D]."""
    a = torch.complex(-attn.log_neg_a_re.exp(), attn.a_im)
    dt = attn.log_dt.exp()[:, None]
    a_bar = torch.exp(dt * a)
    b_bar = (a_bar - 1) / a * torch.view_as_complex(attn.b)
    c = torch.view_as_complex(attn.c)

    def scan(seq, cc):
        state, ys = torch.zeros(seq.shape[0], *a.shape, dtype=a.dtype), []
        for t in range(seq.shape[1]):
            state = a_bar * state + b_bar * seq[:, t, :, None]
            ys.append(2 * (cc * state).sum(-1).real)
        return torch.stack(ys, 1)

    return scan(u, c[0]) + scan(u.flip(1), c[1]).flip(1) + attn.skip * u


@pytest.mark.parametrize("init", ["lin", "inv"])
def test_s4d_fft_convolution_equals_the_recurrence(init):
    attn = make("s4d", d_state=8, init=init)
    g = torch.Generator().manual_seed(0)
    u = torch.randn(2, 19, H * DH, generator=g, dtype=torch.float64)
    mask = torch.ones(2, 19, dtype=torch.bool)
    mask[1, 13:] = False
    with torch.no_grad():
        ref = recurrence(attn, u * mask[..., None])
        torch.testing.assert_close(attn.ssm(u, mask)[mask], ref[mask])
        full = F.glu(attn.to_out(F.gelu(ref)), dim=-1)
        torch.testing.assert_close(attn(u, mask)[mask], full[mask])


def test_s4d_initialisations():
    a = make("s4d", d_state=8, init="lin")
    torch.testing.assert_close(a.a_im[3], math.pi * torch.arange(4).double())
    torch.testing.assert_close(a.log_neg_a_re.exp(), torch.full((H * DH, 4), 0.5).double())
    inv = make("s4d", d_state=8, init="inv").a_im[0]
    torch.testing.assert_close(inv, 8 / math.pi * (8 / (2 * torch.arange(4).double() + 1) - 1))
    dt = a.log_dt.exp()
    assert (dt >= 1e-3).all() and (dt <= 0.1).all()


# ------------------------------------------------------------------ random_decay
def test_random_decay_equals_dense_softmax_over_its_pattern():
    q, k, v, mask = qkv(40)
    attn = make("random_decay", window=3, random_keys=5)
    idx, allowed = attn.pattern(mask)
    dense = torch.zeros(2, 40, 40, dtype=torch.bool)
    for b in range(2):
        for i in range(40):
            dense[b, i, idx[b, i][allowed[b, i]]] = True
    assert not dense[0].all() and dense[0].sum(-1).min() > 4
    pos = torch.arange(40)
    near = (pos[:, None] - pos[None, :]).abs() <= 3
    assert (dense == (near & mask[:, None, :]) | (dense & ~near)).all()  # window always kept
    assert (allowed.sum(-1) == dense.sum(-1)).all()  # no key twice
    scores = (q @ k.mT / math.sqrt(DH)).masked_fill(~dense[:, None], float("-inf"))
    ref = scores.softmax(-1) @ v
    torch.testing.assert_close(real_rows(attn.attend(q, k, v, mask), mask), real_rows(ref, mask))


def test_random_decay_window_covering_the_sequence_is_softmax_attention():
    q, k, v, mask = qkv(24)
    y = make("random_decay", window=23, random_keys=4).attend(q, k, v, mask)
    torch.testing.assert_close(real_rows(y, mask), real_rows(softmax_ref(q, k, v, mask), mask))


def test_random_decay_keys_decay_with_distance_and_pattern_is_fixed_per_layer():
    n = 4000
    mask = torch.ones(1, n, dtype=torch.bool)
    a = make("random_decay", seed=0, window=4, random_keys=8)
    idx, allowed = a.pattern(mask)
    d = (idx[0, :, 9:] - torch.arange(n)[:, None]).abs()[allowed[0, :, 9:]]
    assert (d > 4).all()
    near, far = ((d > 4) & (d <= 14)).sum(), ((d > 104) & (d <= 114)).sum()
    assert near > 20 * far  # density ~ d^-2: about 100x
    torch.testing.assert_close(a.pattern(mask)[0], idx)  # fixed
    other = make("random_decay", seed=1, window=4, random_keys=8)
    assert not torch.equal(other.pattern(mask)[0], idx)  # another layer, another pattern
    other.load_state_dict(a.state_dict())  # the seed travels in the state_dict
    assert torch.equal(other.pattern(mask)[0], idx)


# ------------------------------------------------------------------ options
@pytest.mark.parametrize(
    ("name", "option", "value"),
    [
        ("nystrom", "landmarks", 0),
        ("nystrom", "pinv_iters", -1),
        ("nystrom", "conv_kernel", 4),
        ("skyformer", "landmarks", 0),
        ("s4d", "d_state", 7),
        ("s4d", "init", "legs"),
        ("random_decay", "window", -1),
        ("random_decay", "random_keys", 1.5),
        ("random_decay", "decay", 1.0),
    ],
)
def test_bad_option_values_name_the_option(name, option, value):
    with pytest.raises(ValueError, match=option):
        make(name, **{option: value})
