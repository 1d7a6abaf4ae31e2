"""pose10k throughput: captions/s of generation, PNG/s of rendering, peak memory.

    python benchmarks/pose10k.py                       # CPU, the bundled default model
    python benchmarks/pose10k.py --device cuda --full-size --batch-sizes 8 64 256
                                                       # GPU, MARDM-SiT-XL with random weights

Generation is timed for the reference settings (dopri5, all 18 iterations predicted: what the original
sampler does) and for the fast settings (fixed-step solver, only committed tokens predicted), per batch size,
in the same run, so the ratio is measured on the same machine. Full-size models use random 512-d text
features (CLIP's cost, once per caption, is not included).
"""
import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.mardm_checkpoints import build_mardm  # noqa: E402
from models.mardm_sampler import PerItemNoise, generate  # noqa: E402
from motiondata.render import REST_POSE, RenderPool  # noqa: E402


def load_default_model():
    from omegaconf import OmegaConf

    from motiondata.runtime import register_resolvers

    register_resolvers()
    arch = OmegaConf.load(ROOT / "configs" / "arch" / "mardm_small.yaml")
    model_cfg = OmegaConf.load(ROOT / "configs" / "model" / "mardm_default.yaml")
    from models.mardm_checkpoints import load_mardm
    from models.text_encoders import build_text_encoder

    bundle = ROOT / "ckpt" / "mardm_minilm"
    networks = load_mardm(bundle / "checkpoints", model_cfg.name, model_cfg.ae_name,
                          mardm_arch=OmegaConf.to_container(arch.mardm), ae_arch=OmegaConf.to_container(arch.ae),
                          mean_path=bundle / "HumanML3D" / "Mean.npy", std_path=bundle / "HumanML3D" / "Std.npy")
    return networks.mardm, build_text_encoder("minilm")


def time_generation(model, cond, settings, batch_size, device, repeats):
    n = len(cond)
    m_lens = torch.full((n,), 4, device=device)
    start = time.perf_counter()
    for _ in range(repeats):
        for first in range(0, n, batch_size):
            ids = list(range(first, min(first + batch_size, n)))
            generate(model, cond[ids], m_lens[ids], PerItemNoise(0, ids, device), cfg=4.5, **settings)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return repeats * n / (time.perf_counter() - start)


def time_rendering(num_poses, workers):
    rng = np.random.default_rng(0)
    poses = [REST_POSE + rng.normal(0, 0.03, REST_POSE.shape) for _ in range(num_poses)]
    out = Path("/tmp/pose10k_bench_png")
    out.mkdir(exist_ok=True)
    with RenderPool(workers) as pool:
        for future in [pool.submit(poses[0], "warm-up", out / f"warm{i}.png") for i in range(max(workers, 1) * 2)]:
            future.result()  # every worker started (spawned workers import the main script) and warm
        start = time.perf_counter()
        futures = [pool.submit(p, f"pose {i}", out / f"{i}.png") for i, p in enumerate(poses)]
        for future in futures:
            future.result()
    return num_poses / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--full-size", action="store_true", help="MARDM-SiT-XL with random weights")
    parser.add_argument("--captions", type=int, default=32)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--renders", type=int, default=24)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    if args.full_size:
        model, name = build_mardm("MARDM-SiT-XL").eval().to(device), "MARDM-SiT-XL (random weights)"
        cond = torch.randn(args.captions, 512, device=device)
    else:
        model, encoder = load_default_model()
        model, name = model.to(device), "bundled default (small MARDM-SiT, MiniLM)"
        cond = encoder.encode([f"a person pose number {i}" for i in range(args.captions)]).to(device)
    print(f"model: {name}; device: {device}; {args.captions} captions of 16 frames (4 tokens)")
    settings = {
        "reference (dopri5, all iterations)": dict(solver="dopri5", skip_redundant=False),
        "fast (heun 10 steps, committed tokens only)": dict(solver="heun", num_steps=10, skip_redundant=True),
    }
    for batch_size in args.batch_sizes:
        rates = {label: time_generation(model, cond, s, batch_size, device, args.repeats) for label, s in settings.items()}
        base = rates[next(iter(rates))]
        for label, rate in rates.items():
            print(f"  batch {batch_size:4d}  {label:45s} {rate:8.2f} captions/s  ({rate / base:5.1f}x reference)")
    for workers in (0, 2):
        print(f"  rendering with {workers} worker process(es): {time_rendering(args.renders, workers):6.1f} PNG/s")
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak host memory (RSS): {peak_rss:.0f} MB")
    if device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MB")


if __name__ == "__main__":
    main()
