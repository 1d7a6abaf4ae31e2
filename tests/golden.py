"""Access to the golden conformance fixtures: $GOLDEN_DIR, else the project's copy in tests/fixtures/golden."""
import json
import os
from pathlib import Path

import numpy as np
import torch

GOLDEN_DIR = Path(os.environ.get("GOLDEN_DIR", Path(__file__).parent / "fixtures" / "golden"))


def config(part):
    return json.loads((GOLDEN_DIR / part / "config.json").read_text())


def cases(part, name):
    return dict(np.load(GOLDEN_DIR / part / name))


def tensor(array):
    return torch.from_numpy(np.asarray(array))


def assert_close(got, ref, atol, rtol, what=""):
    got = got.detach().cpu().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    ref = np.asarray(ref)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    err = np.abs(got.astype(np.float64) - ref) - (atol + rtol * np.abs(ref))
    assert err.max() <= 0, f"{what}: max excess error {err.max():.3g} (max abs diff {np.abs(got - ref).max():.3g})"
