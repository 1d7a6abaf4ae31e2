"""Training-side pieces of lightning_modules.mardm_train that the end-to-end train.py test cannot pin down."""
from pathlib import Path

import torch
from omegaconf import OmegaConf

from lightning_modules.mardm_train import discriminant_projection, fold_text_projection
from models.mardm_checkpoints import build_mardm

ROOT = Path(__file__).resolve().parents[1]


def test_discriminant_projection_keeps_what_tells_groups_apart_not_what_varies_within_them():
    """Groups differ along the first two axes only; the 'paraphrases' of a group spread widely along the other 14.
    A rank-2 projection keeps the first two axes, so new draws of a group land next to that group's mean."""
    torch.manual_seed(0)
    group_centres = torch.zeros(50, 16)
    group_centres[:, :2] = torch.randn(50, 2)
    groups = torch.arange(50).repeat_interleave(6)
    spread = torch.cat([torch.full((2,), 0.05), torch.ones(14)])
    features, new_draws = (group_centres[groups] + torch.randn(300, 16) * spread for _ in range(2))
    projection = discriminant_projection(features, groups, rank=2, eps_rel=0.0)
    projected = features @ projection
    assert torch.all(projected[:, 2:] == 0)
    group_means = torch.stack([projected[groups == g].mean(0) for g in range(50)])[groups]
    torch.testing.assert_close((projected - group_means).pow(2).mean(dim=0)[:2], torch.ones(2))
    fit = torch.linalg.lstsq(features[:, :2], projected[:, :2]).solution
    assert (projected[:, :2] - features[:, :2] @ fit).pow(2).sum() < 0.01 * projected.pow(2).sum()

    def nearest_group_mean_accuracy(matrix):
        means = torch.stack([(features @ matrix)[groups == g].mean(0) for g in range(50)])
        return (torch.cdist(new_draws @ matrix, means).argmin(dim=1) == groups).float().mean()

    assert nearest_group_mean_accuracy(projection) > 0.8 and nearest_group_mean_accuracy(torch.eye(16)) < 0.3


def test_folded_export_takes_raw_features_and_keeps_condition_drop():
    arch = OmegaConf.to_container(OmegaConf.load(ROOT / "configs" / "arch" / "mardm_small.yaml"))["mardm"]
    torch.manual_seed(0)
    trained, exported = build_mardm(arch).eval(), build_mardm(arch).eval()
    with torch.no_grad():  # a trained network: the condition's zero-initialised adaLN paths are not zero any more
        for parameter in trained.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    features = torch.nn.functional.normalize(torch.randn(256, arch["clip_dim"]) + 0.5, dim=1)
    projection = discriminant_projection(features, torch.arange(256) // 4, rank=16)
    assert not torch.allclose(projection, projection.T)  # the fold must transpose it
    exported.load_state_dict(fold_text_projection(trained.state_dict(), projection))
    latents, padding = torch.randn(4, 4, arch["ae_dim"]), torch.zeros(4, 4, dtype=torch.bool)
    cond = features[:4]
    with torch.no_grad():
        torch.testing.assert_close(exported(latents, cond, padding), trained(latents, cond @ projection, padding),
                                   atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(exported(latents, cond, padding, force_mask=True),
                                   trained(latents, cond @ projection, padding, force_mask=True))
        assert not torch.allclose(exported(latents, cond, padding), trained(latents, cond, padding), atol=1e-3)


def test_text_noise_perturbs_only_the_kept_coordinates_and_only_in_training():
    from lightning_modules.mardm_train import MARDMTrainModule

    class HashEncoder(torch.nn.Module):  # a deterministic stand-in for MiniLM: one fixed vector per caption
        def encode(self, captions):
            return torch.stack([torch.randn(384, generator=torch.Generator().manual_seed(len(c))) for c in captions])

    torch.manual_seed(0)
    arch = OmegaConf.to_container(OmegaConf.load(ROOT / "configs" / "arch" / "mardm_small.yaml"))["mardm"]
    module = MARDMTrainModule(arch, ae=torch.nn.Identity(), text_encoder=HashEncoder(),
                              text_projection={"rank": 8, "eps_rel": 1e-3}, text_noise=1.0)
    module.text_projection.copy_(discriminant_projection(torch.randn(600, 384), torch.arange(600) // 6, rank=8))
    captions = ["a person squats", "a person waves"]
    exact = module.text_features(captions, "cpu") @ module.text_projection
    torch.testing.assert_close(module.eval().conditions(captions), exact)
    noisy = module.train().conditions(captions)
    assert torch.all(noisy[:, 8:] == 0) and 0.5 < (noisy[:, :8] - exact[:, :8]).std() < 1.5
