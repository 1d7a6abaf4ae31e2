"""CPU selective scan: the blocked, chunked scan of models/mamba.py vs the plain per-token loop.

    python benchmarks/mamba_scan.py [--batch 2] [--length 8192] [--d-inner 512] [--d-state 16] [--repeats 3]
                                    [--threads N]

Prints ms per call (best of --repeats; the loop runs once, it is slow), the speed-up, the largest difference
relative to the output scale, and the whole Mamba mixer forward (d_model = d_inner / 2) with the chunked scan.
Defaults (B=2, d_inner=512, L=8192, d_state=16) are the ContactPointMamba size; about 20-30 s on 2 cores.
On a busy machine, --threads 1 gives steadier numbers (many small ops suffer most from waiting for a second thread).
"""
import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from models.mamba import Mamba, default_block_len, selective_scan, selective_scan_loop  # noqa: E402


def random_inputs(batch, length, d_inner, d_state):
    torch.manual_seed(0)
    u, z = torch.randn(batch, length, d_inner), torch.randn(batch, length, d_inner)
    delta = F.softplus(torch.randn(batch, length, d_inner) - 3)  # typical trained range, about 0.01..0.5
    A = -torch.exp(torch.randn(d_inner, d_state))
    B, C = torch.randn(batch, length, d_state), torch.randn(batch, length, d_state)
    return u, delta, A, B, C, torch.randn(d_inner), z


def best_ms(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return 1000 * min(times), out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--length", type=int, default=8192)
    parser.add_argument("--d-inner", type=int, default=512)
    parser.add_argument("--d-state", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    inputs = random_inputs(args.batch, args.length, args.d_inner, args.d_state)
    block_len = default_block_len(args.batch, args.d_inner, args.d_state)
    print(f"B={args.batch} L={args.length} d_inner={args.d_inner} d_state={args.d_state}, "
          f"{torch.get_num_threads()} threads, block {block_len}, chunk 16")
    with torch.no_grad():
        selective_scan(*(t[:, :256] if t.dim() == 3 else t for t in inputs))  # warm-up
        chunked_ms, chunked = best_ms(lambda: selective_scan(*inputs), args.repeats)
        loop_ms, loop = best_ms(lambda: selective_scan_loop(*inputs), 1)
        mixer = Mamba(args.d_inner // 2, d_state=args.d_state).eval()
        hidden = torch.randn(args.batch, args.length, args.d_inner // 2)
        mixer_ms, _ = best_ms(lambda: mixer(hidden), args.repeats)
    error = ((chunked - loop).abs().max() / loop.abs().max()).item()
    print(f"chunked scan    {chunked_ms:9.1f} ms/call")
    print(f"per-token loop  {loop_ms:9.1f} ms/call")
    print(f"speed-up        {loop_ms / chunked_ms:9.1f} x   (max |diff| / max |loop| = {error:.1e})")
    print(f"Mamba({args.d_inner // 2}) forward, chunked scan: {mixer_ms:.1f} ms/call")


if __name__ == "__main__":
    main()
