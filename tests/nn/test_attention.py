"""scaled_dot_product_attention, MultiheadAttention and the Transformer layers against torch:
outputs, attention weights, input and parameter gradients eagerly (eval mode: dropout is random),
outputs through gcomp.compile, state_dict names and shapes."""

import numpy as np
import pytest
import torch

import gcomp
import gcomp.nn as nn
import gcomp.nn.functional as F

E, HEADS, L, S, N = 8, 2, 4, 5, 3
pytestmark = [  # torch's own advice, about torch
    pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask:UserWarning"),
    pytest.mark.filterwarnings("ignore:enable_nested_tensor is True:UserWarning")]


def g(t, grad=False):
    return gcomp.tensor(t.detach().numpy(), requires_grad=grad)


def close(a, t, tol=2e-5):
    np.testing.assert_allclose(np.asarray(a.detach()), t.detach().numpy(), rtol=tol, atol=tol)


def load(gm, tm):
    gm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    assert list(gm.state_dict()) == list(tm.state_dict())
    assert [tuple(v.shape) for v in gm.state_dict().values()] == \
        [tuple(v.shape) for v in tm.state_dict().values()]
    return gm


def check_grads(touts, gouts, tins, gins, tm=None, gm=None):
    """Backpropagate the same random weighting of the outputs; compare every gradient."""
    rng = np.random.default_rng(7)
    seeds = [rng.standard_normal(tuple(t.shape)).astype(np.float32) for t in touts]
    sum((t * torch.tensor(s)).sum() for t, s in zip(touts, seeds, strict=True)).backward()
    sum((o * gcomp.tensor(s)).sum() for o, s in zip(gouts, seeds, strict=True)).backward()
    for t, a in zip(tins, gins, strict=True):
        close(a.grad, t.grad)
    if tm is not None:
        gparams = dict(gm.named_parameters())
        for name, p in tm.named_parameters():
            close(gparams[name].grad, p.grad)


# -- scaled_dot_product_attention ---------------------------------------------------------------
def _mask(kind, shape):
    rng = np.random.default_rng(3)
    if kind == "float":
        return torch.tensor(rng.standard_normal(shape).astype(np.float32))
    m = rng.random(shape) > 0.4
    m[..., 0] = True  # every query attends somewhere
    return torch.tensor(m)


@pytest.mark.parametrize("kw", [{}, {"mask": "float"}, {"mask": "bool"}, {"is_causal": True},
                                {"scale": 0.3, "mask": "bool4d"}],
                         ids=["plain", "float_mask", "bool_mask", "causal", "scale_4d_mask"])
def test_sdpa_matches_torch(kw):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, HEADS, L, E, requires_grad=True),
               torch.randn(2, HEADS, S, E, requires_grad=True),
               torch.randn(2, HEADS, S, 6, requires_grad=True))
    args = {key: val for key, val in kw.items() if key != "mask"}
    if "mask" in kw:
        shape = (2, 1, L, S) if kw["mask"] == "bool4d" else (L, S)
        args["attn_mask"] = _mask(kw["mask"].replace("4d", ""), shape)
    t = torch.nn.functional.scaled_dot_product_attention(q, k, v, **args)
    gq, gk, gv = g(q, True), g(k, True), g(v, True)
    gargs = {key: g(val) if isinstance(val, torch.Tensor) else val for key, val in args.items()}
    o = F.scaled_dot_product_attention(gq, gk, gv, **gargs)
    close(o, t)
    check_grads([t], [o], [q, k, v], [gq, gk, gv])


# -- MultiheadAttention -------------------------------------------------------------------------
# (batch_first, kdim, self-attention, need_weights, average_attn_weights, attn_mask, key padding)
MHA_CASES = [
    (False, None, True, True, True, None, None),
    (True, None, True, True, False, "bool", None),
    (False, None, False, True, True, "float", "bool"),
    (True, None, False, False, True, "bool3d", "float"),
    (False, 6, False, True, True, None, "bool"),
    (True, 6, False, False, True, "float", None),
    (False, None, True, False, True, "bool", "bool"),
]


def _mha_inputs(batch_first, kdim, self_attention, unbatched=False):
    torch.manual_seed(1)

    def shape(length, dim):
        if unbatched:
            return (length, dim)
        return (N, length, dim) if batch_first else (length, N, dim)

    q = torch.randn(shape(L, E), requires_grad=True)
    if self_attention:
        return [q]
    return [q, torch.randn(shape(S, kdim or E), requires_grad=True),
            torch.randn(shape(S, kdim or E), requires_grad=True)]


@pytest.mark.parametrize("batch_first,kdim,self_attention,need_weights,average,mask,kpm",
                         MHA_CASES)
def test_multihead_attention_matches_torch(batch_first, kdim, self_attention, need_weights,
                                           average, mask, kpm):
    torch.manual_seed(0)
    tm = torch.nn.MultiheadAttention(E, HEADS, kdim=kdim, vdim=kdim, batch_first=batch_first)
    gm = load(nn.MultiheadAttention(E, HEADS, kdim=kdim, vdim=kdim, batch_first=batch_first), tm)
    tins = _mha_inputs(batch_first, kdim, self_attention)
    gins = [g(t, True) for t in tins]
    src = L if self_attention else S
    kw = {"need_weights": need_weights, "average_attn_weights": average}
    if mask is not None:
        m = _mask(mask.replace("3d", ""), (N * HEADS, L, src) if mask.endswith("3d") else (L, src))
        if m.dtype == torch.bool:
            m = ~m  # MHA's bool masks are True where attention is NOT allowed
        kw["attn_mask"] = m
    if kpm is not None:
        p = torch.zeros(N, src, dtype=torch.bool)
        p[0, -1] = p[2, 1] = True
        kw["key_padding_mask"] = p if kpm == "bool" else \
            torch.where(p, -2.0, 0.5).to(torch.float32)
    tq = tins * 3 if self_attention else tins
    gq = gins * 3 if self_attention else gins
    tout, tw = tm(*tq, **kw)
    gout, gw = gm(*gq, **{k: g(v) if isinstance(v, torch.Tensor) else v for k, v in kw.items()})
    close(gout, tout)
    touts, gouts = [tout], [gout]
    if need_weights:
        close(gw, tw)
        touts.append(tw)
        gouts.append(gw)
    else:
        assert gw is None
    check_grads(touts, gouts, tins, gins, tm, gm)


@pytest.mark.parametrize("average", [True, False])
def test_multihead_attention_unbatched(average):
    torch.manual_seed(0)
    tm = torch.nn.MultiheadAttention(E, HEADS)
    gm = load(nn.MultiheadAttention(E, HEADS), tm)
    q, k, v = _mha_inputs(False, None, False, unbatched=True)
    kpm = torch.tensor([False, True, False, False, False])
    tout, tw = tm(q, k, v, key_padding_mask=kpm, average_attn_weights=average)
    gout, gw = gm(g(q), g(k), g(v), key_padding_mask=g(kpm), average_attn_weights=average)
    close(gout, tout)
    close(gw, tw)


def test_multihead_attention_add_zero_attn_and_no_bias():
    torch.manual_seed(0)
    for kw in ({"add_zero_attn": True}, {"bias": False}):
        tm = torch.nn.MultiheadAttention(E, HEADS, **kw)
        gm = load(nn.MultiheadAttention(E, HEADS, **kw), tm)
        q, k, v = _mha_inputs(False, None, False)
        kpm = torch.zeros(N, S, dtype=torch.bool)
        kpm[1, 2] = True
        tout, tw = tm(q, k, v, key_padding_mask=kpm)
        gout, gw = gm(g(q), g(k), g(v), key_padding_mask=g(kpm))
        close(gout, tout)
        close(gw, tw)


def test_multihead_attention_compiled_and_errors():
    torch.manual_seed(0)
    tm = torch.nn.MultiheadAttention(E, HEADS, batch_first=True)
    gm = load(nn.MultiheadAttention(E, HEADS, batch_first=True), tm)
    (q,) = _mha_inputs(True, None, True)
    mask = _mask("bool", (L, L))
    tout, tw = tm(q, q, q, attn_mask=~mask)
    fn = gcomp.compile(lambda x, m: gm(x, x, x, attn_mask=m))
    gout, gw = fn(g(q), g(~mask))
    close(gout, tout)
    close(gw, tw)
    with pytest.raises(gcomp.GcompError, match="add_bias_kv"):
        nn.MultiheadAttention(E, HEADS, add_bias_kv=True)
    with pytest.raises(gcomp.GcompError, match="divisible"):
        nn.MultiheadAttention(E, 3)
    with pytest.raises(gcomp.GcompError, match="attn_mask"):
        gm(g(q), g(q), g(q), is_causal=True)


# -- Transformer layers -------------------------------------------------------------------------
D, FF = 8, 16
# (norm_first, activation, batch_first, mask)
LAYER_CASES = [(False, "relu", False, None), (True, "gelu", True, "causal"),
               (False, "gelu", True, "is_causal"), (True, "relu", False, "kpm")]


def _layer_masks(kind, length, batch_first):
    if kind in ("causal", "is_causal"):
        m = torch.nn.Transformer.generate_square_subsequent_mask(length)
        return {"mask": m, "is_causal": kind == "is_causal"}
    if kind == "kpm":
        p = torch.zeros(N, length, dtype=torch.bool)
        p[1, -1] = True
        return {"kpm": p}
    return {}


def _seq(length, batch_first):
    return torch.randn((N, length, D) if batch_first else (length, N, D), requires_grad=True)


@pytest.mark.parametrize("norm_first,activation,batch_first,mask", LAYER_CASES)
def test_encoder_layer_matches_torch(norm_first, activation, batch_first, mask):
    torch.manual_seed(0)
    args = (D, HEADS, FF, 0.1, activation)
    kw = {"batch_first": batch_first, "norm_first": norm_first}
    tm = torch.nn.TransformerEncoderLayer(*args, **kw).eval()
    gm = load(nn.TransformerEncoderLayer(*args, **kw), tm).eval()
    x = _seq(L, batch_first)
    m = _layer_masks(mask, L, batch_first)
    targs = {"src_mask": m.get("mask"), "src_key_padding_mask": m.get("kpm"),
             "is_causal": m.get("is_causal", False)}
    t = tm(x, **targs)
    gx = g(x, True)
    o = gm(gx, **{k: g(v) if isinstance(v, torch.Tensor) else v for k, v in targs.items()})
    close(o, t)
    check_grads([t], [o], [x], [gx], tm, gm)


@pytest.mark.parametrize("norm_first,activation,batch_first,mask", LAYER_CASES)
def test_decoder_layer_matches_torch(norm_first, activation, batch_first, mask):
    torch.manual_seed(0)
    args = (D, HEADS, FF, 0.1, activation)
    kw = {"batch_first": batch_first, "norm_first": norm_first}
    tm = torch.nn.TransformerDecoderLayer(*args, **kw).eval()
    gm = load(nn.TransformerDecoderLayer(*args, **kw), tm).eval()
    x, mem = _seq(L, batch_first), _seq(S, batch_first)
    m = _layer_masks(mask, L, batch_first)
    targs = {"tgt_mask": m.get("mask"), "tgt_key_padding_mask": m.get("kpm"),
             "tgt_is_causal": m.get("is_causal", False)}
    if mask == "kpm":
        p = torch.zeros(N, S, dtype=torch.bool)
        p[0, 0] = True
        targs["memory_key_padding_mask"] = p
    t = tm(x, mem, **targs)
    gx, gmem = g(x, True), g(mem, True)
    o = gm(gx, gmem, **{k: g(v) if isinstance(v, torch.Tensor) else v for k, v in targs.items()})
    close(o, t)
    check_grads([t], [o], [x, mem], [gx, gmem], tm, gm)


def test_encoder_stack_copies_layers_and_compiles():
    torch.manual_seed(0)
    tl = torch.nn.TransformerEncoderLayer(D, HEADS, FF, batch_first=True)
    tm = torch.nn.TransformerEncoder(tl, 2, norm=torch.nn.LayerNorm(D),
                                     enable_nested_tensor=False).eval()
    gl = nn.TransformerEncoderLayer(D, HEADS, FF, batch_first=True)
    gm = nn.TransformerEncoder(gl, 2, norm=nn.LayerNorm(D))
    assert gm.layers[0].linear1.weight is not gm.layers[1].linear1.weight
    with gcomp.no_grad():
        gm.layers[0].linear1.weight.add_(1.0)
    assert not np.allclose(np.asarray(gm.layers[0].linear1.weight.detach()),
                           np.asarray(gm.layers[1].linear1.weight.detach()))
    load(gm, tm).eval()
    x = _seq(L, True)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(L)
    t = tm(x, mask=mask)
    close(gm(g(x), mask=g(mask)), t)
    close(gcomp.compile(lambda a, m: gm(a, mask=m))(g(x), g(mask)), t)


def test_transformer_matches_torch_eval_and_train_without_dropout():
    torch.manual_seed(0)
    kw = dict(d_model=D, nhead=HEADS, num_encoder_layers=1, num_decoder_layers=2,
              dim_feedforward=FF, dropout=0.0)
    tm = torch.nn.Transformer(**kw)
    gm = load(nn.Transformer(**kw), tm)
    src, tgt = _seq(S, False), _seq(L, False)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(L)
    close(gcomp.tensor(np.asarray(nn.Transformer.generate_square_subsequent_mask(L))), mask)
    t = tm(src, tgt, tgt_mask=mask)
    gsrc, gtgt = g(src, True), g(tgt, True)
    o = gm(gsrc, gtgt, tgt_mask=g(mask))  # train mode, dropout 0: exact too
    close(o, t)
    check_grads([t], [o], [src, tgt], [gsrc, gtgt], tm, gm)
    gm.eval()
    close(gm(gsrc, gtgt, tgt_mask=g(mask)), t)


def test_transformer_init_and_dropout_in_training():
    gm = nn.Transformer(d_model=D, nhead=HEADS, num_encoder_layers=1, num_decoder_layers=1,
                        dim_feedforward=FF)
    tm = torch.nn.Transformer(d_model=D, nhead=HEADS, num_encoder_layers=1,
                              num_decoder_layers=1, dim_feedforward=FF)
    assert list(gm.state_dict()) == list(tm.state_dict())
    w = np.asarray(gm.encoder.layers[0].linear1.weight.detach())
    assert np.abs(w).max() <= np.sqrt(6 / (D + FF)) + 1e-6
    layer = nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.5)
    x = gcomp.randn(L, N, D)
    a, b = layer(x), layer(x)
    assert not np.allclose(np.asarray(a.detach()), np.asarray(b.detach()))
    layer.eval()
    np.testing.assert_array_equal(np.asarray(layer(x).detach()), np.asarray(layer(x).detach()))
