"""Prediction writer of the cdm_stage1 job.

Every rank buffers its rows and, every `save_every_n_batches` batches, writes `temp_batch_r{rank}_{k:05d}.npz`
atomically (k continues after the rank's existing files, so neither ranks nor resumed runs ever collide). At the
end: last flush, barrier, and global rank 0 merges all temp files into `generated_contact_maps.npz`, ordered by
sample id, streaming the rows (memory bounded by a few temp files, not by N), checks that every sample of the job
is there exactly once, optionally exports `{save_dir}/H3D/pred_contact/{name}.npy` (1,N,6) float32 distances for
stage 2, writes the summary and removes the temp files. `exit_code`: 0 when complete, EXIT_INCOMPLETE otherwise
(the temp files are then kept: re-run with resume=<run folder>).
"""
import json
import logging
import re
import time
from pathlib import Path

import numpy as np
from lightning.pytorch.callbacks import BasePredictionWriter

from datamodules.contact import FINAL_FILE, WORK_FILE, temp_files
from motiondata.atomic import atomic_path, atomic_save_npy, atomic_write_text, remove_quietly
from motiondata.npz_stream import NpzStreamWriter, read_first_rows
from motiondata.progress import ProgressFile

EXIT_INCOMPLETE = 3
MERGE_CHUNK_ROWS = 256
ROW_KEYS = ("sample_id", "name", "caption_index", "caption", "contact", "distance")
log = logging.getLogger(__name__)


def next_temp_index(run_dir, rank):
    pattern = re.compile(rf"^temp_batch_r{rank}_(\d+)\.npz$")
    found = [int(m.group(1)) for p in temp_files(run_dir) if (m := pattern.match(p.name))]
    return max(found) + 1 if found else 0


def save_temp_file(path, rows):
    with atomic_path(path) as tmp:
        with open(tmp, "xb") as file:
            np.savez(file, sample_ids=np.array([r["sample_id"] for r in rows], dtype=np.int64),
                     names=np.array([r["name"] for r in rows], dtype=str),
                     caption_indices=np.array([r["caption_index"] for r in rows], dtype=np.int64),
                     captions=np.array([r["caption"] for r in rows], dtype=str),
                     contact_maps=np.stack([r["contact"] for r in rows]).astype(np.float32),
                     distances=np.stack([r["distance"] for r in rows]).astype(np.float32))


def read_index(paths):
    """Row table of the temp files: arrays sample_id, file number, row in file; and the metadata columns."""
    ids, files, rows, names, caption_indices, captions = [], [], [], [], [], []
    for number, path in enumerate(paths):
        with np.load(path, allow_pickle=False) as data:
            n = len(data["sample_ids"])
            ids.append(data["sample_ids"]), files.append(np.full(n, number)), rows.append(np.arange(n))
            names += data["names"].tolist()
            caption_indices.append(data["caption_indices"])
            captions += data["captions"].tolist()
    if not ids:
        return None
    return {"sample_id": np.concatenate(ids), "file": np.concatenate(files), "row": np.concatenate(rows),
            "name": np.array(names, dtype=str), "caption_index": np.concatenate(caption_indices),
            "caption": np.array(captions, dtype=str)}


def coverage_problems(sample_ids, total):
    """Messages for duplicated, missing or unexpected sample ids (empty when each of 0..total-1 is there once)."""
    unique, counts = np.unique(sample_ids, return_counts=True)
    problems = []
    if (counts > 1).any():
        problems.append(f"duplicated sample ids {unique[counts > 1][:10].tolist()}")
    missing = np.setdiff1d(np.arange(total), unique)
    if len(missing):
        problems.append(f"{len(missing)} missing sample ids, e.g. {missing[:10].tolist()}")
    extra = np.setdiff1d(unique, np.arange(total))
    if len(extra):
        problems.append(f"sample ids outside the job {extra[:10].tolist()}")
    return problems


def stream_rows(paths, index, order, key):
    """Rows of `key` in `order`, chunk by chunk; only the temp files the current chunk needs are loaded."""
    cache = {}
    for start in range(0, len(order), MERGE_CHUNK_ROWS):
        chunk = order[start:start + MERGE_CHUNK_ROWS]
        needed = set(index["file"][chunk].tolist())
        cache = {f: a for f, a in cache.items() if f in needed}
        for f in needed - set(cache):
            with np.load(paths[f], allow_pickle=False) as data:
                cache[f] = data[key]
        yield np.stack([cache[f][r] for f, r in zip(index["file"][chunk], index["row"][chunk])])


def merge_temp_files(run_dir, total, num_points, contact_dim=6):
    """Writes run_dir/generated_contact_maps.npz from the temp files; returns (index in sample order, problems)."""
    paths = temp_files(run_dir)
    index = read_index(paths)
    if index is None:
        return None, ["no temp files to merge"] if total else []
    problems = coverage_problems(index["sample_id"], total)
    if problems:
        return None, problems
    order = np.argsort(index["sample_id"], kind="stable")
    shape = (len(order), num_points, contact_dim)
    with atomic_path(Path(run_dir) / FINAL_FILE) as tmp:
        with NpzStreamWriter(tmp) as npz:
            npz.write_rows("contact_maps", shape, np.float32, stream_rows(paths, index, order, "contact_maps"))
            npz.write_rows("distances", shape, np.float32, stream_rows(paths, index, order, "distances"))
            npz.write_array("sample_ids", index["sample_id"][order])
            npz.write_array("names", index["name"][order])
            npz.write_array("caption_indices", index["caption_index"][order])
            npz.write_array("captions", index["caption"][order])
    return {key: value[order] for key, value in index.items()}, []


def export_pred_contact(run_dir, save_dir, set_name="H3D"):
    """{save_dir}/{set}/pred_contact/{name}.npy, (1,N,6) float32 distances, as the fork's stage-2 loader reads.
    Read from the temp files one at a time (before they are removed), so memory stays bounded."""
    folder = Path(save_dir) / set_name / "pred_contact"
    folder.mkdir(parents=True, exist_ok=True)
    for path in temp_files(run_dir):
        with np.load(path, allow_pickle=False) as data:
            for name, distance in zip(data["names"].tolist(), data["distances"]):
                atomic_save_npy(folder / f"{name}.npy", distance[None].astype(np.float32))
    return folder


class ContactMapWriter(BasePredictionWriter):
    def __init__(self, run_dir, save_every_n_batches=10, export_pred_contact=False, save_dir=None,
                 keep_temp_files=False, progress_interval=5.0, logged_images=4):
        super().__init__(write_interval="batch")
        self.run_dir = Path(run_dir)
        self.save_every_n_batches = max(1, int(save_every_n_batches))
        self.export, self.save_dir = export_pred_contact, Path(save_dir) if save_dir else self.run_dir
        self.keep_temp_files, self.progress_interval = keep_temp_files, progress_interval
        self.logged_images = logged_images
        self.run_config = None  # the resolved config as YAML (set by motiondata.runtime.build_run)
        self.exit_code, self.summary = 0, {}

    def set_run_config(self, text):
        self.run_config = text

    def setup(self, trainer, pl_module, stage):
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.buffer, self.batches, self.done, self.started = [], 0, 0, time.time()
        self.next_index = next_temp_index(self.run_dir, trainer.global_rank)

    def on_predict_start(self, trainer, pl_module):
        counts = trainer.datamodule.counts
        assigned = len(range(trainer.global_rank, counts["todo"], trainer.world_size))
        self.progress = ProgressFile(self.run_dir, trainer.global_rank, trainer.world_size, counts["todo"],
                                     assigned, min_interval=self.progress_interval)
        if trainer.is_global_zero:
            self.write_checkpoint_info(trainer, pl_module)

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0):
        for b, sample_id in enumerate(prediction["sample_id"]):
            if sample_id >= 0:  # -1: no-op padding item
                self.buffer.append({key: prediction[key][b] for key in ROW_KEYS})
        self.batches += 1
        if self.batches % self.save_every_n_batches == 0:
            self.flush(trainer)
        self.progress.update(done=self.done + len(self.buffer))

    def flush(self, trainer):
        if not self.buffer:
            return
        path = self.run_dir / f"temp_batch_r{trainer.global_rank}_{self.next_index:05d}.npz"
        save_temp_file(path, self.buffer)
        self.done += len(self.buffer)
        self.buffer, self.next_index = [], self.next_index + 1

    def on_predict_end(self, trainer, pl_module):
        self.flush(trainer)
        self.progress.finish(done=self.done)
        trainer.strategy.barrier("contact-writer-end")
        if trainer.is_global_zero:
            self.finalize(trainer, pl_module)
        self.exit_code = int(trainer.strategy.broadcast(self.exit_code, src=0))

    def finalize(self, trainer, pl_module):
        work = json.loads((self.run_dir / WORK_FILE).read_text(encoding="utf-8"))
        num_points = trainer.datamodule.num_points
        index, problems = merge_temp_files(self.run_dir, work["total"], num_points, pl_module.cdm.contact_dim)
        elapsed = time.time() - self.started
        generated = len(work["todo"])
        self.summary = {"samples": work["total"], "generated": generated, "skipped": work["skipped"],
                        "seconds": round(elapsed, 1),
                        "samples_per_s": round(generated / elapsed, 3) if elapsed else 0.0}
        if problems:
            self.exit_code = EXIT_INCOMPLETE
            report(f"merge refused ({'; '.join(problems)}); temp files kept in {self.run_dir}: re-run with "
                   f"resume={self.run_dir}")
        else:
            if self.export:
                report(f"stage-2 files written to {export_pred_contact(self.run_dir, self.save_dir)}")
            if not self.keep_temp_files:
                for path in temp_files(self.run_dir):
                    remove_quietly(path)
            report(f"wrote {self.run_dir / FINAL_FILE} ({work['total']} samples)")
        report("cdm_stage1 summary: " + ", ".join(f"{k}={v}" for k, v in self.summary.items()))
        if trainer.logger is not None and hasattr(trainer.logger, "log_metrics"):
            trainer.logger.log_metrics({f"job/{k}": v for k, v in self.summary.items()})
        if not problems and hasattr(trainer.logger, "log_image") and self.logged_images:
            self.log_images(trainer)

    def log_images(self, trainer):
        """A few contact maps as PNGs (run_dir/samples/) into W&B."""
        from motiondata.contact_render import render_contact_png

        dataset, paths, captions = trainer.datamodule.dataset, [], []
        with np.load(self.run_dir / FINAL_FILE, allow_pickle=False) as data:  # small members only
            count = min(self.logged_images, len(data["sample_ids"]))
            ids, names, caps = data["sample_ids"][:count], data["names"][:count], data["captions"][:count]
        maps = read_first_rows(self.run_dir / FINAL_FILE, "contact_maps", count)
        (self.run_dir / "samples").mkdir(exist_ok=True)
        for sample_id, name, caption, contact in zip(ids.tolist(), names.tolist(), caps.tolist(), maps):
            path = self.run_dir / "samples" / f"{name}.png"
            paths.append(str(render_contact_png(dataset[sample_id]["c_pc_xyz"], contact, caption, path)))
            captions.append(f"{name}: {caption}")
        trainer.logger.log_image(key="contact_maps", images=paths, caption=captions)

    def write_checkpoint_info(self, trainer, pl_module):
        counts = trainer.datamodule.counts
        lines = [f"checkpoint: {pl_module.checkpoint_path}", f"output_dir: {self.run_dir.resolve()}",
                 f"dataset_size: {counts['total']} (to generate: {counts['todo']}, already done: {counts['skipped']})",
                 f"batch_size: {trainer.datamodule.batch_size}", f"world_size: {trainer.world_size}", "",
                 "settings the checkpoint does not carry:"]
        lines += [f"  {name}: {value}  [{source}]" for name, (value, source) in pl_module.settings_note.items()]
        if self.run_config:
            lines += ["", "resolved configuration:", self.run_config]
        atomic_write_text(self.run_dir / "checkpoint_info.txt", "\n".join(lines) + "\n")


def report(message):
    """To the run log (train.log, echoed on the console by Hydra), or to stdout when logging is not set up."""
    if logging.getLogger().handlers:
        log.info(message)
    else:
        print(message)
