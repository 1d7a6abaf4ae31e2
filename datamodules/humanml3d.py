"""HumanML3D as MARDM reads it: new_joint_vecs/<id>.npy (T,263), texts/<id>.txt, {train,val,test}.txt,
Mean.npy/Std.npy (67-d; computed with the reference's grouped-std rule when absent).

Text lines are `caption#tokens#from#to`; a (from, to) sub-segment in seconds becomes its own item, cut at 20 fps.
Motions are kept if min_len <= T < 200 (t2m: 40). Two datasets:
* `AEWindows`: sliding windows of `window_size` frames (AE training),
* `TextMotion`: (caption, motion padded to max_motion_length, m_length) with the reference's random caption,
  length coin ('single','single','double') and random crop (MARDM training).
"""
import json
import random
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

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


class AEWindows(Dataset):
    def __init__(self, items, mean, std, window_size=64):
        self.motions = [(m[:, : len(mean)] - mean) / std for _, m, _ in items if len(m) >= window_size]
        self.window_size = window_size
        self.starts = [(i, s) for i, m in enumerate(self.motions) for s in range(len(m) - window_size + 1)]

    def __len__(self):
        return len(self.starts)

    def __getitem__(self, index):
        i, start = self.starts[index]
        return torch.from_numpy(self.motions[i][start: start + self.window_size].astype(np.float32))


class TextMotion(Dataset):
    def __init__(self, items, mean, std, max_motion_length=196, unit_length=4):
        self.items = [(name, (m[:, : len(mean)] - mean) / std, captions) for name, m, captions in items]
        self.max_motion_length, self.unit_length = max_motion_length, unit_length

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        _, motion, captions = self.items[index]
        caption = random.choice(captions)
        length = min(len(motion), self.max_motion_length)
        coin = random.choice(["single", "single", "double"])
        units = length // self.unit_length - (1 if coin == "double" and length // self.unit_length > 1 else 0)
        m_length = units * self.unit_length
        start = random.randint(0, len(motion) - m_length)
        padded = np.zeros((self.max_motion_length, motion.shape[1]), dtype=np.float32)
        padded[:m_length] = motion[start: start + m_length]
        return caption, torch.from_numpy(padded), m_length


class HumanML3DDataModule(L.LightningDataModule):
    def __init__(self, root, mode, batch_size=64, min_len=40, window_size=64, max_motion_length=196,
                 num_workers=0, synth_seed=None):
        super().__init__()
        self.synth_seed = synth_seed
        if mode not in ("ae", "text2motion"):
            raise ValueError(f"mode must be 'ae' or 'text2motion' (got {mode!r})")
        self.root, self.mode, self.batch_size, self.num_workers = Path(root), mode, batch_size, num_workers
        self.min_len, self.window_size, self.max_motion_length = min_len, window_size, max_motion_length

    def prepare_data(self):
        """With `synth_seed`, a missing folder is filled with the project's generated pose corpus."""
        if self.synth_seed is not None and not (self.root / "train.txt").is_file():
            from motiondata.synth.corpus import write_corpus
            print(f"generating the synthetic pose corpus into {self.root} (seed {self.synth_seed})")
            write_corpus(self.root, seed=self.synth_seed)

    @property
    def data_info(self):
        """What the manifest of a trained model records about its data."""
        info_path = self.root / "corpus_info.json"
        info = json.loads(info_path.read_text()) if info_path.is_file() else {}
        return {"root": str(self.root), "synth_seed": self.synth_seed, **info}

    def setup(self, stage=None):
        self.mean, self.std = mean_std(self.root)
        self.datasets = {split: self.build(load_items(self.root, split, self.min_len)) for split in ("train", "val")}

    def build(self, items):
        if self.mode == "ae":
            return AEWindows(items, self.mean, self.std, self.window_size)
        return TextMotion(items, self.mean, self.std, self.max_motion_length)

    def train_dataloader(self):
        return DataLoader(self.datasets["train"], batch_size=self.batch_size, shuffle=True, drop_last=True,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def val_dataloader(self):
        return DataLoader(self.datasets["val"], batch_size=self.batch_size, num_workers=self.num_workers)
