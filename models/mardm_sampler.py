"""MARDM's mask-schedule generation (`MARDM.generate`), with the randomness made explicit.

Each of `time_steps` iterations re-masks the lowest-priority tokens (cosine schedule, at least one token),
resets them to `mask_latent`, predicts them with the guided diffusion head (all masked tokens of all captions
in one head call) and commits them. Two noise sources:

* `ReferenceNoise(seed)`: the reference's draw order after `torch.manual_seed(seed)` — priorities
  `rand(B, l)` on the model device, then per iteration `randn(N_k, C)` on the CPU (DDPM: plus one `randn`
  of (2N_k, C) per ancestral step on the device). Results depend on the batch composition.
* `PerItemNoise(seed, item_ids)`: each caption draws from its own generator seeded by (seed, id), so with a
  fixed-step solver (or the DDPM head) a caption's result does not depend on batch size, order or devices.
  The adaptive dopri5 solver shares its step sizes across the whole batch, so with dopri5 results still
  depend (slightly) on which captions share a batch.

`skip_redundant=True` predicts, at each iteration, only the tokens that are committed at it (they leave the
mask at the next iteration; all remaining ones at the last): every other prediction is re-masked and
overwritten anyway, so the output distribution is unchanged while the head work drops to one prediction per
token (4-token motions: 4 instead of 47 token predictions per caption).
"""
import math

import numpy as np
import torch

from models.diffmlps import DiffMLPs_DDPM


def lengths_to_padding_mask(lengths, max_len):
    return torch.arange(max_len, device=lengths.device)[None, :] >= lengths[:, None]


def num_masked_schedule(m_lens, time_steps):
    """(time_steps, B) number of masked tokens per iteration: round_half_even(cos(pi/2 s) len), at least 1."""
    steps = torch.linspace(0, 1, time_steps)
    ratios = torch.cos(steps * math.pi * 0.5)
    return torch.round(ratios[:, None] * m_lens.cpu()[None, :].float()).clamp(min=1).long()


class ReferenceNoise:
    def __init__(self, seed, device):
        device = torch.device(device)
        self.cpu = torch.Generator().manual_seed(int(seed))
        self.device_gen = self.cpu if device.type == "cpu" else torch.Generator(device).manual_seed(int(seed))
        self.device = device

    def priorities(self, padding_mask):
        return torch.rand(padding_mask.shape, generator=self.device_gen, device=self.device)

    def token_noise(self, predict_mask, channels):
        n = int(predict_mask.sum())
        return torch.randn(n, channels, generator=self.cpu).to(self.device)

    def step_noise(self, predict_mask, channels):
        def draw(i, x):
            return torch.randn(x.shape, generator=self.device_gen, device=self.device)
        return draw


def item_seed(seed, item_id):
    """A 63-bit seed derived from (seed, id) with numpy's SeedSequence (well mixed, platform independent)."""
    state = np.random.SeedSequence([int(seed), int(item_id)]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 ^ int(state[1])


class PerItemNoise:
    def __init__(self, seed, item_ids, device):
        # padding items (id -1, added when a rank has fewer captions than ranks) reuse id 0's stream; discarded
        self.generators = [torch.Generator().manual_seed(item_seed(seed, max(int(i), 0))) for i in item_ids]
        self.device = torch.device(device)

    def priorities(self, padding_mask):
        # each caption draws exactly its own length, so its stream does not depend on the batch's longest
        lengths = (~padding_mask).sum(dim=1).tolist()
        rows = [torch.rand(n, generator=g) for g, n in zip(self.generators, lengths)]
        padded = torch.full(padding_mask.shape, 1e5)
        for b, row in enumerate(rows):
            padded[b, : len(row)] = row
        return padded.to(self.device)

    def _rows(self, predict_mask, channels):
        """(N, C) noise, rows in row-major (b, l) order, each caption's rows from its own generator."""
        counts = predict_mask.sum(dim=1).tolist()
        rows = [torch.randn(n, channels, generator=g) for g, n in zip(self.generators, counts) if n > 0]
        return torch.cat(rows).to(self.device) if rows else torch.zeros(0, channels, device=self.device)

    def token_noise(self, predict_mask, channels):
        return self._rows(predict_mask, channels)

    def step_noise(self, predict_mask, channels):
        # only the cond half of the guided state is ever used, so both halves get the same per-item noise
        def draw(i, x):
            rows = self._rows(predict_mask, channels)
            return torch.cat([rows] * (x.shape[0] // rows.shape[0]))
        return draw


@torch.no_grad()
def generate(model, cond, m_lens, noise, time_steps=18, cfg=4.5, solver="dopri5", num_steps=50,
             skip_redundant=False, return_trace=False):
    """cond (B, clip_dim) text features, m_lens (B,) token lengths -> latents (B, ae_dim, l), channels-first."""
    was_training = model.training
    model.eval()
    device = cond.device
    m_lens = m_lens.to(device)
    l = int(m_lens.max())
    padding_mask = lengths_to_padding_mask(m_lens, l)
    mask_latent = model.mask_latent.to(cond.dtype)
    latents = torch.where(padding_mask[..., None], torch.zeros(1, device=device), mask_latent)
    schedule = torch.where(padding_mask, 1e5, noise.priorities(padding_mask))
    num_masked = num_masked_schedule(m_lens, time_steps).to(device)
    trace = []
    for k in range(time_steps):
        ranks = schedule.argsort(dim=1).argsort(dim=1)
        is_mask = ranks < num_masked[k][:, None]
        latents = torch.where(is_mask[..., None], mask_latent, latents)
        predict = is_mask
        if skip_redundant and k < time_steps - 1:
            predict = is_mask & ~(ranks < num_masked[k + 1][:, None])  # only the tokens committed now
        if predict.any():
            pred = predict_tokens(model, latents, cond, padding_mask, predict, noise, cfg, solver, num_steps)
            latents = latents.clone()
            latents[predict] = pred
        if return_trace:
            trace.append({"is_mask": is_mask.clone(), "predict": predict.clone(), "latents": latents.clone()})
        schedule = schedule.masked_fill(~is_mask, 1e5)
    latents = torch.where(padding_mask[..., None], torch.zeros(1, device=device), latents).permute(0, 2, 1)
    model.train(was_training)
    return (latents, trace) if return_trace else latents


def predict_tokens(model, latents, cond, padding_mask, predict, noise, cfg, solver, num_steps):
    """One head call over the tokens in `predict` (B, l): returns (N, ae_dim) in row-major order. cfg = 1 is
    unguided sampling from the conditional model (the reference crashes there)."""
    if cfg == 1:
        z = model.forward(latents, cond, padding_mask)[predict]
    else:
        z = model.guided_z(latents, cond, padding_mask, predict)
    if not z.shape[0]:
        return latents[predict]
    x_noise = noise.token_noise(predict, model.ae_dim).to(latents.dtype)
    head = model.DiffMLPs
    if isinstance(head, DiffMLPs_DDPM):
        return head.sample(z, x_noise, noise.step_noise(predict, model.ae_dim), cfg=cfg)
    return head.sample(z, x_noise, cfg=cfg, solver=solver, num_steps=num_steps)
