"""Whole-job progress bar with ETA on global rank 0, fed by the progress files of all ranks.

Lightning's own bar shows rank 0's shard only; this one sums `.progress/rank*.json` (written by the pose
writer on every rank) so the count, rate and ETA are those of the whole job.
"""
import time

from lightning.pytorch.callbacks import Callback
from tqdm.auto import tqdm

from motiondata.progress import read_progress


class JobProgressBar(Callback):
    def __init__(self, output_dir, refresh_seconds=2.0, desc="captions (all ranks)", unit="cap"):
        self.output_dir, self.refresh_seconds, self.desc, self.unit = output_dir, refresh_seconds, desc, unit
        self.bar, self.last_refresh = None, 0.0

    def on_predict_start(self, trainer, pl_module):
        if trainer.is_global_zero:
            total = trainer.datamodule.counts["todo"]
            self.bar = tqdm(total=total, desc=self.desc, unit=self.unit, dynamic_ncols=True)

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if self.bar is not None and time.time() - self.last_refresh >= self.refresh_seconds:
            self.refresh()

    def on_predict_end(self, trainer, pl_module):
        if self.bar is not None:
            self.refresh()
            self.bar.close()
            self.bar = None

    def refresh(self):
        ranks = read_progress(self.output_dir).values()
        done = sum(r.get("done", 0) for r in ranks)
        failed = sum(r.get("failed", 0) for r in ranks)
        self.bar.update(done + failed - self.bar.n)
        self.bar.set_postfix(failed=failed, ranks=len(ranks), refresh=False)
        self.last_refresh = time.time()
