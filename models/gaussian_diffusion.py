"""Gaussian diffusion (improved-DDPM style) shared by MARDM's DDPM head and afford-motion's CDM.

Schedules and coefficients are float64 numpy arrays, indexed per timestep and cast to float32 before they touch
the state, as the references do. `model_mean_type` is "epsilon" (MARDM) or "start_x" (CDM); the variance is
always FIXED_SMALL (the posterior variance). Respacing keeps a subset of timesteps (`space_timesteps`) and the
model still receives the original timestep indices.
"""
import math

import numpy as np
import torch


def cosine_betas(num_steps, max_beta=0.999):
    def alpha_bar(s):
        return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2
    return np.array([min(1 - alpha_bar((i + 1) / num_steps) / alpha_bar(i / num_steps), max_beta)
                     for i in range(num_steps)], dtype=np.float64)


def space_timesteps(num_timesteps, section_counts):
    """Timesteps to keep: "ddimN" = constant stride giving N steps; "a,b,..." = even sections; "" = all."""
    if isinstance(section_counts, str):
        if section_counts == "":
            return set(range(num_timesteps))
        if section_counts.startswith("ddim"):
            desired = int(section_counts[len("ddim"):])
            for stride in range(1, num_timesteps):
                if len(range(0, num_timesteps, stride)) == desired:
                    return set(range(0, num_timesteps, stride))
            raise ValueError(f"cannot create exactly {desired} steps with an integer stride from {num_timesteps}")
        section_counts = [int(x) for x in section_counts.split(",")]
    size_per, extra = divmod(num_timesteps, len(section_counts))
    start_idx, all_steps = 0, []
    for i, section_count in enumerate(section_counts):
        size = size_per + (1 if i < extra else 0)
        if size < section_count:
            raise ValueError(f"cannot divide section of {size} steps into {section_count}")
        frac_stride = 1 if section_count <= 1 else (size - 1) / (section_count - 1)
        cur_idx = 0.0
        for _ in range(section_count):
            all_steps.append(start_idx + round(cur_idx))
            cur_idx += frac_stride
        start_idx += size
    return set(all_steps)


def _extract(arr, timesteps, shape):
    """arr[t] as float32, broadcast to `shape` (B, ...)."""
    out = torch.from_numpy(arr).to(timesteps.device)[timesteps].float()
    return out.reshape(out.shape + (1,) * (len(shape) - out.ndim))


class GaussianDiffusion:
    def __init__(self, steps, noise_schedule="cosine", model_mean_type="epsilon", respacing=""):
        if noise_schedule != "cosine":
            raise ValueError(f"only the cosine schedule is implemented (got {noise_schedule!r})")
        if model_mean_type not in ("epsilon", "start_x"):
            raise ValueError(f"model_mean_type must be 'epsilon' or 'start_x' (got {model_mean_type!r})")
        self.model_mean_type = model_mean_type
        base_alphas_cumprod = np.cumprod(1.0 - cosine_betas(steps))
        kept = sorted(space_timesteps(steps, respacing))
        self.timestep_map = np.array(kept, dtype=np.int64)
        last, betas = 1.0, []
        for t in kept:
            betas.append(1 - base_alphas_cumprod[t] / last)
            last = base_alphas_cumprod[t]
        self._set_betas(np.array(betas, dtype=np.float64))

    def _set_betas(self, betas):
        self.betas = betas
        self.num_timesteps = len(betas)
        alphas = 1.0 - betas
        self.alphas_cumprod = np.cumprod(alphas)
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        self.sqrt_alphas_cumprod = np.sqrt(self.alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - self.alphas_cumprod)
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod - 1)
        self.posterior_variance = betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_log_variance_clipped = np.log(np.append(self.posterior_variance[1], self.posterior_variance[1:]))
        self.posterior_mean_coef1 = betas * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef2 = (1.0 - self.alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - self.alphas_cumprod)

    # -- forward process -------------------------------------------------------------------------------------
    def q_sample(self, x_start, t, noise):
        return (_extract(self.sqrt_alphas_cumprod, t, x_start.shape) * x_start
                + _extract(self.sqrt_one_minus_alphas_cumprod, t, x_start.shape) * noise)

    def q_posterior_mean(self, x_start, x_t, t):
        return (_extract(self.posterior_mean_coef1, t, x_t.shape) * x_start
                + _extract(self.posterior_mean_coef2, t, x_t.shape) * x_t)

    # -- reverse process -------------------------------------------------------------------------------------
    def model_timesteps(self, t):
        """Indices into the (respaced) chain -> the original timesteps the model was trained on."""
        return torch.from_numpy(self.timestep_map).to(t.device)[t]

    def p_mean_variance(self, model_fn, x, t, clip_denoised=False):
        model_output = model_fn(x, self.model_timesteps(t))
        if self.model_mean_type == "epsilon":
            pred_xstart = (_extract(self.sqrt_recip_alphas_cumprod, t, x.shape) * x
                           - _extract(self.sqrt_recipm1_alphas_cumprod, t, x.shape) * model_output)
        else:
            pred_xstart = model_output
        if clip_denoised:
            pred_xstart = pred_xstart.clamp(-1, 1)
        return {
            "mean": self.q_posterior_mean(pred_xstart, x, t),
            "variance": _extract(self.posterior_variance, t, x.shape),
            "log_variance": _extract(self.posterior_log_variance_clipped, t, x.shape),
            "pred_xstart": pred_xstart,
        }

    def p_sample(self, model_fn, x, t, noise, clip_denoised=False):
        out = self.p_mean_variance(model_fn, x, t, clip_denoised)
        nonzero = (t != 0).float().reshape((-1,) + (1,) * (x.ndim - 1))
        return out["mean"] + nonzero * torch.exp(0.5 * out["log_variance"]) * noise

    def ddim_sample(self, model_fn, x, t, noise, eta=0.0, clip_denoised=False):
        out = self.p_mean_variance(model_fn, x, t, clip_denoised)
        eps = ((_extract(self.sqrt_recip_alphas_cumprod, t, x.shape) * x - out["pred_xstart"])
               / _extract(self.sqrt_recipm1_alphas_cumprod, t, x.shape))
        alpha_bar = _extract(self.alphas_cumprod, t, x.shape)
        alpha_bar_prev = _extract(self.alphas_cumprod_prev, t, x.shape)
        sigma = eta * torch.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar)) * torch.sqrt(1 - alpha_bar / alpha_bar_prev)
        mean_pred = out["pred_xstart"] * torch.sqrt(alpha_bar_prev) + torch.sqrt(1 - alpha_bar_prev - sigma ** 2) * eps
        nonzero = (t != 0).float().reshape((-1,) + (1,) * (x.ndim - 1))
        return mean_pred + nonzero * sigma * noise

    def sample_loop(self, model_fn, x_T, step_noise, method="ancestral", eta=0.0, clip_denoised=False):
        """Run the chain from x_T. `step_noise(i, x)` returns the noise of the i-th step (i = 0 at t = T-1)."""
        x = x_T
        for i, step in enumerate(reversed(range(self.num_timesteps))):
            t = torch.full((x.shape[0],), step, dtype=torch.long, device=x.device)
            if method == "ancestral":
                x = self.p_sample(model_fn, x, t, step_noise(i, x), clip_denoised)
            elif method == "ddim":
                x = self.ddim_sample(model_fn, x, t, step_noise(i, x), eta, clip_denoised)
            else:
                raise ValueError(f"sampling method must be 'ancestral' or 'ddim' (got {method!r})")
        return x
