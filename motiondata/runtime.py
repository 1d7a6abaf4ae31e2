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
