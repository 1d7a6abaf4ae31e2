"""Loading checkpoint files in their original on-disk formats, strictly, with errors that say what to do."""
from pathlib import Path

import torch


class CheckpointError(RuntimeError):
    pass


def load_file(path, what):
    """torch.load(weights_only=True) of `path`; `what` names the file's role in error messages."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what}: file not found: {path}. Check the path (or the config that builds it).")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt, truncated or pickled with arbitrary objects
        raise CheckpointError(f"{what}: cannot read {path} with torch.load(weights_only=True): {err}") from err


def take_key(checkpoint, key, path, what):
    if not isinstance(checkpoint, dict) or key not in checkpoint:
        keys = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(f"{what}: {path} has no key {key!r} (found {keys}). Is it the right file?")
    return checkpoint[key]


def load_strict(module, state_dict, path, what, allowed_missing=()):
    """Load with exact keys and shapes; only keys starting with a prefix in `allowed_missing` may be absent."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state_dict and not k.startswith(tuple(allowed_missing))]
    unexpected = [k for k in state_dict if k not in expected and not k.startswith(tuple(allowed_missing))]
    wrong_shape = [f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)}"
                   for k in expected if k in state_dict and state_dict[k].shape != expected[k].shape]
    if missing or unexpected or wrong_shape:
        problems = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", wrong_shape)):
            if items:
                problems.append(f"{len(items)} {label} (first: {', '.join(items[:5])})")
        raise CheckpointError(
            f"{what}: {path} does not match the configured architecture: {'; '.join(problems)}. "
            "Check the model config (architecture name / sizes) or point to the matching checkpoint.")
    module.load_state_dict({k: v for k, v in state_dict.items() if k in expected}, strict=False)
    return module
