"""afford-motion's stage-1 CDM: predicts the clean (normalized) contact map x0 of a point cloud from a noisy one.

Attribute names (`timestep_embedder`, `contact_model`, `contact_layer`) are the reference's, so its checkpoints
load unchanged. Unlike the reference, the text is not encoded here: `c_text` is the precomputed 512-d CLIP feature
of the caption (encoded once per sample, not at every diffusion step; CLIP is frozen, so the numbers are the same).
The scene model (PointTransformer) is not part of this port: with point_feat_dim > 0, `c_pc_feat` holds the
per-point features directly.
"""
import math

import torch
import torch.nn as nn

from models.contact_pointmamba import ContactPointMamba
from models.perceiver import ContactPerceiver

CONTACT_MODELS = {"PointMamba": ContactPointMamba, "Perceiver": ContactPerceiver}


def positional_encoding(max_len, dim):
    """Sinusoid table [max_len, 1, dim]: even columns sin(p * w_i), odd columns cos(p * w_i)."""
    position = torch.arange(max_len, dtype=torch.float32)[:, None]
    freqs = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(max_len, dim)
    pe[:, 0::2] = torch.sin(position * freqs)
    pe[:, 1::2] = torch.cos(position * freqs)
    return pe[:, None, :]


class TimestepEmbedder(nn.Module):
    """Integer timesteps [B] -> [B, 1, dim]: MLP of a row of the sinusoid table (a buffer kept in checkpoints)."""

    def __init__(self, dim, max_len=1000):
        super().__init__()
        self.register_buffer("pe", positional_encoding(max_len, dim))
        self.time_embed = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, timesteps):
        return self.time_embed(self.pe[timesteps])


def build_contact_model(arch, contact_dim, point_feat_dim, text_feat_dim, time_emb_dim, arch_cfg=None):
    if arch not in CONTACT_MODELS:
        raise ValueError(f"unknown CDM architecture {arch!r}; choose one of {sorted(CONTACT_MODELS)} "
                         "(the reference's MLP arch needs a scene model and PointTrans needs CUDA pointops)")
    return CONTACT_MODELS[arch](contact_dim, point_feat_dim, text_feat_dim, time_emb_dim, **dict(arch_cfg or {}))


class CDM(nn.Module):
    """arch 'PointMamba' (the fork's) or 'Perceiver' (upstream); `arch_cfg` holds that arch's sizes."""

    def __init__(self, arch="PointMamba", contact_dim=6, text_feat_dim=512, time_emb_dim=128, point_feat_dim=0,
                 arch_cfg=None):
        super().__init__()
        self.arch, self.contact_dim, self.point_feat_dim = arch, contact_dim, point_feat_dim
        self.timestep_embedder = TimestepEmbedder(time_emb_dim, max_len=1000)
        self.contact_model = build_contact_model(arch, contact_dim, point_feat_dim, text_feat_dim, time_emb_dim,
                                                 arch_cfg)
        self.contact_layer = nn.Linear(self.contact_model.last_dim, contact_dim)

    def forward(self, x, timesteps, c_text, c_pc_xyz, c_pc_feat=None):
        """x [B,N,contact] noisy map, timesteps [B] int64 (< 1000), c_text [B,T] text features, c_pc_xyz [B,N,3]
        -> predicted x0 [B,N,contact]."""
        time_emb = self.timestep_embedder(timesteps)
        text_emb = c_text.reshape(c_text.shape[0], 1, -1).float()
        h = self.contact_model(x, self.point_features(c_pc_feat), text_emb, time_emb, c_pc_xyz)
        return self.contact_layer(h)

    def point_features(self, c_pc_feat):
        if self.point_feat_dim == 0:
            return None
        if c_pc_feat is None or c_pc_feat.shape[-1] != self.point_feat_dim:
            got = None if c_pc_feat is None else tuple(c_pc_feat.shape)
            raise ValueError(f"this CDM was built with point_feat_dim={self.point_feat_dim}: pass c_pc_feat "
                             f"[B,N,{self.point_feat_dim}] (got {got})")
        return c_pc_feat
