"""afford-motion's contact maps for CDM training (train.py): the train split to fit, the test split to validate.

Items come from the readers the cdm_stage1 job uses (datamodules/contact_data.py), so training reads exactly what
prediction reads:
  dataset=h3d    ContactHumanML3DDataset (text_to_motion_contact_gen): every caption of an entry is its own item
                 (`captions=all`; the reference draws one at random per access: over an epoch this sees the same
                 pairs); no augmentation, as the reference.
  dataset=scene  ContactMapDataset over `sets` (contact_gen: HUMANISE, PROX, HumanML3D-in-scene), one caption per
                 row drawn at random (seeded per row), each cloud turned about the gravity axis (z) by U(-pi, pi)
                 at every access, the reference's RandomRotation (contact values are per point, so x is unchanged).
                 The CDM sees xyz only (the fork's scene model is not part of this port: use_scene_model=false). `train_points` (default: all, as the reference) trains
on a random subset of each cloud's points, drawn anew at every access; the bundled small CDM uses it to train on
CPUs. With `synth_seed`, a missing corpus is first generated there (motiondata.synth.scenes).
"""
from pathlib import Path

import lightning as L
import numpy as np
from torch.utils.data import DataLoader, Dataset

from datamodules.contact_data import (
    ContactHumanML3DDataset, ContactMapDataset, collate_items, ensure_contact_corpus,
)
from motiondata.synth import read_corpus_info

POINT_KEYS = ("points", "x", "c_pc_xyz")


class PointSubset(Dataset):
    """Items with `num_points` of their points: random at every access, or (fixed=True) the same per item."""

    def __init__(self, dataset, num_points, fixed=False):
        self.dataset, self.num_points, self.fixed = dataset, num_points, fixed

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        item = dict(self.dataset[index])
        rng = np.random.default_rng(index) if self.fixed else np.random
        keep = np.sort(rng.choice(len(item["x"]), self.num_points, replace=False))
        for key in POINT_KEYS:
            item[key] = np.ascontiguousarray(item[key][keep])
        return item


class RandomGravityRotation(Dataset):
    """Items with their cloud turned about the gravity axis by an angle drawn uniformly from (-pi, pi)."""

    def __init__(self, dataset, gravity_dim=2):
        self.dataset, self.gravity_dim = dataset, gravity_dim

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        item = dict(self.dataset[index])
        angle = np.random.uniform(-np.pi, np.pi)
        a, b = [d for d in range(3) if d != self.gravity_dim]
        rotation = np.eye(3, dtype=np.float32)
        rotation[a, a] = rotation[b, b] = np.cos(angle)
        rotation[a, b], rotation[b, a] = -np.sin(angle), np.sin(angle)
        item["c_pc_xyz"] = item["points"] = np.ascontiguousarray(item["c_pc_xyz"] @ rotation.T)
        return item


class ContactTrainDataModule(L.LightningDataModule):
    def __init__(self, data_dir, sigma=0.8, num_points=8192, train_points=None, batch_size=32, val_limit=64,
                 num_workers=0, synth_seed=None, dataset="h3d", sets=("HUMANISE",)):
        super().__init__()
        if dataset not in ("h3d", "scene"):
            raise ValueError(f"data.dataset must be 'h3d' or 'scene' (got {dataset!r})")
        self.dataset, self.sets = dataset, tuple(sets)
        self.data_dir, self.sigma, self.num_points, self.train_points = Path(data_dir), sigma, num_points, train_points
        self.batch_size, self.val_limit, self.num_workers, self.synth_seed = batch_size, val_limit, num_workers, synth_seed

    def prepare_data(self):
        if self.synth_seed is not None:
            ensure_contact_corpus(self.data_dir, self.synth_seed)

    @property
    def data_info(self):
        """What the manifest of a trained model records about its data."""
        return {"root": str(self.data_dir), "synth_seed": self.synth_seed, "train_points": self.train_points,
                **read_corpus_info(self.data_dir)}

    def setup(self, stage=None):
        common = dict(sigma=self.sigma, num_points=self.num_points)
        if self.dataset == "h3d":
            self.train_set = ContactHumanML3DDataset(self.data_dir, "train", captions="all", **common)
            self.val_set = ContactHumanML3DDataset(self.data_dir, "test", limit=self.val_limit, **common)
            print(self.train_set.summary())
        else:
            self.train_set = RandomGravityRotation(
                ContactMapDataset(self.data_dir, "train", sets=self.sets, captions="random", **common))
            self.val_set = ContactMapDataset(self.data_dir, "test", sets=self.sets, limit=self.val_limit, **common)
        if self.train_points:
            self.train_set = PointSubset(self.train_set, self.train_points)
            self.val_set = PointSubset(self.val_set, self.train_points, fixed=True)

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, drop_last=True,
                          num_workers=self.num_workers, collate_fn=collate_items)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size, num_workers=self.num_workers,
                          collate_fn=collate_items)
