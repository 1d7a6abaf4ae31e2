"""Writes the trained network in its original on-disk format after every epoch and at the end (atomic), so
that predict.py and the reference code both load it: e.g. <checkpoints_dir>/t2m/<name>/model/latest.tar.

With `mean_std_dir`, the data module's Mean.npy/Std.npy (the normalisation the model was trained with) are saved
there too. A `{step}` field in the path (the CDM's `ckpt/model{step:06d}.pt`) is filled with the global step; the
file of the previous export of this run is then removed, so the folder holds the latest one. `write_manifest`
(called by train.py after fit) records in <manifest> how the file was made: command, resolved config, data
generator info, sha256, training time and final metrics; a run resumed with ckpt_path= also lists the runs
before it.
"""
import hashlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from motiondata.atomic import atomic_save_npy, atomic_write_bytes, atomic_write_json


class ReferenceExport(Callback):
    def __init__(self, path, mean_std_dir=None, manifest=None):
        self.path_template = str(path)
        self.path = Path(path)
        self.mean_std_dir = Path(mean_std_dir) if mean_std_dir else None
        self.manifest = Path(manifest) if manifest else None

    def export(self, trainer, pl_module):
        if not trainer.is_global_zero:
            return
        previous, self.path = self.path, Path(self.path_template.format(step=trainer.global_step))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        torch.save(pl_module.export_state(), buffer)
        atomic_write_bytes(self.path, buffer.getvalue())
        if previous != self.path and previous.is_file() and "{step" in self.path_template:
            previous.unlink()
        datamodule = trainer.datamodule
        if self.mean_std_dir is not None and hasattr(datamodule, "mean"):
            self.mean_std_dir.mkdir(parents=True, exist_ok=True)
            atomic_save_npy(self.mean_std_dir / "Mean.npy", np.asarray(datamodule.mean, np.float32))
            atomic_save_npy(self.mean_std_dir / "Std.npy", np.asarray(datamodule.std, np.float32))

    def on_train_epoch_end(self, trainer, pl_module):
        self.export(trainer, pl_module)

    def on_fit_end(self, trainer, pl_module):
        self.export(trainer, pl_module)

    def write_manifest(self, config, seconds, metrics, data_info=None):
        if self.manifest is None:
            return
        entries = json.loads(self.manifest.read_text()) if self.manifest.is_file() else {}
        key = self.path.relative_to(self.manifest.parent).as_posix()
        entry = {
            "command": " ".join(["python"] + sys.argv),
            "sha256": hashlib.sha256(self.path.read_bytes()).hexdigest(),
            "bytes": self.path.stat().st_size,
            "training_seconds": round(seconds, 1),
            "final_metrics": {k: round(float(v), 5) for k, v in metrics.items()},
            "data": data_info,
            "config": config,
        }
        entries[key] = resumed_entry(entries.get(key), entry) if config.get("ckpt_path") else entry
        atomic_write_json(self.manifest, entries)


def resumed_entry(previous, entry):
    """The manifest entry of a run resumed from a checkpoint: the runs before it are listed under "earlier_runs"
    (command, seconds) and "training_seconds" counts them all, so the manifest still says how to remake the file."""
    if previous is None:
        return entry
    earlier = previous.get("earlier_runs", []) + [
        {"command": previous["command"], "seconds": previous.get("run_seconds", previous["training_seconds"])}]
    total = entry["training_seconds"] + sum(run["seconds"] for run in earlier)
    return {**entry, "run_seconds": entry["training_seconds"], "training_seconds": round(total, 1),
            "earlier_runs": earlier}
