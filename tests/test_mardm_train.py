"""Training-side pieces of lightning_modules.mardm_train that the end-to-end train.py test cannot pin down."""
from pathlib import Path

import torch
from omegaconf import OmegaConf

from lightning_modules.mardm_train import fold_text_whitening, whitening_matrix
from models.mardm_checkpoints import build_mardm

ROOT = Path(__file__).resolve().parents[1]


def test_whitening_matrix_whitens_the_second_moment():
    torch.manual_seed(0)
    features = torch.nn.functional.normalize(torch.randn(2000, 16) * torch.linspace(0.05, 1.0, 16) + 0.3, dim=1)
    whitened = features @ whitening_matrix(features, eps_rel=0.0)
    second_moment = whitened.T @ whitened / len(whitened)
    torch.testing.assert_close(second_moment, torch.eye(16), atol=1e-3, rtol=0)


def test_folded_export_takes_raw_features_and_keeps_condition_drop():
    arch = OmegaConf.to_container(OmegaConf.load(ROOT / "configs" / "arch" / "mardm_small.yaml"))["mardm"]
    torch.manual_seed(0)
    trained, exported = build_mardm(arch).eval(), build_mardm(arch).eval()
    with torch.no_grad():  # a trained network: the condition's zero-initialised adaLN paths are not zero any more
        for parameter in trained.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    features = torch.nn.functional.normalize(torch.randn(64, arch["clip_dim"]) + 0.5, dim=1)
    whitening = whitening_matrix(features)
    exported.load_state_dict(fold_text_whitening(trained.state_dict(), whitening))
    latents, padding = torch.randn(4, 4, arch["ae_dim"]), torch.zeros(4, 4, dtype=torch.bool)
    cond = features[:4]
    with torch.no_grad():
        torch.testing.assert_close(exported(latents, cond, padding), trained(latents, cond @ whitening, padding),
                                   atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(exported(latents, cond, padding, force_mask=True),
                                   trained(latents, cond @ whitening, padding, force_mask=True))
        assert not torch.allclose(exported(latents, cond, padding), trained(latents, cond, padding), atol=1e-3)
