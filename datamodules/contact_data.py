"""Readers for afford-motion's stage-1 (CDM) data: per-point contact maps, as the reference lays them out on disk.

ContactHumanML3DDataset (task text_to_motion_contact_gen, the "H3D" benchmark), under data_dir:
    H3D/{train,test,all}.txt       one motion id per line (000123; mirrored copies M000123)
    H3D/new_joint_vecs/{id}.npy    (T,263); only used to filter: kept if no NaN and 40 <= T < 200
    H3D/texts/{id}.txt             caption#tokens#from#to lines (seconds; from = to = 0 means the whole motion)
    H3D/contacts/{id}.npz          points (N,>=3) float32 (xyz used), dist (N,22) min distance point -> joint
    Mean_Std_Cont_OriH3D_contact_cont_joints_{sigma}.npz   mean, std (1,6); made from H3D/all.txt when missing

ContactMapDataset (task contact_gen: HUMANISE, PROX, HumanML3D-in-scene), under data_dir:
    {set}/{phase}.txt                           row indices of anno.csv (000012), HumanML3D without mirror:
                                                {phase}_without_mirror.txt
    {set}/contact_motion/anno.csv               scene_id, scene_trans_x/y/z, utterance ('$$'-joined), others
    {set}/contact_motion/contacts/{i:05d}.npz   points (N,6) xyz + rgb in [-1,1], mask (N,), dist (N,22)
                                                (HumanML3D with use_fur: contacts_fur/)
    {set}/contact_motion/target_mask/{i:05d}.npy   HUMANISE, bool (N,): target object points (test phase)
    Mean_Std_Cont_{sets joined by _}_contact_cont_joints_{sigma}[_fur].npz   made from the phase's items when missing

An item's x: contact c = exp(-0.5 d^2 / sigma^2) to the joints [0,10,11,12,20,21] (pelvis, feet, neck, wrists),
normalised x = (c - mean) / std (models/contact.py). A prediction goes back to distances with
models.contact.model_output_to_distance(x, mean, std, sigma) using the dataset's `mean`/`std` ((1,6) float32 numpy).
Stage 1 writes {set}/pred_contact/{name}.npy, (1,N,6) distances, where `name` is "{id}-{caption_index}" for H3D
and "{index:05d}" for the contact_gen sets.
"""
import csv
import random
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from motiondata.humanml3d import FPS, read_text_entries
from models.contact import CONTACT_JOINTS, dataset_contact, distance_to_contact
from motiondata.atomic import atomic_path

DATA_REPR = "contact_cont_joints"
MAX_LENGTH = 200  # exclusive, hard-coded in the reference (its max_horizon=196 is not used by this filter)
NUM_JOINTS = 22

H3D_LAYOUT = ("expected data_dir/H3D/ with {train,test,all}.txt, new_joint_vecs/{id}.npy, texts/{id}.txt and "
              "contacts/{id}.npz (afford-motion's text_to_motion_contact_gen layout; data_dir is the folder "
              "that contains H3D/)")
SCENE_SET_LAYOUT = ("expected data_dir/{set}/{phase}.txt, {set}/contact_motion/anno.csv and "
                    "{set}/contact_motion/contacts/{index:05d}.npz (afford-motion's contact_gen layout)")
NA_STRINGS = {"", "nan", "NaN", "NA", "N/A", "n/a", "None", "null", "NULL"}  # what pandas.read_csv reads as missing


# ----------------------------------------------------------------------------------------------------------------
# contacts

def contact_x(dist, mean, std, sigma, joints):
    """(N,22) distances -> (N,J) float32 normalised contacts, with models/contact.py's dataset direction."""
    mean, std = torch.from_numpy(mean), torch.from_numpy(std)
    return dataset_contact(torch.from_numpy(dist), mean, std, sigma, joints).numpy()


# ----------------------------------------------------------------------------------------------------------------
# files

def require_dir(path, what, layout):
    if not Path(path).is_dir():
        raise FileNotFoundError(f"{what} folder {path} not found; {layout}")


def require_file(path, what, layout):
    if not Path(path).is_file():
        raise FileNotFoundError(f"{what} {path} not found; {layout}")


def read_split(path):
    """Ids of a split file in order (blank lines and repeated ids dropped)."""
    ids = [line.strip() for line in Path(path).read_text().splitlines()]
    return list(dict.fromkeys(i for i in ids if i))


def read_contacts(path, num_points):
    """(points (N,C>=3), dist (N,22)) float32 of one contacts npz, with shapes checked."""
    with np.load(path) as npz:
        missing = {"points", "dist"} - set(npz.files)
        if missing:
            raise KeyError(f"{path} has no {sorted(missing)} (has {npz.files}); expected points (N,>=3), dist (N,22)")
        points, dist = npz["points"].astype(np.float32), npz["dist"].astype(np.float32)
    if points.ndim != 2 or points.shape[1] < 3 or dist.shape != (len(points), NUM_JOINTS):
        raise ValueError(f"{path}: points {points.shape}, dist {dist.shape}; expected (N,>=3) and (N,{NUM_JOINTS})")
    if len(points) != num_points:
        raise ValueError(f"{path} has {len(points)} points but num_points={num_points}")
    return points, dist


def ensure_contact_corpus(data_dir, seed):
    """Writes the project's generated contact corpus (motiondata.synth.scenes) into data_dir unless it is complete
    (H3D/all.txt, written last, exists)."""
    if not (Path(data_dir) / "H3D" / "all.txt").is_file():
        from motiondata.synth.scenes import write_contact_corpus

        print(f"generating the synthetic contact corpus into {data_dir} (seed {seed})")
        write_contact_corpus(data_dir, seed=seed)


# ----------------------------------------------------------------------------------------------------------------
# normalisation statistics

def load_stats(path, num_joints):
    with np.load(path) as npz:
        if not {"mean", "std"} <= set(npz.files):
            raise KeyError(f"stats file {path} has {npz.files}; expected 'mean' and 'std' of shape (1,{num_joints})")
        mean, std = npz["mean"].astype(np.float32), npz["std"].astype(np.float32)
    if mean.shape != (1, num_joints) or std.shape != (1, num_joints):
        raise ValueError(f"stats file {path}: mean {mean.shape}, std {std.shape}; expected (1,{num_joints})")
    return mean, std


def compute_stats(contact_files, joints, sigma):
    """Per-joint mean/std of the contacts of all points of all files, shapes (1,J) float32.

    Same numbers as the reference's concatenate-then-mean/std (up to float32 rounding) without holding every map
    in memory (H3D: ~29k files x 8192 points): per-file moments merged in float64 (Chan et al.).
    """
    count, mean, m2 = 0, np.zeros(len(joints)), np.zeros(len(joints))
    for path in contact_files:
        with np.load(path) as npz:
            dist = torch.from_numpy(npz["dist"].astype(np.float32)[:, list(joints)])
            contact = distance_to_contact(dist, sigma).double().numpy()
        file_count, file_mean = len(contact), contact.mean(axis=0)
        file_m2 = ((contact - file_mean) ** 2).sum(axis=0)
        delta, total = file_mean - mean, count + file_count
        mean = mean + delta * file_count / total
        m2 = m2 + file_m2 + delta ** 2 * count * file_count / total
        count = total
    if count == 0:
        raise ValueError("no contact maps to compute the normalisation statistics from")
    std = np.sqrt(m2 / count)
    return mean[None].astype(np.float32), std[None].astype(np.float32)


def save_stats(path, mean, std):
    with atomic_path(path) as temp_path:
        with open(temp_path, "xb") as file:  # a file object, so np.savez keeps the temp name as is
            np.savez(file, mean=mean, std=std)


def load_or_compute_stats(path, contact_files, joints, sigma, compute_if_missing=True):
    """Stats from `path`; when it is missing, computed from `contact_files()` and saved there (atomically)."""
    path = Path(path)
    if not path.is_file():
        if not compute_if_missing:
            raise FileNotFoundError(f"stats file {path} not found; expected an npz with mean and std of shape "
                                    f"(1,{len(joints)})")
        mean, std = compute_stats(contact_files(), joints, sigma)
        save_stats(path, mean, std)
    return load_stats(path, len(joints))


# ----------------------------------------------------------------------------------------------------------------
# captions

CAPTION_MODES = ("first", "random", "all")


def choose_captions(captions, mode, seed, key):
    """The (caption_index, caption) pairs one entry yields.

    first: the entry's first caption (the reference's test phase); random: one, drawn from an RNG seeded by
    (seed, key) alone, so it does not depend on the order or presence of other entries; all: every caption.
    """
    if mode == "all" or not captions:
        return list(captions)
    if mode == "first":
        return [captions[0]]
    return [random.Random(f"{seed}/{key}").choice(captions)]  # str seeds are hashed with sha512: stable across runs


def check_caption_mode(mode, allowed=CAPTION_MODES):
    if mode not in allowed:
        raise ValueError(f"captions must be one of {allowed} (got {mode!r})")


# ----------------------------------------------------------------------------------------------------------------
# H3D (text_to_motion_contact_gen)

class Entry(NamedTuple):
    """One reference dataset entry: a whole motion with its whole-motion captions, or one sub-segment caption."""
    motion_id: str
    length: int
    captions: list  # [(caption_index, caption)], caption_index = line index in texts/{id}.txt


class Sample(NamedTuple):
    motion_id: str
    caption_index: int
    caption: str


def motion_entries(h3d_dir, motion_id, min_length):
    """(entries of one motion, None) as the reference builds them, or ([], reason it is skipped).

    Segment entries come first in line order, then the whole-motion entry (the reference's insertion order, which
    its stable sort by length keeps among equal lengths). Segments reuse the whole motion's contact map.
    """
    motion_path = h3d_dir / "new_joint_vecs" / f"{motion_id}.npy"
    text_path = h3d_dir / "texts" / f"{motion_id}.txt"
    if not motion_path.is_file():
        return [], "no new_joint_vecs file"
    if not text_path.is_file():
        return [], "no texts file"
    motion = np.load(motion_path)
    if np.isnan(motion).any():
        return [], "NaN in new_joint_vecs"
    if len(motion) < min_length:
        return [], f"shorter than {min_length} frames"
    if len(motion) >= MAX_LENGTH:
        return [], f"{MAX_LENGTH} frames or longer"

    segments, whole_captions = [], []
    # caption_index counts non-blank lines; the reference counts all lines but drops a motion with a blank line
    for caption_index, (caption, start, end) in enumerate(read_text_entries(text_path)):
        if start == 0.0 and end == 0.0:
            whole_captions.append((caption_index, caption))
            continue
        length = len(motion[int(start * FPS): int(end * FPS)])
        if min_length <= length < MAX_LENGTH:
            segments.append(Entry(motion_id, length, [(caption_index, caption)]))
    if whole_captions:
        segments.append(Entry(motion_id, len(motion), whole_captions))
    if not segments:
        return [], "no caption with a long enough motion"
    return segments, None


def load_entries(h3d_dir, motion_ids, min_length):
    """(entries sorted by length like the reference, {skip reason: [ids]})."""
    entries, skipped = [], {}
    for motion_id in motion_ids:
        found, reason = motion_entries(h3d_dir, motion_id, min_length)
        entries.extend(found)
        if reason:
            skipped.setdefault(reason, []).append(motion_id)
    entries.sort(key=lambda entry: entry.length)  # stable
    return entries, skipped


def reference_order(items, shuffle_seed, seed_offset=0):
    """Items as given, or shuffled like the reference's test phase: random.seed(shuffle_seed - offset); shuffle."""
    if shuffle_seed is None:
        return list(items)
    order = list(range(len(items)))
    random.Random(shuffle_seed - seed_offset).shuffle(order)
    return [items[i] for i in order]


class ContactHumanML3DDataset(Dataset):
    """Contact maps of HumanML3D motions, one item per (entry, chosen caption).

    data_dir: the folder holding H3D/ (the reference's `data`). phase: a split file name (train, test, all).
    captions: first | random | all (see choose_captions). limit: keep the first `limit` items.
    shuffle_seed: None keeps the reference's length-sorted entry order; the config seed (2023 by default) with
    phase="test" gives the reference's test order, shared by its stage 1 and stage 2.
    stats_file: an existing stats npz to use instead of data_dir/Mean_Std_Cont_OriH3D_contact_cont_joints_{sigma}.npz
    (that one is computed over H3D/all.txt and saved when missing, as the reference does).
    """
    set_name = "H3D"

    def __init__(self, data_dir, phase, sigma=0.8, num_points=8192, captions="first", seed=0, limit=None,
                 min_length=40, joints=CONTACT_JOINTS, shuffle_seed=None, stats_file=None):
        check_caption_mode(captions)
        self.data_dir, self.phase, self.sigma, self.num_points = Path(data_dir), phase, sigma, num_points
        self.joints, self.captions, self.seed = tuple(joints), captions, seed
        self.h3d_dir = self.data_dir / "H3D"
        self.check_layout()

        motion_ids = read_split(self.h3d_dir / f"{phase}.txt")
        entries, self.skipped = load_entries(self.h3d_dir, motion_ids, min_length)
        if not entries:
            raise ValueError(f"no entry of {self.h3d_dir / f'{phase}.txt'} passed the filters "
                             f"(skipped: { {reason: len(ids) for reason, ids in self.skipped.items()} })")
        entries = reference_order(entries, shuffle_seed, seed_offset=2023)
        self.num_motions, self.num_entries = len(motion_ids), len(entries)
        self.samples = [Sample(entry.motion_id, index, caption) for entry in entries
                        for index, caption in choose_captions(entry.captions, captions, seed,
                                                              f"{entry.motion_id}-{entry.captions[0][0]}")]
        self.samples = self.samples[:limit]
        self.check_contacts_exist()
        self.stats_path = self.default_stats_path() if stats_file is None else Path(stats_file)
        self.mean, self.std = load_or_compute_stats(self.stats_path, self.all_contact_files, self.joints, sigma,
                                                    compute_if_missing=stats_file is None)

    def check_layout(self):
        if not self.data_dir.is_dir():
            raise FileNotFoundError(f"data_dir {self.data_dir} not found; {H3D_LAYOUT}")
        if not self.h3d_dir.is_dir() and (self.data_dir / "contacts").is_dir():
            raise FileNotFoundError(f"{self.h3d_dir} not found: {self.data_dir} looks like the H3D folder itself; "
                                    f"pass its parent as data_dir ({H3D_LAYOUT})")
        require_dir(self.h3d_dir, "H3D", H3D_LAYOUT)
        split_path = self.h3d_dir / f"{self.phase}.txt"
        if not split_path.is_file():
            found = sorted(p.stem for p in self.h3d_dir.glob("*.txt"))
            raise FileNotFoundError(f"split file {split_path} not found (phase {self.phase!r}; split files there: "
                                    f"{found}); {H3D_LAYOUT}")
        for folder in ("new_joint_vecs", "texts", "contacts"):
            require_dir(self.h3d_dir / folder, folder, H3D_LAYOUT)

    def check_contacts_exist(self):
        missing = sorted({s.motion_id for s in self.samples if not self.contact_path(s.motion_id).is_file()})
        if missing:
            raise FileNotFoundError(f"{len(missing)} motions of {self.phase}.txt have no contact map, e.g. "
                                    f"{self.contact_path(missing[0])}; {H3D_LAYOUT}")

    def default_stats_path(self):
        return self.data_dir / f"Mean_Std_Cont_OriH3D_{DATA_REPR}_{self.sigma}.npz"

    def contact_path(self, motion_id):
        return self.h3d_dir / "contacts" / f"{motion_id}.npz"

    def all_contact_files(self):
        """The reference's stats source: every id of H3D/all.txt that has a contact map (no length filter)."""
        all_path = self.h3d_dir / "all.txt"
        require_file(all_path, "split file", f"needed to compute the missing stats file {self.stats_path}; "
                                             f"{H3D_LAYOUT}")
        paths = (self.contact_path(motion_id) for motion_id in read_split(all_path))
        return [path for path in paths if path.is_file()]

    def summary(self):
        skipped = ", ".join(f"{reason}: {len(ids)}" for reason, ids in self.skipped.items()) or "none"
        return (f"H3D {self.phase}: {self.num_motions} motions -> {self.num_entries} entries -> {len(self)} items "
                f"(captions={self.captions}); skipped motions: {skipped}")

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        sample = self.samples[index]
        points, dist = read_contacts(self.contact_path(sample.motion_id), self.num_points)
        xyz = np.ascontiguousarray(points[:, :3])
        return {
            "sample_id": index,
            "name": f"{sample.motion_id}-{sample.caption_index}",
            "set": self.set_name,
            "motion_id": sample.motion_id,
            "caption": sample.caption,
            "caption_index": sample.caption_index,
            "points": xyz,
            "x": contact_x(dist, self.mean, self.std, self.sigma, self.joints),
            # the reference's keys, what the CDM forward and its evaluator read (no c_pc_feat, no x_mask for H3D)
            "c_pc_xyz": xyz,
            "c_text": sample.caption,
            "info_index": sample.motion_id,
            "info_caption_index": sample.caption_index,
        }


# ----------------------------------------------------------------------------------------------------------------
# scene sets (contact_gen)

class SceneSample(NamedTuple):
    set_name: str
    index: int  # row of anno.csv
    scene_id: str
    scene_trans: np.ndarray  # (3,) float32
    caption_index: int  # into the '$$'-split utterance; -1 when the row has no caption (PROX)
    caption: str


def read_anno(path):
    """Rows of anno.csv as dicts, with the columns the reader needs checked."""
    with open(path, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        needed = {"scene_id", "scene_trans_x", "scene_trans_y", "scene_trans_z", "utterance"}
        missing = needed - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path} lacks the columns {sorted(missing)} (has {reader.fieldnames})")
        return list(reader)


def row_captions(row):
    utterance = row["utterance"]
    return [] if utterance in NA_STRINGS else list(enumerate(utterance.split("$$")))


def scene_mesh_path(data_dir, set_name, scene_id):
    name = f"{scene_id}/{scene_id}_vh_clean_2" if set_name == "HUMANISE" else scene_id
    return str(Path(data_dir) / set_name / "scenes" / f"{name}.ply")


def translation_matrix(translation):
    transform = np.eye(4, dtype=np.float32)
    transform[:3, 3] = translation
    return transform


class ContactMapDataset(Dataset):
    """Contact maps of the scene sets, one item per anno.csv row of the split (rows in file order, sets in order).

    captions: first | random (one file per row is what the reference writes: {set}/pred_contact/{index:05d}.npy).
    use_mirror / use_fur: the reference's sets_config.HumanML3D switches. No augmentation (the reference's train
    transforms rotate points and scene_trans only; contact values are per point, so x is the same).
    The stats file is computed from this phase's rows when missing, as the reference does.
    """

    def __init__(self, data_dir, phase, sets=("HumanML3D", "HUMANISE", "PROX"), sigma=0.8, num_points=8192,
                 use_color=True, use_mirror=True, use_fur=True, captions="first", seed=0, limit=None,
                 joints=CONTACT_JOINTS, shuffle_seed=None, stats_file=None):
        check_caption_mode(captions, ("first", "random"))
        self.data_dir, self.phase, self.sets = Path(data_dir), phase, list(sets)
        self.sigma, self.num_points, self.use_color, self.joints = sigma, num_points, use_color, tuple(joints)
        self.use_mirror, self.use_fur, self.captions, self.seed = use_mirror, use_fur, captions, seed
        if not self.data_dir.is_dir():
            raise FileNotFoundError(f"data_dir {self.data_dir} not found; {SCENE_SET_LAYOUT}")

        rows = [row for set_name in self.sets for row in self.set_rows(set_name)]
        self.all_samples = reference_order(rows, shuffle_seed)
        self.samples = self.all_samples[:limit]
        missing = [p for p in map(self.contact_path, self.all_samples) if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} rows of the {phase} split have no contact map, e.g. "
                                    f"{missing[0]}; {SCENE_SET_LAYOUT}")
        self.stats_path = self.default_stats_path() if stats_file is None else Path(stats_file)
        self.mean, self.std = load_or_compute_stats(
            self.stats_path, lambda: [self.contact_path(s) for s in self.all_samples], self.joints, sigma,
            compute_if_missing=stats_file is None)

    def split_path(self, set_name):
        without_mirror = "_without_mirror" if set_name == "HumanML3D" and not self.use_mirror else ""
        return self.data_dir / set_name / f"{self.phase}{without_mirror}.txt"

    def set_rows(self, set_name):
        set_dir, contact_dir = self.data_dir / set_name, self.data_dir / set_name / "contact_motion"
        require_dir(set_dir, f"set {set_name}", SCENE_SET_LAYOUT)
        require_file(self.split_path(set_name), "split file", SCENE_SET_LAYOUT)
        require_file(contact_dir / "anno.csv", "annotation file", SCENE_SET_LAYOUT)
        split = {int(line) for line in read_split(self.split_path(set_name))}
        samples = []
        for index, row in enumerate(read_anno(contact_dir / "anno.csv")):
            if index not in split:
                continue
            scene_id = "" if row["scene_id"] in NA_STRINGS else row["scene_id"]
            trans = np.array([float(row[f"scene_trans_{axis}"]) for axis in "xyz"], dtype=np.float32)
            chosen = choose_captions(row_captions(row), self.captions, self.seed, f"{set_name}/{index}")
            caption_index, caption = chosen[0] if chosen else (-1, "")
            samples.append(SceneSample(set_name, index, scene_id, trans, caption_index, caption))
        return samples

    def default_stats_path(self):
        name = f"Mean_Std_Cont_{'_'.join(self.sets)}_{DATA_REPR}_{self.sigma}"
        fur = "_fur" if "HumanML3D" in self.sets and self.use_fur else ""
        return self.data_dir / f"{name}{fur}.npz"

    def contact_path(self, sample):
        folder = "contacts_fur" if sample.set_name == "HumanML3D" and self.use_fur else "contacts"
        return self.data_dir / sample.set_name / "contact_motion" / folder / f"{sample.index:05d}.npz"

    def target_mask(self, sample):
        """HUMANISE's target-object mask, bool (N,); None for the other sets (the reference's info_obj_mask)."""
        if sample.set_name != "HUMANISE":
            return None
        path = self.data_dir / "HUMANISE" / "contact_motion" / "target_mask" / f"{sample.index:05d}.npy"
        require_file(path, "target mask", "HUMANISE test items need contact_motion/target_mask/{index:05d}.npy")
        return np.load(path).astype(bool)

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        sample = self.samples[index]
        path = self.contact_path(sample)
        points, dist = read_contacts(path, self.num_points)
        xyz = np.ascontiguousarray(points[:, :3])
        if self.use_color and points.shape[1] < 6:
            raise ValueError(f"{path}: points {points.shape} has no rgb columns 3:6; pass use_color=False")
        rgb = (points[:, 3:6] + 1) / 2.0  # [-1,1] -> [0,1]
        point_feat = np.ascontiguousarray(rgb if self.use_color else points[:, 3:3])
        item = {
            "sample_id": index,
            "name": f"{sample.index:05d}",
            "set": sample.set_name,
            "caption": sample.caption,
            "caption_index": sample.caption_index,
            "points": xyz,
            "point_feat": point_feat,
            "x": contact_x(dist, self.mean, self.std, self.sigma, self.joints),
            "c_pc_xyz": xyz,
            "c_pc_feat": point_feat,
            "c_text": sample.caption,
            "info_set": sample.set_name,
            "info_index": sample.index,
            "info_scene_trans": translation_matrix(sample.scene_trans),
            "info_scene_mesh": scene_mesh_path(self.data_dir, sample.set_name, sample.scene_id),
        }
        if self.phase == "test":
            item["info_obj_mask"] = self.target_mask(sample)
        return item


def collate_items(items):
    """Batch of item dicts: arrays of one shape are stacked into tensors, everything else stays a list.

    Like the reference's collate_fn_general; torch's default collate fails on info_obj_mask=None.
    """
    batch = {}
    for key in items[0]:
        values = [item[key] for item in items]
        stackable = all(isinstance(v, np.ndarray) and v.shape == values[0].shape for v in values)
        batch[key] = torch.from_numpy(np.stack(values)) if stackable else values
    return batch
