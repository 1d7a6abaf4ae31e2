"""afford-motion stage-1 data readers: H3D contact maps (filters, sub-segments, names, captions, stats) and the
contact_gen scene sets, checked on tests/fixtures/afford_h3d (see tests/fixtures/make_afford_h3d.py) and on the
golden dataset-direction case (the inverse direction is models/contact.py's, tested in test_cdm_conformance)."""
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import golden
from datamodules.contact_data import ContactHumanML3DDataset, ContactMapDataset, collate_items, contact_x
from fixtures.make_afford_h3d import NUM_POINTS, write_afford_h3d, write_scene_sets

FIXTURE = Path(__file__).parent / "fixtures" / "afford_h3d"
STATS_NAME = "Mean_Std_Cont_OriH3D_contact_cont_joints_0.8.npz"
JOINTS = [0, 10, 11, 12, 20, 21]


@pytest.fixture
def data_dir(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "data")
    return tmp_path / "data"


def h3d(data_dir, phase="train", **kwargs):
    return ContactHumanML3DDataset(data_dir, phase, num_points=NUM_POINTS, **kwargs)


def items(dataset):
    return [dataset[i] for i in range(len(dataset))]


def names(dataset):
    return [item["name"] for item in items(dataset)]


def contact_of(dist, sigma=0.8):
    return np.exp(-0.5 * dist[:, JOINTS].astype(np.float64) ** 2 / sigma ** 2)


def expected_x(dist, mean, std, sigma=0.8):
    return (contact_of(dist, sigma) - mean) / std


def test_fixture_is_what_its_script_writes(tmp_path):
    write_afford_h3d(tmp_path)
    stored = sorted(p.relative_to(FIXTURE) for p in FIXTURE.rglob("*") if p.is_file())
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert stored == written
    assert all((FIXTURE / p).read_bytes() == (tmp_path / p).read_bytes() for p in stored)
    assert sum((FIXTURE / p).stat().st_size for p in stored) < 300 * 1024


def test_filters_names_and_reference_entry_order(data_dir):
    dataset = h3d(data_dir)
    # entries sorted by motion length, stable: 000001 (40), M000001 (40), 000006 line 1 (40), 000006 line 0 (50)
    assert names(dataset) == ["000001-0", "M000001-0", "000006-1", "000006-0"]
    assert dataset.skipped == {"shorter than 40 frames": ["000003"], "200 frames or longer": ["000004"],
                               "NaN in new_joint_vecs": ["000007"]}
    item = dataset[2]
    assert (item["sample_id"], item["motion_id"], item["caption_index"]) == (2, "000006", 1)
    assert item["caption"] == item["c_text"] == "then stands back up."
    assert (item["info_index"], item["info_caption_index"], item["set"]) == ("000006", 1, "H3D")
    assert "4 entries -> 4 items" in dataset.summary()


def test_sub_segments_and_caption_indices(data_dir):
    dataset = h3d(data_dir, "test", captions="all")
    # line 1 is a 40-frame segment (its own entry), line 2 a 20-frame one (dropped), lines 0 and 3 whole-motion
    assert names(dataset) == ["000002-1", "000002-0", "000002-3"]
    assert [item["caption"] for item in items(dataset)] == [
        "the person lands and crouches.", "a person jumps up and down.", "someone jumps in place."]
    assert {item["motion_id"] for item in items(dataset)} == {"000002"}  # segments reuse the motion's contacts
    assert names(h3d(data_dir, "test")) == ["000002-1", "000002-0"]  # first: the entry's first caption


def test_caption_modes(data_dir):
    assert names(h3d(data_dir, captions="all")) == [
        "000001-0", "000001-1", "000001-2", "M000001-0", "M000001-1", "000006-1", "000006-0"]
    assert h3d(data_dir, captions="all")[4]["caption"] == "a man strolls ahead."  # nan#nan = whole motion
    picks = [h3d(data_dir, captions="random", seed=seed)[0]["name"] for seed in range(12)]
    assert picks == [h3d(data_dir, captions="random", seed=seed)[0]["name"] for seed in range(12)]
    assert len(set(picks)) > 1 and set(picks) <= {"000001-0", "000001-1", "000001-2"}


def test_random_captions_do_not_depend_on_order_or_other_entries(data_dir):
    def picks():
        return sorted(names(h3d(data_dir, captions="random", seed=7)))

    before = picks()
    split = data_dir / "H3D" / "train.txt"
    split.write_text("".join(f"{i}\n" for i in reversed(split.read_text().split())))
    assert picks() == before
    split.write_text("000001\n")
    assert picks() == [name for name in before if name.startswith("000001-")]


def test_items_hold_normalised_contacts_and_xyz(data_dir):
    dataset = h3d(data_dir, captions="all")
    for item in items(dataset):
        with np.load(data_dir / "H3D" / "contacts" / f"{item['motion_id']}.npz") as npz:
            points, dist = npz["points"], npz["dist"]
        assert item["x"].dtype == np.float32 and item["x"].shape == (NUM_POINTS, 6)
        np.testing.assert_allclose(item["x"], expected_x(dist, dataset.mean, dataset.std), rtol=1e-5, atol=1e-5)
        assert item["points"].dtype == np.float32 and item["points"].shape == (NUM_POINTS, 3)
        np.testing.assert_array_equal(item["points"], points[:, :3])  # M000001 has 6 columns: xyz only
        np.testing.assert_array_equal(item["c_pc_xyz"], item["points"])
        assert not {"c_pc_feat", "x_mask", "point_feat"} & set(item)  # H3D: no scene features


def test_stats_computed_over_all_txt_and_saved_when_missing(data_dir):
    stats_path = data_dir / STATS_NAME
    assert not stats_path.exists()
    dataset = h3d(data_dir, "test")
    assert sorted(p.name for p in data_dir.iterdir()) == ["H3D", STATS_NAME]  # no temp file left
    # every id of all.txt with a contact map, filtered ones included (000003, 000004); 000007 has none
    ids = ["000001", "000002", "000003", "000004", "M000001", "000006"]
    contact = np.concatenate([contact_of(np.load(data_dir / "H3D" / "contacts" / f"{i}.npz")["dist"]) for i in ids])
    with np.load(stats_path) as npz:
        assert npz["mean"].dtype == np.float32 and npz["mean"].shape == npz["std"].shape == (1, 6)
        np.testing.assert_allclose(npz["mean"], contact.mean(axis=0, keepdims=True), rtol=1e-5)
        np.testing.assert_allclose(npz["std"], contact.std(axis=0, keepdims=True), rtol=1e-5)
    np.testing.assert_array_equal(dataset.mean, np.load(stats_path)["mean"])
    h3d(data_dir, sigma=0.5)
    assert (data_dir / "Mean_Std_Cont_OriH3D_contact_cont_joints_0.5.npz").is_file()


def test_stats_file_reused_when_present(data_dir):
    stats_path = data_dir / STATS_NAME
    np.savez(stats_path, mean=np.full((1, 6), 0.5, np.float32), std=np.full((1, 6), 2.0, np.float32))
    before = stats_path.read_bytes()
    dataset = h3d(data_dir)
    assert stats_path.read_bytes() == before
    dist = np.load(data_dir / "H3D" / "contacts" / "000001.npz")["dist"]
    np.testing.assert_allclose(dataset[0]["x"], expected_x(dist, 0.5, 2.0), rtol=1e-5, atol=1e-6)
    elsewhere = data_dir / "cdm_stats.npz"
    shutil.move(stats_path, elsewhere)
    assert h3d(data_dir, stats_file=elsewhere).mean[0, 0] == 0.5 and not stats_path.exists()


def test_golden_dataset_direction(tmp_path):
    cases = golden.cases("cdm", "distance_cases.npz")
    assert np.isclose(cases["sigma"], 0.8) and list(cases["fwd_joints"]) == JOINTS
    x = contact_x(cases["fwd_dist22"], cases["mean"], cases["std"], 0.8, cases["fwd_joints"].tolist())
    golden.assert_close(x, cases["fwd_x"], atol=1e-6, rtol=1e-6, what="fwd_x")

    h3d_dir = tmp_path / "H3D"  # one motion whose contact map is the golden case, with the golden stats file
    for folder in ("new_joint_vecs", "texts", "contacts"):
        (h3d_dir / folder).mkdir(parents=True)
    (h3d_dir / "train.txt").write_text("000010\n")
    np.save(h3d_dir / "new_joint_vecs" / "000010.npy", np.zeros((40, 263), np.float32))
    (h3d_dir / "texts" / "000010.txt").write_text("a person stands.#a/DET person/NOUN stands/VERB#0.0#0.0\n")
    points = np.random.default_rng(0).uniform(-2, 2, (50, 3)).astype(np.float32)
    np.savez(h3d_dir / "contacts" / "000010.npz", points=points, dist=cases["fwd_dist22"])
    shutil.copy(golden.GOLDEN_DIR / "cdm" / "Mean_Std_Cont_fixture_contact_cont_joints_0.8.npz", tmp_path / STATS_NAME)
    item = ContactHumanML3DDataset(tmp_path, "train", sigma=0.8, num_points=50)[0]
    golden.assert_close(item["x"], cases["fwd_x"], atol=1e-6, rtol=1e-6, what="dataset x")


def test_shuffle_seed_gives_the_reference_test_order(data_dir):
    sorted_names = names(h3d(data_dir))
    for seed in (2023, 2025):
        order = list(range(len(sorted_names)))
        random.seed(seed - 2023)  # what the reference does before shuffling its test entries
        random.shuffle(order)
        assert names(h3d(data_dir, shuffle_seed=seed)) == [sorted_names[i] for i in order]


def test_limit_and_batches(data_dir):
    dataset = h3d(data_dir, captions="all", limit=3)
    assert names(dataset) == ["000001-0", "000001-1", "000001-2"]
    batch = next(iter(DataLoader(dataset, batch_size=2)))
    assert batch["x"].shape == (2, NUM_POINTS, 6) and batch["c_pc_xyz"].shape == (2, NUM_POINTS, 3)
    assert batch["name"] == ["000001-0", "000001-1"] and batch["info_caption_index"].tolist() == [0, 1]
    assert torch.equal(collate_items(items(dataset)[:2])["x"], batch["x"])


def test_contact_map_dataset_humanise_test(tmp_path):
    write_scene_sets(tmp_path)
    dataset = ContactMapDataset(tmp_path, "test", sets=["HUMANISE"], num_points=16)
    got = items(dataset)
    assert [(i["set"], i["name"], i["info_index"]) for i in got] == [("HUMANISE", "00002", 2), ("HUMANISE", "00004", 4)]
    assert [(i["caption"], i["caption_index"]) for i in got] == [("lie down on the bed", 0), ("sit on the chair", 0)]
    assert (tmp_path / "Mean_Std_Cont_HUMANISE_contact_cont_joints_0.8.npz").is_file()
    contacts = [np.load(tmp_path / "HUMANISE" / "contact_motion" / "contacts" / f"{i:05d}.npz") for i in (2, 4)]
    stacked = np.concatenate([contact_of(c["dist"]) for c in contacts])  # stats from this phase's rows
    np.testing.assert_allclose(dataset.std, stacked.std(axis=0, keepdims=True), rtol=1e-5)
    item, npz = got[1], contacts[1]
    np.testing.assert_allclose(item["x"], expected_x(npz["dist"], dataset.mean, dataset.std), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(item["point_feat"], (npz["points"][:, 3:6] + 1) / 2)
    np.testing.assert_array_equal(item["c_pc_xyz"], npz["points"][:, :3])
    mask = np.load(tmp_path / "HUMANISE" / "contact_motion" / "target_mask" / "00004.npy")
    assert item["info_obj_mask"].dtype == bool and np.array_equal(item["info_obj_mask"], mask)
    assert item["info_scene_trans"].shape == (4, 4) and item["info_scene_trans"][3, 3] == 1
    assert item["info_scene_mesh"].endswith("HUMANISE/scenes/scene0601_00/scene0601_00_vh_clean_2.ply")


def test_contact_map_dataset_sets_and_options(tmp_path):
    write_scene_sets(tmp_path)
    mixed = ContactMapDataset(tmp_path, "test", sets=["HUMANISE", "PROX"], num_points=16)
    batch = collate_items(items(mixed))
    assert batch["x"].shape == (3, 16, 6) and batch["info_set"] == ["HUMANISE", "HUMANISE", "PROX"]
    assert batch["info_obj_mask"][2] is None and batch["c_text"][2] == "" and batch["caption_index"][2] == -1
    assert "info_obj_mask" not in ContactMapDataset(tmp_path, "train", sets=["PROX"], num_points=16)[0]

    fur = ContactMapDataset(tmp_path, "train", sets=["HumanML3D"], num_points=16, use_mirror=False, use_color=False)
    assert len(fur) == 1 and fur[0]["point_feat"].shape == (16, 0)
    assert (tmp_path / "Mean_Std_Cont_HumanML3D_contact_cont_joints_0.8_fur.npz").is_file()
    dist = np.load(tmp_path / "HumanML3D" / "contact_motion" / "contacts_fur" / "00000.npz")["dist"]
    np.testing.assert_allclose(fur[0]["x"], expected_x(dist, fur.mean, fur.std), rtol=1e-5, atol=1e-5)

    picks = {ContactMapDataset(tmp_path, "test", sets=["HUMANISE"], num_points=16, captions="random",
                               seed=seed)[1]["caption_index"] for seed in range(12)}
    assert len(picks) > 1 and picks <= {0, 1, 2}
    with pytest.raises(ValueError, match="captions must be one of"):
        ContactMapDataset(tmp_path, "test", sets=["HUMANISE"], num_points=16, captions="all")


def test_clear_errors(tmp_path, data_dir):
    with pytest.raises(FileNotFoundError, match="data_dir .*nowhere not found"):
        h3d(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="looks like the H3D folder itself"):
        h3d(data_dir / "H3D")
    with pytest.raises(FileNotFoundError, match=r"val\.txt not found .*\['all', 'test', 'train'\]"):
        h3d(data_dir, "val")
    with pytest.raises(ValueError, match="captions must be one of"):
        h3d(data_dir, captions="every")
    with pytest.raises(ValueError, match="has 32 points but num_points=8192"):
        ContactHumanML3DDataset(data_dir, "train")[0]
    with pytest.raises(FileNotFoundError, match="stats file .*missing.npz not found"):
        h3d(data_dir, stats_file=data_dir / "missing.npz")
    np.savez(data_dir / STATS_NAME, mean=np.zeros(6, np.float32), std=np.ones(6, np.float32))
    with pytest.raises(ValueError, match=r"expected \(1,6\)"):
        h3d(data_dir)
    (data_dir / STATS_NAME).unlink()

    (data_dir / "H3D" / "contacts" / "000006.npz").unlink()
    with pytest.raises(FileNotFoundError, match="no contact map, e.g. .*000006.npz"):
        h3d(data_dir)
    (data_dir / "H3D" / "all.txt").unlink()
    with pytest.raises(FileNotFoundError, match="all.txt not found; needed to compute the missing stats file"):
        h3d(data_dir, "test")
    (data_dir / "H3D" / "texts" / "000002.txt").write_text("a caption without times\n")
    with pytest.raises(ValueError, match="000002.txt line 1: expected 'caption#tokens#from#to'"):
        h3d(data_dir, "test")
    shutil.rmtree(data_dir / "H3D" / "contacts")
    with pytest.raises(FileNotFoundError, match="contacts folder .* not found"):
        h3d(data_dir, "test")

    scenes = tmp_path / "scenes"
    write_scene_sets(scenes)
    shutil.rmtree(scenes / "PROX")
    with pytest.raises(FileNotFoundError, match="set PROX folder .* not found"):
        ContactMapDataset(scenes, "test", sets=["HUMANISE", "PROX"], num_points=16)
    (scenes / "HUMANISE" / "contact_motion" / "contacts" / "00004.npz").unlink()
    with pytest.raises(FileNotFoundError, match="no contact map, e.g. .*HUMANISE/contact_motion/contacts/00004.npz"):
        ContactMapDataset(scenes, "test", sets=["HUMANISE"], num_points=16)


def test_training_on_a_scene_set_turns_each_cloud_about_gravity(tmp_path):
    """dataset=scene (HUMANISE): the reference's RandomRotation about z at every access, contacts unchanged; a batch
    goes through the CDM training loss."""
    from datamodules.contact_train import ContactTrainDataModule
    from lightning_modules.cdm_train import CDMTrainModule

    class StandInText(torch.nn.Module):
        dim = 8

        def encode(self, captions):
            return torch.ones(len(captions), self.dim)

    write_scene_sets(tmp_path)
    datamodule = ContactTrainDataModule(tmp_path, num_points=16, batch_size=2, num_workers=0, dataset="scene",
                                        sets=["HUMANISE"])
    datamodule.setup("fit")
    plain, turned = datamodule.train_set.dataset[0], datamodule.train_set[0]
    np.testing.assert_allclose(turned["c_pc_xyz"][:, 2], plain["c_pc_xyz"][:, 2])
    np.testing.assert_allclose(np.linalg.norm(turned["c_pc_xyz"][:, :2], axis=1),
                               np.linalg.norm(plain["c_pc_xyz"][:, :2], axis=1), rtol=1e-5, atol=1e-6)
    assert not np.allclose(turned["c_pc_xyz"], plain["c_pc_xyz"])
    np.testing.assert_array_equal(turned["x"], plain["x"])
    module = CDMTrainModule(StandInText(), arch_cfg={"trans_dim": 16, "depth": 1, "last_dim": 16}, time_emb_dim=16)
    assert torch.isfinite(module.loss(next(iter(datamodule.train_dataloader()))))
    assert len(datamodule.val_set) == 2
