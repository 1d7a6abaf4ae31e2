"""PNG/s of motiondata.render: one process vs RenderPool workers, and the PNG file size.

    python benchmarks/render.py [--poses 40] [--workers 2]
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from motiondata.render import REST_POSE, RenderPool, render_pose_png  # noqa: E402

CAPTIONS = [
    "a person stands still",
    "a person raises the left hand above the head",
    "the person walks forward slowly and then raises both arms above the head while turning to the left",
    "a man kneels down on the floor, picks something up and stands back up again before walking away",
    "一个人举起左手",
]


def make_poses(n, seed=0):
    """Rest poses with random joint jitter (0.05 m) and a random heading."""
    rng = np.random.default_rng(seed)
    poses = []
    for _ in range(n):
        yaw = rng.uniform(0, 2 * np.pi)
        c, s = np.cos(yaw), np.sin(yaw)
        rotation = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
        poses.append((REST_POSE + rng.normal(0, 0.05, REST_POSE.shape)) @ rotation.T)
    return poses


def run_serial(poses, folder):
    start = time.perf_counter()
    for i, pose in enumerate(poses):
        render_pose_png(pose, CAPTIONS[i % len(CAPTIONS)], folder / f"{i}.png")
    return time.perf_counter() - start


def run_pool(poses, folder, workers):
    """Seconds to start the workers (one warm-up render each) and seconds for the poses after that."""
    start = time.perf_counter()
    pool = RenderPool(workers)
    warmups = [pool.submit(poses[0], "warm-up", folder / f"warmup{i}.png") for i in range(workers)]
    for future in warmups:
        future.result()
    started = time.perf_counter()
    futures = [pool.submit(pose, CAPTIONS[i % len(CAPTIONS)], folder / f"{i}.png") for i, pose in enumerate(poses)]
    for future in futures:
        future.result()
    done = time.perf_counter()
    pool.close()
    return started - start, done - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--poses", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    poses = make_poses(args.poses)
    with tempfile.TemporaryDirectory() as tmp:
        serial_dir, pool_dir = Path(tmp, "serial"), Path(tmp, "pool")
        serial_dir.mkdir(), pool_dir.mkdir()
        render_pose_png(poses[0], "warm-up", serial_dir / "warmup.png")  # font cache, imports
        serial_s = run_serial(poses, serial_dir)
        startup_s, pool_s = run_pool(poses, pool_dir, args.workers)
        sizes = [serial_dir.joinpath(f"{i}.png").stat().st_size for i in range(len(poses))]
        same = all(serial_dir.joinpath(f"{i}.png").read_bytes() == pool_dir.joinpath(f"{i}.png").read_bytes()
                   for i in range(len(poses)))
    n = len(poses)
    print(f"1 process:            {n / serial_s:6.2f} PNG/s  ({serial_s / n * 1000:.0f} ms per PNG)")
    print(f"pool, {args.workers} workers:      {n / pool_s:6.2f} PNG/s  "
          f"(worker start-up {startup_s:.1f} s, not counted)")
    print(f"PNG size:             {np.mean(sizes) / 1024:.0f} KiB mean, "
          f"{min(sizes) / 1024:.0f}-{max(sizes) / 1024:.0f} KiB")
    print(f"pool output == serial output: {same}")


if __name__ == "__main__":
    main()
