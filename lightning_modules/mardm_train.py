"""Training of MARDM's two stages as the reference does it (train_AE.py, train_MARDM.py), wired for Lightning.

* `AETrainModule`: SmoothL1 on all dims + SmoothL1 on the joint-position dims [4:67]; AdamW with linear
  warm-up and MultiStepLR.
* `MARDMTrainModule`: the reference `forward_loss` on frozen AE latents (cosine masking over the padded length,
  10 % noise / 88 % mask latent / rest kept, loss on masked tokens only, `diffmlps_batch_mul` repeats, condition
  drop inside the model) with an EMA copy, which is what gets sampled from.
Both export the original on-disk formats (`{'ae': ...}`, `{'mardm', 'ema_mardm', ...}`) via `export_state`.

`text_projection` (off in the reference configs, on for the bundled MiniLM default) trains on projected text
features x @ T and folds T into `cond_emb.weight` on export, so the exported MARDM takes the encoder's features as
they come and loads and samples like any other. T keeps the `rank` directions that best tell motions apart relative
to how the captions of one motion differ (Fisher's discriminant with each training motion's captions as a class:
whiten the within-motion scatter, take the leading eigenvectors of the between-motion scatter) and zeroes the rest.
MiniLM's unit vectors crowd into a narrow cone whose variance is mostly wording (subject, adverb, tail): on raw or
merely whitened features the model follows a new wording little better than the nearest training caption, because it
can tell training captions apart along directions that only carry wording. T is linear (no centring), so the zero
vector of condition drop stays the zero vector. `text_noise` adds Gaussian noise to the kept coordinates in
training, in units of how much the captions of one motion differ there: a stand-in for wordings not in the corpus.
"""
import copy
import math

import lightning as L
import torch
import torch.nn.functional as F

from models.mardm_checkpoints import build_ae, build_mardm
from models.mardm_sampler import lengths_to_padding_mask
from models.text_encoders import CachedTextFeatures


def warmup_multistep(optimizer, warmup_iters, milestones, gamma):
    def factor(it):
        decay = gamma ** sum(it >= m for m in milestones)
        return decay * min(1.0, (it + 1) / (warmup_iters + 1))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def adamw_with_warmup(parameters, h):
    """The reference's optimiser: AdamW (betas 0.9, 0.99), linear warm-up, MultiStepLR stepped every iteration."""
    optimizer = torch.optim.AdamW(parameters, lr=h.lr, betas=(0.9, 0.99), weight_decay=h.weight_decay)
    scheduler = warmup_multistep(optimizer, h.warmup_iters, h.milestones, h.gamma)
    return [optimizer], [{"scheduler": scheduler, "interval": "step"}]


class AETrainModule(L.LightningModule):
    def __init__(self, ae_arch, lr=2e-4, weight_decay=0.0, warmup_iters=2000, milestones=(150000, 250000),
                 gamma=0.05, recons_joint_weight=1.0):
        super().__init__()
        self.save_hyperparameters()
        self.ae = build_ae(ae_arch)

    def loss(self, motion):
        pred = self.ae(motion)
        return (F.smooth_l1_loss(pred, motion)
                + self.hparams.recons_joint_weight * F.smooth_l1_loss(pred[..., 4:67], motion[..., 4:67]))

    def training_step(self, motion, batch_idx):
        loss = self.loss(motion)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, motion, batch_idx):
        self.log("val/loss", self.loss(motion), prog_bar=True)

    def configure_optimizers(self):
        return adamw_with_warmup(self.ae.parameters(), self.hparams)

    def export_state(self):
        return {"ae": self.ae.state_dict(), "ep": self.current_epoch, "total_it": self.global_step}


def inverse_sqrt(matrix, eps_rel):
    """(M + eps I)^(-1/2) of a symmetric PSD matrix, eps relative to its largest eigenvalue."""
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
    return (eigenvectors * (eigenvalues + eps_rel * eigenvalues.max()).rsqrt()) @ eigenvectors.T


def discriminant_projection(features, groups, rank, eps_rel=1e-3):
    """(D, D) matrix T: x @ T holds x's coordinates along the `rank` leading Fisher discriminant directions of the
    `groups` (one id per row of `features` (N, D)) in its first `rank` entries and zeros after them; along each
    kept direction the features vary by 1 (variance) within a group."""
    features, groups = features.double(), torch.as_tensor(groups)
    _, group_index = torch.unique(groups, return_inverse=True)
    group_sums = torch.zeros(int(group_index.max()) + 1, features.shape[1], dtype=features.dtype)
    group_sums.index_add_(0, group_index, features)
    group_means = (group_sums / torch.bincount(group_index)[:, None])[group_index]
    within = (features - group_means).T @ (features - group_means) / len(features)
    between = group_means.T @ group_means / len(features)
    whiten = inverse_sqrt(within, eps_rel)
    eigenvalues, eigenvectors = torch.linalg.eigh(whiten @ between @ whiten)
    directions = whiten @ eigenvectors[:, eigenvalues.argsort(descending=True)[:rank]]
    projection = torch.zeros(features.shape[1], features.shape[1], dtype=features.dtype)
    projection[:, :rank] = directions
    return projection.float()


def fold_text_projection(mardm_state, projection):
    """A MARDM state dict trained on x @ T -> the same network taking x (cond_emb(x T) = x (A T^T)^T + b)."""
    folded = dict(mardm_state)
    folded["cond_emb.weight"] = mardm_state["cond_emb.weight"] @ projection.T
    return folded


class MARDMTrainModule(L.LightningModule):
    def __init__(self, mardm_arch, ae, text_encoder, lr=2e-4, weight_decay=1e-5, warmup_iters=2000,
                 milestones=(50000,), gamma=0.1, ema_decay=0.9999, text_projection=None, text_noise=0.0):
        super().__init__()
        self.save_hyperparameters(ignore=["ae", "text_encoder"])
        self.mardm = build_mardm(mardm_arch)
        self.ema_mardm = copy.deepcopy(self.mardm).requires_grad_(False)
        self.ae = ae.eval().requires_grad_(False)
        self.text_encoder = text_encoder
        self.text_features = CachedTextFeatures(text_encoder)
        self.strict_loading = False  # Lightning checkpoints leave out the frozen text encoder and AE
        if text_projection:  # computed in setup(); a resumed run gets it back from its checkpoint
            self.register_buffer("text_projection", torch.eye(self.mardm.clip_dim))

    def setup(self, stage):
        if stage in ("fit", "validate") and self.hparams.text_projection:
            groups = self.trainer.datamodule.train_caption_groups()
            captions = [caption for group in groups for caption in group]
            group_ids = [index for index, group in enumerate(groups) for _ in group]
            self.text_projection.copy_(discriminant_projection(
                self.text_features(captions, "cpu"), group_ids, **self.hparams.text_projection))

    def on_save_checkpoint(self, checkpoint):
        frozen = ("text_encoder.", "ae.")
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith(frozen)}

    def conditions(self, captions):
        cond = self.text_features(captions, self.device)
        if not self.hparams.text_projection:
            return cond
        cond = cond @ self.text_projection
        if self.training and self.hparams.text_noise:  # new wordings of the same motion, in within-motion units
            rank = self.hparams.text_projection["rank"]
            cond[:, :rank] += self.hparams.text_noise * torch.randn_like(cond[:, :rank])
        return cond

    def forward_loss(self, motion, captions, m_lengths):
        with torch.no_grad():
            latents = self.ae.encode(motion).permute(0, 2, 1)  # (B, L, C)
            cond = self.conditions(captions)
        B, L, _ = latents.shape
        m_lens = m_lengths // 4
        non_pad = ~lengths_to_padding_mask(m_lens, L)
        latents = torch.where(non_pad[..., None], latents, torch.zeros_like(latents))
        target = latents.clone()
        ratio = torch.cos(math.pi * 0.5 * torch.rand(B, device=self.device))
        num_masked = torch.round(L * ratio).clamp(min=1)  # over the padded length, as the reference
        mask = (torch.rand(B, L, device=self.device).argsort(dim=-1) < num_masked[:, None]) & non_pad
        mask_noise = torch.bernoulli(mask * 0.1).bool() & mask
        inputs = torch.where(mask_noise[..., None], torch.randn_like(latents), latents)
        mask_keep_latent = torch.bernoulli((mask & ~mask_noise) * 0.88).bool()
        inputs = torch.where(mask_keep_latent[..., None], self.mardm.mask_latent.expand_as(inputs), inputs)
        z = self.mardm(inputs, cond, ~non_pad)
        repeat = self.mardm.diffmlps_batch_mul
        keep = mask.reshape(B * L).repeat(repeat)
        z = z.reshape(B * L, -1).repeat(repeat, 1)[keep]
        target = target.reshape(B * L, -1).repeat(repeat, 1)[keep]
        return self.mardm.DiffMLPs(target, z)

    def training_step(self, batch, batch_idx):
        captions, motion, m_lengths = batch
        loss = self.forward_loss(motion, list(captions), m_lengths)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        captions, motion, m_lengths = batch
        self.log("val/loss", self.forward_loss(motion, list(captions), m_lengths), prog_bar=True)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        with torch.no_grad():
            for ema, live in zip(self.ema_mardm.parameters(), self.mardm.parameters()):
                ema.lerp_(live, 1.0 - self.hparams.ema_decay)

    def configure_optimizers(self):
        return adamw_with_warmup(self.mardm.parameters(), self.hparams)

    def export_state(self):
        states = {"mardm": self.mardm.state_dict(), "ema_mardm": self.ema_mardm.state_dict()}
        if self.hparams.text_projection:
            states = {name: fold_text_projection(state, self.text_projection) for name, state in states.items()}
        return {**states, "ep": self.current_epoch, "total_it": self.global_step}
