"""Data-set generation with trained models: `python predict.py +experiment=pose10k` (or cdm_stage1).

Builds the datamodule, the LightningModule, the writer callbacks, the logger and the Trainer from the
Hydra config and runs `trainer.predict` (DDP shards the data); the writer callbacks own all output files.
The exit status is the writers' (0: every item done; see the README for the others).
"""
import sys

import hydra
from omegaconf import DictConfig

from motiondata.runtime import build_run, register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path="configs", config_name="predict")
def main(cfg: DictConfig) -> int:
    datamodule, module, callbacks, _, trainer = build_run(cfg, "python predict.py +experiment=pose10k  (or +experiment=cdm_stage1)")
    trainer.predict(module, datamodule=datamodule, return_predictions=False)
    return max([getattr(c, "exit_code", 0) for c in callbacks] + [0])


if __name__ == "__main__":
    sys.exit(main())
