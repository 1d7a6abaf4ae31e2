"""ContactPerceiver, afford-motion's upstream CDM encoder (Perceiver-IO style, after krasserm/perceiver-io).

Encoder: two latent tokens [text, time] cross-attend to the per-point features [contact | point feat | xyz], then
self-attend; decoder: per-point queries (from the same point features) cross-attend to the two latents.
Every layer is pre-LayerNorm: x = x + attn(norm(x), norm(kv)), then x = x + MLP(x). Module names and nesting
(`encoder_cross_attn.0.module.attention.q_proj`, `... .1.module.3`) are the reference's, so checkpoints load as is.
"""
import torch
import torch.nn as nn


class MultiHeadAttention(nn.Module):
    def __init__(self, num_heads, q_channels, kv_channels, dropout=0.0):
        super().__init__()
        if q_channels % num_heads:
            raise ValueError(f"{q_channels} query channels cannot be split into {num_heads} heads")
        self.num_heads = num_heads
        self.scale = (q_channels // num_heads) ** -0.5
        self.q_proj = nn.Linear(q_channels, q_channels)
        self.k_proj = nn.Linear(kv_channels, q_channels)
        self.v_proj = nn.Linear(kv_channels, q_channels)
        self.o_proj = nn.Linear(q_channels, q_channels)
        self.dropout = nn.Dropout(dropout)

    def split_heads(self, x):
        batch, length, channels = x.shape
        return x.view(batch, length, self.num_heads, channels // self.num_heads).transpose(1, 2)

    def forward(self, x_q, x_kv):
        q = self.split_heads(self.q_proj(x_q)) * self.scale
        k, v = self.split_heads(self.k_proj(x_kv)), self.split_heads(self.v_proj(x_kv))
        attn = self.dropout((q @ k.transpose(-2, -1)).softmax(dim=-1))
        out = (attn @ v).transpose(1, 2).flatten(2)
        return self.o_proj(out)


class CrossAttention(nn.Module):
    def __init__(self, num_heads, q_channels, kv_channels, dropout):
        super().__init__()
        self.q_norm = nn.LayerNorm(q_channels)
        self.kv_norm = nn.LayerNorm(kv_channels)
        self.attention = MultiHeadAttention(num_heads, q_channels, kv_channels, dropout)

    def forward(self, x_q, x_kv):
        return self.attention(self.q_norm(x_q), self.kv_norm(x_kv))


class SelfAttention(nn.Module):
    def __init__(self, num_heads, channels, dropout):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.attention = MultiHeadAttention(num_heads, channels, channels, dropout)

    def forward(self, x):
        x = self.norm(x)
        return self.attention(x, x)


class MLP(nn.Sequential):
    def __init__(self, channels, widening_factor):
        super().__init__(nn.LayerNorm(channels), nn.Linear(channels, widening_factor * channels), nn.GELU(),
                         nn.Linear(widening_factor * channels, channels))


class Residual(nn.Module):
    """x + dropout(module(x, *context)): the residual adds the un-normalized input."""

    def __init__(self, module, dropout=0.0):
        super().__init__()
        self.module = module
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, *context):
        return self.dropout(self.module(x, *context)) + x


class CrossAttentionLayer(nn.Sequential):
    def __init__(self, num_heads, q_channels, kv_channels, widening_factor, dropout, residual_dropout):
        super().__init__(Residual(CrossAttention(num_heads, q_channels, kv_channels, dropout), residual_dropout),
                         Residual(MLP(q_channels, widening_factor), residual_dropout))

    def forward(self, x_q, x_kv):
        return self[1](self[0](x_q, x_kv))


def self_attention_block(num_layers, num_heads, channels, widening_factor, dropout, residual_dropout):
    return nn.Sequential(*[
        nn.Sequential(Residual(SelfAttention(num_heads, channels, dropout), residual_dropout),
                      Residual(MLP(channels, widening_factor), residual_dropout))
        for _ in range(num_layers)])


class ContactPerceiver(nn.Module):
    """Defaults are `arch_perceiver` of afford-motion's configs/model/cdm.yaml."""

    def __init__(self, contact_dim, point_feat_dim, text_feat_dim, time_emb_dim, last_dim=256, point_pos_emb=True,
                 encoder_q_input_channels=512, encoder_kv_input_channels=256, encoder_num_heads=8,
                 encoder_widening_factor=1, encoder_dropout=0.1, encoder_residual_dropout=0.0,
                 encoder_self_attn_num_layers=2, decoder_q_input_channels=256, decoder_kv_input_channels=512,
                 decoder_num_heads=8, decoder_widening_factor=1, decoder_dropout=0.1, decoder_residual_dropout=0.0):
        super().__init__()
        if last_dim != decoder_q_input_channels:
            raise ValueError(f"Perceiver last_dim ({last_dim}) must equal decoder_q_input_channels "
                             f"({decoder_q_input_channels}): the decoder output feeds contact_layer")
        if decoder_kv_input_channels != encoder_q_input_channels:
            raise ValueError(f"decoder_kv_input_channels ({decoder_kv_input_channels}) must equal "
                             f"encoder_q_input_channels ({encoder_q_input_channels}): the decoder reads the latents")
        self.point_pos_emb, self.last_dim = point_pos_emb, last_dim
        point_channels = contact_dim + point_feat_dim + (3 if point_pos_emb else 0)
        self.language_adapter = nn.Linear(text_feat_dim, encoder_q_input_channels)
        self.time_embedding_adapter = nn.Linear(time_emb_dim, encoder_q_input_channels)
        self.encoder_adapter = nn.Linear(point_channels, encoder_kv_input_channels)
        self.decoder_adapter = nn.Linear(encoder_kv_input_channels, decoder_q_input_channels)
        self.encoder_cross_attn = CrossAttentionLayer(
            encoder_num_heads, encoder_q_input_channels, encoder_kv_input_channels, encoder_widening_factor,
            encoder_dropout, encoder_residual_dropout)
        self.encoder_self_attn = self_attention_block(
            encoder_self_attn_num_layers, encoder_num_heads, encoder_q_input_channels, encoder_widening_factor,
            encoder_dropout, encoder_residual_dropout)
        self.decoder_cross_attn = CrossAttentionLayer(
            decoder_num_heads, decoder_q_input_channels, decoder_kv_input_channels, decoder_widening_factor,
            decoder_dropout, decoder_residual_dropout)

    def forward(self, x, point_feat, text_emb, time_emb, xyz):
        """x [B,N,contact], point_feat [B,N,F] or None, text_emb [B,1,T], time_emb [B,1,E], xyz [B,N,3]."""
        columns = [x] + ([point_feat] if point_feat is not None else []) + ([xyz] if self.point_pos_emb else [])
        point_tokens = self.encoder_adapter(torch.cat(columns, dim=-1))
        latents = torch.cat([self.language_adapter(text_emb), self.time_embedding_adapter(time_emb)], dim=1)
        latents = self.encoder_self_attn(self.encoder_cross_attn(latents, point_tokens))
        return self.decoder_cross_attn(self.decoder_adapter(point_tokens), latents)
