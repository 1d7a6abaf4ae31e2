"""Writes the trained network in its original on-disk format after every epoch and at the end (atomic), so
that predict.py and the reference code both load it: e.g. <checkpoints_dir>/t2m/<name>/model/latest.tar."""
import io
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

from motiondata.atomic import atomic_write_bytes


class ReferenceExport(Callback):
    def __init__(self, path):
        self.path = Path(path)

    def export(self, trainer, pl_module):
        if trainer.is_global_zero:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            buffer = io.BytesIO()
            torch.save(pl_module.export_state(), buffer)
            atomic_write_bytes(self.path, buffer.getvalue())

    def on_train_epoch_end(self, trainer, pl_module):
        self.export(trainer, pl_module)

    def on_fit_end(self, trainer, pl_module):
        self.export(trainer, pl_module)
