"""HumanML3D on disk, as MARDM reads it (no Lightning here, so data tools import it cheaply).

`new_joint_vecs/<id>.npy` (T,263), `texts/<id>.txt` lines `caption#tokens#from#to` (a (from, to) sub-segment in
seconds becomes its own item, cut at 20 fps; NaN times count as 0), `{train,val,test}.txt` ids, and the 67-d
`Mean.npy`/`Std.npy` (computed with the reference's grouped-std rule when absent).
"""
from pathlib import Path

import numpy as np

from motiondata.atomic import atomic_save_npy

FPS = 20
FEATURE_DIM = 67
FEATURE_GROUPS = ((0, 1), (1, 3), (3, 4), (4, FEATURE_DIM))  # root rot vel, root lin vel, root y, positions


def compute_mean_std(root):
    """Mean/Std (67,) over all frames of <root>/new_joint_vecs/*.npy (files with NaN skipped, as the reference),
    streamed file by file; each feature group's std is replaced by the group's mean std (a zero group gets 1).
    Saved atomically to <root>/Mean.npy, Std.npy and returned."""
    root = Path(root)
    files = sorted((root / "new_joint_vecs").glob("*.npy"))
    total, total_squared, count = np.zeros(FEATURE_DIM), np.zeros(FEATURE_DIM), 0
    for file in files:
        features = np.load(file)[:, :FEATURE_DIM].astype(np.float64)
        if np.isnan(features).any():
            continue
        total += features.sum(axis=0)
        total_squared += (features ** 2).sum(axis=0)
        count += features.shape[0]
    if count == 0:
        raise FileNotFoundError(f"no usable motions in {root / 'new_joint_vecs'} to compute Mean/Std from")
    mean = total / count
    std = np.sqrt(np.maximum(total_squared / count - mean ** 2, 0.0))
    for start, end in FEATURE_GROUPS:
        group = std[start:end].mean()
        std[start:end] = group if group > 0 else 1.0
    mean, std = mean.astype(np.float32), std.astype(np.float32)
    atomic_save_npy(root / "Mean.npy", mean)
    atomic_save_npy(root / "Std.npy", std)
    return mean, std


def read_text_entries(path):
    """[(caption, from_s, to_s)] of one texts/<id>.txt file (NaN times count as 0)."""
    entries = []
    for line_number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().split("#")
        if len(parts) < 4:
            raise ValueError(f"{path} line {line_number}: expected 'caption#tokens#from#to', got {line!r}")
        start, end = (0.0 if np.isnan(float(x)) else float(x) for x in parts[2:4])
        entries.append((parts[0], start, end))
    return entries


def load_items(root, split, min_len=40, max_len=200):
    """[(name, motion (T,263), [captions])] with sub-segments as separate items, as the reference does."""
    root = Path(root)
    split_file = root / f"{split}.txt"
    if not split_file.is_file():
        raise FileNotFoundError(f"split file {split_file} not found: expected a HumanML3D folder with "
                                "new_joint_vecs/, texts/ and train/val/test.txt")
    items = []
    for name in split_file.read_text().split():
        motion_path = root / "new_joint_vecs" / f"{name}.npy"
        if not motion_path.is_file():
            continue
        motion = np.load(motion_path)
        whole = []
        for caption, start, end in read_text_entries(root / "texts" / f"{name}.txt"):
            if start == 0.0 and end == 0.0:
                whole.append(caption)
                continue
            segment = motion[int(start * FPS): int(end * FPS)]
            if min_len <= len(segment) < max_len:
                items.append((f"{name}#{start}#{end}", segment, [caption]))
        if whole and min_len <= len(motion) < max_len:
            items.append((name, motion, whole))
    return items


def mean_std(root, feature_dim=FEATURE_DIM):
    """Mean.npy/Std.npy of the folder, computed over all of its motions (and saved) when absent."""
    root = Path(root)
    mean_path, std_path = root / "Mean.npy", root / "Std.npy"
    if not (mean_path.is_file() and std_path.is_file()):
        compute_mean_std(root)
    mean, std = np.load(mean_path)[:feature_dim], np.load(std_path)[:feature_dim]
    return mean.astype(np.float32), std.astype(np.float32)
