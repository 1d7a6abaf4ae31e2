"""Write a synthetic contact corpus in afford-motion's H3D layout (what datamodules.contact_data reads).

    python -m motiondata.synth.scenes --out DIR --seed 0 --scenes-per-kind 40

A scene puts a person, posed by one interaction *kind* (KINDS: sit on the chair / sofa / edge of the bed, lie
down on the bed, touch the wall with the right / left hand, put the right hand on the table) into a floor +
furniture scene: the clip settles into the kind's pose (motiondata.synth.corpus.make_clip), the target object
is built around its last frame (a seat 9-12 cm under the pelvis joint, the wall surface 3-8 cm beyond the
wrist, the table top 4-6 cm under it, ...; a pose the furniture cannot fit is drawn again), and 1-2
distractor objects of other kinds stand at least 30 cm from every joint of every frame. Furniture is made of
boxes; no joint of any frame is more than 1 cm inside one. Coordinates: Y up, metres, floor at y = 0.
`make_scene(seed, kind_index, scene_index)` returns one scene with its joints and boxes (for checks).

Layout under DIR (ids are 6-digit numbers, kind_index * scenes_per_kind + scene_index):
- H3D/new_joint_vecs/<id>.npy  (T, 263) float32 HumanML3D features (corpus.motion_vectors), 40 <= T < 120, 20 fps.
- H3D/texts/<id>.txt  3 lines "caption#word/POS ...#0.0#0.0" from the kind's training phrases.
- H3D/contacts/<id>.npz  points (8192, 3) float32 and dist (8192, 22) float32: dist[i, j] = min over frames of
  |points[i] - joint_j(t)| (float32 arithmetic, ~1e-5 m). Points lie on the object boxes' faces (area-weighted)
  and on the floor, inside a 4 m x 4 m square around the pelvis trajectory (its centre jittered by up to
  CROP_JITTER), which is then moved to xz = 0 (the joints with it). The floor gets a share of the points
  proportional to its visible area, kept within 40-60 %; the objects share the rest by visible area.
- H3D/labels/<id>.npy  (8192,) int8: 0 = floor, k = the scene's k-th object (see scenes.jsonl).
- H3D/train.txt, test.txt (80/20 within every kind), all.txt = both, sorted; all.txt is written last, so its
  presence marks a complete corpus (write_contact_corpus then returns without writing anything).
- H3D/scenes.jsonl  {"id", "kind", "objects": [{"label", "kind"}], "target_object", "target_joint"} per scene.
- H3D/eval_scenes.jsonl  one line per test scene and held-out phrasing of its kind (never used in texts/):
  {"id", "caption", "kind", "joint", "joint_index", "object", "object_name"}.
- corpus_info.json  generator version, seed, scenes_per_kind, kinds, counts, num_points.
Everything is drawn from numpy generators seeded with (seed, kind index, scene index): same seed, same bytes.
"""
import argparse
import io
import json
import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from motiondata.atomic import atomic_write_text, temp_path_for
from motiondata.features import root_facing_angle, rotate_about_y
from motiondata.skeleton import JOINT_NAMES
from motiondata.synth.body import J
from motiondata.synth.captions import heldout_captions, random_training_captions, text_line
from motiondata.synth.corpus import FPS, _write_clip_file, make_clip, motion_vectors
from motiondata.synth.poses import FAMILY_BY_NAME, Family, _arm, _both, lie_back

GENERATOR_VERSION = "motiondata.synth.scenes/1"
NUM_POINTS = 8192
DEFAULT_SCENES_PER_KIND = 40
MIN_FRAMES, MAX_FRAMES = 40, 119  # the reader keeps 40 <= T < 200
CAPTIONS_PER_SCENE = 3
CROP_SIZE = 4.0
CROP_JITTER = 0.3  # the crop centre moves off the pelvis trajectory's centre, so the person is not always at 0
FLOOR_SHARE = (0.4, 0.6)
MAX_ATTEMPTS = 50  # poses drawn per scene until the target object fits around one
MAX_DISTRACTOR_TRIES = 40
DISTRACTOR_CLEARANCE = 0.3  # metres between a distractor's footprint and any joint of any frame
OBJECT_GAP = 0.15  # metres between the footprints of two objects
PENETRATION = 0.01  # a joint this deep inside a box is a collision
SPLIT_SEED = 1 << 30


# ---------------------------------------------------------------------------------------------------------
# boxes


@dataclass(frozen=True, eq=False)
class Box:
    """A box standing upright: centre (3,), half sizes (3,) along its own x, y, z, turned by `yaw` radians
    about +Y (motiondata.features.rotate_about_y: its +z axis points along (sin yaw, 0, cos yaw))."""
    centre: np.ndarray
    half: np.ndarray
    yaw: float = 0.0

    @property
    def top(self) -> float:
        return float(self.centre[1] + self.half[1])

    @property
    def bottom(self) -> float:
        return float(self.centre[1] - self.half[1])

    def local(self, points: np.ndarray) -> np.ndarray:
        return rotate_about_y(np.asarray(points, dtype=np.float64) - self.centre, -self.yaw)

    def contains(self, points: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """Mask (...) of points (..., 3) inside the box grown by `margin` (negative: shrunk)."""
        return np.all(np.abs(self.local(points)) < self.half + margin, axis=-1)

    def covers_xz(self, points: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """Mask of points whose xz lies inside the box's footprint grown by `margin`."""
        local = np.abs(self.local(points))
        return (local[..., 0] < self.half[0] + margin) & (local[..., 2] < self.half[2] + margin)

    def moved(self, yaw: float, offset) -> "Box":
        """This box in a frame turned by `yaw` about +Y and then shifted by `offset` (3,)."""
        centre = rotate_about_y(self.centre, yaw) + np.asarray(offset, dtype=np.float64)
        return Box(centre, self.half, self.yaw + yaw)

    def faces(self):
        """(origins, edges1, edges2) (6, 3) each: face k is origin + u * edge1 + v * edge2, u, v in [0, 1]."""
        axes = rotate_about_y(np.eye(3) * self.half[:, None], self.yaw)  # row k: half-axis k in the world
        origins, edges1, edges2 = [], [], []
        for k in range(3):
            e1, e2 = 2 * axes[(k + 1) % 3], 2 * axes[(k + 2) % 3]
            for sign in (1.0, -1.0):
                origins.append(self.centre + sign * axes[k] - (e1 + e2) / 2)
                edges1.append(e1)
                edges2.append(e2)
        return np.array(origins), np.array(edges1), np.array(edges2)


def _box(centre, size) -> Box:
    """An axis-aligned box from its centre and its full sizes."""
    return Box(np.asarray(centre, dtype=np.float64), np.asarray(size, dtype=np.float64) / 2)


def _footprint_axes(box: Box):
    """The box's own x and z axes as xz vectors."""
    cos, sin = np.cos(box.yaw), np.sin(box.yaw)
    return np.array([cos, -sin]), np.array([sin, cos])


def footprints_overlap(a: Box, b: Box, margin: float = 0.0) -> bool:
    """True when the xz rectangles of two boxes come closer than `margin` (separating axis test)."""
    offset = (b.centre - a.centre)[[0, 2]]

    def radius(box, axis):
        x_axis, z_axis = _footprint_axes(box)
        return box.half[0] * abs(axis @ x_axis) + box.half[2] * abs(axis @ z_axis)

    axes = [*_footprint_axes(a), *_footprint_axes(b)]
    return all(abs(axis @ offset) < radius(a, axis) + radius(b, axis) + margin for axis in axes)


@dataclass(frozen=True, eq=False)
class SceneObject:
    label: int  # 1.. (0 is the floor)
    kind: str  # chair, sofa, bed, table, wall, cabinet
    boxes: tuple

    def faces(self):
        """(origins, edges1, edges2, areas) of all faces of all boxes."""
        origins, edges1, edges2 = (np.concatenate(parts) for parts in zip(*(box.faces() for box in self.boxes)))
        return origins, edges1, edges2, np.linalg.norm(edges1, axis=-1) * np.linalg.norm(edges2, axis=-1)


# ---------------------------------------------------------------------------------------------------------
# furniture, in its own frame: origin on the floor below the middle of the footprint, front toward +z


def chair_boxes(seat_top, width, depth, back_height, seat_thickness=0.05, leg=0.04, back_thickness=0.04):
    """Seat slab on four legs, backrest on the back edge of the seat (its front face at -depth/2 + thickness)."""
    leg_height = seat_top - seat_thickness
    boxes = [_box((0, seat_top - seat_thickness / 2, 0), (width, seat_thickness, depth)),
             _box((0, seat_top + back_height / 2, (back_thickness - depth) / 2), (width, back_height, back_thickness))]
    for sx in (-1, 1):
        for sz in (-1, 1):
            centre = (sx * (width - leg) / 2, leg_height / 2, sz * (depth - leg) / 2)
            boxes.append(_box(centre, (leg, leg_height, leg)))
    return boxes


def sofa_boxes(seat_top, width, seat_depth, back_height, back_thickness, arm_width, arm_height):
    """Solid seat between two armrests, backrest behind the seat; seat_depth runs from the backrest's front."""
    depth = seat_depth + back_thickness
    seat_z = back_thickness / 2  # the seat spans z from -depth/2 + back_thickness to depth/2
    boxes = [_box((0, seat_top / 2, seat_z), (width - 2 * arm_width, seat_top, seat_depth)),
             _box((0, (seat_top + back_height) / 2, -depth / 2 + back_thickness / 2),
                  (width, seat_top + back_height, back_thickness))]
    for sx in (-1, 1):
        boxes.append(_box((sx * (width - arm_width) / 2, (seat_top + arm_height) / 2, seat_z),
                          (arm_width, seat_top + arm_height, seat_depth)))
    return boxes


def bed_boxes(top, length, width, headboard_height, headboard_thickness=0.06):
    """A solid bed (frame + mattress) along z, the headboard behind its -z end."""
    return [_box((0, top / 2, 0), (width, top, length)),
            _box((0, (top + headboard_height) / 2, -(length + headboard_thickness) / 2),
                 (width, top + headboard_height, headboard_thickness))]


def table_boxes(top, width, depth, thickness=0.04, leg=0.05, inset=0.04):
    leg_height = top - thickness
    boxes = [_box((0, top - thickness / 2, 0), (width, thickness, depth))]
    for sx in (-1, 1):
        for sz in (-1, 1):
            centre = (sx * (width / 2 - inset - leg / 2), leg_height / 2, sz * (depth / 2 - inset - leg / 2))
            boxes.append(_box(centre, (leg, leg_height, leg)))
    return boxes


def wall_boxes(width, height=2.4, thickness=0.1):
    """A free-standing wall slab; its faces are at z = +-thickness/2."""
    return [_box((0, height / 2, 0), (width, height, thickness))]


def random_chair(u):
    return chair_boxes(u(0.42, 0.5), u(0.42, 0.5), u(0.42, 0.5), u(0.38, 0.5))


def random_sofa(u):
    return sofa_boxes(u(0.4, 0.45), u(1.6, 2.2), u(0.55, 0.65), u(0.35, 0.45), u(0.15, 0.25), u(0.15, 0.22),
                      u(0.18, 0.25))


def random_bed(u):
    return bed_boxes(u(0.45, 0.6), u(1.95, 2.1), u(1.4, 1.8), u(0.3, 0.6))


def random_table(u):
    return table_boxes(u(0.72, 0.78), u(1.0, 1.6), u(0.7, 0.9))


def random_cabinet(u):
    height = u(0.8, 1.9)
    return [_box((0, height / 2, 0), (u(0.5, 1.0), height, u(0.35, 0.6)))]


DISTRACTORS = {"chair": random_chair, "sofa": random_sofa, "bed": random_bed, "table": random_table,
               "cabinet": random_cabinet}


# ---------------------------------------------------------------------------------------------------------
# target objects around the last frame, in the body's frame: pelvis at xz = 0, facing +z, left = +x
# Each returns (object kind, boxes in the body frame) or None when the pose does not fit the furniture.


def _ahead(body: np.ndarray, names) -> float:
    """How far ahead of the pelvis (z) the most backward of the named joints of the last frame is."""
    return float(min(body[-1, J[name], 2] for name in names))


def _seat_front(body, u, solid_base):
    """z of a seat's front edge: behind the knees (thighs overhang it); a solid base also keeps clear of the feet."""
    front = _ahead(body, ("left_knee", "right_knee")) - u(0.06, 0.12)
    if solid_base:
        front = min(front, _ahead(body, ("left_ankle", "right_ankle", "left_foot", "right_foot")) - 0.04)
    return front


def sit_on_chair(body, u):
    pelvis = body[-1, 0]
    seat_top = pelvis[1] - u(0.09, 0.12)
    if not 0.40 <= seat_top <= 0.52:
        return None
    front, behind, back_thickness = _seat_front(body, u, solid_base=False), u(0.10, 0.15), 0.04
    depth = front + behind + back_thickness  # the backrest's front face is `behind` the pelvis
    boxes = chair_boxes(seat_top, u(0.44, 0.5), depth, u(0.38, 0.5), back_thickness=back_thickness)
    return "chair", [box.moved(0.0, (u(-0.03, 0.03), 0, front - depth / 2)) for box in boxes]


def sit_on_sofa(body, u):
    pelvis = body[-1, 0]
    seat_top = pelvis[1] - u(0.09, 0.12)
    if not 0.38 <= seat_top <= 0.48:
        return None
    front, behind = _seat_front(body, u, solid_base=True), u(0.10, 0.18)
    width, back_thickness, arm_width = u(1.6, 2.2), u(0.15, 0.25), u(0.15, 0.22)
    boxes = sofa_boxes(seat_top, width, front + behind, u(0.35, 0.45), back_thickness, arm_width, u(0.18, 0.25))
    room = width / 2 - arm_width - 0.3  # the hips stay 30 cm inside the armrests
    depth = front + behind + back_thickness
    return "sofa", [box.moved(0.0, (u(-room, room), 0, front - depth / 2)) for box in boxes]


def sit_on_bed(body, u):
    pelvis = body[-1, 0]
    top = pelvis[1] - u(0.09, 0.12)
    if not 0.40 <= top <= 0.55:
        return None
    front, length, width = _seat_front(body, u, solid_base=True), u(1.95, 2.1), u(1.4, 1.8)
    boxes = bed_boxes(top, length, width, u(0.3, 0.6))
    yaw = np.pi / 2 if u(0, 1) < 0.5 else -np.pi / 2  # the bed's long side faces the person, head left or right
    return "bed", [box.moved(yaw, (u(-0.5, 0.5), 0, front - width / 2)) for box in boxes]


def lie_on_bed(body, u):
    resting = [J[name] for name in JOINT_NAMES if not name.endswith(("_ankle", "_foot"))]  # the feet hang off
    top = body[-1, resting, 1].min() - u(0.04, 0.07)
    if not 0.42 <= top <= 0.62:
        return None
    # the clip stands up at the foot end (the anchored ankle) and lies back: the standing start must be off the bed
    foot_edge = _ahead(body, ("left_ankle", "right_ankle")) - u(0.08, 0.15)
    length, width = u(1.95, 2.1), u(1.4, 1.8)
    room = width / 2 - 0.45
    boxes = bed_boxes(top, length, width, u(0.3, 0.6))
    return "bed", [box.moved(0.0, (u(-room, room), 0, foot_edge - length / 2)) for box in boxes]


def touch_wall(side):
    def place(body, u):
        wrist, shoulder = body[-1, J[f"{side}_wrist"]], body[-1, J[f"{side}_shoulder"]]
        reach = (wrist - shoulder) * np.array([1.0, 0.0, 1.0])
        yaw = float(np.arctan2(reach[0], reach[2]))  # the wall's +z (its normal) along the arm
        normal = np.array([np.sin(yaw), 0.0, np.cos(yaw)])
        along = np.array([np.cos(yaw), 0.0, -np.sin(yaw)])
        thickness = u(0.08, 0.15)
        surface = wrist @ normal + u(0.03, 0.08)
        centre = normal * (surface + thickness / 2) + along * (wrist @ along + u(-0.6, 0.6))
        return "wall", [box.moved(yaw, centre) for box in wall_boxes(u(2.0, 4.0), u(2.3, 2.5), thickness)]
    return place


def hand_on_table(body, u):
    wrist = body[-1, J["right_wrist"]]
    top = wrist[1] - u(0.04, 0.06)
    if not 0.68 <= top <= 0.82:
        return None
    near_edge = wrist[2] - u(0.10, 0.20)
    # the legs and the hanging hand stay in front of the table's edge (the reaching arm is checked as a whole)
    others = body[:, [J[name] for name in JOINT_NAMES if name not in ("right_elbow", "right_wrist")]]
    if near_edge < others[..., 2][others[..., 1] < top + 0.05].max() + 0.08:
        return None
    width, depth = u(1.0, 1.6), u(0.7, 0.9)
    room = width / 2 - 0.15
    offset = (wrist[0] + u(-room, room), 0, near_edge + depth / 2)
    return "table", [box.moved(0.0, offset) for box in table_boxes(top, width, depth)]


# ---------------------------------------------------------------------------------------------------------
# kinds


def _reach_wall(side):
    """Standing, one arm forward at about shoulder height (the other hangs, from poses._neutral)."""
    return lambda u: {**_arm(side, u(80, 100), u(80, 95), u(-10, 10), u(0, 10)), "neck_flex": u(-5, 10)}


def _hand_on_table(u):
    """Leaning forward from the hips with the right arm forward-down (a standing man's hanging wrist is
    at about 0.87 m: he must bend over to reach a 0.75 m table in front of him)."""
    return {"hinge": u(32, 45), "spine_flex": u(5, 15), "neck_flex": u(5, 20),
            **_arm("r", u(60, 80), u(80, 100), u(-10, 10), u(0, 15))}


def _lie_on_bed(u):
    """poses.lie_back, flat and with the arms never behind the body (they would sink into the mattress);
    lift puts the lowest joint at about the height of a bed top plus the body's thickness."""
    return {**lie_back(u), "root_pitch": u(-90.5, -88.0), "lift": u(0.5, 0.68),
            **_both(lambda u, side: _arm(side, u(0, 60), u(0, 15), 0, u(0, 20)), u)}


def _pose(name, angles):
    return Family(name, angles, shape=lambda m: True, captions=(), heldout=())


@dataclass(frozen=True)
class Kind:
    """An interaction: the final pose, the target object built around it, its captions and target joint.

    `captions` / `heldout` are verb phrases as in poses.Family ("sits on the chair"), so the caption helpers
    of motiondata.synth.captions compose them with the same subjects, adverbs and tails as the pose corpus.
    """
    name: str
    pose: Family
    place: Callable  # (body-frame joints (T, 22, 3), u) -> (object kind, boxes) or None
    target_joint: str
    target_object: str
    captions: tuple
    heldout: tuple

    @property
    def joint_index(self) -> int:
        return J[self.target_joint]


KINDS = (
    Kind("sit_chair", FAMILY_BY_NAME["sit_chair"], sit_on_chair, "pelvis", "chair",
         ("sits on the chair", "sits down on a chair", "takes a seat on the chair", "sits down on the chair",
          "sits on a chair"),
         ("rests on the chair seat", "settles onto the chair")),
    Kind("sit_sofa", FAMILY_BY_NAME["sit_chair"], sit_on_sofa, "pelvis", "sofa",
         ("sits on the sofa", "sits down on the couch", "takes a seat on the sofa", "sits down on the sofa",
          "sits on a couch"),
         ("relaxes on the couch cushions", "settles onto the sofa")),
    Kind("lie_bed", _pose("lie_bed", _lie_on_bed), lie_on_bed, "pelvis", "bed",
         ("lies down on the bed", "lies on the bed", "lies on the back on the bed", "lies down on a bed",
          "stretches out on the bed"),
         ("rests flat on the mattress", "reclines on the bed")),
    Kind("sit_bed", FAMILY_BY_NAME["sit_chair"], sit_on_bed, "pelvis", "bed",
         ("sits on the edge of the bed", "sits down on the bed", "sits on a bed", "takes a seat on the bed",
          "sits on the side of the bed"),
         ("perches on the edge of the mattress", "settles on the side of the bed")),
    Kind("touch_wall_right", _pose("touch_wall_right", _reach_wall("r")), touch_wall("right"), "right_wrist",
         "wall",
         ("touches the wall with the right hand", "puts the right hand on the wall",
          "reaches out and touches the wall with the right hand", "places the right palm on the wall",
          "touches the wall with the right arm"),
         ("presses the right palm against the wall", "reaches the right hand out to the wall")),
    Kind("touch_wall_left", _pose("touch_wall_left", _reach_wall("l")), touch_wall("left"), "left_wrist",
         "wall",
         ("touches the wall with the left hand", "puts the left hand on the wall",
          "reaches out and touches the wall with the left hand", "places the left palm on the wall",
          "touches the wall with the left arm"),
         ("presses the left palm against the wall", "reaches the left hand out to the wall")),
    Kind("hand_on_table", _pose("hand_on_table", _hand_on_table), hand_on_table, "right_wrist", "table",
         ("puts the right hand on the table", "places the right hand on the table",
          "rests the right hand on the table", "leans over and puts the right hand on the table",
          "touches the table with the right hand"),
         ("lays the right palm flat on the tabletop", "presses the right hand down on the table")),
)
KIND_BY_NAME = {kind.name: kind for kind in KINDS}


# ---------------------------------------------------------------------------------------------------------
# one scene


@dataclass
class Scene:
    """A generated scene in its final frame: the crop's centre at xz = 0, the floor at y = 0."""
    kind: Kind
    joints: np.ndarray  # (T, 22, 3) float64
    local_rotations: np.ndarray  # (T, 22, 3, 3), as make_clip returns them
    objects: list  # SceneObject, objects[k - 1].label == k
    target_label: int
    points: np.ndarray  # (NUM_POINTS, 3) float32
    labels: np.ndarray  # (NUM_POINTS,) int8, 0 = floor
    dist: np.ndarray  # (NUM_POINTS, 22) float32
    captions: list

    @property
    def target(self) -> SceneObject:
        return self.objects[self.target_label - 1]


def _collides(joints: np.ndarray, boxes) -> bool:
    return any(box.contains(joints, -PENETRATION).any() for box in boxes)


def _posed_target(kind: Kind, rng: np.random.Generator):
    """A clip of the kind's pose and its target object's boxes, both in world coordinates (make_clip's)."""
    for _ in range(MAX_ATTEMPTS):
        joints, local_rotations = make_clip(kind.pose, rng, int(rng.integers(MIN_FRAMES, MAX_FRAMES + 1)))
        # the body frame of the last frame: pelvis at xz = 0, facing +z
        yaw, origin = float(root_facing_angle(joints[-1])), joints[-1, 0] * np.array([1.0, 0.0, 1.0])
        body = rotate_about_y(joints - origin, -yaw)
        placed = kind.place(body, rng.uniform)
        if placed is not None and not _collides(body, placed[1]):
            object_kind, boxes = placed
            return joints, local_rotations, object_kind, [box.moved(yaw, origin) for box in boxes]
    raise RuntimeError(f"no pose of kind {kind.name} fitted its target object in {MAX_ATTEMPTS} attempts")


def _distractors(rng: np.random.Generator, joints: np.ndarray, target_kind: str, taken: list) -> list:
    """1-2 (kind, boxes) of other furniture kinds, inside the crop, clear of the person and of `taken` boxes
    (fewer only if MAX_DISTRACTOR_TRIES random placements all fail: none did in the default corpus)."""
    pool = sorted(kind for kind in DISTRACTORS if kind != target_kind)
    reach = CROP_SIZE / 2 - 0.3
    placed = []
    for _ in range(int(rng.integers(1, 3))):
        for _ in range(MAX_DISTRACTOR_TRIES):
            kind = pool[rng.integers(len(pool))]
            yaw, offset = rng.uniform(0, 2 * np.pi), (rng.uniform(-reach, reach), 0.0, rng.uniform(-reach, reach))
            boxes = [box.moved(yaw, offset) for box in DISTRACTORS[kind](rng.uniform)]
            near_person = any(box.covers_xz(joints, DISTRACTOR_CLEARANCE).any() for box in boxes)
            if not near_person and not any(footprints_overlap(a, b, OBJECT_GAP) for a in boxes for b in taken):
                placed.append((kind, boxes))
                taken = taken + boxes
                break
    return placed


def _sample_faces(faces, count: int, rng: np.random.Generator) -> np.ndarray:
    origins, edges1, edges2, areas = faces
    index = rng.choice(len(areas), size=count, p=areas / areas.sum())
    u, v = rng.random((2, count, 1))
    return origins[index] + u * edges1[index] + v * edges2[index]


def _in_crop(points: np.ndarray) -> np.ndarray:
    return np.all(np.abs(points[:, [0, 2]]) <= CROP_SIZE / 2, axis=-1)


def _sample_visible(faces, keep: Callable, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` points uniform on the faces where keep(points) holds (rejection sampling)."""
    found, total = [], 0
    while total < count:
        batch = _sample_faces(faces, 2 * count + 64, rng)
        batch = batch[keep(batch)]
        found.append(batch)
        total += len(batch)
    return np.concatenate(found)[:count]


def _apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """Integer counts proportional to `weights` that sum to `total` (largest remainders)."""
    quota = total * weights / weights.sum()
    counts = np.floor(quota).astype(int)
    counts[np.argsort(counts - quota, kind="stable")[:total - counts.sum()]] += 1
    return counts


def sample_points(objects: list, rng: np.random.Generator):
    """(points (N, 3) float32, labels (N,) int8) on the floor and the objects' faces inside the crop.

    The floor is hidden under boxes that stand on it. Every surface's visible area is estimated from 2048
    trial points; the floor's share of the points follows its area within FLOOR_SHARE, the objects share the
    rest by visible area. The points come shuffled.
    """
    grounded = [box for obj in objects for box in obj.boxes if box.bottom < 0.01]
    half = CROP_SIZE / 2
    floor = (np.array([[-half, 0.0, -half]]), np.array([[CROP_SIZE, 0.0, 0.0]]), np.array([[0.0, 0.0, CROP_SIZE]]),
             np.array([CROP_SIZE ** 2]))

    def on_visible_floor(points):
        return _in_crop(points) & ~np.any([box.covers_xz(points) for box in grounded], axis=0)

    surfaces = [(floor, on_visible_floor)] + [(obj.faces(), _in_crop) for obj in objects]
    visible = np.array([faces[3].sum() * keep(_sample_faces(faces, 2048, rng)).mean() for faces, keep in surfaces])
    num_floor = round(float(np.clip(visible[0] / visible.sum(), *FLOOR_SHARE)) * NUM_POINTS)
    counts = [num_floor, *_apportion(NUM_POINTS - num_floor, visible[1:])]
    points = np.concatenate([_sample_visible(faces, keep, count, rng)
                             for (faces, keep), count in zip(surfaces, counts)])
    labels = np.repeat(np.arange(len(surfaces)), counts)
    order = rng.permutation(NUM_POINTS)
    return points[order].astype(np.float32), labels[order].astype(np.int8)


def contact_distances(points: np.ndarray, joints: np.ndarray, chunk: int = NUM_POINTS) -> np.ndarray:
    """(N, 22) float32: the distance of every point to every joint, minimised over the frames of joints (T, 22, 3).

    |p|^2 - 2 p.j + |j|^2 in float32 (errors of about 1e-5 m), joint-major so the minimum runs over a
    contiguous axis: several times faster than float64 differences, which dominated the generation time.
    """
    num_frames, num_joints = joints.shape[:2]
    flat = np.ascontiguousarray(joints.transpose(1, 0, 2).reshape(-1, 3), dtype=np.float32)  # (22 * T, 3)
    minus_twice_flat_t, flat_squared = -2 * flat.T, (flat * flat).sum(-1)
    dist = np.empty((len(points), num_joints), dtype=np.float32)
    for start in range(0, len(points), chunk):
        p = np.asarray(points[start:start + chunk], dtype=np.float32)
        squared = p @ minus_twice_flat_t
        squared += flat_squared
        nearest = squared.reshape(len(p), num_joints, num_frames).min(axis=2) + (p * p).sum(-1)[:, None]
        dist[start:start + chunk] = np.sqrt(np.maximum(nearest, 0.0))
    return dist


def make_scene(seed: int, kind_index: int, scene_index: int) -> Scene:
    """Scene `scene_index` of KINDS[kind_index]; every draw comes from default_rng([seed, kind, scene])."""
    kind = KINDS[kind_index]
    rng = np.random.default_rng([seed, kind_index, scene_index])
    joints, local_rotations, target_kind, target_boxes = _posed_target(kind, rng)

    pelvis = joints[:, 0, [0, 2]]
    centre = (pelvis.min(axis=0) + pelvis.max(axis=0)) / 2 + rng.uniform(-CROP_JITTER, CROP_JITTER, 2)
    shift = np.array([centre[0], 0.0, centre[1]])
    joints = joints - shift
    target_boxes = [box.moved(0.0, -shift) for box in target_boxes]

    found = [(target_kind, target_boxes)] + _distractors(rng, joints, target_kind, target_boxes)
    order = rng.permutation(len(found))  # the target's label varies from scene to scene
    objects = [SceneObject(label + 1, *found[i]) for label, i in enumerate(order)]
    target_label = int(np.flatnonzero(order == 0)[0]) + 1

    points, labels = sample_points(objects, rng)
    captions = random_training_captions(kind, rng, CAPTIONS_PER_SCENE)
    return Scene(kind, joints, local_rotations, objects, target_label, points, labels,
                 contact_distances(points, joints), captions)


# ---------------------------------------------------------------------------------------------------------
# files


def npz_bytes(**arrays) -> bytes:
    """An uncompressed npz like np.savez's, but with fixed member timestamps (np.savez stamps the current
    time into the zip, so the same arrays would not give the same bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue())
    return buffer.getvalue()


def _write_bytes(path: Path, data: bytes) -> None:
    """Like corpus._write_clip_file (temp name in the same folder, os.replace, no fsync) for ready bytes."""
    temporary = temp_path_for(path)
    temporary.write_bytes(data)
    os.replace(temporary, path)


def scene_id(kind_index: int, scene_index: int, scenes_per_kind: int) -> str:
    return f"{kind_index * scenes_per_kind + scene_index:06d}"


def write_scene(h3d: Path, motion_id: str, scene: Scene) -> None:
    _write_clip_file(h3d / "new_joint_vecs" / f"{motion_id}.npy", motion_vectors(scene.joints, scene.local_rotations))
    _write_clip_file(h3d / "texts" / f"{motion_id}.txt", "".join(text_line(c) + "\n" for c in scene.captions))
    _write_bytes(h3d / "contacts" / f"{motion_id}.npz", npz_bytes(points=scene.points, dist=scene.dist))
    _write_clip_file(h3d / "labels" / f"{motion_id}.npy", scene.labels)


def scene_record(motion_id: str, scene: Scene) -> dict:
    return {"id": motion_id, "kind": scene.kind.name,
            "objects": [{"label": obj.label, "kind": obj.kind} for obj in scene.objects],
            "target_object": scene.target_label, "target_joint": scene.kind.target_joint}


def eval_records(motion_id: str, scene: Scene) -> list:
    kind = scene.kind
    return [{"id": motion_id, "caption": caption, "kind": kind.name, "joint": kind.target_joint,
             "joint_index": kind.joint_index, "object": scene.target_label, "object_name": scene.target.kind}
            for caption in heldout_captions(kind)]


def _split(ids: list, rng: np.random.Generator) -> dict:
    """80/20 of one kind's scenes; test gets at least one scene from 2 scenes on."""
    order = [ids[i] for i in rng.permutation(len(ids))]
    num_test = max(1, round(0.2 * len(order))) if len(order) >= 2 else 0
    return {"train": order[num_test:], "test": order[:num_test]}


def _jsonl(records) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def _complete_corpus_info(out: Path, seed: int, scenes_per_kind: int) -> dict:
    """The info of the complete corpus in `out`, if it is the one asked for; otherwise an error."""
    info_path = out / "corpus_info.json"
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    wanted = {"generator_version": GENERATOR_VERSION, "seed": seed, "scenes_per_kind": scenes_per_kind}
    found = {key: info.get(key) for key in wanted}
    if found != wanted:
        raise FileExistsError(f"{out / 'H3D' / 'all.txt'} marks a complete corpus, but not this one ({found}, asked "
                              f"for {wanted}); use another folder or delete that one")
    return info


def write_contact_corpus(out, seed: int = 0, scenes_per_kind: int = DEFAULT_SCENES_PER_KIND) -> dict:
    """Write the corpus under `out` (the folder that holds H3D/) and return the corpus_info dictionary.

    A complete corpus (H3D/all.txt present) with the same parameters is left as it is (other parameters:
    FileExistsError); anything else in the way is rewritten, and contact statistics saved next to an
    incomplete corpus are deleted (the dataset recomputes them from the new maps). The test split needs
    scenes_per_kind >= 2.
    """
    if scenes_per_kind < 1:
        raise ValueError(f"scenes_per_kind must be at least 1, got {scenes_per_kind}")
    out = Path(out)
    h3d = out / "H3D"
    if (h3d / "all.txt").is_file():
        return _complete_corpus_info(out, seed, scenes_per_kind)
    for stale in out.glob("Mean_Std_Cont_OriH3D_*.npz"):
        stale.unlink()
    for folder in ("new_joint_vecs", "texts", "contacts", "labels"):
        (h3d / folder).mkdir(parents=True, exist_ok=True)

    splits, records, eval_lines = {"train": [], "test": []}, [], []
    for kind_index, kind in enumerate(KINDS):
        queries = {}
        for scene_index in range(scenes_per_kind):
            motion_id = scene_id(kind_index, scene_index, scenes_per_kind)
            scene = make_scene(seed, kind_index, scene_index)
            write_scene(h3d, motion_id, scene)
            records.append(scene_record(motion_id, scene))
            queries[motion_id] = eval_records(motion_id, scene)
        split = _split(list(queries), np.random.default_rng([seed, kind_index, SPLIT_SEED]))
        for name, part in split.items():
            splits[name] += sorted(part)
        eval_lines += [line for motion_id in sorted(split["test"]) for line in queries[motion_id]]

    atomic_write_text(h3d / "scenes.jsonl", _jsonl(records))
    atomic_write_text(h3d / "eval_scenes.jsonl", _jsonl(eval_lines))
    for name in ("train", "test"):
        atomic_write_text(h3d / f"{name}.txt", "".join(f"{motion_id}\n" for motion_id in splits[name]))
    info = {
        "generator_version": GENERATOR_VERSION, "seed": seed, "scenes_per_kind": scenes_per_kind,
        "kinds": [kind.name for kind in KINDS], "num_points": NUM_POINTS, "fps": FPS,
        "frames": [MIN_FRAMES, MAX_FRAMES], "crop_size": CROP_SIZE,
        "counts": {"scenes": len(records), "train": len(splits["train"]), "test": len(splits["test"]),
                   "eval_queries": len(eval_lines)},
    }
    atomic_write_text(out / "corpus_info.json", json.dumps(info, indent=2, sort_keys=True) + "\n")
    all_ids = sorted(splits["train"] + splits["test"])
    atomic_write_text(h3d / "all.txt", "".join(f"{motion_id}\n" for motion_id in all_ids))  # last: marks completion
    return info


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Write the synthetic H3D-layout contact corpus (afford-motion CDM).")
    parser.add_argument("--out", type=Path, required=True, help="the folder that will hold H3D/")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scenes-per-kind", type=int, default=DEFAULT_SCENES_PER_KIND)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    info = write_contact_corpus(args.out, args.seed, args.scenes_per_kind)
    counts = info["counts"]
    print(f"contact corpus in {args.out}: {counts['scenes']} scenes of {len(info['kinds'])} kinds "
          f"(train/test {counts['train']}/{counts['test']}, {counts['eval_queries']} held-out queries) "
          f"in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
