"""`python predict.py +experiment=pose10k` end to end with the bundled default model, as a user runs it."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from motiondata.synth.body import worst_bone_error
from motiondata.verify import verify

ROOT = Path(__file__).resolve().parents[1]
CAPTIONS = ["A person raises both arms above the head", "A person squats down", "A person sits on a chair",
            "A person lies on the back", "A person stands with hands on hips", "A person kneels on one knee",
            "A person raises both arms above the head"]


def predict(tmp_path, *overrides, out="out", timeout=600, wait=True):
    captions = tmp_path / "captions.txt"
    if not captions.exists():
        captions.write_text("\n".join(f"{i + 1}. {c}" for i, c in enumerate(CAPTIONS)) + "\n", encoding="utf-8")
    command = [sys.executable, str(ROOT / "predict.py"), "+experiment=pose10k", f"captions={captions}",
               f"output_dir={tmp_path / out}", "logger=null", *overrides]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if not wait:
        return subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def poses(folder):
    return {p.stem: np.load(p) for p in sorted(Path(folder).glob("*.npy"))}


@pytest.fixture(scope="module")
def single_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("single")
    log = predict(tmp_path, "limit=5", "batch_size=2")  # the experiment's devices [1,2,3] do not exist here
    return tmp_path, log


def test_cli_writes_three_valid_files_per_caption(single_run):
    tmp_path, log = single_run
    out = tmp_path / "out"
    assert "Requested GPUs [1, 2, 3]" in log and "running on the CPU" in log
    report = verify(out)
    assert report.ok and report.done == 5 and report.counts == {".png": 5, ".json": 5, ".npy": 5}
    record = json.loads((out / "raises_both_arms_above_the_head.json").read_text())
    assert record["frame_index"] == 8 and record["num_joints"] == 22 and record["model"]
    assert np.array(record["joints"]).shape == (22, 3)
    assert record["skeleton_fit"] is True  # the bundled default refits poses to its corpus skeleton
    for stem, joints in poses(out).items():
        assert worst_bone_error(joints) < 1e-5, stem
    hidden = {p.name for p in out.iterdir() if p.name.startswith(".")}
    assert hidden == {".job.json", ".progress"}  # no temp files: they live in temp_dir
    assert not list((tmp_path / "out_temp").iterdir())
    assert not (tmp_path / "outputs").exists()  # nothing is written outside output_dir and temp_dir


def test_cli_ddp_on_two_cpu_processes_matches_one_process(single_run):
    tmp_path, _ = single_run
    log = predict(tmp_path, "limit=5", "batch_size=2", "trainer.accelerator=cpu", "trainer.devices=2",
                  "trainer.strategy=ddp", out="ddp")
    assert "done=5" in log
    one, two = poses(tmp_path / "out"), poses(tmp_path / "ddp")
    assert one.keys() == two.keys() and len(one) == 5
    for stem in one:
        np.testing.assert_allclose(two[stem], one[stem], atol=1e-5, err_msg=stem)


def test_cli_killed_run_resumes_exactly_the_missing_captions(tmp_path):
    process = predict(tmp_path, "batch_size=1", "callbacks.pose_writer.num_workers=0", wait=False)
    out = tmp_path / "out"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(out.glob("*.npy"))) < 2:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    exts = (".png", ".json", ".npy")
    done_stems = {p.stem for p in out.glob("*.npy") if all((out / f"{p.stem}{ext}").exists() for ext in exts)}
    mtimes = {stem: [(out / f"{stem}{ext}").stat().st_mtime_ns for ext in exts] for stem in done_stems}
    report = verify(out)
    assert not report.invalid and not report.temp_files, report.format()
    assert 0 < report.done == len(done_stems) < len(CAPTIONS)
    log = predict(tmp_path, "batch_size=1")
    report = verify(out)
    assert report.ok and report.done == len(CAPTIONS)
    assert f"generated={len(CAPTIONS) - len(done_stems)}," in log
    for stem, before in mtimes.items():  # captions done before the kill are not generated again
        assert [(out / f"{stem}{ext}").stat().st_mtime_ns for ext in exts] == before, stem
