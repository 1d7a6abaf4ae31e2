"""HumanML3D training data for MARDM (the on-disk format is read by motiondata/humanml3d.py).

Motions are kept if min_len <= T < 200 (t2m: 40). Two datasets:
* `AEWindows`: sliding windows of `window_size` frames (AE training),
* `TextMotion`: (caption, motion padded to max_motion_length, m_length) with the reference's random caption,
  length coin ('single','single','double') and random crop (MARDM training).
"""
import random
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from motiondata.humanml3d import load_items, mean_std
from motiondata.synth import read_corpus_info


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
        """With `synth_seed`, a missing folder is filled with the project's generated pose corpus; a generated
        corpus of another generator version or seed is refused rather than silently trained on."""
        if self.synth_seed is None:
            return
        from motiondata.synth.corpus import GENERATOR_VERSION, write_corpus

        if not (self.root / "train.txt").is_file():
            print(f"generating the synthetic pose corpus into {self.root} (seed {self.synth_seed})")
            write_corpus(self.root, seed=self.synth_seed)
            return
        info = read_corpus_info(self.root)
        found = {"generator_version": info.get("generator_version"), "seed": info.get("seed")}
        if found != {"generator_version": GENERATOR_VERSION, "seed": self.synth_seed}:
            raise FileExistsError(
                f"{self.root / 'corpus_info.json'} describes {found}, but this code generates {GENERATOR_VERSION} "
                f"with seed {self.synth_seed}: delete {self.root} (it is generated again) or set data.root elsewhere")

    @property
    def data_info(self):
        """What the manifest of a trained model records about its data."""
        return {"root": str(self.root), "synth_seed": self.synth_seed, **read_corpus_info(self.root)}

    def setup(self, stage=None):
        self.mean, self.std = mean_std(self.root)
        self.datasets = {split: self.build(load_items(self.root, split, self.min_len)) for split in ("train", "val")}

    def train_captions(self):
        """Every caption of the training split (text2motion mode), for statistics of the text features."""
        return [caption for _, _, captions in self.datasets["train"].items for caption in captions]

    def build(self, items):
        if self.mode == "ae":
            return AEWindows(items, self.mean, self.std, self.window_size)
        return TextMotion(items, self.mean, self.std, self.max_motion_length)

    def train_dataloader(self):
        return DataLoader(self.datasets["train"], batch_size=self.batch_size, shuffle=True, drop_last=True,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def val_dataloader(self):
        return DataLoader(self.datasets["val"], batch_size=self.batch_size, num_workers=self.num_workers)
