"""MARDM's diffusion-MLP heads: `SimpleMLPAdaLN` (MAR's "Diffusion Loss" MLP) wrapped as `DiffMLPs.net`.

`DiffMLPs_SiT`: flow matching, t in [0, 1] from noise (0) to data (1), velocity prediction, sampled with a
torchdiffeq ODE solver (dopri5 by default). `DiffMLPs_DDPM`: epsilon prediction over a 50-step cosine chain.
Classifier-free guidance is applied inside `net.forward_with_cfg` at every function evaluation; the condition
rows are [cond; uncond] and the state is shared by both halves.
The noise is given by the caller (see `models/mardm_sampler.py`), so randomness stays in one place.
"""
import math

import torch
import torch.nn as nn
from torchdiffeq import odeint

from models.gaussian_diffusion import GaussianDiffusion


def modulate(x, shift, scale):
    return x * (1 + scale) + shift


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden_size, frequency_embedding_size=256):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size))
        self.frequency_embedding_size = frequency_embedding_size

    @staticmethod
    def timestep_embedding(t, dim, max_period=10000):
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        args = t[:, None].float() * freqs[None]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # cos first

    def forward(self, t):
        return self.mlp(self.timestep_embedding(t, self.frequency_embedding_size))


class ResBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.in_ln = nn.LayerNorm(channels, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(channels, channels), nn.SiLU(), nn.Linear(channels, channels))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(channels, 3 * channels))

    def forward(self, x, y):
        shift, scale, gate = self.adaLN_modulation(y).chunk(3, dim=-1)
        return x + gate * self.mlp(modulate(self.in_ln(x), shift, scale))


class FinalLayer(nn.Module):
    def __init__(self, model_channels, out_channels):
        super().__init__()
        self.norm_final = nn.LayerNorm(model_channels, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(model_channels, out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(model_channels, 2 * model_channels))

    def forward(self, x, y):
        shift, scale = self.adaLN_modulation(y).chunk(2, dim=-1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class SimpleMLPAdaLN(nn.Module):
    def __init__(self, in_channels, model_channels, out_channels, z_channels, num_res_blocks):
        super().__init__()
        self.in_channels = in_channels
        self.time_embed = TimestepEmbedder(model_channels)
        self.cond_embed = nn.Linear(z_channels, model_channels)
        self.input_proj = nn.Linear(in_channels, model_channels)
        self.res_blocks = nn.ModuleList([ResBlock(model_channels) for _ in range(num_res_blocks)])
        self.final_layer = FinalLayer(model_channels, out_channels)

    def forward(self, x, t, c):
        x = self.input_proj(x)
        y = self.time_embed(t) + self.cond_embed(c)
        for block in self.res_blocks:
            x = block(x, y)
        return self.final_layer(x, y)

    def forward_with_cfg(self, x, t, c, cfg_scale):
        """x, t, c: (2N, ...) with c = [cond; uncond]; only x[:N] is used. Returns [g; g]."""
        half = x[: len(x) // 2]
        out = self.forward(torch.cat([half, half]), t, c)
        eps, rest = out[:, : self.in_channels], out[:, self.in_channels:]
        cond_eps, uncond_eps = torch.split(eps, len(eps) // 2, dim=0)
        guided = uncond_eps + cfg_scale * (cond_eps - uncond_eps)
        return torch.cat([torch.cat([guided, guided]), rest], dim=1)


# torchdiffeq names; "heun" is accepted as Heun's method (torchdiffeq "heun2")
SOLVER_ALIASES = {"heun": "heun2"}
FIXED_GRID_SOLVERS = {"euler", "midpoint", "heun2", "heun3", "rk4", "explicit_adams", "implicit_adams"}


class DiffMLPs_SiT(nn.Module):
    def __init__(self, target_channels, z_channels, depth, width):
        super().__init__()
        self.in_channels = target_channels
        self.net = SimpleMLPAdaLN(target_channels, width, target_channels, z_channels, depth)

    def forward(self, target, z):
        """Flow-matching training loss: x_t = t x1 + (1-t) x0, target velocity x1 - x0."""
        t = torch.rand(target.shape[0], device=target.device)
        noise = torch.randn_like(target)
        x_t = t[:, None] * target + (1 - t[:, None]) * noise
        velocity = self.net(x_t, t, z)
        return ((velocity - (target - noise)) ** 2).mean()

    def sample(self, z, noise, cfg=1.0, solver="dopri5", num_steps=50, atol=1e-6, rtol=1e-3, nfe_counter=None):
        """Solve the probability-flow ODE from `noise` (N, C) at t=0 to data at t=1.

        With cfg != 1, z is (2N, D) = [cond; uncond] and the result is the cond half (N, C).
        dopri5 is adaptive: its error norm spans the whole batch, so a row's result depends on the other rows.
        """
        guided = cfg != 1.0
        x0 = torch.cat([noise, noise]) if guided else noise

        def drift(t, x):
            if nfe_counter is not None:
                nfe_counter.append(float(t))
            t_batch = torch.ones(x.shape[0], dtype=x.dtype, device=x.device) * t
            if guided:
                return self.net.forward_with_cfg(x, t_batch, z, cfg)
            return self.net(x, t_batch, z)

        method = SOLVER_ALIASES.get(solver, solver)
        grid = torch.linspace(0, 1, num_steps if method in FIXED_GRID_SOLVERS else 2, device=noise.device)
        if method in FIXED_GRID_SOLVERS:
            x1 = odeint(drift, x0, grid, method=method)[-1]
        else:
            x1 = odeint(drift, x0, grid, method=method, atol=atol, rtol=rtol)[-1]
        return x1[: len(noise)]


class DiffMLPs_DDPM(nn.Module):
    def __init__(self, target_channels, z_channels, depth, width, num_sampling_steps="50", learn_sigma=False,
                 diffusion_steps=50, noise_schedule="cosine"):
        super().__init__()
        if learn_sigma:
            raise ValueError("learn_sigma=True is not supported (MARDM's DDPM head uses learn_sigma=False)")
        self.in_channels = target_channels
        self.net = SimpleMLPAdaLN(target_channels, width, target_channels, z_channels, depth)
        self.train_diffusion = GaussianDiffusion(diffusion_steps, noise_schedule, "epsilon", respacing="")
        self.gen_diffusion = GaussianDiffusion(diffusion_steps, noise_schedule, "epsilon",
                                               respacing=str(num_sampling_steps))

    def forward(self, target, z):
        t = torch.randint(0, self.train_diffusion.num_timesteps, (target.shape[0],), device=target.device)
        noise = torch.randn_like(target)
        eps = self.net(self.train_diffusion.q_sample(target, t, noise), t, z)
        return ((eps - noise) ** 2).mean()

    def sample(self, z, noise, step_noise, cfg=1.0):
        """Ancestral sampling from `noise` (N, C). `step_noise(i, x)` gives the noise of step i for state x."""
        guided = cfg != 1.0
        x_T = torch.cat([noise, noise]) if guided else noise

        def model_fn(x, t):
            return self.net.forward_with_cfg(x, t, z, cfg) if guided else self.net(x, t, z)

        return self.gen_diffusion.sample_loop(model_fn, x_T, step_noise)[: len(noise)]
