"""Training: `python train.py +experiment=<name>` (Lightning trainer.fit; DDP-ready; resumable with ckpt_path=).

The experiments train MARDM's AE, then MARDM on frozen AE latents, and export the original on-disk formats
(see callbacks/reference_export.py) that predict.py and the reference code load.
"""
import sys
import time

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf

from motiondata.runtime import build_run, register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> int:
    L.seed_everything(cfg.seed, workers=True)
    datamodule, module, callbacks, _, trainer = build_run(cfg, "python train.py +experiment=mardm_ae_synth")
    start = time.time()
    # a run's own checkpoints keep the Hydra config (DictConfig) in their hyper-parameters: not weights-only
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=False)
    if trainer.is_global_zero:
        config = OmegaConf.to_container(cfg, resolve=True)
        data_info = getattr(datamodule, "data_info", None)
        for callback in callbacks:
            if hasattr(callback, "write_manifest"):
                callback.write_manifest(config, time.time() - start, trainer.callback_metrics, data_info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
