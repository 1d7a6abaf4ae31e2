"""Caption DataModule for the pose job.

`prepare_data` (global rank 0 only, before any rank builds its dataset) reads the caption file, computes the
name table once from the full input, checks that the output folder belongs to the same job, decides which
captions are already done (resume) and writes `index.jsonl`. `setup` (every rank) reads that index, so all
ranks agree on the work list; Lightning's sampler then shards it (strided, no duplicates, no padding).
"""
import hashlib
import json
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from motiondata.atomic import atomic_write_json
from motiondata.captions import read_captions
from motiondata.manifest import index_records, read_failures, read_index, scan_done, write_index
from motiondata.naming import assign_names
from motiondata.progress import clear_progress

JOB_FILE = ".job.json"  # hidden, so `ls *.json` counts only pose files


class CaptionDataset(Dataset):
    def __init__(self, records, default_length, min_items=1):
        self.records = list(records)
        self.default_length = default_length
        self.min_items = min_items

    def __len__(self):
        # Lightning's unrepeated sampler needs at least one item per rank; extra ranks get no-op items (id -1)
        return max(len(self.records), self.min_items) if self.records else 0

    def __getitem__(self, index):
        if index >= len(self.records):
            return {"id": -1, "caption": "", "stem": "", "length": self.default_length}
        record = self.records[index]
        length = record.get("frames") or self.default_length
        return {"id": record["id"], "caption": record["caption"], "stem": record["stem"], "length": length}


def collate(items):
    return {
        "id": torch.tensor([item["id"] for item in items]),
        "caption": [item["caption"] for item in items],
        "stem": [item["stem"] for item in items],
        "length": torch.tensor([item["length"] for item in items]),
    }


def file_sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class CaptionDataModule(L.LightningDataModule):
    def __init__(self, captions, output_dir, batch_size=8, limit=None, sequence_length=16, num_workers=0,
                 job=None):
        super().__init__()
        self.prepare_data_per_node = False  # one shared output folder for all nodes
        self.captions, self.output_dir = Path(captions), Path(output_dir)
        self.batch_size, self.limit, self.num_workers = batch_size, limit, num_workers
        self.sequence_length = sequence_length
        self.job = dict(job or {})
        self.dataset = None
        self.counts = {}

    # -- rank 0 ------------------------------------------------------------------------------------------
    def prepare_data(self):
        captions = read_captions(self.captions)
        print(captions.summary())
        stems = assign_names(captions.texts())  # from the full input, so names never depend on `limit`
        kept = list(captions)[: self.limit] if self.limit is not None else list(captions)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.check_job_identity()
        done = scan_done(self.output_dir, {c.id: stems[c.id] for c in kept})
        failures = read_failures(self.output_dir)
        records = index_records([c.text for c in kept], stems[: len(kept)], done, failures)
        for record, caption in zip(records, kept):
            record["frames"] = caption.frames
        write_index(self.output_dir, records)
        clear_progress(self.output_dir)  # progress files of an earlier run (maybe with more ranks)
        print(f"{len(kept)} captions in this job: {len(done)} already done (skipped), {len(kept) - len(done)} to generate")

    def check_job_identity(self):
        """Refuses to resume into an output folder made with other captions or generation settings."""
        identity = {"captions_sha256": file_sha256(self.captions), **self.job}
        path = self.output_dir / JOB_FILE
        if path.is_file():
            previous = json.loads(path.read_text(encoding="utf-8"))
            changed = {k: (previous.get(k), v) for k, v in identity.items() if previous.get(k) != v}
            if changed:
                details = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
                raise RuntimeError(
                    f"{self.output_dir} holds a job with other settings ({details}). Resuming would mix "
                    f"results: choose a new output_dir, or delete {path} to accept the mix.")
        atomic_write_json(path, identity)

    # -- every rank ---------------------------------------------------------------------------------------
    def setup(self, stage=None):
        records = read_index(self.output_dir)
        todo = [r for r in records if r["status"] != "done"]
        world_size = self.trainer.world_size if self.trainer else 1
        self.counts = {"total": len(records), "skipped": len(records) - len(todo), "todo": len(todo)}
        self.dataset = CaptionDataset(todo, self.sequence_length, min_items=world_size)

    def predict_dataloader(self):
        return DataLoader(self.dataset, batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers,
                          collate_fn=collate)
