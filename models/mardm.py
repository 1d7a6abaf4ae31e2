"""MARDM's masked autoregressive transformer (neu-vi/MARDM `models/MARDM.py`) without the CLIP submodule.

Text features are computed outside (models/text_encoders.py) and passed in as `cond` (B, clip_dim); the
reference checkpoints store no `clip_model.*` keys, so the state dicts load unchanged.
The unconditional branch is the same network on a zero text vector (`force_mask=True`).
"""
import math
from functools import partial

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from models.diffmlps import DiffMLPs_DDPM, DiffMLPs_SiT


class InputProcess(nn.Module):
    def __init__(self, input_feats, latent_dim):
        super().__init__()
        self.poseEmbedding = nn.Linear(input_feats, latent_dim)

    def forward(self, x):
        return self.poseEmbedding(x.permute(1, 0, 2))  # (B,L,C) -> (L,B,D)


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, dropout=0.1, max_len=5000):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-np.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe.unsqueeze(1))  # persistent: stored in the checkpoints

    def forward(self, x):
        return self.dropout(x + self.pe[: x.shape[0]])


class Attention(nn.Module):
    """Bidirectional multi-head attention; `padding_mask` (B,L) is True at padded keys."""

    def __init__(self, embed_dim, n_head, drop_out_rate=0.1):
        super().__init__()
        self.key = nn.Linear(embed_dim, embed_dim)
        self.query = nn.Linear(embed_dim, embed_dim)
        self.value = nn.Linear(embed_dim, embed_dim)
        self.attn_drop = nn.Dropout(drop_out_rate)
        self.resid_drop = nn.Dropout(drop_out_rate)
        self.proj = nn.Linear(embed_dim, embed_dim)
        self.n_head = n_head

    def forward(self, x, padding_mask):
        B, L, D = x.shape
        k = self.key(x).view(B, L, self.n_head, D // self.n_head).transpose(1, 2)
        q = self.query(x).view(B, L, self.n_head, D // self.n_head).transpose(1, 2)
        v = self.value(x).view(B, L, self.n_head, D // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.shape[-1]))
        att = att.masked_fill(padding_mask[:, None, None, :], float("-inf"))
        att = self.attn_drop(F.softmax(att, dim=-1))
        y = (att @ v).transpose(1, 2).contiguous().view(B, L, D)
        return self.resid_drop(self.proj(y))


class Mlp(nn.Module):
    """timm's Mlp as MARDM builds it (GELU tanh, no dropout): keys fc1, fc2."""

    def __init__(self, in_features, hidden_features):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden_features, in_features)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class MARTransBlock(nn.Module):
    """DiT-style adaLN-Zero block conditioned on the embedded text vector c (B, D)."""

    def __init__(self, hidden_size, num_heads, mlp_size=1024, drop_out_rate=0.1):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden_size, num_heads, drop_out_rate=drop_out_rate)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(hidden_size, mlp_size)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size))

    def forward(self, x, c, padding_mask):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate_msa.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_msa, scale_msa), padding_mask)
        return x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


def build_diffmlps(type, **kwargs):
    heads = {"SiT": DiffMLPs_SiT, "DDPM": DiffMLPs_DDPM}
    if type not in heads:
        raise ValueError(f"diffusion head type must be one of {sorted(heads)} (got {type!r})")
    return heads[type](**kwargs)


class MARDM(nn.Module):
    def __init__(self, ae_dim, latent_dim=256, ff_size=1024, num_layers=8, num_heads=4, dropout=0.2, clip_dim=512,
                 diffmlps_batch_mul=4, cond_drop_prob=0.1, diffmlps=None):
        super().__init__()
        self.ae_dim, self.latent_dim, self.clip_dim = ae_dim, latent_dim, clip_dim
        self.cond_drop_prob = cond_drop_prob
        self.diffmlps_batch_mul = diffmlps_batch_mul
        self.input_process = InputProcess(ae_dim, latent_dim)
        self.position_enc = PositionalEncoding(latent_dim, dropout)
        self.MARTransformer = nn.ModuleList([
            MARTransBlock(latent_dim, num_heads, mlp_size=ff_size, drop_out_rate=dropout) for _ in range(num_layers)])
        self.cond_emb = nn.Linear(clip_dim, latent_dim)
        self.mask_latent = nn.Parameter(torch.zeros(1, 1, ae_dim))
        diffmlps = dict(diffmlps or {"type": "SiT", "depth": 16, "width": 1792})
        self.DiffMLPs = build_diffmlps(target_channels=ae_dim, z_channels=latent_dim, **diffmlps)
        self.initialize_weights()

    def initialize_weights(self):
        """Training init of the reference; irrelevant when a checkpoint is loaded."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                module.weight.data.normal_(mean=0.0, std=0.02)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    module.bias.data.zero_()
            elif isinstance(module, nn.LayerNorm) and module.elementwise_affine:
                module.bias.data.zero_()
                module.weight.data.fill_(1.0)
        for block in self.MARTransformer:
            nn.init.constant_(block.adaLN_modulation[-1].weight, 0)
            nn.init.constant_(block.adaLN_modulation[-1].bias, 0)

    def mask_cond(self, cond, force_mask=False):
        if force_mask:
            return torch.zeros_like(cond)
        if self.training and self.cond_drop_prob > 0.0:
            keep = 1.0 - torch.bernoulli(torch.full((cond.shape[0], 1), self.cond_drop_prob, device=cond.device))
            return cond * keep
        return cond

    def forward(self, latents, cond, padding_mask, force_mask=False, mask=None):
        """latents (B,L,ae_dim), cond (B,clip_dim), padding_mask (B,L) True at padding -> z (B,L,latent_dim)."""
        cond = self.cond_emb(self.mask_cond(cond, force_mask))
        x = self.position_enc(self.input_process(latents)).permute(1, 0, 2)
        if mask is not None:  # hard pseudo-reorder (unmasked tokens first); a numerical no-op
            order = torch.argsort(mask.float(), dim=1)
            x = torch.gather(x, 1, order[..., None].expand_as(x))
            padding_mask = torch.gather(padding_mask, 1, order)
        for block in self.MARTransformer:
            x = block(x, cond, padding_mask)
        if mask is not None:
            inverse = torch.argsort(order, dim=1)
            x = torch.gather(x, 1, inverse[..., None].expand_as(x))
        return x

    def guided_z(self, latents, cond, padding_mask, is_mask):
        """Transformer outputs of the masked tokens: (2N, latent_dim), cond rows then uncond rows, row-major."""
        z_cond = self.forward(latents, cond, padding_mask)[is_mask]
        z_uncond = self.forward(latents, cond, padding_mask, force_mask=True)[is_mask]
        return torch.cat([z_cond, z_uncond])


def _zoo(diffmlps, **overrides):
    config = dict(latent_dim=1024, ff_size=4096, num_layers=1, num_heads=16, dropout=0.2, clip_dim=512,
                  diffmlps_batch_mul=4, cond_drop_prob=0.1, diffmlps=diffmlps)
    config.update(overrides)
    return partial(MARDM, **config)


MARDM_models = {
    "MARDM-SiT-XL": _zoo({"type": "SiT", "depth": 16, "width": 1792}),
    "MARDM-DDPM-XL": _zoo({"type": "DDPM", "depth": 16, "width": 1792, "num_sampling_steps": "50"}),
}
