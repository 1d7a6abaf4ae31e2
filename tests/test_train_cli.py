"""`python train.py` for both MARDM stages on a tiny generated corpus: reference-format exports + manifest."""
import json
import subprocess
import sys
from pathlib import Path

import torch

from models.mardm_checkpoints import load_mardm
from motiondata.synth.corpus import write_corpus

ROOT = Path(__file__).resolve().parents[1]


def train(tmp_path, experiment, corpus, bundle):
    command = [sys.executable, str(ROOT / "train.py"), f"+experiment={experiment}", f"data.root={corpus}",
               f"bundle_dir={bundle}", "logger=null", "data.num_workers=0", "data.batch_size=8",
               "trainer.max_epochs=1", "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1",
               "+trainer.enable_progress_bar=false", f"hydra.run.dir={tmp_path / 'runs' / experiment}"]
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
