"""Thin LightningModule: captions -> text features -> MARDM generate -> AE decode -> joints -> one frame.

`skeleton_fit=True` makes each pose a body of the generated pose corpus (motiondata.synth.body.fit_to_skeleton):
bone directions stay, bone lengths become the corpus skeleton's at the pose's size (held within the corpus's size
range), and a pose reaching below the floor is lifted onto it. The bundled default, trained on that corpus, turns
it on; the real checkpoints' configs leave it off and write the network's joints.
"""
import lightning as L
import torch

from models.mardm_checkpoints import MardmNetworks
from models.mardm_sampler import PerItemNoise, ReferenceNoise, generate
from motiondata.features import recover_from_ric
from motiondata.synth.body import fit_to_skeleton

RNG_MODES = ("per_item", "reference")


def resolve_frame_index(frame_index, num_frames):
    """-1 = middle frame, -2 = last, other negatives count from the end (-3 = third from last)."""
    if frame_index == -1:
        index = num_frames // 2
    elif frame_index == -2:
        index = num_frames - 1
    elif frame_index < 0:
        index = num_frames + frame_index
    else:
        index = frame_index
    if not 0 <= index < num_frames:
        raise ValueError(f"frame_index={frame_index} is outside a {num_frames}-frame motion; "
                         "use 0..frames-1, -1 (middle), -2 (last) or -3.. (from the end)")
    return index


class PoseGenerationModule(L.LightningModule):
    def __init__(self, networks: MardmNetworks, text_encoder, model_name, seed=3407, rng="per_item", time_steps=18,
                 cfg=4.5, solver="dopri5", num_steps=50, skip_redundant=False, frame_index=-1, skeleton_fit=False):
        super().__init__()
        if rng not in RNG_MODES:
            raise ValueError(f"rng must be one of {RNG_MODES} (got {rng!r})")
        self.mardm, self.ae, self.text_encoder = networks.mardm, networks.ae, text_encoder
        self.register_buffer("mean", networks.mean, persistent=False)
        self.register_buffer("std", networks.std, persistent=False)
        self.model_name, self.seed, self.rng = model_name, seed, rng
        self.time_steps, self.cfg, self.solver, self.num_steps = time_steps, cfg, solver, num_steps
        self.skip_redundant, self.frame_index, self.skeleton_fit = skip_redundant, frame_index, skeleton_fit
        self.reference_noise = None

    def on_predict_start(self):
        # one stream per process, seeded once, like the reference sample.py (depends on batching and devices)
        self.reference_noise = ReferenceNoise(self.seed, self.device) if self.rng == "reference" else None

    def noise_for(self, ids):
        if self.rng == "reference":
            return self.reference_noise or ReferenceNoise(self.seed, self.device)
        return PerItemNoise(self.seed, ids.tolist(), self.device)

    def predict_step(self, batch, batch_idx):
        ids, lengths = batch["id"], batch["length"]
        if bool((ids < 0).all()):  # only no-op padding items: this rank has nothing left to generate
            return {"id": ids.tolist()}
        cond = self.text_encoder.encode(list(batch["caption"])).to(self.device)
        m_lens = (lengths // 4).to(self.device)
        latents = generate(self.mardm, cond, m_lens, self.noise_for(ids), self.time_steps, self.cfg,
                           self.solver, self.num_steps, self.skip_redundant)
        motions = self.ae.decode(latents) * self.std + self.mean
        poses, frame_indices = [], []
        for motion, num_tokens in zip(motions, m_lens.tolist()):
            frame = resolve_frame_index(self.frame_index, 4 * num_tokens)
            # the root position of frame f accumulates the velocities of frames < f: keep the whole prefix
            poses.append(recover_from_ric(motion[: frame + 1].float())[frame])
            frame_indices.append(frame)
        joints = torch.stack(poses).float().cpu().numpy()
        if self.skeleton_fit:
            joints = fit_to_skeleton(joints).astype("float32")
        return {
            "id": ids.tolist(),
            "caption": list(batch["caption"]),
            "stem": list(batch["stem"]),
            "joints": joints,
            "frame_index": frame_indices,
            "num_frames": (4 * m_lens).tolist(),
        }

    @classmethod
    def from_checkpoints(cls, checkpoints_dir, name, model_name, ae_name="AE", dataset_name="t2m",
                         mardm_arch="MARDM-SiT-XL", ae_arch="AE_Model", dataset_dir=None, mean_path=None, std_path=None,
                         text_encoder="clip", clip_weights=None, clip_fp16=True, **sampling):
        """Builds the module from checkpoint files in the reference layout (see models/mardm_checkpoints.py).
        Mean/Std: `mean_path`/`std_path`, or Mean.npy/Std.npy in `dataset_dir` (the HumanML3D folder)."""
        from pathlib import Path

        from models.mardm_checkpoints import load_mardm
        from models.text_encoders import build_text_encoder

        mean_path = mean_path or Path(dataset_dir) / "Mean.npy"
        std_path = std_path or Path(dataset_dir) / "Std.npy"
        networks = load_mardm(checkpoints_dir, name, ae_name, dataset_name, mardm_arch, ae_arch, mean_path, std_path)
        if text_encoder == "clip":
            if not clip_weights:
                raise ValueError("this model needs CLIP ViT-B/32 text features: pass model.clip_weights=/path/to/"
                                 "ViT-B-32.pt (OpenAI's file; nothing is downloaded)")
            encoder = build_text_encoder("clip", weights=clip_weights, fp16=clip_fp16)
        else:
            encoder = build_text_encoder(text_encoder)
        if encoder.dim != networks.mardm.clip_dim:
            raise ValueError(f"text encoder {text_encoder!r} gives {encoder.dim}-d features but {model_name} "
                             f"expects {networks.mardm.clip_dim}-d (cond_emb); pick the matching text encoder")
        return cls(networks, encoder, model_name, **sampling)
