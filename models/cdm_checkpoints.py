"""afford-motion CDM checkpoints as its TrainLoop writes them:

    <exp_dir>/ckpt/model{step:06d}.pt    flat {name: tensor} = CDM.state_dict() without CLIP / scene-model keys;
                                          every key prefixed `module.` when trained with train_ddp.py
    <exp_dir>/ckpt/opt.pt                optimizer state (ignored)

The architecture sizes are read from the tensor shapes; values given explicitly must agree with them. What the
file does not record (diffusion steps, sigma, text length...) comes back as `CdmSettings`, the fork's script values.
"""
import re
from dataclasses import dataclass, field
from pathlib import Path

from models.cdm import CDM
from models.checkpoints import CheckpointError, load_file, load_strict
from models.contact import CONTACT_JOINTS

WHAT = "CDM checkpoint"
FROZEN_ENCODER_KEYS = ("scene_model", "clip_model", "text_model", "bert_model")  # never saved by the reference


@dataclass(frozen=True)
class CdmSettings:
    """Settings a CDM checkpoint does not carry; defaults are the fork's H3D scripts' values (must match training)."""
    diffusion_steps: int = 500
    noise_schedule: str = "cosine"
    timestep_respacing: str = ""
    sigma: float = 0.8
    text_max_length: int = 20
    clip_version: str = "ViT-B/32"
    contact_joints: tuple = CONTACT_JOINTS
    clip_denoised: bool = False


@dataclass
class LoadedCdm:
    model: CDM
    path: Path
    config: dict  # the CDM constructor arguments used: arch, contact_dim, text_feat_dim, ..., arch_cfg
    settings: CdmSettings = field(default_factory=CdmSettings)


def natural_key(path):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", Path(path).name)]


def find_checkpoint(path):
    """A checkpoint file as is; for a folder the latest model*.pt (natural sort) in <path>/ckpt, else in <path>."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise CheckpointError(f"{WHAT}: {path} not found. Give the experiment folder (holding ckpt/model*.pt) or a "
                              "checkpoint file.")
    folder = path / "ckpt" if (path / "ckpt").is_dir() else path
    candidates = sorted(folder.glob("model*.pt"), key=natural_key)
    if not candidates:
        raise CheckpointError(f"{WHAT}: no model*.pt in {folder}. Give the experiment folder (holding ckpt/) or "
                              "the checkpoint file itself.")
    return candidates[-1]


def read_state(path):
    """The file's {name: tensor} with any DDP `module.` prefix removed and frozen-encoder keys dropped."""
    checkpoint = load_file(path, WHAT)
    if not isinstance(checkpoint, dict) or not all(hasattr(v, "shape") for v in checkpoint.values()):
        raise CheckpointError(f"{WHAT}: {path} is not a flat {{name: tensor}} dict as afford-motion's TrainLoop "
                              "saves it (a Lightning .ckpt or optimizer file?). Point to ckpt/model*.pt.")
    state = {}
    for key, value in checkpoint.items():
        key = key[len("module."):] if key.startswith("module.") else key
        if not any(part in key for part in FROZEN_ENCODER_KEYS):
            state[key] = value
    return state


def detect_arch(state, path):
    keys = list(state)
    def has(prefix):
        return any(k.startswith(prefix) for k in keys)
    if has("contact_model.blocks.") or has("contact_model.output_proj."):
        raise CheckpointError(
            f"{WHAT}: {path} has contact_model.blocks.* / contact_model.output_proj.* keys: it comes from the "
            "deleted PointMamba variant (models/cdm-pointMamba.py or PointMambaUNet, MixerModel blocks over 2N "
            "tokens), not the fork's ContactPointMamba (contact_model.layers.*). It cannot be loaded; use a "
            "checkpoint trained with the fork's HEAD code.")
    if has("contact_model.layers.") and has("contact_model.embedding.net."):
        return "PointMamba"
    if has("contact_model.encoder_cross_attn."):
        return "Perceiver"
    unsupported = {"contact_model.point_mlp.": "MLP", "contact_model.cond_proj.": "HybridMamba",
                   "contact_model.scan_fusion.": "HybridMamba", "contact_model.enc1.": "PointTrans"}
    for prefix, name in unsupported.items():
        if has(prefix):
            raise CheckpointError(f"{WHAT}: {path} is a CDM with the {name!r} arch ({prefix}* keys), which this "
                                  "port does not implement; only 'PointMamba' and 'Perceiver' are supported.")
    first = [k for k in keys if k.startswith("contact_model.")][:5]
    raise CheckpointError(f"{WHAT}: {path} does not look like an afford-motion CDM (contact_model keys: {first}).")


def _dim(state, key, axis, path):
    """(size of `key` along `axis`, evidence text for error messages)."""
    if key not in state:
        raise CheckpointError(f"{WHAT}: {path} lacks {key!r}, which every CDM of this arch has. Is the file "
                              "complete and from afford-motion's CDM?")
    return state[key].shape[axis], f"{key} {list(state[key].shape)}"


def _count(state, prefix):
    """Number of numbered children under `prefix` (e.g. layers), with its evidence text."""
    count = len({k[len(prefix):].split(".")[0] for k in state if k.startswith(prefix)})
    return count, f"{count} x {prefix}*"


def infer_sizes(state, arch, path, text_feat_dim=512, point_pos_emb=True):
    """{name: (value, evidence)} for every size the shapes determine; arch_cfg entries are named 'arch_cfg.<key>'."""
    def dim(key, axis):
        return _dim(state, key, axis, path)

    contact_dim, last_dim = dim("contact_layer.weight", 0), dim("contact_layer.weight", 1)
    time_emb_dim = dim("timestep_embedder.time_embed.0.weight", 1)
    cm = "contact_model."
    sizes = {"contact_dim": contact_dim, "time_emb_dim": time_emb_dim}
    if arch == "PointMamba":
        in_channels, evidence = dim(cm + "embedding.net.0.weight", 1)
        point_feat_dim = in_channels - contact_dim[0] - time_emb_dim[0] - 3 - text_feat_dim
        if point_feat_dim < 0:
            raise CheckpointError(f"{WHAT}: {path}: {evidence} has fewer input columns than contact {contact_dim[0]}"
                                  f" + text {text_feat_dim} + time {time_emb_dim[0]} + xyz 3. Is text_feat_dim right?")
        sizes["point_feat_dim"] = (point_feat_dim, evidence)
        sizes["arch_cfg.trans_dim"] = dim(cm + "embedding.net.2.weight", 0)
        sizes["arch_cfg.depth"] = _count(state, cm + "layers.")
        sizes["arch_cfg.last_dim"] = last_dim
        return sizes
    # Perceiver
    q_channels, decoder_q = dim(cm + "language_adapter.weight", 0), dim(cm + "decoder_adapter.weight", 0)
    point_channels, evidence = dim(cm + "encoder_adapter.weight", 1)
    encoder_mlp = dim(cm + "encoder_cross_attn.1.module.1.weight", 0)
    decoder_mlp = dim(cm + "decoder_cross_attn.1.module.1.weight", 0)
    sizes["text_feat_dim"] = dim(cm + "language_adapter.weight", 1)
    sizes["point_feat_dim"] = (point_channels - contact_dim[0] - (3 if point_pos_emb else 0), evidence)
    sizes.update({
        "arch_cfg.encoder_q_input_channels": q_channels,
        "arch_cfg.encoder_kv_input_channels": dim(cm + "encoder_adapter.weight", 0),
        "arch_cfg.encoder_widening_factor": (encoder_mlp[0] // q_channels[0], encoder_mlp[1]),
        "arch_cfg.encoder_self_attn_num_layers": _count(state, cm + "encoder_self_attn."),
        "arch_cfg.decoder_q_input_channels": decoder_q,
        "arch_cfg.decoder_kv_input_channels": dim(cm + "decoder_cross_attn.0.module.kv_norm.weight", 0),
        "arch_cfg.decoder_widening_factor": (decoder_mlp[0] // decoder_q[0], decoder_mlp[1]),
        "arch_cfg.last_dim": last_dim,
    })
    return sizes


def cdm_config(state, path, arch=None, arch_cfg=None, **given):
    """CDM constructor arguments from the checkpoint shapes; `arch`, `arch_cfg` and `given` (contact_dim,
    text_feat_dim, time_emb_dim, point_feat_dim; None = not given) must agree with them."""
    found = detect_arch(state, path)
    if arch is not None and arch != found:
        raise CheckpointError(f"{WHAT}: {path} holds a {found!r} CDM but the config asks for {arch!r}. "
                              f"Set the arch to {found!r} or point to a {arch} checkpoint.")
    arch_cfg = dict(arch_cfg or {})
    given = {k: v for k, v in given.items() if v is not None}
    text_feat_dim = given.get("text_feat_dim", 512)  # PointMamba: not separable from point_feat_dim
    sizes = infer_sizes(state, found, path, text_feat_dim, point_pos_emb=arch_cfg.get("point_pos_emb", True))
    config = {"arch": found, "text_feat_dim": text_feat_dim, "arch_cfg": arch_cfg}
    for name, (value, evidence) in sizes.items():
        is_arch = name.startswith("arch_cfg.")
        short = name[len("arch_cfg."):] if is_arch else name
        configured = arch_cfg.get(short) if is_arch else given.get(short)
        if configured is not None and configured != value:
            raise CheckpointError(f"{WHAT}: {path}: configured {short}={configured} but the checkpoint has {value} "
                                  f"(from {evidence}). Fix or drop the setting, or point to the checkpoint trained "
                                  "with it.")
        (arch_cfg if is_arch else config)[short] = value
    return config


def load_cdm(path, arch=None, arch_cfg=None, contact_dim=None, text_feat_dim=None, time_emb_dim=None,
             point_feat_dim=None, settings=None):
    """A CDM in eval mode on the CPU from an experiment folder (latest ckpt/model*.pt) or a checkpoint file."""
    path = find_checkpoint(path)
    state = read_state(path)
    config = cdm_config(state, path, arch, arch_cfg, contact_dim=contact_dim, text_feat_dim=text_feat_dim,
                        time_emb_dim=time_emb_dim, point_feat_dim=point_feat_dim)
    try:
        model = CDM(**config)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{WHAT}: {path}: cannot build {config['arch']} with {config}: {err}") from err
    load_strict(model, state, path, WHAT)
    return LoadedCdm(model.eval(), path, config, settings or CdmSettings())
