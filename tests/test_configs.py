"""Every experiment composes, and the config names the issue promises exist."""
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from motiondata.runtime import register_resolvers, resolve_devices

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
register_resolvers()


def compose_config(name, overrides):
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        return compose(name, overrides=overrides)


def test_pose10k_experiment_names():
    cfg = compose_config("predict", ["+experiment=pose10k", "captions=x.txt", "limit=3", "logger=null"])
    assert cfg.output_dir == "SinglePose" and cfg.temp_dir == "SinglePose_temp"
    assert cfg.data.limit == 3 and cfg.data.captions == "x.txt" and cfg.logger is None
    assert list(cfg.trainer.devices) == [1, 2, 3] and cfg.trainer.strategy == "ddp"
    for key in ("seed", "batch_size", "sequence_length", "frame_index", "time_steps", "cfg"):
        assert key in cfg
    assert cfg.model.time_steps == 18 and cfg.model.frame_index == -1
    assert cfg.cfg is None and cfg.model.cfg == 2.0 == cfg.data.job.cfg  # the bundled model's own guidance
    assert cfg.model.solver != "dopri5"  # the bundled default is reproducible across devices
    assert Path(cfg.model.checkpoints_dir).parts[-3:] == ("ckpt", "mardm_minilm", "checkpoints")


@pytest.mark.parametrize("model", ["mardm_sit_xl", "mardm_ddpm_xl"])
def test_real_checkpoint_model_configs(model):
    cfg = compose_config("predict", ["+experiment=pose10k", f"model={model}", "model.checkpoints_dir=/ck",
                                     "model.clip_weights=/w.pt"])
    assert cfg.model.text_encoder == "clip" and cfg.model.clip_weights == "/w.pt"
    assert cfg.model.solver == "dopri5" and cfg.model.mardm_arch.startswith("MARDM-")
    assert cfg.model.dataset_dir == "/ck/../datasets/HumanML3D"
    assert cfg.model.cfg == 4.5  # MARDM's evaluation value for the released models


@pytest.mark.parametrize("model", ["mardm_default", "mardm_sit_xl"])
def test_top_level_cfg_overrides_the_model_default(model):
    cfg = compose_config("predict", ["+experiment=pose10k", f"model={model}", "cfg=3.5"])
    assert cfg.model.cfg == 3.5 == cfg.data.job.cfg


@pytest.mark.parametrize("experiment,export,overrides", [
    ("mardm_ae_synth", "model/latest.tar", []),
    ("mardm_synth", "model/latest.tar", []),
    ("cdm_synth", "ckpt/model{step:06d}.pt", []),
    ("mardm_ae_h3d", "t2m/AE/model/latest.tar", ["data.root=/h", "bundle_dir=/b"]),
    ("mardm_h3d", "t2m/MARDM_SiT_XL/model/latest.tar", ["data.root=/h", "bundle_dir=/b", "model.text_encoder.weights=/w"]),
    ("cdm_h3d", "/e/ckpt/model{step:06d}.pt", ["data.data_dir=/d", "exp_dir=/e", "model.text_encoder.weights=/w"]),
])
def test_training_experiments_compose(experiment, export, overrides):
    cfg = compose_config("train", [f"+experiment={experiment}", *overrides])
    OmegaConf.resolve(cfg.data)
    assert cfg.callbacks.reference_export.path.endswith(export)
    if experiment.endswith("_h3d"):  # the real-data experiments: reference sizes, CLIP text, no generated data
        assert cfg.data.get("synth_seed") is None
        if experiment != "mardm_ae_h3d":
            assert cfg.model.text_encoder.kind == "clip"
        if experiment.startswith("mardm"):
            assert cfg.arch.mardm == "MARDM-SiT-XL" and cfg.arch.ae == "AE_Model"
        else:
            assert cfg.model.arch_cfg.trans_dim == 256 and cfg.model.time_emb_dim == 128


def test_cdm_stage1_defaults_to_the_bundled_cdm_and_generated_corpus():
    cfg = compose_config("predict", ["+experiment=cdm_stage1", "logger=null"])
    assert Path(cfg.model.exp_dir).parts[-2:] == ("ckpt", "cdm_pointmamba") and cfg.model.text_encoder == "minilm"
    assert Path(cfg.data.data_dir) == Path(cfg.data.synth_dir) and cfg.resume == "auto"
    real = compose_config("predict", ["+experiment=cdm_stage1", "model=cdm", "model.clip_weights=/w.pt"])
    assert real.model.text_encoder == "clip" and real.model.method == "ancestral" and real.model.respacing == ""


def test_device_fallback_says_so_in_one_line():
    cfg = OmegaConf.create({"accelerator": "gpu", "devices": [1, 2, 3], "strategy": "ddp"})
    message = resolve_devices(cfg, cuda_count=0)
    assert "Requested GPUs [1, 2, 3]" in message and "\n" not in message
    assert cfg.accelerator == "cpu" and cfg.devices == 1 and cfg.strategy == "auto"
    cfg = OmegaConf.create({"accelerator": "gpu", "devices": [1, 2, 3], "strategy": "ddp"})
    resolve_devices(cfg, cuda_count=2)
    assert list(cfg.devices) == [0, 1] and cfg.strategy == "ddp"
    cfg = OmegaConf.create({"accelerator": "gpu", "devices": [1, 2, 3], "strategy": "ddp"})
    assert resolve_devices(cfg, cuda_count=4) is None and list(cfg.devices) == [1, 2, 3]
    cpu = OmegaConf.create({"accelerator": "cpu", "devices": 2, "strategy": "ddp"})
    assert resolve_devices(cpu, cuda_count=0) is None and cpu.devices == 2
