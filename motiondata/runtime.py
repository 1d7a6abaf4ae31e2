"""Run-time helpers shared by predict.py and train.py: config resolvers and device fallback."""
from pathlib import Path

from omegaconf import OmegaConf, open_dict

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def register_resolvers():
    """`${project_root:}` = the folder holding predict.py (bundled checkpoints and data live under it)."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))


def resolve_devices(trainer_cfg, cuda_count=None):
    """Keeps the requested GPUs if they exist; otherwise says so in one line and uses what there is:
    all visible GPUs, else the CPU with one process. Returns the message (None if nothing changed)."""
    import torch

    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    if accelerator not in ("gpu", "cuda", "auto"):
        return None
    cuda_count = torch.cuda.device_count() if cuda_count is None else cuda_count
    devices = trainer_cfg.get("devices", "auto")
    requested = list(devices) if OmegaConf.is_list(devices) or isinstance(devices, (list, tuple)) else None
    if requested is not None and all(0 <= int(d) < cuda_count for d in requested):
        return None
    if requested is None and (accelerator == "auto" or cuda_count > 0):
        return None
    with open_dict(trainer_cfg):
        if cuda_count > 0:
            trainer_cfg.accelerator, trainer_cfg.devices = "gpu", list(range(cuda_count))
            where = f"the {cuda_count} visible GPU(s) {list(range(cuda_count))}"
        else:
            trainer_cfg.accelerator, trainer_cfg.devices = "cpu", 1
            where = "the CPU with 1 process"
        if trainer_cfg.devices == 1 or trainer_cfg.devices == [0]:
            trainer_cfg.strategy = "auto"
    return (f"Requested GPUs {requested if requested is not None else devices} but this machine has "
            f"{cuda_count} visible CUDA device(s): running on {where} instead.")


def build_run(cfg, usage):
    """Everything a run needs, from the composed config: (datamodule, module, callbacks, logger, trainer)."""
    import os

    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    if cfg.get("data") is None or cfg.get("model") is None:
        raise SystemExit(f"choose an experiment: {usage}")
    message = resolve_devices(cfg.trainer)
    if message:
        print(message)
    # W&B's cache/config folders default to the home folder: keep every file of the run inside the run folder
    run_dir = HydraConfig.get().runtime.output_dir
    for variable in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        os.environ.setdefault(variable, os.path.join(run_dir, "wandb", "home"))
    datamodule = instantiate(cfg.data)
    module = instantiate(cfg.model)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger)
    if logger:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    return datamodule, module, callbacks, logger, trainer
