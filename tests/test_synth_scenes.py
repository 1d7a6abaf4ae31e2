"""The generated contact corpus (motiondata.synth.scenes): the H3D reader reads it, the same seed writes the same
bytes, every kind's geometry puts its target joint on its target object, and held-out phrasings stay held out."""
import json
import re

import numpy as np
import pytest

from datamodules.contact_data import ContactHumanML3DDataset, read_contacts
from motiondata.synth.body import J
from motiondata.synth.captions import heldout_captions
from motiondata.synth.scenes import (
    CROP_SIZE, GENERATOR_VERSION, KINDS, NUM_POINTS, PENETRATION, contact_distances, main, make_scene,
    write_contact_corpus,
)

SCENES_PER_KIND = 2
SCENE_INDICES = (0, 1, 2)
SEATED_OR_LYING = {"sit_chair", "sit_sofa", "sit_bed", "lie_bed"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("contact_corpus")
    info = write_contact_corpus(out, seed=0, scenes_per_kind=SCENES_PER_KIND)
    return out, info


def split_ids(h3d, name):
    return (h3d / f"{name}.txt").read_text().split()


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def caption_of(line):
    return line.split("#")[0]


def normalised(caption):
    return caption.lower().rstrip(".")


# --- files -------------------------------------------------------------------------------------------------


def test_corpus_files(corpus):
    out, info = corpus
    h3d = out / "H3D"
    assert json.loads((out / "corpus_info.json").read_text()) == info
    assert info["generator_version"] == GENERATOR_VERSION and info["num_points"] == NUM_POINTS
    assert info["kinds"] == [kind.name for kind in KINDS]
    train, test, all_ids = split_ids(h3d, "train"), split_ids(h3d, "test"), split_ids(h3d, "all")
    assert all_ids == sorted(train + test) and not set(train) & set(test)
    assert len(all_ids) == info["counts"]["scenes"] == SCENES_PER_KIND * len(KINDS)
    assert len(test) == info["counts"]["test"] == len(KINDS)  # 80/20 within a kind: 1 of 2
    assert all(re.fullmatch(r"\d{6}", motion_id) for motion_id in all_ids)

    records = {record["id"]: record for record in read_jsonl(h3d / "scenes.jsonl")}
    assert sorted(records) == all_ids
    kind_by_name = {kind.name: kind for kind in KINDS}
    for motion_id in all_ids:
        record, kind = records[motion_id], kind_by_name[records[motion_id]["kind"]]
        motion = np.load(h3d / "new_joint_vecs" / f"{motion_id}.npy")
        assert motion.dtype == np.float32 and motion.shape[1] == 263 and 40 <= len(motion) < 120
        assert np.isfinite(motion).all()
        lines = (h3d / "texts" / f"{motion_id}.txt").read_text().splitlines()
        assert len(lines) == 3 and all(line.count("#") == 3 and line.endswith("#0.0#0.0") for line in lines)
        points, dist = read_contacts(h3d / "contacts" / f"{motion_id}.npz", NUM_POINTS)
        with np.load(h3d / "contacts" / f"{motion_id}.npz") as npz:
            assert npz["points"].dtype == npz["dist"].dtype == np.float32 and npz["points"].shape == (NUM_POINTS, 3)
        labels = np.load(h3d / "labels" / f"{motion_id}.npy")
        assert labels.dtype == np.int8 and labels.shape == (NUM_POINTS,)
        assert [obj["label"] for obj in record["objects"]] == list(range(1, len(record["objects"]) + 1))
        assert 2 <= len(record["objects"]) <= 3  # the target and 1-2 distractors
        assert set(np.unique(labels)) <= set(range(len(record["objects"]) + 1))
        target = record["objects"][record["target_object"] - 1]
        assert target["kind"] == kind.target_object and record["target_joint"] == kind.target_joint
        assert sum(obj["kind"] == kind.target_object for obj in record["objects"]) == 1
        assert (labels == record["target_object"]).sum() > 50
        assert 0.4 - 1e-3 <= (labels == 0).mean() <= 0.6 + 1e-3
        assert np.abs(points[:, [0, 2]]).max() <= CROP_SIZE / 2 + 1e-6 and points[:, 1].min() >= -1e-6

    queries = read_jsonl(h3d / "eval_scenes.jsonl")
    assert len(queries) == info["counts"]["eval_queries"] == sum(len(kind.heldout) for kind in KINDS)
    for query in queries:
        record, kind = records[query["id"]], kind_by_name[query["kind"]]
        assert query["id"] in test and record["kind"] == kind.name
        assert query["caption"] in heldout_captions(kind)
        assert query["joint"] == kind.target_joint and query["joint_index"] == J[kind.target_joint]
        assert query["object"] == record["target_object"] and query["object_name"] == kind.target_object


@pytest.mark.parametrize("phase", ["train", "test"])
def test_reader_reads_the_corpus(corpus, phase):
    out, _ = corpus
    dataset = ContactHumanML3DDataset(out, phase, captions="all")
    ids = split_ids(out / "H3D", phase)
    assert dataset.skipped == {} and dataset.num_entries == len(ids) and len(dataset) == 3 * len(ids)
    assert dataset.mean.shape == dataset.std.shape == (1, 6) and (dataset.std > 0).all()
    for index in range(len(dataset)):
        item = dataset[index]
        assert item["motion_id"] in ids and item["caption"]
        assert item["points"].shape == item["c_pc_xyz"].shape == (NUM_POINTS, 3)
        assert item["x"].shape == (NUM_POINTS, 6) and np.isfinite(item["x"]).all()


def test_same_seed_same_bytes_other_seed_differs(corpus, tmp_path):
    out, _ = corpus
    write_contact_corpus(tmp_path / "again", seed=0, scenes_per_kind=SCENES_PER_KIND)
    write_contact_corpus(tmp_path / "other", seed=1, scenes_per_kind=SCENES_PER_KIND)
    files = ["H3D/contacts/000000.npz", "H3D/new_joint_vecs/000005.npy", "H3D/texts/000013.txt",
             "H3D/labels/000008.npy", "H3D/scenes.jsonl", "H3D/all.txt", "corpus_info.json"]
    for name in files:
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes(), name
    for name in files[:4]:
        assert (tmp_path / "other" / name).read_bytes() != (out / name).read_bytes(), name


def test_cli_resume_and_redo(tmp_path, capsys):
    main(["--out", str(tmp_path), "--seed", "3", "--scenes-per-kind", "1"])
    assert "7 scenes" in capsys.readouterr().out
    h3d = tmp_path / "H3D"
    contacts = h3d / "contacts" / "000000.npz"
    stamp = contacts.stat().st_mtime_ns

    info = write_contact_corpus(tmp_path, seed=3, scenes_per_kind=1)  # complete: nothing is rewritten
    assert info["seed"] == 3 and contacts.stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="complete corpus"):
        write_contact_corpus(tmp_path, seed=4, scenes_per_kind=1)

    (h3d / "all.txt").unlink()  # an interrupted run: everything is written again, stale stats removed
    stats = tmp_path / "Mean_Std_Cont_OriH3D_contact_cont_joints_0.8.npz"
    stats.write_bytes(b"stale")
    contacts.write_bytes(b"cut short")
    write_contact_corpus(tmp_path, seed=3, scenes_per_kind=1)
    assert (h3d / "all.txt").is_file() and not stats.exists()
    assert read_contacts(contacts, NUM_POINTS)[0].shape == (NUM_POINTS, 3)
    assert not [p for p in h3d.rglob(".*") if p.is_file()]  # no temp files left


# --- geometry ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind_index", range(len(KINDS)), ids=[kind.name for kind in KINDS])
def test_target_joint_touches_target_object(kind_index):
    kind = KINDS[kind_index]
    for scene_index in SCENE_INDICES:
        scene = make_scene(0, kind_index, scene_index)
        joint, on_target = kind.joint_index, scene.labels == scene.target_label
        assert scene.target.kind == kind.target_object
        assert scene.points.shape == (NUM_POINTS, 3) and scene.dist.shape == (NUM_POINTS, 22)

        # what a perfect contact predictor gives: the joint ends next to the object, nearest of all points to it
        last_frame_gap = np.linalg.norm(scene.points[on_target] - scene.joints[-1, joint], axis=-1).min()
        assert last_frame_gap < 0.15
        assert scene.labels[np.argmin(scene.dist[:, joint])] == scene.target_label

        assert scene.joints[..., 1].min() >= -0.02
        for obj in scene.objects:
            assert not any(box.contains(scene.joints, -PENETRATION).any() for box in obj.boxes), obj.kind
        if kind.name in SEATED_OR_LYING:
            pelvis = scene.joints[-1, 0]
            under = [box.top for box in scene.target.boxes if box.covers_xz(pelvis[None])[0]]
            assert under and pelvis[1] > max(under)


def test_distances_are_minimum_over_frames():
    scene = make_scene(0, 0, 0)
    brute = np.linalg.norm(scene.points[:, None, None, :].astype(np.float64) - scene.joints[None], axis=-1).min(1)
    assert np.abs(scene.dist - brute).max() < 1e-4
    assert np.array_equal(contact_distances(scene.points, scene.joints), scene.dist)


# --- captions ----------------------------------------------------------------------------------------------


def test_heldout_captions_never_in_texts(corpus):
    out, _ = corpus
    training = [normalised(caption_of(line)) for path in (out / "H3D" / "texts").glob("*.txt")
                for line in path.read_text().splitlines()]
    assert len(training) == 3 * SCENES_PER_KIND * len(KINDS)
    for kind in KINDS:
        assert not set(kind.heldout) & {phrase for other in KINDS for phrase in other.captions}
        for caption in heldout_captions(kind):
            assert normalised(caption) not in training
        for phrase in kind.heldout:
            assert not any(phrase in caption for caption in training)


def test_contact_evaluation_runs_the_bundled_cdm_on_held_out_scenes(corpus):
    """The evaluation command's pipeline on the tiny corpus (a 2-step chain): one held-out phrasing per test scene,
    the ground truth's own peak on the target object every time, rates in [0, 1]."""
    from motiondata.synth.evaluate_contacts import evaluate

    out, _ = corpus
    report = evaluate(out, overrides=["model.respacing=ddim2"], limit=3, batch_size=3)
    assert report["held_out_scenes"] == 3 and report["ground_truth_rate"] == 1.0
    assert 0.0 <= report["pass_rate"] <= 1.0 and 0.0 < report["chance_rate"] < 1.0
    assert len(report["pass_rate_per_kind"]) == 3 and report["median_peak_error_m"] >= 0.0
