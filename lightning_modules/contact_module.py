"""Thin LightningModule of the cdm_stage1 job: caption + point cloud -> sampled contact map -> distances.

Per batch: the captions are encoded ONCE (the reference re-encodes them at every diffusion step, same numbers),
then the CDM runs the whole reverse chain (ancestral p_sample_loop by default, or DDIM with respacing such as
"ddim50"). Noise:
  rng=per_item  (default) every sample has its own generator seeded from (seed, sample id): x_T, then one draw per
                step, so a sample's map does not depend on batch size, devices or resume;
  rng=reference the reference's draw order: one CPU generator seeded with `seed` once per process, x_T = randn(B,N,6),
                then one randn_like per step (the t=0 draw too), as afford-motion after torch.manual_seed(seed).
"""
from pathlib import Path

import lightning as L
import numpy as np
import torch

from models.contact import contact_to_distance
from models.gaussian_diffusion import GaussianDiffusion
from models.mardm_sampler import item_seed

RNG_MODES = ("per_item", "reference")
METHODS = ("ancestral", "ddim")
DISTANCE_CLIP_MIN = 1e-6  # gen_train_contact.py's clip before the log (the test evaluator uses 1e-20)


class PerItemNoise:
    """One CPU generator per sample, seeded from (seed, sample id); padding items (id < 0) use id 0's stream."""

    def __init__(self, seed, sample_ids):
        self.generators = [torch.Generator().manual_seed(item_seed(seed, max(int(i), 0))) for i in sample_ids]

    def draw(self, shape, device):
        return torch.stack([torch.randn(shape[1:], generator=g) for g in self.generators]).to(device)


class ReferenceNoise:
    """One CPU generator for the whole process (the reference's torch.manual_seed(seed) stream)."""

    def __init__(self, seed):
        self.generator = torch.Generator().manual_seed(int(seed))

    def draw(self, shape, device):
        return torch.randn(shape, generator=self.generator).to(device)


class ContactGenerationModule(L.LightningModule):
    def __init__(self, cdm, text_encoder, sigma=0.8, diffusion_steps=500, respacing="", method="ancestral",
                 seed=3407, rng="per_item", checkpoint_path=None, settings_note=None):
        super().__init__()
        if rng not in RNG_MODES:
            raise ValueError(f"rng must be one of {RNG_MODES} (got {rng!r})")
        if method not in METHODS:
            raise ValueError(f"model.method must be one of {METHODS} (got {method!r})")
        self.cdm, self.text_encoder = cdm.eval(), text_encoder
        self.sigma, self.seed, self.rng, self.method = float(sigma), int(seed), rng, method
        self.diffusion_steps, self.respacing = int(diffusion_steps), respacing or ""
        self.diffusion = GaussianDiffusion(self.diffusion_steps, "cosine", model_mean_type="start_x",
                                           respacing=self.respacing)
        self.checkpoint_path = checkpoint_path
        # what checkpoint_info.txt reports: {setting: (value, where it came from)}
        self.settings_note = {"diffusion_steps": (self.diffusion_steps, "given"), "sigma": (self.sigma, "given"),
                              "noise_schedule": ("cosine", "fixed"), "respacing": (self.respacing or "none", "given"),
                              "method": (method, "given"), "rng": (rng, "given"), "seed": (self.seed, "given"),
                              **(settings_note or {})}
        self.mean = self.std = None  # the dataset's contact stats, (1,6); set_stats() or from the datamodule
        self.reference_noise = None

    # -- set-up -------------------------------------------------------------------------------------------
    def set_stats(self, mean, std):
        self.mean = torch.as_tensor(np.asarray(mean), dtype=torch.float32).reshape(1, 1, -1)
        self.std = torch.as_tensor(np.asarray(std), dtype=torch.float32).reshape(1, 1, -1)

    def on_predict_start(self):
        if self.mean is None:
            self.set_stats(*self.trainer.datamodule.stats)
        self.reference_noise = ReferenceNoise(self.seed) if self.rng == "reference" else None

    def noise_for(self, sample_ids):
        if self.rng == "reference":
            self.reference_noise = self.reference_noise or ReferenceNoise(self.seed)
            return self.reference_noise
        return PerItemNoise(self.seed, sample_ids)

    # -- sampling -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, captions, xyz, sample_ids):
        """Normalised samples (B,N,contact_dim) for captions [B] and point clouds xyz [B,N,3]."""
        c_text = self.text_encoder.encode(list(captions)).to(self.device).float()  # once for the whole loop
        xyz = xyz.to(self.device).float()
        noise = self.noise_for(sample_ids)
        shape = (xyz.shape[0], xyz.shape[1], self.cdm.contact_dim)
        x_T = noise.draw(shape, self.device)

        def model_fn(x, timesteps):
            return self.cdm(x, timesteps, c_text=c_text, c_pc_xyz=xyz)

        return self.diffusion.sample_loop(model_fn, x_T, lambda i, x: noise.draw(x.shape, x.device), self.method)

    def to_contact_and_distance(self, x):
        contact = torch.clamp(x * self.std.to(x.device) + self.mean.to(x.device), 0.0, 1.0)
        return contact, contact_to_distance(contact, self.sigma, DISTANCE_CLIP_MIN)

    def predict_step(self, batch, batch_idx):
        ids = [int(i) for i in batch["sample_id"]]
        if all(i < 0 for i in ids):  # only no-op padding items (this rank has nothing left to do)
            return {"sample_id": ids}
        x = self.sample(batch["caption"], batch["c_pc_xyz"], ids)
        contact, distance = self.to_contact_and_distance(x)
        return {
            "sample_id": ids,
            "name": list(batch["name"]),
            "caption_index": [int(i) for i in batch["caption_index"]],
            "caption": list(batch["caption"]),
            "sample": x.float().cpu().numpy(),
            "contact": contact.float().cpu().numpy(),
            "distance": distance.float().cpu().numpy(),
        }

    # -- building -----------------------------------------------------------------------------------------
    @classmethod
    def from_experiment(cls, exp_dir=None, ckpt=None, arch=None, text_encoder="clip", clip_weights=None,
                        clip_fp16=False, text_max_length=None, diffusion_steps=None, sigma=None, respacing="",
                        method="ancestral", seed=3407, rng="per_item"):
        """The module from an afford-motion CDM experiment folder (latest ckpt/model*.pt) or `ckpt` (a file).

        text_encoder: "clip" (needs clip_weights, OpenAI's ViT-B-32.pt), "minilm", or a ready encoder object.
        Settings the checkpoint does not carry (diffusion_steps, sigma, text_max_length) default to the fork's
        script values (models.cdm_checkpoints.CdmSettings) and are reported in checkpoint_info.txt."""
        from models.cdm_checkpoints import CdmSettings, load_cdm

        source = ckpt or exp_dir
        if source is None or not Path(source).exists():
            raise FileNotFoundError(
                f"CDM experiment not found: exp_dir={exp_dir!r}, ckpt={ckpt!r}. Pass exp_dir=/path/to/afford-motion "
                "experiment (the folder holding ckpt/model*.pt) or ckpt=/path/to/model*.pt.")
        defaults = CdmSettings()
        steps = defaults.diffusion_steps if diffusion_steps is None else int(diffusion_steps)
        sigma = defaults.sigma if sigma is None else float(sigma)
        max_length = defaults.text_max_length if text_max_length is None else int(text_max_length)
        encoder = build_encoder(text_encoder, clip_weights, clip_fp16, max_length)
        loaded = load_cdm(source, arch=arch, text_feat_dim=encoder.dim)
        note = {
            "diffusion_steps": (steps, "given" if diffusion_steps is not None else "default (fork's scripts)"),
            "sigma": (sigma, "given" if sigma is not None else "default (fork's scripts)"),
            "text_max_length": (max_length, "given" if text_max_length is not None else "default (fork's scripts)"),
            "architecture": (str(loaded.config), "read from the checkpoint shapes"),
        }
        return cls(loaded.model, encoder, sigma, steps, respacing, method, seed, rng, str(loaded.path), note)


def build_encoder(text_encoder, clip_weights, clip_fp16, max_length):
    from models.text_encoders import build_text_encoder

    if not isinstance(text_encoder, str):
        return text_encoder  # an encoder object (e.g. instantiated by Hydra from a _target_)
    if text_encoder == "clip":
        if not clip_weights:
            raise ValueError("the CDM needs CLIP ViT-B/32 text features: pass model.clip_weights=/path/to/"
                             "ViT-B-32.pt (OpenAI's file; nothing is downloaded)")
        return build_text_encoder("clip", weights=clip_weights, fp16=clip_fp16, max_length=max_length)
    return build_text_encoder(text_encoder)
