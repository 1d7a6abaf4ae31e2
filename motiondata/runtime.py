"""Run-time helpers shared by predict.py and train.py: config resolvers and device fallback."""
from pathlib import Path

from omegaconf import OmegaConf, open_dict

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def register_resolvers():
    """`${project_root:}` = the folder holding predict.py (bundled checkpoints and data live under it);
    `${if_null:${cfg},2.0}` = cfg unless it is null, else 2.0 (a model config's own default for a top-level key)."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))
    if not OmegaConf.has_resolver("if_null"):
        OmegaConf.register_new_resolver("if_null", lambda value, fallback: fallback if value is None else value)
    if not OmegaConf.has_resolver("run_folder"):
        OmegaConf.register_new_resolver("run_folder", run_folder)


def compose_predict(experiment, overrides=()):
    """The resolved predict.py config of `+experiment=<experiment>` with `overrides`, as the command line builds
    it (for scripts that sample through an experiment's model config without running the job)."""
    from hydra import compose, initialize_config_dir

    register_resolvers()
    with initialize_config_dir(str(PROJECT_ROOT / "configs"), version_base="1.3"):
        return compose("predict", overrides=[f"+experiment={experiment}", *overrides])


def run_folder(resume, exp_name, root="outputs", overrides=None):
    """`${run_folder:${resume},${exp_name}}`: the run folder of a job with resumable runs (cdm_stage1).

    resume=auto (the default): the newest unfinished run of exp_name started by the same command (the same
    command-line overrides, resume= aside, as recorded in its .hydra/overrides.yaml), else a new folder;
    resume=null: a new folder {root}/{timestamp}_{exp_name}/train-{timestamp}; resume=latest: the newest unfinished
    run of exp_name, whatever its command; resume=PATH: that folder. Unfinished: a work list but no final
    generated_contact_maps.npz."""
    import time

    if str(resume) == "auto":
        command = without_resume(overrides if overrides is not None else current_overrides())
        same_command = [run for run in unfinished_runs(exp_name, root) if recorded_overrides(run) == command]
        if same_command:
            return str(same_command[-1])
        resume = None
    if resume is None or str(resume) == "":
        stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
        return f"{root}/{stamp}_{exp_name}/train-{stamp}"
    if str(resume) != "latest":
        if not Path(resume).is_dir():
            raise FileNotFoundError(f"resume={resume}: no such run folder; pass an existing run folder, "
                                    "resume=latest, resume=auto, or resume=null for a new run")
        return str(resume)
    unfinished = unfinished_runs(exp_name, root)
    if not unfinished:
        raise FileNotFoundError(f"resume=latest: no unfinished run of exp_name={exp_name!r} under {root}/; "
                                "drop resume= to start a new run")
    return str(unfinished[-1])


def unfinished_runs(exp_name, root):
    runs = sorted(Path(root).glob(f"*_{exp_name}/train-*"), key=lambda p: p.name)
    return [p for p in runs if (p / "work_list.json").exists() and not (p / "generated_contact_maps.npz").exists()]


def without_resume(overrides):
    return sorted(o for o in overrides if not o.lstrip("+~").startswith("resume="))


def current_overrides():
    """This command's command-line overrides (empty outside a Hydra app)."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def recorded_overrides(run):
    """The command-line overrides a run folder was started with (None when it has no .hydra/overrides.yaml)."""
    path = Path(run) / ".hydra" / "overrides.yaml"
    return without_resume(OmegaConf.load(path)) if path.is_file() else None


def apply_gpu_shorthand(cfg):
    """`gpu=0` -> one GPU (device 0), `gpu=[0,1]` -> those GPUs with DDP, `gpu=null` -> the CPU with one process;
    `gpu=auto` (or no `gpu` key) leaves trainer.* as configured."""
    if "gpu" not in cfg or str(cfg.get("gpu")) == "auto":
        return
    gpu, trainer = cfg.gpu, cfg.trainer
    with open_dict(trainer):
        if gpu is None:
            trainer.accelerator, trainer.devices, trainer.strategy = "cpu", 1, "auto"
            return
        devices = [int(d) for d in gpu] if OmegaConf.is_list(gpu) or isinstance(gpu, (list, tuple)) else [int(gpu)]
        trainer.accelerator, trainer.devices = "gpu", devices
        trainer.strategy = "ddp" if len(devices) > 1 else "auto"


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
    apply_gpu_shorthand(cfg)
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
    for callback in callbacks:
        if hasattr(callback, "set_run_config"):
            callback.set_run_config(OmegaConf.to_yaml(cfg, resolve=True))
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger)
    if logger:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    return datamodule, module, callbacks, logger, trainer
