"""Training of afford-motion's stage-1 CDM as the reference does it (train.py / TrainLoop), wired for Lightning.

Loss: Gaussian diffusion `training_losses` with x0 prediction: x_t = q_sample(x0, t, noise) at timesteps drawn
uniformly from [0, steps), MSE between the model's x0 and the clean normalised contact map (mean over points and
joints, then over the batch). AdamW (lr 1e-4, weight decay 0), no schedule, no EMA, no gradient clipping.
The caption features come from a frozen text encoder, computed once per distinct caption.
`export_state` is the reference's flat {name: tensor} checkpoint (`ckpt/model{step:06d}.pt`), which
models.cdm_checkpoints.load_cdm and the reference both load.
"""
import lightning as L
import torch
import torch.nn.functional as F

from models.cdm import CDM
from models.gaussian_diffusion import GaussianDiffusion
from models.text_encoders import CachedTextFeatures


class CDMTrainModule(L.LightningModule):
    def __init__(self, text_encoder, arch="PointMamba", arch_cfg=None, contact_dim=6, time_emb_dim=128,
                 diffusion_steps=500, lr=1e-4, weight_decay=0.0):
        super().__init__()
        self.save_hyperparameters(ignore=["text_encoder"])
        self.cdm = CDM(arch, contact_dim, text_encoder.dim, time_emb_dim, point_feat_dim=0,
                       arch_cfg=dict(arch_cfg or {}))
        self.diffusion = GaussianDiffusion(diffusion_steps, "cosine", model_mean_type="start_x")
        self.text_encoder = text_encoder
        self.text_features = CachedTextFeatures(text_encoder)
        self.strict_loading = False  # Lightning checkpoints leave out the frozen text encoder

    def on_save_checkpoint(self, checkpoint):
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items()
                                    if not k.startswith("text_encoder.")}

    def loss(self, batch):
        x_start, xyz = batch["x"].float(), batch["c_pc_xyz"].float()
        t = torch.randint(0, self.diffusion.num_timesteps, (len(x_start),), device=self.device)
        x_t = self.diffusion.q_sample(x_start, t, torch.randn_like(x_start))
        c_text = self.text_features(list(batch["c_text"]), self.device)
        return F.mse_loss(self.cdm(x_t, t, c_text=c_text, c_pc_xyz=xyz), x_start)

    def training_step(self, batch, batch_idx):
        loss = self.loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["x"]))
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", self.loss(batch), prog_bar=True, batch_size=len(batch["x"]))

    def configure_optimizers(self):
        return torch.optim.AdamW(self.cdm.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)

    def export_state(self):
        return {name: tensor.detach().cpu() for name, tensor in self.cdm.state_dict().items()}
