"""The cdm_stage1 job on CPU: golden PointMamba checkpoint (512-d text) + the afford_h3d fixture (32 points),
with a deterministic stand-in text encoder (no CLIP weights offline) and a short chain (20 steps, "ddim5").

Checked: temp files + merged NPZ (ordered, exactly once, no pickle), resume from temp files gives the same NPZ,
per_item results independent of batch size, rng=reference against the golden sampling case 12, the stage-2
export, and (slow) the CLI with 2 DDP processes on the CPU."""
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn as nn

from callbacks.contact_writer import ContactMapWriter
from datamodules.contact import FINAL_FILE, ContactDataModule
from fixtures.make_afford_h3d import NUM_POINTS
from lightning_modules.contact_module import ContactGenerationModule
from models.cdm_checkpoints import load_cdm

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "afford_h3d"
GOLDEN_CDM = ROOT / "tests" / "fixtures" / "golden" / "cdm"
EXP_DIR = GOLDEN_CDM / "checkpoints" / "pointmamba"  # holds model000100.pt directly (no ckpt/ subfolder)
NPZ_KEYS = ("contact_maps", "distances", "sample_ids", "names", "caption_indices", "captions")


class HashTextEncoder(nn.Module):
    """Deterministic stand-in for CLIP: a caption's sha256 seeds its `dim`-d feature vector."""
    name = "hash"

    def __init__(self, dim=512, table=None):
        super().__init__()
        self.dim, self.table = dim, dict(table or {})
        self.calls = 0

    def encode(self, captions):
        self.calls += 1
        rows = []
        for caption in captions:
            if caption in self.table:
                rows.append(torch.as_tensor(self.table[caption], dtype=torch.float32))
                continue
            seed = int.from_bytes(hashlib.sha256(caption.encode()).digest()[:8], "little")
            rows.append(torch.randn(self.dim, generator=torch.Generator().manual_seed(seed)))
        return torch.stack(rows)


class SlowHashTextEncoder(HashTextEncoder):
    """The stand-in encoder, 0.5 s per batch: gives a kill test time to land between two temp files."""

    def encode(self, captions):
        time.sleep(0.5)
        return super().encode(captions)


@pytest.fixture
def data_dir(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "data")
    return tmp_path / "data"


def make_module(rng="per_item", seed=1, encoder=None, **kwargs):
    loaded = load_cdm(EXP_DIR, text_feat_dim=512)
    settings = {"diffusion_steps": 20, "respacing": "ddim5", "method": "ddim", **kwargs}
    return ContactGenerationModule(loaded.model, encoder or HashTextEncoder(), seed=seed, rng=rng,
                                   checkpoint_path=str(loaded.path), **settings)


def run_job(data_dir, run_dir, batch_size=2, module=None, **writer_kwargs):
    datamodule = ContactDataModule(data_dir, run_dir, phase="train", captions="all", batch_size=batch_size,
                                   num_points=NUM_POINTS)
    writer = ContactMapWriter(run_dir, save_every_n_batches=1, **writer_kwargs)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, callbacks=[writer], enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False)
    trainer.predict(module or make_module(), datamodule=datamodule, return_predictions=False)
    return writer


def load_npz(run_dir):
    with np.load(Path(run_dir) / FINAL_FILE, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def assert_same_npz(a, b, atol=0.0):
    assert sorted(a) == sorted(b)
    for key in a:
        if a[key].dtype.kind == "f":
            np.testing.assert_allclose(a[key], b[key], atol=atol, rtol=0, err_msg=key)
        else:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_job_writes_temp_files_then_ordered_npz(data_dir, tmp_path):
    run_dir = tmp_path / "run"
    writer = run_job(data_dir, run_dir, keep_temp_files=True)
    assert writer.exit_code == 0
    temps = sorted(p.name for p in run_dir.glob("temp_batch_*.npz"))
    assert temps == [f"temp_batch_r0_{k:05d}.npz" for k in range(4)]  # 7 samples, batch 2, saved every batch
    out = load_npz(run_dir)
    assert set(out) == set(NPZ_KEYS)
    np.testing.assert_array_equal(out["sample_ids"], np.arange(7))
    assert out["contact_maps"].shape == out["distances"].shape == (7, NUM_POINTS, 6)
    assert out["contact_maps"].dtype == out["distances"].dtype == np.float32
    assert out["contact_maps"].min() >= 0 and out["contact_maps"].max() <= 1
    assert out["names"].dtype.kind == "U" and out["captions"].dtype.kind == "U"
    assert out["names"][0] == "000001-0" and out["caption_indices"].tolist()[:3] == [0, 1, 2]
    expected = np.sqrt(-2 * np.log(np.clip(out["contact_maps"], 1e-6, 1)) * 0.8 ** 2)
    np.testing.assert_allclose(out["distances"], expected, rtol=1e-5, atol=1e-5)
    info = (run_dir / "checkpoint_info.txt").read_text()
    assert "model000100.pt" in info and "dataset_size: 7" in info and "diffusion_steps: 20" in info


def test_temp_files_removed_and_stage2_export(data_dir, tmp_path):
    run_dir = tmp_path / "run"
    run_job(data_dir, run_dir, export_pred_contact=True, save_dir=tmp_path / "save")
    assert not list(run_dir.glob("temp_batch_*.npz"))
    out = load_npz(run_dir)
    for name, distance in zip(out["names"], out["distances"]):
        exported = np.load(tmp_path / "save" / "H3D" / "pred_contact" / f"{name}.npy")
        assert exported.shape == (1, NUM_POINTS, 6) and exported.dtype == np.float32
        np.testing.assert_array_equal(exported[0], distance)


def test_resume_from_temp_files_gives_the_same_npz(data_dir, tmp_path):
    first = tmp_path / "first"
    run_job(data_dir, first, keep_temp_files=True)
    reference = load_npz(first)
    # everything in temp files: nothing is generated again, the merge is redone
    (first / FINAL_FILE).unlink()
    module = make_module()
    run_job(data_dir, first, module=module, keep_temp_files=True)
    assert module.text_encoder.calls == 0
    assert_same_npz(load_npz(first), reference)
    # a run killed after two of its four temp files: the rest is generated, same result
    (first / FINAL_FILE).unlink()
    for path in sorted(first.glob("temp_batch_*.npz"))[2:]:
        path.unlink()
    run_job(data_dir, first)
    assert_same_npz(load_npz(first), reference)
    assert not list(first.glob("temp_batch_*.npz"))


def test_finished_run_refuses_resume(data_dir, tmp_path):
    run_job(data_dir, tmp_path / "run")
    with pytest.raises(RuntimeError, match="this run is finished"):
        run_job(data_dir, tmp_path / "run")


def test_per_item_results_do_not_depend_on_batch_size(data_dir, tmp_path):
    run_job(data_dir, tmp_path / "b1", batch_size=1)
    run_job(data_dir, tmp_path / "b3", batch_size=3)
    assert_same_npz(load_npz(tmp_path / "b1"), load_npz(tmp_path / "b3"), atol=1e-5)


def test_text_is_encoded_once_per_batch():
    module = make_module()
    module.set_stats(np.zeros((1, 6)), np.ones((1, 6)))
    module.sample(["a person walks", "a person sits"], torch.zeros(2, NUM_POINTS, 3), [0, 1])
    assert module.text_encoder.calls == 1


def test_reference_rng_matches_golden_sampling_case():
    with np.load(GOLDEN_CDM / "sampling_cases.npz") as c:
        case = {key: c[key] for key in c.files}
    encoder = HashTextEncoder(table={"first": case["c_text"][0], "second": case["c_text"][1]})
    module = make_module(rng="reference", seed=int(case["p_seed"]), encoder=encoder, method="ancestral",
                         respacing="")
    assert int(case["p_steps"]) == module.diffusion_steps == 20
    final = module.sample(["first", "second"], torch.from_numpy(case["c_pc_xyz"]), [0, 1])
    np.testing.assert_allclose(final.numpy(), case["p_final"], rtol=1e-3, atol=1e-3)


def test_missing_experiment_folder_says_what_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match="Pass exp_dir="):
        ContactGenerationModule.from_experiment(exp_dir=tmp_path / "nope", text_encoder=HashTextEncoder())


@pytest.mark.slow
def test_cli_two_ddp_processes_on_cpu(data_dir, tmp_path):
    """predict.py +experiment=cdm_stage1 with 2 CPU processes; the stand-in encoder comes in as a Hydra _target_."""
    run_dir = tmp_path / "cli_run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    command = [sys.executable, str(ROOT / "predict.py"), "+experiment=cdm_stage1", f"exp_dir={EXP_DIR}",
               f"data_dir={data_dir}", f"num_points={NUM_POINTS}", "captions=all", "batch_size=2",
               "save_every_n_batches=1", "seed=1", f"resume={run_dir}", "model.diffusion_steps=20",
               "model.respacing=ddim5", "model.method=ddim",
               "model.text_encoder={_target_:test_contact_job.HashTextEncoder,dim:512}",
               "trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp", "logger=null"]
    run_dir.mkdir()
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = load_npz(run_dir)
    np.testing.assert_array_equal(out["sample_ids"], np.arange(7))
    assert (run_dir / "train.log").is_file() and (run_dir / "checkpoint_info.txt").is_file()
    run_job(data_dir, tmp_path / "single")
    assert_same_npz(out, load_npz(tmp_path / "single"), atol=1e-5)


def test_missing_data_dir_says_what_to_pass(tmp_path):
    datamodule = ContactDataModule(tmp_path / "nope", tmp_path / "run", num_points=NUM_POINTS)
    with pytest.raises(FileNotFoundError, match="Pass data_dir="):
        datamodule.prepare_data()


def test_cdm_stage1_experiment_names():
    from hydra import compose, initialize_config_dir

    from motiondata.runtime import register_resolvers

    register_resolvers()
    overrides = ["+experiment=cdm_stage1", "model=cdm", "exp_dir=/e", "ckpt=/e/ckpt/model000100.pt", "exp_name=x", "data_dir=/d",
                 "model.arch=Perceiver", "batch_size=4", "save_every_n_batches=3", "phase=test", "limit=5",
                 "seed=7", "gpu=0", "logger=null"]
    with initialize_config_dir(str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("predict", overrides=overrides)
    assert cfg.model.exp_dir == "/e" and cfg.model.ckpt.endswith("model000100.pt") and cfg.model.arch == "Perceiver"
    assert cfg.data.data_dir == "/d" and cfg.data.batch_size == 4 and cfg.data.phase == "test"
    assert cfg.data.limit == 5 and cfg.model.seed == 7 and cfg.gpu == 0 and cfg.resume == "auto"
    assert cfg.callbacks.contact_writer.save_every_n_batches == 3
    assert cfg.model.diffusion_steps is None and cfg.model.method == "ancestral"  # the fork's 500-step chain


def test_gpu_shorthand_and_run_folder(tmp_path):
    from omegaconf import OmegaConf

    from motiondata.runtime import apply_gpu_shorthand, run_folder

    def trainer_for(gpu):
        cfg = OmegaConf.create({"gpu": gpu, "trainer": {"accelerator": "auto", "devices": "auto", "strategy": "ddp"}})
        apply_gpu_shorthand(cfg)
        return cfg.trainer

    assert trainer_for(None).accelerator == "cpu" and trainer_for(None).devices == 1
    assert list(trainer_for(0).devices) == [0] and trainer_for(0).strategy == "auto"
    assert list(trainer_for([0, 1]).devices) == [0, 1] and trainer_for([0, 1]).strategy == "ddp"
    assert trainer_for("auto").devices == "auto"
    new = run_folder(None, "exp", root=str(tmp_path))
    stamp = new.split("/")[-1][len("train-"):]
    assert new == f"{tmp_path}/{stamp}_exp/train-{stamp}"
    older, newer = tmp_path / "2026-01-01_00-00-00_exp/train-a", tmp_path / "2026-01-02_00-00-00_exp/train-b"
    for folder in (older, newer):
        folder.mkdir(parents=True)
        (folder / "work_list.json").write_text("{}")
    (newer / FINAL_FILE).write_text("")  # finished
    assert run_folder("latest", "exp", root=str(tmp_path)) == str(older)
    assert run_folder(str(newer), "exp") == str(newer)


def test_streamed_npz_reads_back_and_renders(tmp_path):
    from motiondata.contact_render import render_contact_png
    from motiondata.npz_stream import NpzStreamWriter, read_first_rows

    rows = np.random.default_rng(0).random((7, NUM_POINTS, 6)).astype(np.float32)
    with NpzStreamWriter(tmp_path / "a.npz") as npz:
        npz.write_rows("maps", rows.shape, np.float32, [rows[:3], rows[3:]])
        npz.write_array("names", np.array(["x", "yy"]))
    with np.load(tmp_path / "a.npz", allow_pickle=False) as data:
        np.testing.assert_array_equal(data["maps"], rows)
        assert data["names"].tolist() == ["x", "yy"]
    np.testing.assert_array_equal(read_first_rows(tmp_path / "a.npz", "maps", 2), rows[:2])
    render_contact_png(rows[0, :, :3], rows[0], "a person sits", tmp_path / "a.png")
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"


def test_auto_resume_picks_the_same_commands_unfinished_run(tmp_path):
    from motiondata.runtime import run_folder

    def started(name, overrides, finished=False):
        run = tmp_path / name
        (run / ".hydra").mkdir(parents=True)
        (run / "work_list.json").write_text("{}")
        (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
        if finished:
            (run / FINAL_FILE).write_text("")
        return str(run)

    older = started("2026-01-01_00-00-00_exp/train-a", ["+experiment=cdm_stage1", "limit=4"])
    other = started("2026-01-02_00-00-00_exp/train-b", ["+experiment=cdm_stage1", "limit=5"])
    started("2026-01-03_00-00-00_exp/train-c", ["+experiment=cdm_stage1", "limit=4"], finished=True)
    assert run_folder("auto", "exp", str(tmp_path), ["limit=4", "+experiment=cdm_stage1", "resume=auto"]) == older
    assert run_folder("auto", "exp", str(tmp_path), ["+experiment=cdm_stage1", "limit=5"]) == other
    new = run_folder("auto", "exp", str(tmp_path), ["+experiment=cdm_stage1", "limit=6"])
    assert new.startswith(str(tmp_path)) and not Path(new).exists()
    assert run_folder("latest", "exp", str(tmp_path)) == other


@pytest.mark.slow
def test_sigkill_then_the_same_command_resumes_to_the_uninterrupted_result(data_dir, tmp_path):
    """Kill -9 the CLI after its first temp file, re-run the same command: it finds its run folder (resume=auto),
    leaves the finished samples alone and ends with the NPZ of an uninterrupted run; no partial file is left."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    command = [sys.executable, str(ROOT / "predict.py"), "+experiment=cdm_stage1", f"exp_dir={EXP_DIR}",
               f"data_dir={data_dir}", f"num_points={NUM_POINTS}", "captions=all", "batch_size=1",
               "save_every_n_batches=1", "seed=1", "model.diffusion_steps=20", "model.respacing=ddim5",
               "model.method=ddim", "model.text_encoder={_target_:test_contact_job.SlowHashTextEncoder,dim:512}",
               "gpu=null", "logger=null"]
    work = tmp_path / "work"
    work.mkdir()
    process = subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while not list(work.glob("outputs/*_cdm_stage1/train-*/temp_batch_*.npz")) and time.time() < deadline:
            assert process.poll() is None, "the job ended before its first temp file"
            time.sleep(0.05)
    finally:
        process.kill()
        process.wait()
    (run_dir,) = [p.parent for p in work.glob("outputs/*_cdm_stage1/train-*/work_list.json")]
    assert not (run_dir / FINAL_FILE).exists()
    before = {p.name: p.stat().st_mtime_ns for p in run_dir.glob("temp_batch_*.npz")}
    assert before and not list(run_dir.glob("*.tmp*"))

    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert len(list(work.glob("outputs/*_cdm_stage1/train-*"))) == 1  # resumed, not a new run
    run_job(data_dir, tmp_path / "uninterrupted")
    assert_same_npz(load_npz(run_dir), load_npz(tmp_path / "uninterrupted"), atol=1e-5)
