"""Training of MARDM's two stages as the reference does it (train_AE.py, train_MARDM.py), wired for Lightning.

* `AETrainModule`: SmoothL1 on all dims + SmoothL1 on the joint-position dims [4:67]; AdamW with linear
  warm-up and MultiStepLR.
* `MARDMTrainModule`: the reference `forward_loss` on frozen AE latents (cosine masking over the padded length,
  10 % noise / 88 % mask latent / rest kept, loss on masked tokens only, `diffmlps_batch_mul` repeats, condition
  drop inside the model) with an EMA copy, which is what gets sampled from.
Both export the original on-disk formats (`{'ae': ...}`, `{'mardm', 'ema_mardm', ...}`) via `export_state`.

`text_whitening` (off in the reference configs, on for the bundled MiniLM default) trains on whitened text features
x @ W, W = (E[x x^T] + eps I)^(-1/2) over the training captions, and folds W into `cond_emb.weight` on export, so
the exported MARDM takes the encoder's features as they come and loads and samples like any other. MiniLM's unit
vectors crowd into a narrow cone: most of their variance is style (subject, adverb, tail) and the directions that
tell pose families apart are weak, so without whitening the model follows new wordings little better than their
nearest family average. W is linear (no centring), so the zero vector of condition drop stays the zero vector.
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


def whitening_matrix(features, eps_rel=1e-3):
    """(E[x x^T] + eps I)^(-1/2) of features (N, D), eps relative to the largest eigenvalue; symmetric (D, D)."""
    features = features.double()
    second_moment = features.T @ features / len(features)
    eigenvalues, eigenvectors = torch.linalg.eigh(second_moment)
    scale = (eigenvalues + eps_rel * eigenvalues.max()).rsqrt()
    return ((eigenvectors * scale) @ eigenvectors.T).float()


def fold_text_whitening(mardm_state, whitening):
    """A MARDM state dict trained on x @ W -> the same network taking x (cond_emb(x W) = x (A W)^T + b)."""
    folded = dict(mardm_state)
    folded["cond_emb.weight"] = mardm_state["cond_emb.weight"] @ whitening
    return folded


class MARDMTrainModule(L.LightningModule):
    def __init__(self, mardm_arch, ae, text_encoder, lr=2e-4, weight_decay=1e-5, warmup_iters=2000,
                 milestones=(50000,), gamma=0.1, ema_decay=0.9999, text_whitening=False):
        super().__init__()
        self.save_hyperparameters(ignore=["ae", "text_encoder"])
        self.mardm = build_mardm(mardm_arch)
        self.ema_mardm = copy.deepcopy(self.mardm).requires_grad_(False)
        self.ae = ae.eval().requires_grad_(False)
        self.text_encoder = text_encoder
        self.text_features = CachedTextFeatures(text_encoder)
        self.strict_loading = False  # Lightning checkpoints leave out the frozen text encoder and AE
        if text_whitening:  # computed in setup(); a resumed run gets it back from its checkpoint
            self.register_buffer("text_whitening", torch.eye(self.mardm.clip_dim))

    def setup(self, stage):
        if stage == "fit" and self.hparams.text_whitening:
            captions = self.trainer.datamodule.train_captions()
            self.text_whitening.copy_(whitening_matrix(self.text_features(captions, "cpu")))

    def on_save_checkpoint(self, checkpoint):
        frozen = ("text_encoder.", "ae.")
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith(frozen)}

    def conditions(self, captions):
        cond = self.text_features(captions, self.device)
        return cond @ self.text_whitening if self.hparams.text_whitening else cond

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
        if self.hparams.text_whitening:
            states = {name: fold_text_whitening(state, self.text_whitening) for name, state in states.items()}
        return {**states, "ep": self.current_epoch, "total_it": self.global_step}
