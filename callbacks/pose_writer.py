"""Prediction writer of the pose job: PNG/JSON/NPY per caption, failures, progress files, final summary.

Files are written by render worker processes (`motiondata.pose_files.write_pose_files`) so that the GPU
never waits for matplotlib. Every rank records its own failures and progress; after all ranks finished,
global rank 0 merges the failures, rewrites `index.jsonl` with the final status, verifies the folder and
prints (and logs) the summary. `exit_code` is 0 when nothing failed, EXIT_FAILED otherwise.
"""
import time
from pathlib import Path

from lightning.pytorch.callbacks import BasePredictionWriter

from motiondata.manifest import append_failure, index_records, merge_failures, read_index, scan_done, write_index
from motiondata.pose_files import write_pose_files
from motiondata.progress import ProgressFile
from motiondata.render import RenderPool
from motiondata.verify import verify

EXIT_FAILED = 3  # the job ran to the end but some captions failed (see failures.jsonl)


def split_items(prediction, extra):
    """The batch dict of lists -> one dict per real caption (padding items have id -1)."""
    for b, id in enumerate(prediction["id"]):
        if id >= 0:
            item = {key: value[b] for key, value in prediction.items()}
            yield {**item, **extra}


class PoseWriter(BasePredictionWriter):
    def __init__(self, output_dir, temp_dir=None, num_workers=2, progress_interval=5.0, logged_images=16):
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)
        self.temp_dir = Path(temp_dir) if temp_dir else Path(f"{output_dir}_temp")
        self.num_workers, self.progress_interval, self.logged_images = num_workers, progress_interval, logged_images
        self.exit_code = 0
        self.summary = {}

    def setup(self, trainer, pl_module, stage):
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        self.pool = RenderPool(self.num_workers)
        self.pending, self.done, self.failed = [], 0, 0
        self.started = time.time()
        self.progress = None

    def on_predict_start(self, trainer, pl_module):
        counts = trainer.datamodule.counts
        assigned = len(range(trainer.global_rank, counts["todo"], trainer.world_size))
        self.progress = ProgressFile(self.output_dir, trainer.global_rank, trainer.world_size, counts["todo"],
                                     assigned, min_interval=self.progress_interval)
        self.progress.update(done=0, failed=0, force=True)

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0):
        extra = {"seed": pl_module.seed, "rng": pl_module.rng, "model": pl_module.model_name,
                 "skeleton_fit": pl_module.skeleton_fit}
        for item in split_items(prediction, extra):
            future = self.pool.submit(write_pose_files, item, self.output_dir, self.temp_dir)
            self.pending.append((item, future))
        self.collect(trainer, wait=False)

    def collect(self, trainer, wait):
        still_pending = []
        for item, future in self.pending:
            if not (wait or future.done()):
                still_pending.append((item, future))
                continue
            error = future.exception()
            if error is None:
                self.done += 1
            else:
                self.failed += 1
                reason = f"{type(error).__name__}: {error}"
                append_failure(self.output_dir, trainer.global_rank, item["id"], item["caption"], item["stem"], reason)
                print(f"[rank {trainer.global_rank}] caption {item['id']} {item['caption']!r} failed: {reason}")
        self.pending = still_pending
        self.progress.update(done=self.done, failed=self.failed, force=wait)

    def on_predict_end(self, trainer, pl_module):
        self.collect(trainer, wait=True)
        self.pool.close()
        self.progress.finish()
        trainer.strategy.barrier("pose-writer-end")
        if trainer.is_global_zero:
            self.finalize(trainer)
        self.exit_code = int(trainer.strategy.broadcast(self.exit_code, src=0))

    def on_exception(self, trainer, pl_module, exception):
        if hasattr(self, "pool"):
            self.pool.close(cancel=True)

    def finalize(self, trainer):
        records = read_index(self.output_dir)
        done = scan_done(self.output_dir, {r["id"]: r["stem"] for r in records})
        failures = merge_failures(self.output_dir, done)
        final = index_records([r["caption"] for r in records], [r["stem"] for r in records], done, failures)
        for record, previous in zip(final, records):
            record["frames"] = previous.get("frames")
        write_index(self.output_dir, final)
        report = verify(self.output_dir)
        print(report.format())
        elapsed = time.time() - self.started
        generated = len(done) - trainer.datamodule.counts["skipped"]
        self.summary = {
            "captions": report.total, "done": report.done, "generated": generated,
            "skipped": trainer.datamodule.counts["skipped"], "failed": len(report.failed),
            "missing": len(report.missing), "invalid": len(report.invalid), "seconds": round(elapsed, 1),
            "captions_per_s": round(generated / elapsed, 3) if elapsed > 0 else 0.0,
            "disk_mb": round(report.total_bytes / 1e6, 1),
        }
        self.exit_code = 0 if report.ok and not report.failed else EXIT_FAILED
        print("pose job summary: " + ", ".join(f"{k}={v}" for k, v in self.summary.items()))
        if failures:
            print(f"{len(failures)} captions failed; reasons in {self.output_dir / 'failures.jsonl'}; "
                  "re-run the same command to retry them")
        self.log_to_wandb(trainer, final, done, failures)

    def log_to_wandb(self, trainer, records, done, failures):
        logger = trainer.logger
        if logger is None or not hasattr(logger, "log_image"):
            return
        logger.log_metrics({f"job/{k}": v for k, v in self.summary.items()})
        if failures:
            logger.log_table(key="failures", columns=["id", "reason"], data=[[i, r] for i, r in failures.items()])
        samples = [r for r in records if r["id"] in done][: self.logged_images]
        if samples:
            logger.log_image(key="samples", images=[str(self.output_dir / f"{r['stem']}.png") for r in samples],
                             caption=[f"{r['id']}: {r['caption']}" for r in samples])
