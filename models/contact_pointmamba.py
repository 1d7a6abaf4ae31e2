"""ContactPointMamba: afford-motion's (syrelink fork) bidirectional Mamba encoder over Hilbert-ordered points.

Per point: embed [contact | text | time | xyz | point feat] -> trans_dim; sort the points along a Hilbert curve;
`depth` times x = x + f(x) + flip(f(flip(x))) with one shared block f = mamba(LayerNorm(x)) per layer (no residual
inside the block); back to the input order; out_proj -> last_dim. No dropout, no final norm.
"""
import torch
import torch.nn as nn

from models.hilbert import hilbert_order
from models.mamba import Mamba, bidirectional_residual


class MambaFeatureEncoder(nn.Module):
    def __init__(self, in_channels, out_channels, hidden=128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_channels, hidden), nn.GELU(), nn.Linear(hidden, out_channels), nn.LayerNorm(out_channels))

    def forward(self, x):
        return self.net(x)


class PointMambaBlock(nn.Module):
    """mamba(norm(x)); d_state 16, d_conv 4, expand 2 are fixed by the fork."""

    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.mamba = Mamba(d_model=dim, d_state=16, d_conv=4, expand=2)

    def forward(self, x):
        return self.mamba(self.norm(x))


class ContactPointMamba(nn.Module):
    def __init__(self, contact_dim, point_feat_dim, text_feat_dim, time_emb_dim, trans_dim=256, depth=8,
                 last_dim=256):
        super().__init__()
        self.trans_dim, self.depth, self.last_dim = trans_dim, depth, last_dim
        in_channels = contact_dim + point_feat_dim + text_feat_dim + time_emb_dim + 3
        self.embedding = MambaFeatureEncoder(in_channels, trans_dim)
        self.layers = nn.ModuleList([PointMambaBlock(trans_dim) for _ in range(depth)])
        self.out_proj = nn.Linear(trans_dim, last_dim)

    def embed(self, x, point_feat, text_emb, time_emb, xyz):
        """Per-point features in the checkpoint's column order [x | text | time | xyz | point_feat]."""
        num_points = x.shape[1]
        columns = [x, text_emb.expand(-1, num_points, -1), time_emb.expand(-1, num_points, -1), xyz]
        if point_feat is not None:
            columns.append(point_feat)
        return self.embedding(torch.cat(columns, dim=-1))

    def forward(self, x, point_feat, text_emb, time_emb, xyz):
        """x [B,N,contact], point_feat [B,N,F] or None, text_emb [B,1,T], time_emb [B,1,E], xyz [B,N,3]."""
        h = self.embed(x, point_feat, text_emb, time_emb, xyz)
        sort_idx, unsort_idx = hilbert_order(xyz)
        h = gather_points(h, sort_idx)
        for layer in self.layers:
            h = bidirectional_residual(layer, h)
        return self.out_proj(gather_points(h, unsort_idx))


def gather_points(h, idx):
    return torch.gather(h, 1, idx[..., None].expand(-1, -1, h.shape[-1]))
