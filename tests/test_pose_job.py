"""The pose job's data flow (captions -> dataset -> writer -> files, failures, resume) with a stand-in model."""
import json

import lightning as L
import numpy as np
import pytest
import torch

from callbacks.pose_writer import EXIT_FAILED, PoseWriter
from datamodules.captions import CaptionDataModule
from motiondata.manifest import read_index
from motiondata.verify import verify


class FakePoseModule(L.LightningModule):
    """Joints derived from the caption id (so results are checkable); NaN for the ids in `broken`."""

    def __init__(self, broken=()):
        super().__init__()
        self.broken = set(broken)
        self.seed, self.rng, self.model_name, self.skeleton_fit = 1, "per_item", "fake", False
        self.seen = []

    def predict_step(self, batch, batch_idx):
        ids = batch["id"].tolist()
        self.seen += [i for i in ids if i >= 0]
        joints = np.stack([np.full((22, 3), np.nan if i in self.broken else i / 100, np.float32) for i in ids])
        return {"id": ids, "caption": batch["caption"], "stem": batch["stem"], "joints": joints,
                "frame_index": [8] * len(ids), "num_frames": batch["length"].tolist()}


def run_job(tmp_path, captions, module, limit=None, batch_size=3):
    path = tmp_path / "captions.txt"
    path.write_text("\n".join(captions) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    datamodule = CaptionDataModule(path, out, batch_size=batch_size, limit=limit, job={"seed": 1})
    writer = PoseWriter(out, tmp_path / "out_temp", num_workers=0)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, callbacks=[writer], enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.predict(module, datamodule=datamodule, return_predictions=False)
    return out, writer


def test_writes_three_files_per_caption_and_index(tmp_path):
    captions = ["A person arching back", "A person arching back", "a person squats", "Someone waves/hello"]
    out, writer = run_job(tmp_path, captions, FakePoseModule())
    assert writer.exit_code == 0
    index = read_index(out)
    assert [r["stem"] for r in index] == ["arching_back", "arching_back_2", "a_person_squats", "Someone_waveshello"]
    assert all(r["status"] == "done" for r in index)
    record = json.loads((out / "arching_back_2.json").read_text())
    assert record["caption"] == "A person arching back" and record["id"] == 1 and record["model"] == "fake"
    assert record["skeleton_fit"] is False
    assert record["num_joints"] == 22 and len(record["joint_names"]) == 22 and record["frame_index"] == 8
    joints = np.load(out / "a_person_squats.npy")
    assert joints.dtype == np.float32 and joints.shape == (22, 3) and np.allclose(joints, 0.02)
    assert verify(out).ok
    assert not list((tmp_path / "out_temp").iterdir())


def test_failed_caption_is_recorded_and_the_run_goes_on(tmp_path):
    out, writer = run_job(tmp_path, [f"pose {i}" for i in range(5)], FakePoseModule(broken={2}))
    assert writer.exit_code == EXIT_FAILED
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [f["id"] for f in failures] == [2] and "non-finite" in failures[0]["reason"]
    assert not list(out.glob("pose_2.*"))  # a failed caption leaves no partial files
    assert [r["status"] for r in read_index(out)] == ["done", "done", "failed", "done", "done"]
    # re-running retries the failure only; once it succeeds the failure record is gone
    module = FakePoseModule()
    out, writer = run_job(tmp_path, [f"pose {i}" for i in range(5)], module)
    assert module.seen == [2] and writer.exit_code == 0
    assert (out / "failures.jsonl").read_text() == ""


def test_resume_skips_done_captions_and_limit_extends(tmp_path):
    captions = [f"caption number {i}" for i in range(7)]
    first = FakePoseModule()
    out, _ = run_job(tmp_path, captions, first, limit=4)
    assert sorted(first.seen) == [0, 1, 2, 3]
    (out / "caption_number_1.png").unlink()  # e.g. a run killed between renames
    second = FakePoseModule()
    out, writer = run_job(tmp_path, captions, second)
    assert sorted(second.seen) == [1, 4, 5, 6]
    assert writer.exit_code == 0 and verify(out).done == 7


def test_resume_into_a_folder_of_another_job_is_refused(tmp_path):
    run_job(tmp_path, ["a", "b"], FakePoseModule())
    with pytest.raises(RuntimeError, match="other settings"):
        run_job(tmp_path, ["a", "b", "c"], FakePoseModule())


def test_collate_pads_to_world_size_with_noop_items():
    from datamodules.captions import CaptionDataset
    dataset = CaptionDataset([{"id": 5, "caption": "x", "stem": "x"}], default_length=16, min_items=3)
    assert len(dataset) == 3 and dataset[1]["id"] == -1 and dataset[0]["length"] == 16
    assert len(CaptionDataset([], 16, min_items=3)) == 0
