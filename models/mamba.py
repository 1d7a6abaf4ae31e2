"""Mamba-1 mixer with the parameter names, shapes and initialisation of `mamba_ssm.Mamba` (mamba_simple.py).

On CUDA, when `mamba_ssm` imports, the forward calls its fused kernels (`mamba_inner_fn` with causal-conv1d,
otherwise `selective_scan_fn`). Everywhere else it runs `selective_scan`, a pure-PyTorch blocked, chunked scan
that matches mamba-ssm's `selective_scan_ref` to float32 rounding. `selective_scan_loop` is the plain per-token
recurrence, kept for tests and benchmarks. The state dict is the same on every path, so checkpoints trained with
mamba-ssm load unchanged.

Shapes: b batch, L length, d = d_inner channels, n = d_state. The scans take time-major tensors:
u, delta, z (b, L, d); A (d, n); B, C (b, L, n); D (d,). `delta` is already softplus'd.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

_KERNELS = None  # cached result of the lazy mamba-ssm import: a dict, or {} when unavailable


def cuda_kernels():
    """mamba-ssm's CUDA ops, or {} when it is not installed or not usable (it raises more than ImportError)."""
    global _KERNELS
    if _KERNELS is None:
        try:
            from mamba_ssm.ops.selective_scan_interface import mamba_inner_fn, selective_scan_fn
            _KERNELS = {"mamba_inner_fn": mamba_inner_fn, "selective_scan_fn": selective_scan_fn}
            try:
                import causal_conv1d  # noqa: F401  (its presence is what enables mamba_inner_fn)
                _KERNELS["has_causal_conv1d"] = True
            except Exception:
                _KERNELS["has_causal_conv1d"] = False
        except Exception:
            _KERNELS = {}
    return _KERNELS


# -- selective scan on CPU (or any device) ----------------------------------------------------------------------

def selective_scan_loop(u, delta, A, B, C, D, z):
    """Reference recurrence, one token at a time: h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t, y_t = <h_t, C_t>."""
    batch, length, d_inner = u.shape
    h = u.new_zeros(batch, d_inner, A.shape[1])
    ys = []
    for t in range(length):
        decay = torch.exp(delta[:, t, :, None] * A)
        h = decay * h + (delta[:, t] * u[:, t])[:, :, None] * B[:, t, None, :]
        ys.append((h @ C[:, t, :, None]).squeeze(-1))
    y = torch.stack(ys, dim=1) + u * D
    return y * F.silu(z)


def _scan_block(decay, inject, h0, chunk_len):
    """States h_t = decay_t * h_{t-1} + inject_t over one block (b, l, d, n) from h0 (b, d, n); l % chunk_len == 0.

    The block is cut into chunks of `chunk_len` steps, and the chunks are processed side by side:
    1. each chunk's end state from a zero start (chunk_len - 1 steps, all chunks at once);
    2. the true start state of every chunk, carried across the chunks (one step per chunk) with the chunk's
       total decay;
    3. every chunk rerun from its true start state (chunk_len steps, all chunks at once).
    Step 3 is the plain recurrence, so the states match the per-token loop to rounding; all decays are <= 1.
    Returns the states (b, l, d, n) and the last one.
    """
    batch, block_len = decay.shape[:2]
    num_chunks = block_len // chunk_len
    decay = decay.reshape(batch, num_chunks, chunk_len, *decay.shape[2:])
    inject = inject.reshape(batch, num_chunks, chunk_len, *inject.shape[2:])

    end = inject[:, :, 0]
    for t in range(1, chunk_len):
        end = torch.addcmul(inject[:, :, t], decay[:, :, t], end)

    chunk_decay = torch.prod(decay, dim=2)
    starts, h = [], h0
    for c in range(num_chunks):
        starts.append(h)
        h = torch.addcmul(end[:, c], chunk_decay[:, c], h)

    states = [torch.addcmul(inject[:, :, 0], decay[:, :, 0], torch.stack(starts, dim=1))]
    for t in range(1, chunk_len):
        states.append(torch.addcmul(inject[:, :, t], decay[:, :, t], states[-1]))
    return torch.stack(states, dim=2).flatten(1, 2), states[-1][:, -1]


def _decay_and_inject(u, delta, A, B):
    """exp(delta_t A) and delta_t u_t B_t, (b, l, d, n), of the steps of one block."""
    return torch.exp(delta[..., None] * A), (delta * u)[..., None] * B[:, :, None, :]


def default_block_len(batch, d_inner, d_state, chunk_len=16, on_cuda=False):
    """Steps per outer block (a multiple of chunk_len): one (b, block, d, n) tensor of about 4 MB on the CPU (stays
    in cache), 128 MB on a GPU (fewer kernel launches; this GPU fallback is not tuned)."""
    target_elements, max_steps = (2 ** 25, 4096) if on_cuda else (2 ** 20, 256)
    steps = min(max_steps, target_elements // max(1, batch * d_inner * d_state))
    return max(chunk_len, steps // chunk_len * chunk_len)


class _StateScan(torch.autograd.Function):
    """y_t = <h_t, C_t> with h_t = exp(delta_t A) h_{t-1} + delta_t u_t B_t, blocked and chunked in time.

    The backward is written out rather than taped: autograd through the chunked loops records thousands of small
    steps per layer and is several times slower than the forward. Here the forward keeps only each block's start
    state; the backward recomputes a block's states from it and runs the adjoint g_t = C_t dy_t + decay_{t+1} g_{t+1}
    as the same chunked scan, backwards in time, one block at a time (last block first).
    Inputs are padded: the length is a multiple of chunk_len.
    """

    @staticmethod
    def forward(ctx, u, delta, A, B, C, block_len, chunk_len):
        batch, length, d_inner = u.shape
        h = u.new_zeros(batch, d_inner, A.shape[1])
        ys, block_starts = [], []
        for start in range(0, length, block_len):
            block = slice(start, start + block_len)
            block_starts.append(h)
            states, h = _scan_block(*_decay_and_inject(u[:, block], delta[:, block], A, B[:, block]), h, chunk_len)
            ys.append((states @ C[:, block, :, None]).squeeze(-1))
        ctx.save_for_backward(u, delta, A, B, C, torch.stack(block_starts))
        ctx.block_len, ctx.chunk_len = block_len, chunk_len
        return torch.cat(ys, dim=1)

    @staticmethod
    def backward(ctx, grad_y):
        u, delta, A, B, C, block_starts = ctx.saved_tensors
        block_len, chunk_len = ctx.block_len, ctx.chunk_len
        grad_u, grad_delta, grad_B, grad_C = (torch.empty_like(t) for t in (u, delta, B, C))
        grad_A = torch.zeros_like(A)
        carried = torch.zeros_like(block_starts[0])  # decay_{t+1} g_{t+1} flowing in from the next block
        for index in reversed(range(len(block_starts))):
            block = slice(index * block_len, (index + 1) * block_len)
            u_b, delta_b, B_b, grad_y_b = u[:, block], delta[:, block], B[:, block], grad_y[:, block]
            decay, inject = _decay_and_inject(u_b, delta_b, A, B_b)
            states, _ = _scan_block(decay, inject, block_starts[index], chunk_len)
            previous = torch.cat([block_starts[index][:, None], states[:, :-1]], dim=1)  # h_{t-1}

            next_decay = torch.cat([decay[:, 1:], torch.ones_like(decay[:, :1])], dim=1)
            direct = grad_y_b[..., None] * C[:, block, None, :]
            adjoint, _ = _scan_block(next_decay.flip(1), direct.flip(1), carried, chunk_len)
            adjoint = adjoint.flip(1)  # dL/dh_t = dL/d inject_t
            carried = decay[:, 0] * adjoint[:, 0]

            grad_log_decay = adjoint * previous * decay  # dL/d(delta_t A)
            grad_delta_u = (adjoint * B_b[:, :, None, :]).sum(-1)
            grad_C[:, block] = (states * grad_y_b[..., None]).sum(2)
            grad_B[:, block] = (adjoint * (delta_b * u_b)[..., None]).sum(2)
            grad_u[:, block] = grad_delta_u * delta_b
            grad_delta[:, block] = (grad_log_decay * A).sum(-1) + grad_delta_u * u_b
            grad_A += (grad_log_decay * delta_b[..., None]).sum((0, 1))
        return grad_u, grad_delta, grad_A, grad_B, grad_C, None, None


def selective_scan(u, delta, A, B, C, D, z, block_len=None, chunk_len=16):
    """Blocked, chunked selective scan; same result as `selective_scan_loop` up to float32 rounding.

    Time is processed in outer blocks, so the (b, block, d, n) intermediates stay cache-sized, and each block in
    chunks (see `_scan_block`): about 2 * chunk_len + block / chunk_len Python steps per block instead of one
    per token. Differentiable, with a hand-written backward (`_StateScan`).
    """
    batch, length, d_inner = u.shape
    block_len = block_len or default_block_len(batch, d_inner, A.shape[1], chunk_len, u.is_cuda)
    if block_len % chunk_len:
        raise ValueError(f"block_len ({block_len}) must be a multiple of chunk_len ({chunk_len})")
    pad = -length % chunk_len  # padded steps have delta 0: decay 1, nothing injected
    u_p, delta_p, B_p, C_p = (F.pad(t, (0, 0, 0, pad)) for t in (u, delta, B, C))
    y = _StateScan.apply(u_p, delta_p, A, B_p, C_p, block_len, chunk_len)[:, :length]
    return (y + u * D) * F.silu(z)


# -- the mixer --------------------------------------------------------------------------------------------------

class Mamba(nn.Module):
    """`mamba_ssm.Mamba(d_model, d_state, d_conv, expand)`: (b, L, d_model) -> (b, L, d_model)."""

    def __init__(self, d_model, d_state=16, d_conv=4, expand=2, dt_min=0.001, dt_max=0.1, dt_init_floor=1e-4):
        super().__init__()
        self.d_model, self.d_state, self.d_conv = d_model, d_state, d_conv
        self.d_inner = expand * d_model
        self.dt_rank = math.ceil(d_model / 16)
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=False)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, kernel_size=d_conv, groups=self.d_inner,
                                padding=d_conv - 1, bias=True)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(self.d_inner, 1))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)
        self._init_dt(dt_min, dt_max, dt_init_floor)
        self.A_log._no_weight_decay = True
        self.D._no_weight_decay = True

    def _init_dt(self, dt_min, dt_max, dt_init_floor):
        """mamba-ssm's init: softplus(dt_proj.bias) log-uniform in [dt_min, dt_max]."""
        nn.init.uniform_(self.dt_proj.weight, -self.dt_rank ** -0.5, self.dt_rank ** -0.5)
        dt = torch.exp(torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=dt_init_floor)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        self.dt_proj.bias._no_reinit = True

    def forward(self, hidden, scan=selective_scan):
        """hidden (b, L, d_model). `scan` picks the pure-PyTorch scan (tests pass `selective_scan_loop`); it is
        not used when mamba-ssm's CUDA kernels run."""
        if hidden.is_cuda and cuda_kernels():
            return self._forward_cuda_kernels(hidden)
        length = hidden.shape[1]
        x, z = self.in_proj(hidden).chunk(2, dim=-1)
        x = F.silu(self.conv1d(x.transpose(1, 2))[..., :length]).transpose(1, 2).contiguous()  # causal conv
        dt, B, C = self.x_proj(x).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(dt))
        A = -torch.exp(self.A_log.float())
        return self.out_proj(scan(x, delta, A, B, C, self.D.float(), z))

    def _forward_cuda_kernels(self, hidden):
        """mamba-ssm's own forward (mamba_simple.py) with its kernels, channel-major as they expect."""
        kernels = cuda_kernels()
        length = hidden.shape[1]
        xz = self.in_proj(hidden).transpose(1, 2).contiguous()  # (b, 2d, L)
        A = -torch.exp(self.A_log.float())
        if kernels["has_causal_conv1d"]:
            return kernels["mamba_inner_fn"](
                xz, self.conv1d.weight, self.conv1d.bias, self.x_proj.weight, self.dt_proj.weight,
                self.out_proj.weight, self.out_proj.bias, A, None, None, self.D.float(),
                delta_bias=self.dt_proj.bias.float(), delta_softplus=True)
        x, z = xz.chunk(2, dim=1)
        x = F.silu(self.conv1d(x)[..., :length])
        dt, B, C = self.x_proj(x.transpose(1, 2)).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.linear(dt, self.dt_proj.weight).transpose(1, 2)  # bias goes in as delta_bias
        y = kernels["selective_scan_fn"](
            x, dt, A, B.transpose(1, 2).contiguous(), C.transpose(1, 2).contiguous(), self.D.float(), z=z,
            delta_bias=self.dt_proj.bias.float(), delta_softplus=True)
        return self.out_proj(y.transpose(1, 2))


def bidirectional_residual(block, x):
    """x + block(x) + flip(block(flip(x))) along dim 1, both directions in one call on a 2x batch (shared weights)."""
    both = block(torch.cat([x, x.flip(1)], dim=0))
    forward, backward = both.chunk(2, dim=0)
    return x + forward + backward.flip(1)
