"""``transformer`` (SDPA) and ``transformer_naive`` (written out) against each other.

Exactness against the dense reference, padding, gradients and the rest are registry-wide
(``tests/test_conformance.py``).
"""

from __future__ import annotations

import pytest
import torch

from lra.check.inputs import inputs, make, one_thread, projected_softmax_reference


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread per test (restored after): the tensors here are tiny."""
    with one_thread():
        yield


SOFTMAX_PAIR = ("transformer", "transformer_naive")


def test_sdpa_and_naive_agree_with_masks():
    sdpa = make("transformer", dropout=0.1).float()
    naive = make("transformer_naive", dropout=0.1, seed=5).float()
    naive.load_state_dict(sdpa.state_dict())
    x, mask = inputs(40, b=3, tail=13, dtype=torch.float32)
    mask[2, ::3] = False  # padding in the middle too
    torch.testing.assert_close(naive(x, mask)[mask], sdpa(x, mask)[mask], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", SOFTMAX_PAIR)
def test_attention_dropout_is_stochastic_in_training_only(name):
    attn = make(name, dropout=0.5).float().train()
    x, mask = inputs(24, tail=7, gaps=(), dtype=torch.float32)
    assert not torch.allclose(attn(x, mask), attn(x, mask))
    attn.eval()
    ref = projected_softmax_reference(attn, x, mask)
    torch.testing.assert_close(attn(x, mask)[mask], ref[mask], atol=1e-5, rtol=1e-5)


def test_a_batch_without_padding_passes_no_mask(monkeypatch):
    """No padding: SDPA gets ``attn_mask=None`` (fused kernels allowed) and the same output as
    with an explicit all-true mask; one padded item brings the mask back."""
    import models.transformer as sdpa_module

    seen = []
    real = sdpa_module.F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kw):
        seen.append(attn_mask)
        return real(q, k, v, attn_mask=attn_mask, **kw)

    attn = make("transformer").float().eval()
    x, mask = inputs(32, b=2, tail=0, gaps=(), dtype=torch.float32)
    assert mask.all()
    monkeypatch.setattr(sdpa_module.F, "scaled_dot_product_attention", spy)
    out = attn(x, mask)
    assert seen == [None]
    monkeypatch.setattr(sdpa_module, "padding_mask_or_none", sdpa_module.key_padding_mask)
    torch.testing.assert_close(attn(x, mask), out, atol=1e-6, rtol=1e-6)
    assert seen[-1] is not None
    monkeypatch.undo()
    monkeypatch.setattr(sdpa_module.F, "scaled_dot_product_attention", spy)
    mask[1, -3:] = False
    attn(x, mask)
    assert seen[-1] is not None and seen[-1].shape == (2, 1, 1, 32)


@pytest.mark.slow
def test_one_key_set_softmax_compiles_to_eager_gradients():
    """A few global query rows over every key, as longformer and bigbird read them, compiled:
    torch 2.13's CPU inductor derived a wrong value gradient when the one-set softmax was
    split into its single piece before the matmul (3.5x eager's norm here)."""
    from models.blocks import full_rows

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 70, 8, generator=g, requires_grad=True) for _ in range(3))
    mask = torch.ones(2, 70, dtype=torch.bool)
    mask[1, 50:] = False
    weight = torch.randn(2, 2, 2, 8, generator=g)

    def loss(q, k, v):
        return (full_rows(q[:, :, :2] * 0.3, k, v, mask) * weight).sum()

    grads = []
    for fn in (loss, torch.compile(loss)):
        torch._dynamo.reset()
        grads.append(torch.autograd.grad(fn(q, k, v), (q, k, v)))
    for eager, compiled in zip(*grads, strict=True):
        torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-6)
