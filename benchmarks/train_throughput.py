"""Training throughput on CPU of each trainable model: s/step, samples/s, peak RSS, on random batches.

    python benchmarks/train_throughput.py                                # the bundled small models, real batch shapes
    python benchmarks/train_throughput.py --models cdm --points 8192 --batch 2
    python benchmarks/train_throughput.py --full-size --batch 2          # the reference sizes (minutes per model)

Per model: one warm-up step, then --steps timed steps, each = zero_grad, the module's own loss, backward, a step of
the optimizer from its configure_optimizers() (AdamW; the LR schedule is not stepped) and on_train_batch_end
(MARDM's EMA update): Lightning's training step without the Trainer. s/step is the MEAN of the timed steps, not the
best (MARDM's masking ratio is random, so the steps differ). Random tensors of the real batch shapes:
  ae     MARDM AE, AETrainModule.loss on motion windows (B, frames, 67): bundled arch (configs/arch/mardm_small.yaml)
         on 128 x 16 (mardm_ae_synth); --full-size "AE_Model" on 64-frame windows, batch 32 (the reference: 256)
  mardm  MARDMTrainModule.forward_loss on (B, max_motion_length, 67) + captions + lengths, with a freshly built
         frozen AE and a stand-in text encoder (random clip_dim features; neither MiniLM nor CLIP is loaded):
         bundled arch on 64 x 64 (mardm_synth); --full-size "MARDM-SiT-XL" + "AE_Model" on 196 frames, batch 2
  cdm    CDMTrainModule.loss on x (B, N, 6), c_pc_xyz (B, N, 3), c_text (384-d stand-in text): bundled PointMamba
         sizes (trans_dim 32, depth 2, last_dim 32, time 32; cdm_synth) on 8 x --points; --full-size the fork's
         (256, 8, 256, time 128)
--batch overrides every model's batch size. Peak RSS: the process's high-water mark, reset before each model is
built (Linux /proc/self/clear_refs), so it includes the interpreter and libraries (~0.5 GB).
"""
import argparse
import gc
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cdm_stage1 import peak_mb, reset_peak  # noqa: E402  (benchmarks/ is on sys.path as the script's folder)
from lightning_modules.cdm_train import CDMTrainModule  # noqa: E402
from lightning_modules.mardm_train import AETrainModule, MARDMTrainModule  # noqa: E402
from models.mardm_checkpoints import build_ae  # noqa: E402

CPU = torch.device("cpu")


class RandomText(nn.Module):
    """Stand-in for the frozen text encoder: random `dim`-d features, nothing loaded."""

    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def encode(self, captions):
        return torch.randn(len(captions), self.dim)


def captions(n):
    return [f"a person walks in a circle, take {i}" for i in range(n)]


def ae_case(args, arch):
    batch, frames = args.batch or (32 if args.full_size else 128), 64 if args.full_size else 16
    module = AETrainModule("AE_Model" if args.full_size else arch["ae"])
    motion = torch.randn(batch, frames, 67)
    return f"MARDM AE ({'AE_Model' if args.full_size else 'bundled'}), {frames} frames", module, batch, \
        lambda: module.loss(motion)


def mardm_case(args, arch):
    batch, frames = args.batch or (2 if args.full_size else 64), 196 if args.full_size else 64
    mardm_arch = "MARDM-SiT-XL" if args.full_size else arch["mardm"]
    ae = build_ae("AE_Model" if args.full_size else arch["ae"])
    module = MARDMTrainModule(mardm_arch, ae, RandomText(512 if args.full_size else mardm_arch["clip_dim"]))
    motion, texts = torch.randn(batch, frames, 67), captions(batch)
    lengths = torch.randint(frames // 2, frames + 1, (batch,)) // 4 * 4
    return f"MARDM ({'SiT-XL' if args.full_size else 'bundled'}), {frames} frames", module, batch, \
        lambda: module.forward_loss(motion, texts, lengths)


def cdm_case(args, arch):
    batch = args.batch or 8
    sizes = dict(trans_dim=256, depth=8, last_dim=256) if args.full_size else dict(trans_dim=32, depth=2, last_dim=32)
    module = CDMTrainModule(RandomText(384), arch="PointMamba", arch_cfg=sizes,
                            time_emb_dim=128 if args.full_size else 32)
    data = {"x": torch.randn(batch, args.points, 6), "c_pc_xyz": torch.rand(batch, args.points, 3) * 4,
            "c_text": captions(batch)}
    return f"CDM PointMamba ({'full' if args.full_size else 'bundled'}), {args.points} points", module, batch, \
        lambda: module.loss(data)


CASES = {"ae": ae_case, "mardm": mardm_case, "cdm": cdm_case}


def mean_step_s(module, loss_fn, steps):
    optimizer = module.configure_optimizers()
    optimizer = optimizer[0][0] if isinstance(optimizer, tuple) else optimizer  # ([opt], [sched]) or opt
    module.train()
    times = []
    for i in range(1 + steps):  # the first is the warm-up
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss_fn().backward()
        optimizer.step()
        module.on_train_batch_end(None, None, i)
        times.append(time.perf_counter() - start)
    return sum(times[1:]) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--full-size", action="store_true", help="the reference sizes (random weights)")
    parser.add_argument("--batch", type=int, default=None, help="batch size for every model (default: per model)")
    parser.add_argument("--points", type=int, default=2048, help="CDM points per cloud (bundled training: 2048)")
    parser.add_argument("--steps", type=int, default=3, help="timed optimizer steps after one warm-up step")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    arch = OmegaConf.to_container(OmegaConf.load(ROOT / "configs" / "arch" / "mardm_small.yaml"))
    print(f"CPU, {torch.get_num_threads()} threads, 1 warm-up + {args.steps} steps per model")
    print(f"  {'model':44s} {'params':>8s} {'batch':>5s} {'s/step':>8s} {'samples/s':>10s} {'peak RSS':>9s}")
    for name in args.models:
        torch.manual_seed(0)
        gc.collect()
        reset_peak(CPU)
        label, module, batch, loss_fn = CASES[name](args, arch)
        step_s = mean_step_s(module, loss_fn, args.steps)
        params = sum(p.numel() for p in module.parameters() if p.requires_grad)
        print(f"  {label:44s} {params / 1e6:7.2f}M {batch:5d} {step_s:8.3f} {batch / step_s:10.1f} "
              f"{peak_mb(CPU):6.0f} MB")
        del module, loss_fn


if __name__ == "__main__":
    main()
