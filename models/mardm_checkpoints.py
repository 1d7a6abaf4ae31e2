"""MARDM checkpoints as the reference lays them out:

    <checkpoints_dir>/<dataset_name>/<name>/model/latest.tar              {'ema_mardm': ..., 'mardm': ..., ...}
    <checkpoints_dir>/<dataset_name>/<ae_name>/model/latest.tar           {'ae': ...}
    <checkpoints_dir>/<dataset_name>/length_estimator/model/finest.tar    {'estimator': ...}
    Mean.npy / Std.npy (67,) from the HumanML3D data folder

Architectures are given by zoo name ("MARDM-SiT-XL", "AE_Model") or by constructor arguments (a dict).
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.ae import AE, AE_models
from models.checkpoints import CheckpointError, load_file, load_strict, take_key
from models.length_estimator import LengthEstimator
from models.mardm import MARDM, MARDM_models


@dataclass
class MardmNetworks:
    mardm: MARDM
    ae: AE
    mean: torch.Tensor
    std: torch.Tensor


def build_mardm(arch):
    if isinstance(arch, str):
        if arch not in MARDM_models:
            raise ValueError(f"unknown MARDM architecture {arch!r}; choose one of {sorted(MARDM_models)} or give a dict")
        return MARDM_models[arch](ae_dim=512)
    return MARDM(**dict(arch))


def build_ae(arch, input_width=67):
    if isinstance(arch, str):
        if arch not in AE_models:
            raise ValueError(f"unknown AE architecture {arch!r}; choose one of {sorted(AE_models)} or give a dict")
        return AE_models[arch](input_width=input_width)
    return AE(**dict(arch))


def load_mean_std(mean_path, std_path, feature_dim=67):
    arrays = []
    for path in (mean_path, std_path):
        if not Path(path).is_file():
            raise CheckpointError(f"normalisation statistics not found: {path}. MARDM needs the 67-d Mean.npy and "
                                  "Std.npy of the HumanML3D folder it was trained on.")
        array = np.load(path).astype(np.float32)
        if array.shape != (feature_dim,):
            raise CheckpointError(f"{path} has shape {array.shape}, expected ({feature_dim},): MARDM uses the "
                                  "67-d slice of the HumanML3D features, not the 263-d Mean/Std.")
        arrays.append(torch.from_numpy(array))
    return arrays


def load_mardm(checkpoints_dir, name, ae_name="AE", dataset_name="t2m", mardm_arch="MARDM-SiT-XL",
               ae_arch="AE_Model", mean_path=None, std_path=None, state_key="ema_mardm"):
    """Load the transformer (+ head), the AE and Mean/Std; all in eval mode on the CPU."""
    root = Path(checkpoints_dir) / dataset_name
    mardm_path = root / name / "model" / "latest.tar"
    ae_path = root / ae_name / "model" / "latest.tar"

    mardm = build_mardm(mardm_arch)
    state = take_key(load_file(mardm_path, "MARDM checkpoint"), state_key, mardm_path, "MARDM checkpoint")
    load_strict(mardm, state, mardm_path, "MARDM checkpoint", allowed_missing=("clip_model.",))

    ae = load_ae(ae_path, ae_arch)
    mean, std = load_mean_std(mean_path, std_path)
    return MardmNetworks(mardm.eval(), ae.eval(), mean, std)


def load_ae(path, arch="AE_Model"):
    """An AE from a `{'ae': state_dict}` file (latest.tar / net_best_fid.tar), in eval mode."""
    ae = build_ae(arch)
    state = take_key(load_file(path, "AE checkpoint"), "ae", path, "AE checkpoint")
    return load_strict(ae, state, path, "AE checkpoint").eval()


def load_length_estimator(checkpoints_dir, dataset_name="t2m", input_size=512, output_size=50):
    path = Path(checkpoints_dir) / dataset_name / "length_estimator" / "model" / "finest.tar"
    estimator = LengthEstimator(input_size, output_size)
    state = take_key(load_file(path, "length estimator"), "estimator", path, "length estimator")
    return load_strict(estimator, state, path, "length estimator").eval()
