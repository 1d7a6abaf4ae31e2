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


def grouped_mean_std(motions, joints_num=22):
    """Mean/Std over all frames; each feature group's std is replaced by the group's mean std."""
    data = np.concatenate(motions, axis=0)[:, : 4 + (joints_num - 1) * 3]
    mean, std = data.mean(axis=0), data.std(axis=0)
    for start, end in ((0, 1), (1, 3), (3, 4), (4, 4 + (joints_num - 1) * 3)):
        std[start:end] = std[start:end].mean()
    return mean.astype(np.float32), std.astype(np.float32)


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
        motions = [np.load(p) for p in sorted((root / "new_joint_vecs").glob("*.npy"))]
        motions = [m for m in motions if not np.isnan(m).any()]
        mean, std = grouped_mean_std(motions)
        atomic_save_npy(mean_path, mean)
        atomic_save_npy(std_path, std)
    mean, std = np.load(mean_path)[:feature_dim], np.load(std_path)[:feature_dim]
    return mean.astype(np.float32), std.astype(np.float32)
