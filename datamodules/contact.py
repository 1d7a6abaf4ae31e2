"""DataModule of the cdm_stage1 job: afford-motion's contact data sets -> the work list of one run folder.

`prepare_data` (global rank 0 only) builds the data set (computing the stats file if missing, as the reference),
reads which sample ids the run folder's temp files already hold (resume) and writes the work list to
`<run_dir>/work_list.json`. `setup` (every rank) reads that file, so all ranks agree on the work list; Lightning's
sampler then shards it (strided, no duplicates, no padding; no-op items with sample_id -1 when there are fewer
items than ranks).
"""
import json
from pathlib import Path

import lightning as L
import numpy as np
from torch.utils.data import DataLoader, Dataset

from datamodules.contact_data import ContactHumanML3DDataset, ContactMapDataset, collate_items, ensure_contact_corpus
from motiondata.atomic import atomic_write_json
from motiondata.progress import clear_progress

WORK_FILE = "work_list.json"
TEMP_GLOB = "temp_batch_r*_*.npz"
FINAL_FILE = "generated_contact_maps.npz"


def temp_files(run_dir):
    return sorted(Path(run_dir).glob(TEMP_GLOB))


def done_in_temp_files(run_dir):
    """{sample_id: name} of every sample stored in the run folder's temp files (written atomically, so complete)."""
    done = {}
    for path in temp_files(run_dir):
        with np.load(path, allow_pickle=False) as data:
            done.update(zip(data["sample_ids"].tolist(), data["names"].tolist()))
    return done


class WorkItems(Dataset):
    """The data set's items at `indices`, plus no-op items (sample_id -1) up to `min_items`: every rank gets at
    least one item, so the predict loop (and the writer's merge) runs even when everything is already done."""

    def __init__(self, dataset, indices, min_items=1):
        self.dataset, self.indices, self.min_items = dataset, list(indices), min_items

    def __len__(self):
        return max(len(self.indices), self.min_items) if len(self.dataset) else 0

    def __getitem__(self, index):
        if index < len(self.indices):
            return self.dataset[self.indices[index]]
        item = dict(self.dataset[self.indices[0] if self.indices else 0])
        return {**item, "sample_id": -1, "name": "", "caption": ""}


class ContactDataModule(L.LightningDataModule):
    def __init__(self, data_dir, run_dir, phase="train", captions="first", limit=None, batch_size=8,
                 num_points=8192, sigma=0.8, seed=0, dataset="h3d", sets=None, num_workers=0, synth_dir=None,
                 synth_seed=0):
        super().__init__()
        self.prepare_data_per_node = False  # one shared run folder for all nodes
        self.data_dir, self.run_dir = data_dir, Path(run_dir)
        self.phase, self.captions, self.limit, self.batch_size = phase, captions, limit, batch_size
        self.num_points, self.sigma, self.seed = num_points, sigma, seed
        self.dataset_kind, self.sets, self.num_workers = dataset, sets, num_workers
        self.dataset, self.work, self.counts = None, None, {}
        self.synth_dir, self.synth_seed = synth_dir, synth_seed

    def is_generated_corpus(self):
        """data_dir is the project's generated contact corpus folder (written there on first use, nowhere else)."""
        return (self.synth_dir is not None and self.data_dir is not None
                and Path(self.data_dir).resolve() == Path(self.synth_dir).resolve())

    def build_dataset(self):
        if self.data_dir is None or not Path(self.data_dir).is_dir():
            raise FileNotFoundError(f"data_dir={self.data_dir!r} not found. Pass data_dir=/path/to/afford-motion data "
                                    "(the folder holding H3D/ with train.txt, texts/, contacts/, new_joint_vecs/).")
        common = dict(sigma=self.sigma, num_points=self.num_points, captions=self.captions, seed=self.seed,
                      limit=self.limit)
        if self.dataset_kind == "h3d":
            return ContactHumanML3DDataset(self.data_dir, self.phase, **common)
        if self.dataset_kind == "scene":
            return ContactMapDataset(self.data_dir, self.phase, sets=tuple(self.sets), **common)
        raise ValueError(f"data.dataset must be 'h3d' or 'scene' (got {self.dataset_kind!r})")

    # -- rank 0 ------------------------------------------------------------------------------------------
    def prepare_data(self):
        if self.is_generated_corpus():
            ensure_contact_corpus(self.data_dir, self.synth_seed)
        dataset = self.build_dataset()
        print(dataset.summary() if hasattr(dataset, "summary") else f"{len(dataset)} samples")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        done = done_in_temp_files(self.run_dir)
        self.check_resume(dataset, done)
        todo = [i for i in range(len(dataset)) if i not in done]
        atomic_write_json(self.run_dir / WORK_FILE, {"total": len(dataset), "todo": todo,
                                                      "skipped": len(dataset) - len(todo)})
        clear_progress(self.run_dir)
        print(f"{len(dataset)} samples in this job: {len(dataset) - len(todo)} already in temp files (skipped), "
              f"{len(todo)} to generate")

    def check_resume(self, dataset, done):
        if (self.run_dir / FINAL_FILE).exists():
            raise RuntimeError(f"{self.run_dir / FINAL_FILE} exists: this run is finished. Start a new run (no "
                               "resume=), or delete that file to merge the temp files again.")
        for sample_id, name in done.items():
            if sample_id >= len(dataset) or item_name(dataset, sample_id) != name:
                raise RuntimeError(f"the temp files in {self.run_dir} hold sample {sample_id} named {name!r}, which "
                                   "is not that sample of this data set (other data_dir, phase, captions or limit?). "
                                   "Resume with the original settings or start a new run.")

    # -- every rank ---------------------------------------------------------------------------------------
    def setup(self, stage=None):
        self.dataset = self.build_dataset()
        path = self.run_dir / WORK_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: prepare_data (rank 0) writes it; run through trainer.predict")
        self.work = json.loads(path.read_text(encoding="utf-8"))
        self.counts = {"total": self.work["total"], "skipped": self.work["skipped"], "todo": len(self.work["todo"])}
        world_size = self.trainer.world_size if self.trainer else 1
        self.items = WorkItems(self.dataset, self.work["todo"], min_items=world_size)

    @property
    def stats(self):
        return self.dataset.mean, self.dataset.std

    def predict_dataloader(self):
        return DataLoader(self.items, batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers,
                          collate_fn=collate_items)


def item_name(dataset, index):
    """The sample's name without reading its contact file (H3D: {id}-{caption_index})."""
    sample = dataset.samples[index]
    if hasattr(sample, "caption_index"):
        return f"{sample.motion_id}-{sample.caption_index}"
    return dataset[index]["name"]
