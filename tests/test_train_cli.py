"""`python train.py` for both MARDM stages on a tiny generated corpus: reference-format exports + manifest."""
import json
import subprocess
import sys
from pathlib import Path

import torch

from models.mardm_checkpoints import load_mardm
from motiondata.synth.corpus import write_corpus

ROOT = Path(__file__).resolve().parents[1]


def train(tmp_path, experiment, corpus, bundle, *overrides):
    command = [sys.executable, str(ROOT / "train.py"), f"+experiment={experiment}", f"data.root={corpus}",
               f"bundle_dir={bundle}", "logger=null", "data.num_workers=0", "data.batch_size=8",
               "trainer.max_epochs=1", "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1",
               "+trainer.enable_progress_bar=false", f"hydra.run.dir={tmp_path / 'runs' / experiment}", *overrides]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_train_both_stages_and_load_the_exports(tmp_path):
    corpus, bundle = tmp_path / "corpus", tmp_path / "bundle"
    write_corpus(corpus, seed=0, clips_per_family=2)
    train(tmp_path, "mardm_ae_synth", corpus, bundle)
    train(tmp_path, "mardm_synth", corpus, bundle)
    from omegaconf import OmegaConf
    arch = OmegaConf.to_container(OmegaConf.load(ROOT / "configs" / "arch" / "mardm_small.yaml"))
    networks = load_mardm(bundle / "checkpoints", "MARDM_MiniLM", "AE_MiniLM", mardm_arch=arch["mardm"],
                          ae_arch=arch["ae"], mean_path=bundle / "HumanML3D" / "Mean.npy",
                          std_path=bundle / "HumanML3D" / "Std.npy")
    assert networks.mean.shape == (67,)
    exported = torch.load(bundle / "checkpoints/t2m/MARDM_MiniLM/model/latest.tar", weights_only=True)
    assert set(exported) == {"mardm", "ema_mardm", "ep", "total_it"} and exported["total_it"] == 2
    manifest = json.loads((bundle / "manifest.json").read_text())
    for name in ("AE_MiniLM", "MARDM_MiniLM"):
        entry = manifest[f"checkpoints/t2m/{name}/model/latest.tar"]
        assert entry["command"].startswith("python") and len(entry["sha256"]) == 64
        assert "val/loss" in entry["final_metrics"] and entry["data"]["generator_version"]

    # resuming from the run's Lightning checkpoint continues where it stopped (optimizer, step count, EMA)
    last = tmp_path / "runs" / "mardm_synth" / "checkpoints" / "last.ckpt"
    train(tmp_path, "mardm_synth", corpus, bundle, "trainer.max_epochs=2", f"ckpt_path={last}")
    exported = torch.load(bundle / "checkpoints/t2m/MARDM_MiniLM/model/latest.tar", weights_only=True)
    assert exported["total_it"] == 4 and exported["ep"] == 2
    first_run = manifest["checkpoints/t2m/MARDM_MiniLM/model/latest.tar"]
    entry = json.loads((bundle / "manifest.json").read_text())["checkpoints/t2m/MARDM_MiniLM/model/latest.tar"]
    assert [run["command"] for run in entry["earlier_runs"]] == [first_run["command"]]
    assert entry["training_seconds"] == round(entry["run_seconds"] + first_run["training_seconds"], 1)
    assert f"ckpt_path={last}" in entry["command"]

    # the bundled default trains on whitened MiniLM features and exports them folded into cond_emb
    state = torch.load(last, weights_only=False)["state_dict"]
    assert not torch.allclose(state["text_whitening"], torch.eye(len(state["text_whitening"])))
    torch.testing.assert_close(exported["mardm"]["cond_emb.weight"],
                               state["mardm.cond_emb.weight"] @ state["text_whitening"])


def test_train_full_size_cdm_for_two_steps_and_load_the_export(tmp_path):
    """The fork's full-size PointMamba CDM (trans_dim 256, depth 8, time 128) on a tiny generated contact corpus
    (64 of each cloud's points, to stay fast): the flat model{step:06d}.pt export loads with the predict loader."""
    from models.cdm_checkpoints import load_cdm
    from motiondata.synth.scenes import write_contact_corpus

    corpus, bundle = tmp_path / "contacts", tmp_path / "cdm_bundle"
    write_contact_corpus(corpus, seed=0, scenes_per_kind=2)
    command = [sys.executable, str(ROOT / "train.py"), "+experiment=cdm_synth", f"data.data_dir={corpus}",
               f"bundle_dir={bundle}", "logger=null", "data.batch_size=2", "data.train_points=64",
               "model.arch_cfg.trans_dim=256", "model.arch_cfg.depth=8", "model.arch_cfg.last_dim=256",
               "model.time_emb_dim=128", "trainer.max_epochs=1", "+trainer.limit_train_batches=2",
               "+trainer.limit_val_batches=1", "+trainer.enable_progress_bar=false",
               f"hydra.run.dir={tmp_path / 'runs' / 'cdm'}"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    exports = sorted((bundle / "ckpt").glob("model*.pt"))
    assert [p.name for p in exports] == ["model000002.pt"]  # the epoch-end export replaced by the final one
    loaded = load_cdm(bundle, text_feat_dim=384)
    assert loaded.config["arch_cfg"] == {"trans_dim": 256, "depth": 8, "last_dim": 256}
    assert loaded.config["time_emb_dim"] == 128
    entry = json.loads((bundle / "manifest.json").read_text())["ckpt/model000002.pt"]
    assert "train/loss" in entry["final_metrics"] and entry["data"]["generator_version"].startswith("motiondata.synth.scenes")


def test_train_full_size_ae_for_two_steps_on_the_generated_corpus(tmp_path):
    """mardm_ae_h3d (the reference AE_Model, 512 wide) on the tiny generated corpus; the export loads strictly.
    (The full-size MARDM-SiT-XL stage is exercised by benchmarks/train_throughput.py --full-size: its 2.3 GB export
    is too big for the test machine.)"""
    from models.mardm_checkpoints import load_ae

    corpus, bundle = tmp_path / "corpus", tmp_path / "bundle"
    write_corpus(corpus, seed=0, clips_per_family=2)
    command = [sys.executable, str(ROOT / "train.py"), "+experiment=mardm_ae_h3d", f"data.root={corpus}",
               f"bundle_dir={bundle}", "logger=null", "data.num_workers=0", "data.batch_size=4", "data.min_len=16",
               "data.window_size=16", "trainer.max_epochs=1", "+trainer.limit_train_batches=2",
               "+trainer.limit_val_batches=1", "+trainer.enable_progress_bar=false",
               f"hydra.run.dir={tmp_path / 'runs'}"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ae = load_ae(bundle / "checkpoints/t2m/AE/model/latest.tar", "AE_Model")
    assert sum(p.numel() for p in ae.parameters()) > 10_000_000  # the reference size, not the bundled small one
