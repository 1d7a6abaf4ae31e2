"""A forward-kinematics body on the HumanML3D 22-joint skeleton (Y up, metres, left = +x, facing +z).

A pose is a vector of named joint angles in degrees (`DOF_NAMES`, limits in `DOF_LIMITS`):

- root_pitch / root_roll: tilt of the whole body about the pelvis (+pitch = forward, face down at 90;
  +roll = toward the body's left). The heading about Y is not an angle here: see `set_heading`.
- hinge: the trunk pitching forward at the pelvis while the legs stay (bowing, sitting up straight).
- spine_flex / spine_side / spine_twist: bend forward, bend to the left, turn the chest to the left;
  spread evenly over spine1, spine2, spine3.
- neck_flex / neck_side / neck_turn: look down, tilt left, turn left.
- {l,r}_collar_elev: shrug.
- {l,r}_shoulder_elev, _plane, _twist: the arm leaves the hanging position by `elev` degrees
  (90 = horizontal, 180 = overhead) toward the horizontal direction `plane` (0 = straight out to the side,
  90 = forward, > 90 across the chest, < 0 behind); twist = external rotation about the upper arm.
- {l,r}_elbow_flex: 0 = straight.
- {l,r}_hip_elev, _plane, _twist: the same swing for the thigh (plane 90 = forward, 0 = out to the side,
  -90 = backward); twist = external rotation (toes out).
- {l,r}_knee_flex: 0 = straight. {l,r}_ankle_flex: + lifts the toes, - points them.

Angles of the left and right side mean the same anatomical motion, so mirroring a pose swaps the names
and negates only the sideways angles (`MIRROR_NEGATED`).

Limits are a box per angle plus `MAX_EXTENSION` (a thigh may point at most 40 degrees behind the body, an
upper arm 60); `clip_to_limits` enforces them, `within_limits` tests them. Twist is measured about the
hanging limb, so a large swing (the thighs of a cross-legged sit) needs a larger twist than anatomy tables
give. Bone lengths (`REST_OFFSETS`, scale 1): pelvis 0.93 m above the floor standing, head joint 1.56 m,
top of the skull about 1.69 m; `scale` multiplies them all.
"""
from dataclasses import dataclass, field

import numpy as np

from motiondata.features import rotate_about_y
from motiondata.skeleton import JOINT_NAMES, NUM_JOINTS, PARENTS, fit_bone_lengths

J = {name: index for index, name in enumerate(JOINT_NAMES)}

# rest offset of each joint from its parent at scale 1: standing straight, arms hanging, facing +z
_OFFSETS_LEFT_AND_CENTRE = {
    "left_hip": (0.085, -0.085, 0.0),
    "left_knee": (0.0, -0.40, 0.0),
    "left_ankle": (0.0, -0.385, 0.0),
    "left_foot": (0.0, -0.06, 0.12),
    "spine1": (0.0, 0.11, -0.015),
    "spine2": (0.0, 0.13, 0.0),
    "spine3": (0.0, 0.055, 0.01),
    "neck": (0.0, 0.215, -0.02),
    "head": (0.0, 0.12, 0.04),
    "left_collar": (0.075, 0.12, -0.015),
    "left_shoulder": (0.11, 0.03, -0.01),
    "left_elbow": (0.0, -0.28, 0.0),
    "left_wrist": (0.0, -0.25, 0.0),
}


def _rest_offsets() -> np.ndarray:
    offsets = np.zeros((NUM_JOINTS, 3))
    for name, offset in _OFFSETS_LEFT_AND_CENTRE.items():
        offsets[J[name]] = offset
        if name.startswith("left_"):
            offsets[J["right_" + name[5:]]] = (-offset[0], offset[1], offset[2])
    return offsets


REST_OFFSETS = _rest_offsets()
BONE_LENGTHS = np.linalg.norm(REST_OFFSETS[1:], axis=-1)  # bone (PARENTS[j] -> j) for j = 1..21
SCALE_RANGE = (0.94, 1.06)  # body sizes of the generated corpora, relative to REST_OFFSETS
STANDING_PELVIS_HEIGHT = 0.93  # hip drop + thigh + shin + ankle-to-toe drop at scale 1
HEAD_TOP_ABOVE_HEAD_JOINT = 0.13  # the skull is not a joint: head joint 1.56 m + 0.13 = 1.69 m tall
LEFT_RIGHT_SWAP = [J[n.replace("left_", "right_") if n.startswith("left_") else n.replace("right_", "left_")]
                   for n in JOINT_NAMES]

DOF_LIMITS = {
    "root_pitch": (-95.0, 95.0), "root_roll": (-95.0, 95.0), "hinge": (-30.0, 110.0),
    "spine_flex": (-45.0, 60.0), "spine_side": (-40.0, 40.0), "spine_twist": (-50.0, 50.0),
    "neck_flex": (-50.0, 60.0), "neck_side": (-35.0, 35.0), "neck_turn": (-70.0, 70.0),
}
for _side in "lr":
    DOF_LIMITS.update({
        f"{_side}_collar_elev": (-10.0, 30.0),
        f"{_side}_shoulder_elev": (0.0, 180.0), f"{_side}_shoulder_plane": (-90.0, 140.0),
        f"{_side}_shoulder_twist": (-90.0, 90.0), f"{_side}_elbow_flex": (0.0, 150.0),
        f"{_side}_hip_elev": (0.0, 135.0), f"{_side}_hip_plane": (-90.0, 135.0),
        f"{_side}_hip_twist": (-45.0, 90.0), f"{_side}_knee_flex": (0.0, 155.0),
        f"{_side}_ankle_flex": (-50.0, 30.0),
    })
DOF_NAMES = list(DOF_LIMITS)
DOF = {name: index for index, name in enumerate(DOF_NAMES)}
LIMITS_LOW = np.array([DOF_LIMITS[n][0] for n in DOF_NAMES])
LIMITS_HIGH = np.array([DOF_LIMITS[n][1] for n in DOF_NAMES])
# how far (degrees) a thigh / upper arm may point behind the body (plane < 0), whatever elev says
MAX_EXTENSION = {"hip": 40.0, "shoulder": 60.0}
MIRROR_NEGATED = ["root_roll", "spine_side", "spine_twist", "neck_side", "neck_turn"]


@dataclass
class Pose:
    """A static pose: joint angles in degrees (missing ones are 0), body size, height above the floor."""
    angles: dict = field(default_factory=dict)
    scale: float = 1.0
    lift: float = 0.0  # metres between the lowest joint and the floor (jumps; body thickness when lying)
    heading: float = 0.0  # degrees about +Y; 0 faces +z, 90 faces +x

    def vector(self) -> np.ndarray:
        unknown = set(self.angles) - set(DOF)
        if unknown:
            raise KeyError(f"unknown joint angles {sorted(unknown)}; valid names are body.DOF_NAMES")
        vector = np.zeros(len(DOF_NAMES))
        for name, degrees in self.angles.items():
            vector[DOF[name]] = degrees
        return vector


# ---------------------------------------------------------------------------------------------------------
# joint limits, mirroring


def _max_elev(plane_deg: np.ndarray, max_extension_deg: float) -> np.ndarray:
    behind = np.maximum(-np.sin(np.radians(plane_deg)), 1e-9)
    ratio = np.sin(np.radians(max_extension_deg)) / behind
    return np.where(ratio >= 1.0, 180.0, np.degrees(np.arcsin(np.minimum(ratio, 1.0))))


def clip_to_limits(angles: np.ndarray) -> np.ndarray:
    """Angles (..., n_dof) clipped to the box limits and to the hip / shoulder extension limits."""
    angles = np.clip(angles, LIMITS_LOW, LIMITS_HIGH)
    for side in "lr":
        for joint, max_extension in MAX_EXTENSION.items():
            elev, plane = DOF[f"{side}_{joint}_elev"], DOF[f"{side}_{joint}_plane"]
            angles[..., elev] = np.minimum(angles[..., elev], _max_elev(angles[..., plane], max_extension))
    return angles


def within_limits(angles: np.ndarray, tolerance: float = 1e-6) -> bool:
    return bool(np.all(np.abs(clip_to_limits(angles.copy()) - angles) <= tolerance))


def _mirror_permutation_and_signs():
    permutation, signs = [], np.ones(len(DOF_NAMES))
    for name in DOF_NAMES:
        twin = {"l_": "r_" + name[2:], "r_": "l_" + name[2:]}.get(name[:2], name)
        permutation.append(DOF[twin])
    for name in MIRROR_NEGATED:
        signs[DOF[name]] = -1.0
    return np.array(permutation), signs


_MIRROR_PERMUTATION, _MIRROR_SIGNS = _mirror_permutation_and_signs()


def mirror_angles(angles: np.ndarray) -> np.ndarray:
    """The left/right mirror image of a pose vector (..., n_dof)."""
    return angles[..., _MIRROR_PERMUTATION] * _MIRROR_SIGNS


def mirror_joints(joints: np.ndarray) -> np.ndarray:
    """The left/right mirror image of joints (..., 22, 3): x -> -x and left/right joints swapped."""
    return joints[..., LEFT_RIGHT_SWAP, :] * np.array([-1.0, 1.0, 1.0])


# ---------------------------------------------------------------------------------------------------------
# rotations and forward kinematics


def _rotation(axis: np.ndarray, degrees) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of `degrees` about unit axes (..., 3) (Rodrigues' formula)."""
    angle = np.radians(np.asarray(degrees, dtype=np.float64))
    cos, sin = np.cos(angle), np.sin(angle)
    x, y, z = np.moveaxis(np.broadcast_to(axis, angle.shape + (3,)), -1, 0)
    one_minus_cos = 1.0 - cos
    rotation = np.empty(angle.shape + (3, 3))
    rotation[..., 0, 0] = one_minus_cos * x * x + cos
    rotation[..., 0, 1] = one_minus_cos * x * y - sin * z
    rotation[..., 0, 2] = one_minus_cos * x * z + sin * y
    rotation[..., 1, 0] = one_minus_cos * x * y + sin * z
    rotation[..., 1, 1] = one_minus_cos * y * y + cos
    rotation[..., 1, 2] = one_minus_cos * y * z - sin * x
    rotation[..., 2, 0] = one_minus_cos * x * z - sin * y
    rotation[..., 2, 1] = one_minus_cos * y * z + sin * x
    rotation[..., 2, 2] = one_minus_cos * z * z + cos
    return rotation


def _rot_x(degrees):
    return _rotation(np.array([1.0, 0.0, 0.0]), degrees)


def _rot_y(degrees):
    return _rotation(np.array([0.0, 1.0, 0.0]), degrees)


def _rot_z(degrees):
    return _rotation(np.array([0.0, 0.0, 1.0]), degrees)


def _swing_twist(side_sign: float, elev, plane, twist) -> np.ndarray:
    """Twist about the hanging limb, then swing it up by elev toward the horizontal direction `plane`."""
    plane_rad = np.radians(plane)
    # direction d = (sign cos p, 0, sin p); the swing axis is cross(down, d) = (-d_z, 0, d_x)
    axis = np.stack([-np.sin(plane_rad), np.zeros_like(plane_rad), side_sign * np.cos(plane_rad)], -1)
    return _rotation(axis, elev) @ _rot_y(side_sign * twist)


def local_rotations(angles: np.ndarray) -> np.ndarray:
    """Pose vectors (..., n_dof) -> each joint's rotation relative to its parent (..., 22, 3, 3).

    A joint's rotation turns the bones to its children; leaf joints (feet, head, wrists) stay identity.
    """
    def a(name):
        return angles[..., DOF[name]]

    rotations = np.broadcast_to(np.eye(3), angles.shape[:-1] + (NUM_JOINTS, 3, 3)).copy()
    rotations[..., J["pelvis"], :, :] = _rot_x(a("root_pitch")) @ _rot_z(-a("root_roll"))
    spine_part = _rot_y(a("spine_twist") / 3) @ _rot_x(a("spine_flex") / 3) @ _rot_z(-a("spine_side") / 3)
    rotations[..., J["spine1"], :, :] = _rot_x(a("hinge")) @ spine_part
    rotations[..., J["spine2"], :, :] = spine_part
    rotations[..., J["spine3"], :, :] = spine_part
    rotations[..., J["neck"], :, :] = _rot_y(a("neck_turn")) @ _rot_x(a("neck_flex")) @ _rot_z(-a("neck_side"))
    for side, name, sign in (("l", "left", 1.0), ("r", "right", -1.0)):
        rotations[..., J[f"{name}_collar"], :, :] = _rot_z(sign * a(f"{side}_collar_elev"))
        rotations[..., J[f"{name}_shoulder"], :, :] = _swing_twist(
            sign, a(f"{side}_shoulder_elev"), a(f"{side}_shoulder_plane"), a(f"{side}_shoulder_twist"))
        rotations[..., J[f"{name}_elbow"], :, :] = _rot_x(-a(f"{side}_elbow_flex"))
        rotations[..., J[f"{name}_hip"], :, :] = _swing_twist(
            sign, a(f"{side}_hip_elev"), a(f"{side}_hip_plane"), a(f"{side}_hip_twist"))
        rotations[..., J[f"{name}_knee"], :, :] = _rot_x(a(f"{side}_knee_flex"))
        rotations[..., J[f"{name}_ankle"], :, :] = _rot_x(-a(f"{side}_ankle_flex"))
    return rotations


def forward_kinematics(angles: np.ndarray, scale=1.0):
    """Pose vectors (..., n_dof) -> (joints (..., 22, 3) with the pelvis at the origin, local rotations).

    `scale` (a number or an array broadcasting against angles[..., 0]) multiplies every bone length.
    """
    local = local_rotations(angles)
    offsets = REST_OFFSETS * np.asarray(scale, dtype=np.float64)[..., None, None]
    offsets = np.broadcast_to(offsets, angles.shape[:-1] + (NUM_JOINTS, 3))
    world = np.empty_like(local)
    joints = np.zeros(angles.shape[:-1] + (NUM_JOINTS, 3))
    world[..., 0, :, :] = local[..., 0, :, :]
    for joint in range(1, NUM_JOINTS):  # SMPL order: every parent comes before its children
        parent = PARENTS[joint]
        bone = (world[..., parent, :, :] @ offsets[..., joint, :, None])[..., 0]
        joints[..., joint, :] = joints[..., parent, :] + bone
        world[..., joint, :, :] = world[..., parent, :, :] @ local[..., joint, :, :]
    return joints, local


# ---------------------------------------------------------------------------------------------------------
# placing the body in the world


def set_heading(joints: np.ndarray, degrees) -> np.ndarray:
    """Turn joints (..., 22, 3) about the vertical axis through the pelvis; +z turns toward +x."""
    angle = np.radians(np.asarray(degrees, dtype=np.float64))[..., None]
    pelvis = joints[..., :1, :] * np.array([1.0, 0.0, 1.0])
    return rotate_about_y(joints - pelvis, angle) + pelvis


def place_on_floor(joints: np.ndarray, lift=0.0) -> np.ndarray:
    """Shift each frame of joints (..., 22, 3) up or down so its lowest joint is `lift` metres above y = 0."""
    lowest = joints[..., 1].min(axis=-1, keepdims=True)
    shift = np.asarray(lift, dtype=np.float64)[..., None] - lowest
    return joints + shift[..., None] * np.array([0.0, 1.0, 0.0])


def pose_joints(pose: Pose) -> np.ndarray:
    """The world joints (22, 3) of a static pose: heading applied, lowest joint `pose.lift` above the floor."""
    joints, _ = forward_kinematics(pose.vector(), pose.scale)
    return place_on_floor(set_heading(joints, pose.heading), pose.lift)


# ---------------------------------------------------------------------------------------------------------
# measurements used by checks


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """Lengths (..., 21) of the bones PARENTS[j] -> j for j = 1..21."""
    return np.linalg.norm(joints[..., 1:, :] - joints[..., PARENTS[1:], :], axis=-1)


def estimate_scale(joints: np.ndarray) -> np.ndarray:
    """Body size relative to the scale-1 skeleton: total bone length over the nominal total."""
    return bone_lengths(joints).sum(axis=-1) / BONE_LENGTHS.sum()


def worst_bone_error(joints: np.ndarray) -> np.ndarray:
    """Largest relative bone-length error (...) against this skeleton at the pose's estimated body size."""
    expected = BONE_LENGTHS * estimate_scale(joints)[..., None]
    return np.abs(bone_lengths(joints) / expected - 1.0).max(axis=-1)


def fit_to_skeleton(joints: np.ndarray) -> np.ndarray:
    """Joints (..., 22, 3) made a body of the corpus: every bone keeps its direction and gets this skeleton's
    length at the pose's estimated size (held within SCALE_RANGE), then a pose reaching below the floor is lifted
    onto it (one above it stays in the air)."""
    scale = np.clip(estimate_scale(joints), *SCALE_RANGE)
    fitted = fit_bone_lengths(joints, BONE_LENGTHS * scale[..., None])
    return place_on_floor(fitted, np.maximum(fitted[..., 1].min(axis=-1), 0.0))
