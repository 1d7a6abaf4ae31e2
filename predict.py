"""Data-set generation with trained models: `python predict.py +experiment=pose10k` (or cdm_stage1).

Builds the datamodule, the LightningModule, the writer callbacks, the logger and the Trainer from the
Hydra config and runs `trainer.predict` (DDP shards the data); the writer callbacks own all output files.
"""
import os
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from motiondata.runtime import register_resolvers, resolve_devices

register_resolvers()


def keep_wandb_files_in_run_dir():
    """W&B's cache/config/artifact folders default to the home folder; keep every file inside the run."""
    run_dir = HydraConfig.get().runtime.output_dir
    for variable in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        os.environ.setdefault(variable, os.path.join(run_dir, "wandb", "home"))


def build_callbacks(cfg):
    return [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]


@hydra.main(version_base="1.3", config_path="configs", config_name="predict")
def main(cfg: DictConfig) -> int:
    if cfg.get("data") is None or cfg.get("model") is None:
        raise SystemExit("choose an experiment: python predict.py +experiment=pose10k (or +experiment=cdm_stage1)")
    message = resolve_devices(cfg.trainer)
    if message:
        print(message)
    keep_wandb_files_in_run_dir()
    datamodule = instantiate(cfg.data)
    module = instantiate(cfg.model)
    callbacks = build_callbacks(cfg)
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger)
    if logger:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    trainer.predict(module, datamodule=datamodule, return_predictions=False)
    return max([getattr(c, "exit_code", 0) for c in callbacks] + [0])


if __name__ == "__main__":
    sys.exit(main())
