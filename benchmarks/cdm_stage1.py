"""CDM stage-1 contact sampling: the cdm_stage1 job's way vs afford-motion's (the reference's), in the same run.

    python benchmarks/cdm_stage1.py                                   # CPU, the fork's full-size CDM, CLIP, 3 steps
    python benchmarks/cdm_stage1.py --small --points 2048 --steps 2 --batch 1 --scan-length 1024   # quick check
    python benchmarks/cdm_stage1.py --device cuda --steps 50 --batch 8

Model: models.cdm.CDM("PointMamba") with random weights, the fork's sizes (trans_dim 256, depth 8, time 128) or
--small (trans_dim 32, depth 2, time 32: the bundled model), on random clouds of --points points. Per batch:
  ours       the captions encoded ONCE, then ancestral steps (GaussianDiffusion(500, "cosine", start_x).p_sample)
             whose PointMamba layers run both scan directions as one stacked batch
             (models.mamba.bidirectional_residual), as ContactGenerationModule.sample does;
  reference  the text encoder called at EVERY step, and each layer's two directions as two calls,
             x + f(x) + flip(f(flip(x))). For this mode only, models.contact_pointmamba.bidirectional_residual
             is monkeypatched (a context manager restores it); the model code is unchanged.
Only the first --steps steps of the 500-step chain run (best of --repeats); a whole chain per sample is extrapolated
(ours: one encode + 500 steps; reference: 500 steps, each with its encode). Text encoder (--text):
  clip    the CDM's CLIP ViT-B/32 text tower (fp32, captions cut to 20 tokens, as the fork's scripts) with RANDOM
          weights: no CLIP file exists here, so a random state dict in OpenAI's key layout is written to a temp
          file and read by models.clip_text's own loader. Same cost as the real weights.
  minilm  the bundled MiniLM (384-d); the default with --small.
Peak memory per mode: host RSS high-water mark, reset before each mode (Linux /proc/self/clear_refs), or
torch.cuda.max_memory_allocated on CUDA.

Then the CPU selective scan at ContactPointMamba's size (B 2, d_inner 512, d_state 16, L --scan-length; 0 skips):
chunked vs per-token loop forward (benchmarks/mamba_scan.py has the details), and forward+backward of
selective_scan (hand-written backward) vs the same chunked forward taped op by op by autograd.
"""
import argparse
import contextlib
import re
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import models.contact_pointmamba as contact_pointmamba  # noqa: E402
from mamba_scan import best_ms, random_inputs  # noqa: E402  (benchmarks/ is on sys.path as the script's folder)
from models.cdm import CDM  # noqa: E402
from models.clip_text import TextTower  # noqa: E402
from models.gaussian_diffusion import GaussianDiffusion  # noqa: E402
from models.mamba import _StateScan, default_block_len, selective_scan, selective_scan_loop  # noqa: E402
from models.text_encoders import build_text_encoder  # noqa: E402

CHAIN = 500  # the job's (and the fork's) diffusion steps


# -- peak memory (train_throughput.py imports these) ---------------------------------------------------------------

def reset_peak(device):
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        with contextlib.suppress(OSError):  # Linux >= 4.0: "5" resets VmHWM to the current RSS
            Path("/proc/self/clear_refs").write_text("5")


def peak_mb(device):
    """torch.cuda.max_memory_allocated, or the process's RSS high-water mark since reset_peak."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024


def best_s(fn, repeats, device):
    def call():
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return out
    return best_ms(call, repeats)[0] / 1000


# -- the two modes -------------------------------------------------------------------------------------------------

def random_clip_encoder():
    """CLIP ViT-B/32 text encoder as the CDM uses it (fp32, max_length 20), random weights, via the real loader."""
    tower = TextTower(vocab_size=49408, context_length=77, width=512, layers=12, heads=8, embed_dim=512)
    nn.init.normal_(tower.positional_embedding, std=0.01)
    nn.init.normal_(tower.text_projection, std=512 ** -0.5)
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(tower.state_dict(), Path(tmp) / "ViT-B-32-text-random.pt")
        return build_text_encoder("clip", weights=Path(tmp) / "ViT-B-32-text-random.pt", fp16=False, max_length=20)


@contextlib.contextmanager
def separate_directions():
    """The reference's bidirectional layer: two scans per layer instead of one on a stacked 2x batch."""
    stacked = contact_pointmamba.bidirectional_residual
    contact_pointmamba.bidirectional_residual = lambda block, x: x + block(x) + block(x.flip(1)).flip(1)
    try:
        yield
    finally:
        contact_pointmamba.bidirectional_residual = stacked


def run_steps(cdm, diffusion, text, xyz, steps):
    """The first `steps` ancestral steps of the chain; `text()` gives the caption features at every step."""
    x = torch.randn(*xyz.shape[:2], cdm.contact_dim, device=xyz.device)
    for step in range(diffusion.num_timesteps - 1, diffusion.num_timesteps - 1 - steps, -1):
        t = torch.full((len(x),), step, dtype=torch.long, device=x.device)
        c_text = text()
        x = diffusion.p_sample(lambda x_t, ts: cdm(x_t, ts, c_text=c_text, c_pc_xyz=xyz), x, t, torch.randn_like(x))
    return x


@torch.no_grad()
def compare_sampling(args, device):
    if args.text == "clip":
        encoder, text_name = random_clip_encoder(), "CLIP ViT-B/32 text tower, random weights, fp32"
    else:
        encoder, text_name = build_text_encoder("minilm"), "bundled MiniLM"
    encoder = encoder.to(device)
    sizes = dict(trans_dim=32, depth=2, last_dim=32) if args.small else dict(trans_dim=256, depth=8, last_dim=256)
    cdm = CDM("PointMamba", contact_dim=6, text_feat_dim=encoder.dim, time_emb_dim=32 if args.small else 128,
              point_feat_dim=0, arch_cfg=sizes).eval().to(device)
    diffusion = GaussianDiffusion(CHAIN, "cosine", model_mean_type="start_x")
    captions = [f"a person sits down on the chair number {i}" for i in range(args.batch)]
    xyz = torch.rand(args.batch, args.points, 3, device=device) * torch.tensor([4.0, 4.0, 2.0], device=device)
    print(f"CDM PointMamba {sizes}, text {encoder.dim}-d ({text_name}); device {device}, "
          f"{torch.get_num_threads()} threads; batch {args.batch} x {args.points} points, "
          f"{args.steps} of {CHAIN} steps")

    c_text = encoder.encode(captions)
    encode_s = best_s(lambda: encoder.encode(captions), args.repeats, device)
    print(f"text encoder: {1000 * encode_s:.1f} ms per call ({args.batch} captions)")
    modes = {  # label: (model patch, text features at each step, encoder time outside the steps)
        "ours (encode once, stacked directions)": (contextlib.nullcontext, lambda: c_text, encode_s),
        "reference (encode every step, 2 scans)": (separate_directions, lambda: encoder.encode(captions), 0.0),
    }
    rows = {}
    for label, (patch, text, once_s) in modes.items():
        with patch():
            run_steps(cdm, diffusion, text, xyz[:, :256], 1)  # warm-up
            reset_peak(device)
            step_s = best_s(lambda: run_steps(cdm, diffusion, text, xyz, args.steps), args.repeats, device) / args.steps
        chain_s = (once_s + CHAIN * step_s) / args.batch  # per sample
        rows[label] = (step_s, chain_s, 1 / chain_s, peak_mb(device))
    print(f"  {'mode':40s} {'s/step':>8s} {f's/sample@{CHAIN}':>13s} {f'samples/s@{CHAIN}':>15s} {'peak MB':>8s}")
    for label, (step_s, chain_s, rate, peak) in rows.items():
        print(f"  {label:40s} {step_s:8.3f} {chain_s:13.1f} {rate:15.3g} {peak:8.0f}")
    (ours, ref) = rows.values()
    print(f"  {'reference / ours':40s} {ref[0] / ours[0]:7.2f}x {ref[1] / ours[1]:12.2f}x {ref[2] / ours[2]:14.2f}x "
          f"{ref[3] / ours[3]:7.2f}x")


# -- the CPU scan --------------------------------------------------------------------------------------------------

class _Tape:
    """A stand-in ctx: _StateScan.forward called directly (not through .apply) is recorded op by op by autograd."""

    def save_for_backward(self, *tensors):
        pass


def taped_scan(u, delta, A, B, C, D, z, chunk_len=16):
    """selective_scan's exact chunked forward without its hand-written backward (length % chunk_len == 0)."""
    block_len = default_block_len(u.shape[0], u.shape[2], A.shape[1], chunk_len)
    y = _StateScan.forward(_Tape(), u, delta, A, B, C, block_len, chunk_len)
    return (y + u * D) * F.silu(z)


def compare_scans(length, repeats):
    cpu = torch.device("cpu")
    inputs = random_inputs(2, length, 512, 16)
    print(f"selective scan, CPU: B=2 L={length} d_inner=512 d_state=16")
    with torch.no_grad():
        chunked_s = best_s(lambda: selective_scan(*inputs), repeats, cpu)
        loop_s = best_s(lambda: selective_scan_loop(*inputs), 1, cpu)
    print(f"  forward   chunked {1000 * chunked_s:9.1f} ms   per-token loop {1000 * loop_s:9.1f} ms   "
          f"({loop_s / chunked_s:.1f}x)")
    for t in inputs[:5]:  # u, delta, A, B, C
        t.requires_grad_()
    results = []
    for fn in (selective_scan, taped_scan):
        reset_peak(cpu)
        results.append((best_s(lambda: fn(*inputs).sum().backward(), repeats, cpu), peak_mb(cpu)))
    (hand_s, hand_mb), (taped_s, taped_mb) = results
    print(f"  fwd+bwd   hand-written backward {1000 * hand_s:9.1f} ms (peak {hand_mb:.0f} MB)   "
          f"autograd-taped {1000 * taped_s:9.1f} ms (peak {taped_mb:.0f} MB)   ({taped_s / hand_s:.1f}x)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--small", action="store_true", help="the bundled sizes (trans_dim 32, depth 2, time 32)")
    parser.add_argument("--text", choices=["clip", "minilm"], default=None, help="default: clip, minilm with --small")
    parser.add_argument("--points", type=int, default=8192)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3, help=f"diffusion steps actually run (of {CHAIN})")
    parser.add_argument("--repeats", type=int, default=1, help="best of N")
    parser.add_argument("--scan-length", type=int, default=8192, help="0 skips the scan comparison")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    args.text = args.text or ("minilm" if args.small else "clip")
    if args.scan_length % 16:
        parser.error("--scan-length must be a multiple of 16 (the scan's chunk length)")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    compare_sampling(args, torch.device(args.device))
    if args.scan_length:
        compare_scans(args.scan_length, args.repeats)


if __name__ == "__main__":
    main()
