"""The backbone and classifier: shapes, padding invariance, pooling, pair head, config errors,
and the one function that wires an attention method from a recipe."""

from __future__ import annotations

import pytest
import torch

from lra.check.inputs import one_thread
from models import REGISTRY, BackboneConfig, Classifier, attention_from_recipe, build
from models.backbone import pool, sinusoidal_positions
from models.linformer import LinformerAttention
from tasks.spec import TaskSpec


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread per test (restored after): the tensors here are tiny."""
    with one_thread():
        yield


SPEC = TaskSpec(name="toy", vocab_size=20, max_len=48, num_classes=5, pad_id=0)
PAIR = TaskSpec(name="toy_pair", vocab_size=20, max_len=32, num_classes=3, pair=True)
TINY = {
    "layers": 2,
    "heads": 2,
    "dim": 16,
    "mlp_dim": 32,
    "dropout": 0.1,
    "attn_dropout": 0.1,
    "pooling": "cls",
}
MODEL = {"_target_": "models.transformer.SoftmaxAttention", "name": "transformer"}


def classifier(spec=SPEC, attention="transformer", seed=0, **backbone) -> Classifier:
    torch.manual_seed(seed)
    return Classifier(spec, {**TINY, **backbone}, attention).double().eval()


def batch(lengths, width, suffix="", seed=0, spec=SPEC) -> dict[str, torch.Tensor]:
    """Random ids; position j >= length is padding (mask False, id = pad_id)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, spec.vocab_size, (len(lengths), width), generator=g)
    mask = torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]
    return {f"input_ids{suffix}": ids.masked_fill(~mask, spec.pad_id), f"mask{suffix}": mask}


def pad_with_garbage(b: dict[str, torch.Tensor], extra: int, seed=1) -> dict[str, torch.Tensor]:
    """Append ``extra`` masked positions and fill every padded position with random ids."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key in [k for k in b if k.startswith("input_ids")]:
        mkey = key.replace("input_ids", "mask")
        ids, mask = b[key], b[mkey]
        width = ids.shape[1]
        out[key] = torch.randint(1, 20, (ids.shape[0], width + extra), generator=g)
        out[key][:, :width] = torch.where(mask, ids, out[key][:, :width])
        out[mkey] = torch.cat([mask, mask.new_zeros(mask.shape[0], extra)], dim=1)
    return out


@pytest.mark.parametrize("pos", ["sinusoidal", "learned"])
@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_logits_shape(pooling, pos):
    model = classifier(pooling=pooling, pos=pos)
    logits = model(batch([10, 30, 3], 30))
    assert logits.shape == (3, SPEC.num_classes)
    assert torch.isfinite(logits).all()
    assert model.encoder.pooling == pooling
    assert (model.encoder.embed.cls is not None) == (pooling == "cls")


@pytest.mark.parametrize("pos", ["sinusoidal", "learned"])
@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_appending_padding_never_changes_logits(pooling, pos):
    model = classifier(pooling=pooling, pos=pos)
    b = batch([12, 20, 5], 20)
    torch.testing.assert_close(model(pad_with_garbage(b, 28)), model(b), atol=1e-9, rtol=1e-9)


def test_pooling_comes_from_the_recipe_alone():
    assert classifier().encoder.pooling == "cls"
    assert classifier(pooling="mean").encoder.pooling == "mean"
    no_pooling = {k: v for k, v in TINY.items() if k != "pooling"}
    with pytest.raises(ValueError, match="pooling"):
        Classifier(SPEC, no_pooling, "transformer")
    with pytest.raises(ValueError, match="pooling"):
        BackboneConfig(layers=1, heads=2, dim=8, mlp_dim=16, pooling=None)


def test_mean_pooling_ignores_padded_positions():
    x = torch.randn(2, 5, 4)
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    expected = torch.stack([x[0, :2].mean(0), x[1].mean(0)])
    torch.testing.assert_close(pool(x, mask, "mean"), expected)
    x[0, 2:] = float("nan")  # not even NaN at padded positions leaks
    torch.testing.assert_close(pool(x, mask, "mean"), expected)
    torch.testing.assert_close(pool(x, mask, "cls"), x[:, 0])


def test_sinusoidal_table_matches_vaswani_formula():
    table = sinusoidal_positions(7, 6)
    pos, i = 5, 2  # feature pair 2i, 2i+1
    angle = torch.tensor(pos / 10000 ** (2 * i / 6))
    torch.testing.assert_close(table[pos, 2 * i], torch.sin(angle))
    torch.testing.assert_close(table[pos, 2 * i + 1], torch.cos(angle))
    assert sinusoidal_positions(4, 5).shape == (4, 5)  # odd dim


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_gradient_flows_end_to_end(pooling):
    model = classifier(pooling=pooling, pos="learned").train()
    b = batch([10, 30], 30)
    loss = torch.nn.functional.cross_entropy(model(b), torch.tensor([1, 3]))
    (loss + model.aux_loss()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"no gradient for {name}"
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_aux_loss_and_num_params():
    model = classifier()
    aux = model.aux_loss()
    assert aux.dim() == 0 and aux.item() == 0.0
    assert model.num_params() == sum(p.numel() for p in model.parameters())
    assert classifier(pos="learned").num_params() == model.num_params() + 49 * 16


def test_pair_mode_uses_one_encoder_and_nli_features():
    model = classifier(spec=PAIR, pair_head="nli")
    assert sum(isinstance(m, type(model.encoder)) for m in model.modules()) == 1
    assert model.head[0].in_features == 4 * TINY["dim"]
    seen = []
    model.head.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    one = batch([9, 32], 32, spec=PAIR)
    both = {**one, **{k + "_2": v for k, v in one.items()}}
    assert model(both).shape == (2, PAIR.num_classes)
    u, v, uv, diff = seen[0].chunk(4, dim=-1)  # identical documents: u == v
    torch.testing.assert_close(u, v)
    torch.testing.assert_close(uv, u * u)
    assert diff.abs().max() == 0


def test_lra_concat_head_on_the_first_tokens_state():
    """LRA's dual encoder: no CLS token, the first token's final state of each document,
    [u, v] -> Dense(mlp) -> ReLU -> Dense(mlp // 2) -> ReLU -> Dense(classes)."""
    model = classifier(spec=PAIR, pooling="first", pair_head="concat")
    assert model.encoder.embed.cls is None and model.encoder.embed.length == PAIR.max_len
    widths = [(m.in_features, m.out_features) for m in model.head if hasattr(m, "in_features")]
    assert widths == [(32, 32), (32, 16), (16, PAIR.num_classes)]
    seen = []
    model.head.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    b = {**batch([9, 20], 20, spec=PAIR), **batch([20, 4], 20, "_2", seed=3, spec=PAIR)}
    model(b)
    enc = model.encoder
    for half, suffix in zip(seen[0].chunk(2, dim=-1), ("", "_2"), strict=True):
        x, mask = enc.embed(b["input_ids" + suffix], b["mask" + suffix])
        for block in enc.blocks:  # eval mode: no dropout
            x = block(x, mask)
        torch.testing.assert_close(half, enc.norm(x)[:, 0])
    # the first token's state depends on the first token: change it and u moves
    b2 = {**b, "input_ids": b["input_ids"].clone()}
    b2["input_ids"][:, 0] = (b2["input_ids"][:, 0] + 1) % PAIR.vocab_size
    model(b2)
    assert not torch.allclose(seen[1][:, :16], seen[0][:, :16])
    with pytest.raises(ValueError, match="pair_head"):
        classifier(spec=PAIR, pair_head="dot")


def test_retrieval_recipe_is_lras_code():
    from lra.config import compose

    b = compose("train", ["task=retrieval"]).task.backbone
    assert (b.pooling, b.pair_head) == ("first", "concat")


def test_pair_mode_is_padding_invariant_on_both_documents():
    model = classifier(spec=PAIR, pooling="mean")
    b = {**batch([9, 20], 20, spec=PAIR), **batch([20, 4], 20, "_2", seed=3, spec=PAIR)}
    torch.testing.assert_close(model(pad_with_garbage(b, 12)), model(b), atol=1e-9, rtol=1e-9)


def test_too_long_input_is_a_clear_error():
    model = classifier()
    with pytest.raises(ValueError, match="longer than the model's max_len 48"):
        model(batch([5], SPEC.max_len + 1))
    model(batch([5], SPEC.max_len))  # exactly max_len fits, with the CLS position


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ({"pos": "rope"}, ["pos", "rope", "sinusoidal", "learned"]),
        ({"pooling": "max"}, ["pooling", "max", "cls", "mean"]),
        ({"depth": 3}, ["depth", "layers"]),
        ({"dim": 0}, ["dim"]),
        ({"layers": 2.5}, ["layers"]),
        ({"dropout": 1.5}, ["dropout"]),
    ],
)
def test_bad_backbone_options_are_named(override, words):
    with pytest.raises(ValueError) as err:
        classifier(**override)
    for word in words:
        assert word in str(err.value)


def test_missing_backbone_key_and_clashing_option():
    cfg = {k: v for k, v in TINY.items() if k != "mlp_dim"}
    with pytest.raises(ValueError, match="mlp_dim"):
        Classifier(SPEC, cfg, "transformer")
    with pytest.raises(ValueError, match="dropout"):
        Classifier(SPEC, TINY, "transformer", {"dropout": 0.5})
    with pytest.raises(ValueError, match="divisible"):
        Classifier(SPEC, {**TINY, "heads": 3}, "transformer")


def test_qkv_dim_differs_from_model_dim():
    model = classifier(qkv_dim=8)
    attn = model.encoder.blocks[0].attn
    assert (attn.dim, attn.qkv_dim, attn.head_dim) == (16, 8, 4)
    assert model(batch([3, 7], 7)).shape == (2, SPEC.num_classes)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_method_trains_inside_the_classifier(name):
    """Through build() with the method's test options: max_len for needs_max_len methods
    comes from the backbone."""
    torch.manual_seed(0)
    model = build(SPEC, TINY, {"name": name, **REGISTRY[name].test_options}).train()
    b = batch([40, 48, 17], 48)
    loss = model(b).logsumexp(-1).mean() + model.aux_loss()
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters())


# ------------------------------------------------------------------ attention from a recipe
def test_attention_from_recipe_passes_the_recipe():
    recipe = {**TINY, "attn_dropout": 0.2, "qkv_dim": 8}
    attn = attention_from_recipe("local", {"block_size": 4}, recipe, positions=99)
    assert (attn.dim, attn.heads, attn.dropout, attn.qkv_dim) == (16, 2, 0.2, 8)
    assert attn.block_size == 4
    assert attention_from_recipe("transformer", {}, TINY, positions=99).qkv_dim == 16  # None


def test_attention_from_recipe_gives_max_len_to_methods_that_need_it():
    attn = attention_from_recipe(LinformerAttention, {"k": 4}, TINY, positions=37)  # a class
    assert attn.max_len == 37 and attn.proj.shape == (4, 37)
    assert not hasattr(attention_from_recipe("local", {}, TINY, positions=37), "max_len")


@pytest.mark.parametrize("option", ["dim", "heads", "dropout", "qkv_dim", "max_len"])
def test_attention_from_recipe_rejects_options_the_recipe_sets(option):
    with pytest.raises(ValueError, match=option):
        attention_from_recipe("linformer", {option: 8}, TINY, positions=37)


@pytest.mark.parametrize(("pooling", "positions"), [("cls", 49), ("mean", 48)])
def test_encoder_wires_positions_including_cls(pooling, positions):
    model = classifier(attention="linformer", pooling=pooling)
    assert model.encoder.embed.length == positions
    assert all(block.attn.max_len == positions for block in model.encoder.blocks)
