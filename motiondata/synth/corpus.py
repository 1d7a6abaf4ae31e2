"""Write a synthetic static-pose corpus in the HumanML3D layout that MARDM's loaders read.

    python -m motiondata.synth.corpus --out DIR --seed 0 --clips-per-family 80

Layout under DIR (ids are 6-digit numbers):
- new_joint_vecs/<id>.npy  (T, 263) float32. [0:67] = motiondata.features.joints_to_features (the part MARDM
  reads). The rest follows HumanML3D's definitions as far as this generator can:
  [67:193] rot 6D of joints 1..21 = the first two columns of each joint's rotation relative to its parent in
  motiondata.synth.body (HumanML3D takes them from its own inverse kinematics, so the numbers differ);
  [193:259] per-joint velocity (t -> t+1) seen from the facing direction of frame t, as HumanML3D;
  [259:263] foot contacts (left ankle, left foot, right ankle, right foot): HumanML3D's rule (squared step
  < 0.002 m^2) plus the joint being < 12 cm above the floor, so feet in the air are not "in contact".
  The last frame repeats the velocities and contacts of the one before.
- new_joints/<id>.npy  (T, 22, 3) float32: the joints that [0:67] encode (frame 0's root at xz = 0, facing +z).
- texts/<id>.txt  CAPTIONS_PER_CLIP lines "caption#word/POS ...#0.0#0.0", each of another training phrase.
- train.txt, val.txt, test.txt  ids, split 80/10/10 within every family; train.txt is written last, so
  its presence marks a complete corpus.
- Mean.npy, Std.npy  (67,) float32 over all frames of all clips; Std grouped (see `compute_mean_std`).
- eval_captions.jsonl  held-out phrasings {"caption", "family"}, never used in texts/.
- corpus_info.json  generator version, seed, counts.

A clip (20 fps, T frames) starts in a relaxed stance, reaches its family's pose after 15-25 % of
min(T, 32) frames (smoothstep in joint-angle space, so by frame 8 at the latest) and holds it with a slow
sway of a degree or two: the middle frame of every 16-frame window of every clip shows the pose. The foot
that ends lowest stays where it started, and every frame's lowest joint is put on the floor (plus the
pose's lift, e.g. for jumps).
Everything is drawn from numpy generators seeded with (seed, family, clip): same seed, same bytes.
"""
import argparse
import io
import json
import os
import time
from pathlib import Path

import numpy as np

from motiondata.atomic import atomic_write_text, temp_path_for
from motiondata.humanml3d import compute_mean_std
from motiondata.features import joints_to_features, normalize_first_frame, root_facing_angle, rotate_about_y
from motiondata.synth.body import DOF, J, clip_to_limits, forward_kinematics, place_on_floor, set_heading
from motiondata.synth.captions import heldout_captions, random_training_captions, text_line
from motiondata.synth.poses import FAMILIES, FAMILY_BY_NAME, Family

# 2: 16-20 training phrases per family (were 5-6); 3: 42-50 phrases, 6 captions per clip (were 3)
GENERATOR_VERSION = "motiondata.synth/3"
FPS = 20
DEFAULT_CLIPS_PER_FAMILY = 80
MIN_FRAMES, MAX_FRAMES = 16, 64
CAPTIONS_PER_CLIP = 6  # of different phrases; the motions do not depend on it (captions are drawn after them)
WINDOW_FRAMES = 16  # what predict.py generates; it keeps the middle frame
SWAY_DOFS = ["hinge", "spine_flex", "spine_side", "spine_twist", "neck_flex", "neck_turn",
             "l_shoulder_elev", "r_shoulder_elev", "l_elbow_flex", "r_elbow_flex"]
FOOT_JOINTS = [J["left_ankle"], J["left_foot"], J["right_ankle"], J["right_foot"]]
CONTACT_STEP_SQUARED = 0.002  # HumanML3D's foot_detect threshold on the squared per-frame displacement
CONTACT_HEIGHT = 0.12


# ---------------------------------------------------------------------------------------------------------
# one clip


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _sway(rng: np.random.Generator, num_frames: int) -> np.ndarray:
    """(T, n_dof) slow sinusoids of 0.5-2 degrees on trunk, neck and arm angles."""
    seconds = np.arange(num_frames) / FPS
    sway = np.zeros((num_frames, len(DOF)))
    for name in SWAY_DOFS:
        amplitude, frequency, phase = rng.uniform(0.5, 2.0), rng.uniform(0.15, 0.5), rng.uniform(0, 2 * np.pi)
        sway[:, DOF[name]] = amplitude * np.sin(2 * np.pi * frequency * seconds + phase)
    return sway


def make_clip(family: Family, rng: np.random.Generator, num_frames: int):
    """A clip settling into one pose of `family`: (world joints (T, 22, 3), local rotations (T, 22, 3, 3))."""
    target = family.sample(rng)
    start = FAMILY_BY_NAME["stand"].sample(rng).vector()
    # 15-25 % of the clip, but never later than frame 8: the middle frame of any 16-frame window shows the pose
    reach_frames = max(2, round(min(num_frames, 2 * WINDOW_FRAMES) * rng.uniform(0.15, 0.25)))
    weight = _smoothstep(np.arange(num_frames) / reach_frames)[:, None]
    angles = clip_to_limits(start + weight * (target.vector() - start) + _sway(rng, num_frames))
    joints, local_rotations = forward_kinematics(angles, target.scale)
    joints = set_heading(joints, target.heading)

    # keep the foot that ends lowest where it started (people step into poses around a standing foot)
    anchor = min((J["left_ankle"], J["right_ankle"]), key=lambda joint: joints[-1, joint, 1])
    joints[..., [0, 2]] -= (joints[:, anchor, [0, 2]] - joints[0, anchor, [0, 2]])[:, None, :]
    return place_on_floor(joints, weight[:, 0] * target.lift), local_rotations


def motion_vectors(joints: np.ndarray, local_rotations: np.ndarray) -> np.ndarray:
    """World joints (T, 22, 3) and local rotations (T, 22, 3, 3) -> HumanML3D 263-d vectors (T, 263) float32."""
    num_frames = joints.shape[0]
    positions = normalize_first_frame(joints)
    heading = root_facing_angle(positions)

    rot_6d = np.concatenate([local_rotations[:, 1:, :, 0], local_rotations[:, 1:, :, 1]], axis=-1)
    steps = positions[1:] - positions[:-1]
    local_velocity = rotate_about_y(steps, -heading[:-1, None])
    contact = (np.sum(steps[:, FOOT_JOINTS] ** 2, axis=-1) < CONTACT_STEP_SQUARED) & (
        positions[1:, FOOT_JOINTS, 1] < CONTACT_HEIGHT)
    if num_frames > 1:  # the last frame repeats the one before
        local_velocity = np.concatenate([local_velocity, local_velocity[-1:]])
        contact = np.concatenate([contact, contact[-1:]])
    else:
        local_velocity = np.zeros((1, 22, 3))
        contact = positions[:, FOOT_JOINTS, 1] < CONTACT_HEIGHT

    parts = [joints_to_features(joints), rot_6d.reshape(num_frames, 126), local_velocity.reshape(num_frames, 66),
             contact.astype(np.float32)]
    return np.concatenate(parts, axis=-1).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# files


def _write_clip_file(path: Path, content) -> None:
    """A per-clip file (array or text): a temp name in the same folder, then os.replace.

    Unlike motiondata.atomic this skips the fsync: there are thousands of these, and a corpus cut short is
    rewritten as a whole because train.txt, written last, is missing.
    """
    if isinstance(content, str):
        data = content.encode("utf-8")
    else:
        buffer = io.BytesIO()
        np.save(buffer, content, allow_pickle=False)
        data = buffer.getvalue()
    temporary = temp_path_for(path)
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _split(clip_ids: list, rng: np.random.Generator) -> dict:
    """80/10/10 of one family's clips; val gets at least one clip from 2 clips on, test from 3 on."""
    order = [clip_ids[i] for i in rng.permutation(len(clip_ids))]
    tenth = max(1, round(0.1 * len(order)))
    num_val, num_test = (tenth if len(order) >= 2 else 0), (tenth if len(order) >= 3 else 0)
    return {"val": order[:num_val], "test": order[num_val:num_val + num_test], "train": order[num_val + num_test:]}


def write_corpus(out, seed: int = 0, clips_per_family: int = DEFAULT_CLIPS_PER_FAMILY,
                 min_frames: int = MIN_FRAMES, max_frames: int = MAX_FRAMES) -> dict:
    """Write the corpus under `out` and return the corpus_info dictionary."""
    if not 1 <= min_frames <= max_frames:
        raise ValueError(f"need 1 <= min_frames <= max_frames, got {min_frames}, {max_frames}")
    if clips_per_family < 1:
        raise ValueError(f"clips_per_family must be at least 1, got {clips_per_family}")
    out = Path(out)
    for folder in ("new_joint_vecs", "new_joints", "texts"):
        (out / folder).mkdir(parents=True, exist_ok=True)

    splits = {"train": [], "val": [], "test": []}
    for family_index, family in enumerate(FAMILIES):
        clip_ids = []
        for clip_index in range(clips_per_family):
            rng = np.random.default_rng([seed, family_index, clip_index])
            clip_id = f"{family_index * clips_per_family + clip_index:06d}"
            joints, local_rotations = make_clip(family, rng, int(rng.integers(min_frames, max_frames + 1)))
            _write_clip_file(out / "new_joint_vecs" / f"{clip_id}.npy", motion_vectors(joints, local_rotations))
            _write_clip_file(out / "new_joints" / f"{clip_id}.npy", normalize_first_frame(joints).astype(np.float32))
            captions = random_training_captions(family, rng, CAPTIONS_PER_CLIP)
            _write_clip_file(out / "texts" / f"{clip_id}.txt", "".join(text_line(c) + "\n" for c in captions))
            clip_ids.append(clip_id)
        for name, ids in _split(clip_ids, np.random.default_rng([seed, family_index, 1 << 30])).items():
            splits[name] += ids

    compute_mean_std(out)
    atomic_write_text(out / "eval_captions.jsonl", "".join(
        json.dumps({"caption": caption, "family": family.name}) + "\n"
        for family in FAMILIES for caption in heldout_captions(family)))
    info = {
        "generator_version": GENERATOR_VERSION, "seed": seed, "fps": FPS,
        "clips_per_family": clips_per_family, "frames": [min_frames, max_frames],
        "num_clips": clips_per_family * len(FAMILIES), "feature_dim": 263,
        "families": {family.name: clips_per_family for family in FAMILIES},
        "splits": {name: len(ids) for name, ids in splits.items()},
    }
    atomic_write_text(out / "corpus_info.json", json.dumps(info, indent=2, sort_keys=True) + "\n")
    for name in ("test", "val", "train"):  # train.txt last: its presence marks a complete corpus
        atomic_write_text(out / f"{name}.txt", "".join(f"{clip_id}\n" for clip_id in sorted(splits[name])))
    return info


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Write the synthetic HumanML3D-format static pose corpus.")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clips-per-family", type=int, default=DEFAULT_CLIPS_PER_FAMILY)
    parser.add_argument("--min-frames", type=int, default=MIN_FRAMES)
    parser.add_argument("--max-frames", type=int, default=MAX_FRAMES)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    info = write_corpus(args.out, args.seed, args.clips_per_family, args.min_frames, args.max_frames)
    print(f"wrote {info['num_clips']} clips of {len(FAMILIES)} pose families to {args.out} "
          f"(train/val/test {info['splits']['train']}/{info['splits']['val']}/{info['splits']['test']}) "
          f"in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
