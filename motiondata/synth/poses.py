"""Static pose families: a sampler of joint angles, training captions, held-out captions, and a check.

Each `Family` has
- `angles(u)`: joint angles in degrees for one sample (`u(lo, hi)` draws a uniform number); keys not given
  keep the small random jitter of `_neutral(u)`; the key "lift" raises the body off the floor (metres);
- `captions`: verb phrases used for training ("raises both arms above the head"); a caption is
  "<subject> [<adverb>] <phrase>[<tail>]", see motiondata.synth.captions;
- `heldout`: verb phrases kept out of every training caption, for evaluation;
- `validation`: other unseen phrases, for choosing sampling settings (all three in motiondata.synth.phrases);
- `shape(m)`: the family's geometric test on `Measures`; `family.check(joints)` adds the tests every pose
  must pass (`plausible`: floor, bone lengths);
- `mirror`: the captions name no side, so samples are mirrored left/right at random and the check accepts
  either side. Families whose captions name a side ("raises the left arm") are not mirrored.

Checks look at the joints in the body's own frame (`Measures`: pelvis at xz = 0, facing +z from the hips and
shoulders as HumanML3D does, left = +x, y = height above the floor), so they ignore where the body stands and
which way it faces, and thresholds scale with the body size estimated from the bone lengths. No family lies
on its side: there the hips and shoulders give no heading and HumanML3D's features turn noisy.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np

from motiondata.features import root_facing_angle, rotate_about_y
from motiondata.synth.body import (
    DOF, J, SCALE_RANGE, STANDING_PELVIS_HEIGHT, Pose, clip_to_limits, estimate_scale, mirror_angles, worst_bone_error,
)
from motiondata.synth.phrases import HELDOUT, TRAINING, VALIDATION

FLOOR_TOLERANCE = 0.02  # metres a joint may be below y = 0
BONE_TOLERANCE = 0.05  # relative error of each bone against the skeleton at the estimated scale


# ---------------------------------------------------------------------------------------------------------
# measurements


class Measures:
    """Joints (22, 3) seen from the body: pelvis at xz = 0, facing +z, left = +x; y stays the height."""

    def __init__(self, joints: np.ndarray):
        joints = np.asarray(joints, dtype=np.float64)
        self.scale = float(estimate_scale(joints))
        centred = joints - joints[0] * np.array([1.0, 0.0, 1.0])
        self.p = rotate_about_y(centred, -root_facing_angle(joints))
        self.standing_pelvis = STANDING_PELVIS_HEIGHT * self.scale

    def __getitem__(self, joint_name: str) -> np.ndarray:
        return self.p[J[joint_name]]

    def y(self, joint_name: str) -> float:
        return float(self.p[J[joint_name], 1])

    @property
    def trunk(self) -> np.ndarray:
        return self["neck"] - self["pelvis"]

    @property
    def trunk_pitch(self) -> float:
        """Degrees the trunk leans forward from vertical (negative: backward; 90: horizontal)."""
        return float(np.degrees(np.arctan2(self.trunk[2], self.trunk[1])))

    @property
    def trunk_from_horizontal(self) -> float:
        return float(np.degrees(np.arcsin(abs(self.trunk[1]) / np.linalg.norm(self.trunk))))

    @property
    def trunk_from_vertical(self) -> float:
        return 90.0 - self.trunk_from_horizontal if self.trunk[1] > 0 else 90.0 + self.trunk_from_horizontal

    @property
    def chest_front(self) -> np.ndarray:
        """Unit vector out of the chest (+z when standing, +y when lying on the back)."""
        left = (self["left_shoulder"] - self["right_shoulder"]) + (self["left_hip"] - self["right_hip"])
        front = np.cross(left, self.trunk)
        return front / np.linalg.norm(front)

    def flex(self, upper: str, middle: str, lower: str) -> float:
        """Degrees a joint is bent: 0 when upper-middle-lower is a straight line."""
        a, b = self[upper] - self[middle], self[lower] - self[middle]
        cosine = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
        return 180.0 - float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))

    def knee_flex(self, side: str) -> float:
        return self.flex(f"{side}_hip", f"{side}_knee", f"{side}_ankle")

    def elbow_flex(self, side: str) -> float:
        return self.flex(f"{side}_shoulder", f"{side}_elbow", f"{side}_wrist")

    def from_horizontal(self, start: str, end: str) -> float:
        """Degrees the segment start -> end points above (+) or below (-) the horizontal plane."""
        d = self[end] - self[start]
        return float(np.degrees(np.arcsin(d[1] / np.linalg.norm(d))))

    def on_floor(self, joint_name: str, height: float = 0.15) -> bool:
        return self.y(joint_name) < height * self.scale

    def lowest(self) -> float:
        return float(self.p[:, 1].min())

    def distance(self, a: str, b: str) -> float:
        return float(np.linalg.norm(self[a] - self[b]))


def plausible(joints: np.ndarray) -> bool:
    """Every pose: no joint more than 2 cm under the floor, every bone within 5 % of the skeleton's."""
    scale = float(estimate_scale(joints))
    if not SCALE_RANGE[0] - 0.1 <= scale <= SCALE_RANGE[1] + 0.1:
        return False
    return bool(worst_bone_error(joints) <= BONE_TOLERANCE and joints[:, 1].min() >= -FLOOR_TOLERANCE)


def _segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    t = np.clip((points - a) @ (b - a) / np.dot(b - a, b - a), 0.0, 1.0)
    return np.linalg.norm(points - (a + t[:, None] * (b - a)), axis=-1)


def limbs_clear_of_torso(joints: np.ndarray, radius: float = 0.08) -> bool:
    """No point of the arms (5 per bone) or of the knees is within `radius` of the pelvis-neck line."""
    points = []
    for side in ("left", "right"):
        for start, end in (("shoulder", "elbow"), ("elbow", "wrist")):
            a, b = joints[J[f"{side}_{start}"]], joints[J[f"{side}_{end}"]]
            points += [a + t * (b - a) for t in (0.25, 0.5, 0.75, 1.0)]
        points.append(joints[J[f"{side}_knee"]])
    distances = _segment_distance(np.array(points), joints[J["pelvis"]], joints[J["neck"]])
    return bool(distances.min() >= radius * estimate_scale(joints))


# ---------------------------------------------------------------------------------------------------------
# families


@dataclass(frozen=True)
class Family:
    name: str
    angles: Callable
    shape: Callable
    captions: tuple
    heldout: tuple
    mirror: bool = False
    validation: tuple = ()

    def sample(self, rng: np.random.Generator) -> Pose:
        """One random pose of this family: angles within the joint limits, random size and heading."""
        angles = _neutral(rng.uniform)
        angles.update(self.angles(rng.uniform))
        lift = angles.pop("lift", 0.0)
        vector = clip_to_limits(Pose(angles).vector())
        if self.mirror and rng.random() < 0.5:
            vector = mirror_angles(vector)
        return Pose(dict(zip(DOF, vector)), scale=rng.uniform(*SCALE_RANGE), lift=lift,
                    heading=rng.uniform(0.0, 360.0))

    def check(self, joints: np.ndarray) -> bool:
        """True when joints (22, 3) are a plausible pose of this family."""
        return plausible(joints) and bool(self.shape(Measures(joints)))


def _arm(side, elev, plane, twist=0.0, elbow=0.0):
    return {f"{side}_shoulder_elev": elev, f"{side}_shoulder_plane": plane,
            f"{side}_shoulder_twist": twist, f"{side}_elbow_flex": elbow}


def _leg(side, elev, plane, twist=0.0, knee=0.0, ankle=0.0):
    return {f"{side}_hip_elev": elev, f"{side}_hip_plane": plane, f"{side}_hip_twist": twist,
            f"{side}_knee_flex": knee, f"{side}_ankle_flex": ankle}


def _arm_down(u, side):
    return _arm(side, u(4, 12), u(-15, 20), u(-10, 10), u(5, 20))


def _leg_straight(u, side):
    return _leg(side, u(0, 5), u(-10, 20), u(-5, 15), u(0, 5), u(-3, 3))


def _neutral(u) -> dict:
    """A relaxed standing stance with small random variations; families override what they need."""
    angles = {"neck_flex": u(-5, 10), "neck_turn": u(-10, 10), "neck_side": u(-5, 5),
              "spine_flex": u(-3, 5), "spine_side": u(-3, 3), "spine_twist": u(-5, 5), "hinge": u(-2, 3),
              "l_collar_elev": u(0, 5), "r_collar_elev": u(0, 5)}
    for side in "lr":
        angles.update(_arm_down(u, side))
        angles.update(_leg_straight(u, side))
    return angles


def _both(make, u):
    """make(u, side) for both sides, merged."""
    return {**make(u, "l"), **make(u, "r")}


def _flat_foot(hip_elev, knee_flex):
    """Ankle angle that keeps the sole level when the leg swings forward (plane 90) and the pelvis is level."""
    return knee_flex - hip_elev


def _mirror_dict(angles: dict) -> dict:
    """The left/right mirror of an angle dict (for the right-sided twin of a left-sided family)."""
    extra = {k: v for k, v in angles.items() if k not in DOF}
    vector = mirror_angles(Pose({k: v for k, v in angles.items() if k in DOF}).vector())
    return {**dict(zip(DOF, vector)), **extra}


# --- standing and arms -----------------------------------------------------------------------------------


def stand(u):
    return {}


def standing(m: Measures, drop=0.06) -> bool:
    return (m.y("pelvis") > m.standing_pelvis - drop and m.trunk_from_vertical < 15
            and m.on_floor("left_ankle") and m.on_floor("right_ankle"))


def wrist_below_shoulder(m, side, by=0.3):
    return m.y(f"{side}_wrist") < m.y(f"{side}_shoulder") - by * m.scale


def feet_together(m):
    return abs(m["left_ankle"][2] - m["right_ankle"][2]) < 0.25 * m.scale


def arm_hanging(m, side):
    return m.y(f"{side}_wrist") < m.y("pelvis") + 0.05 * m.scale


def stand_shape(m):
    return standing(m) and feet_together(m) and arm_hanging(m, "left") and arm_hanging(m, "right")


def t_pose(u):
    return _both(lambda u, s: _arm(s, u(82, 98), u(-8, 8), u(-30, 30), u(0, 10)), u)


def arm_out_sideways(m, side):
    outward = 1.0 if side == "left" else -1.0
    reach = (m[f"{side}_wrist"][0] - m[f"{side}_shoulder"][0]) * outward
    return abs(m.y(f"{side}_wrist") - m.y(f"{side}_shoulder")) < 0.15 and reach > 0.4 * m.scale


def t_pose_shape(m):
    return standing(m) and arm_out_sideways(m, "left") and arm_out_sideways(m, "right")


def arm_up(u, side):
    return {**_arm(side, u(155, 180), u(-10, 60), u(-20, 20), u(0, 20)), f"{side}_collar_elev": u(5, 20)}


def arms_up(u):
    return _both(arm_up, u)


def wrist_above_head(m, side, by=0.15):
    return m.y(f"{side}_wrist") > m.y("head") + by * m.scale


def arms_up_shape(m):
    return wrist_above_head(m, "left") and wrist_above_head(m, "right") and m.trunk_from_vertical < 25


def left_arm_up(u):
    return arm_up(u, "l")


def left_arm_up_shape(m):
    return wrist_above_head(m, "left") and wrist_below_shoulder(m, "right", 0.2) and m.trunk_from_vertical < 15


def right_arm_up_shape(m):
    return wrist_above_head(m, "right") and wrist_below_shoulder(m, "left", 0.2) and m.trunk_from_vertical < 15


def wave(u):
    return {**_arm("l", u(80, 120), u(0, 40), u(70, 90), u(70, 110)), "neck_turn": u(-10, 25)}


def waving_arm(m, side):
    return (m.y(f"{side}_wrist") > m.y(f"{side}_shoulder") + 0.15 * m.scale
            and m.y(f"{side}_wrist") > m.y(f"{side}_elbow") and m.elbow_flex(side) > 40
            and m.distance(f"{side}_wrist", "head") > 0.25 * m.scale)  # a salute touches the head


def wave_shape(m):
    return standing(m) and any(waving_arm(m, s) and wrist_below_shoulder(m, o, 0.25)
                               for s, o in (("left", "right"), ("right", "left")))


def hands_on_hips(u):
    return _both(lambda u, s: _arm(s, u(40, 55), u(-25, 0), u(-90, -75), u(95, 115)), u)


def hands_on_hips_shape(m):
    def on_hip(side):
        wrist, elbow = m[f"{side}_wrist"], m[f"{side}_elbow"]
        height_ok = m.y("pelvis") - 0.05 < wrist[1] < m.y("pelvis") + 0.25 * m.scale
        return height_ok and 0.1 < abs(wrist[0]) < 0.3 and abs(elbow[0]) > abs(wrist[0]) + 0.1 and abs(wrist[2]) < 0.15
    return standing(m) and on_hip("left") and on_hip("right")


def arms_crossed(u):
    return _both(lambda u, s: _arm(s, u(30, 40), u(85, 105), u(-80, -70), u(75, 90)), u)


def arms_crossed_shape(m):
    left, right = m["left_wrist"], m["right_wrist"]
    at_chest = all(m.y("pelvis") + 0.1 < w[1] < m.y("neck") and w[2] > 0.08 for w in (left, right))
    return standing(m) and at_chest and left[0] < 0.0 < right[0]


def reach_forward(u):
    return _both(lambda u, s: _arm(s, u(75, 100), u(80, 95), u(-20, 20), u(0, 15)), u)


def arm_forward(m, side):
    wrist, shoulder = m[f"{side}_wrist"], m[f"{side}_shoulder"]
    return wrist[2] - shoulder[2] > 0.4 * m.scale and abs(wrist[1] - shoulder[1]) < 0.2 * m.scale


def reach_forward_shape(m):
    return arm_forward(m, "left") and arm_forward(m, "right") and m.y("pelvis") > m.standing_pelvis - 0.1


def reach_up(u):
    return {**arms_up(u), "l_ankle_flex": u(-45, -30), "r_ankle_flex": u(-45, -30),
            "l_knee_flex": u(0, 3), "r_knee_flex": u(0, 3), "neck_flex": u(-30, -10)}


def reach_up_shape(m):
    on_toes = all(m.y(f"{s}_ankle") > 0.095 * m.scale and m.on_floor(f"{s}_foot", 0.05) for s in ("left", "right"))
    return wrist_above_head(m, "left", 0.1) and wrist_above_head(m, "right", 0.1) and on_toes


def prayer_hands(u):
    return _both(lambda u, s: _arm(s, u(20, 28), u(78, 92), u(-50, -40), u(88, 98)), u)


def prayer_hands_shape(m):
    wrist = (m["left_wrist"] + m["right_wrist"]) / 2
    not_crossed = m["left_wrist"][0] > m["right_wrist"][0] - 0.03 * m.scale
    return (standing(m) and not_crossed and m.distance("left_wrist", "right_wrist") < 0.12 * m.scale
            and m.y("spine2") - 0.1 < wrist[1] < m.y("neck") + 0.05 and wrist[2] > 0.12)


def hands_on_head(u):
    return _both(lambda u, s: {**_arm(s, u(132, 142), u(5, 15), u(60, 80), u(115, 128)),
                               f"{s}_collar_elev": u(5, 15)}, u)


def hands_on_head_shape(m):
    near_head = all(m.distance(f"{s}_wrist", "head") < 0.2 * m.scale for s in ("left", "right"))
    elbows_out = m["left_elbow"][0] > 0.25 * m.scale and m["right_elbow"][0] < -0.25 * m.scale
    return standing(m) and near_head and elbows_out


def salute(u):
    return _mirror_dict(_arm("l", u(92, 105), u(35, 45), u(10, 20), u(125, 138)))


def salute_shape(m):
    right_hand_to_head = m.distance("right_wrist", "head") < 0.25 * m.scale
    elbow_out = m["right_elbow"][0] < -0.25 * m.scale
    return standing(m) and right_hand_to_head and elbow_out and wrist_below_shoulder(m, "left")


def punch(u):
    return {**_arm("l", u(80, 98), u(80, 95), u(-20, 20), u(0, 10)),
            **_arm("r", u(20, 40), u(70, 95), u(-10, 10), u(110, 135)),
            "spine_twist": u(-20, -5),
            **_leg("l", u(8, 15), 90, u(0, 15), u(5, 20), 0), **_leg("r", u(5, 12), -90, u(0, 20), u(5, 15), 0)}


def punch_shape(m):
    def other_back(side):
        return m[f"{side}_wrist"][2] - m[f"{side}_shoulder"][2] < 0.35 * m.scale
    upright = m.y("pelvis") > m.standing_pelvis - 0.15 and m.trunk_from_vertical < 25
    return upright and any(arm_forward(m, s) and other_back(o) for s, o in (("left", "right"), ("right", "left")))


def boxing_guard(u):
    return {**_both(lambda u, s: _arm(s, u(25, 45), u(70, 95), u(-10, 10), u(115, 135)), u),
            "neck_flex": u(5, 20), "hinge": u(0, 10),
            **_both(lambda u, s: (lambda e, k: _leg(s, e, 90, u(0, 15), k, _flat_foot(e, k)))(u(8, 18), u(15, 30)), u)}


def boxing_guard_shape(m):
    def fist_up(side):
        wrist = m[f"{side}_wrist"]
        return (m.y(f"{side}_shoulder") - 0.15 < wrist[1] < m.y("head") + 0.1 and wrist[2] > 0.12
                and m.distance(f"{side}_wrist", f"{side}_shoulder") < 0.4 * m.scale)
    return (fist_up("left") and fist_up("right") and m.y("pelvis") > m.standing_pelvis - 0.12
            and m.on_floor("left_ankle") and m.on_floor("right_ankle") and torso_turn(m) < 25)


# --- bending and trunk ------------------------------------------------------------------------------------


def _arms_hanging(u, trunk_pitch):
    """Arms hanging straight down in the world while the trunk leans forward by trunk_pitch."""
    return _both(lambda u, s: _arm(s, min(180.0, trunk_pitch + u(-10, 5)), u(80, 100), u(-10, 10), u(0, 15)), u)


def bow(u):
    hinge, flex = u(22, 40), u(0, 10)
    return {"hinge": hinge, "spine_flex": flex, "neck_flex": u(10, 30),
            **_both(lambda u, s: _arm(s, u(0, 12), u(70, 100), 0, u(0, 10)), u)}


def legs_straight(m):
    return m.knee_flex("left") < 30 and m.knee_flex("right") < 30


def bow_shape(m):
    return 12 < m.trunk_pitch < 50 and legs_straight(m) and m.y("pelvis") > m.standing_pelvis - 0.08


def bend_forward(u):
    hinge, flex = u(58, 80), u(0, 20)
    return {"hinge": hinge, "spine_flex": flex, "neck_flex": u(-20, 10), **_arms_hanging(u, hinge + flex)}


def legs_vertical(m, within=20):
    return all(abs(m.from_horizontal(f"{s}_hip", f"{s}_ankle")) > 90 - within for s in ("left", "right"))


def bend_forward_shape(m):
    return m.trunk_pitch > 42 and legs_straight(m) and legs_vertical(m) and m.y("pelvis") > m.standing_pelvis - 0.12


def touch_toes(u):
    hinge, flex = u(85, 105), u(30, 50)
    return {"hinge": hinge, "spine_flex": flex, "neck_flex": u(0, 30), **_arms_hanging(u, hinge + flex)}


def touch_toes_shape(m):
    knees = min(m.y("left_knee"), m.y("right_knee"))
    return (m.trunk_pitch > 70 and legs_straight(m) and legs_vertical(m)
            and m.y("left_wrist") < knees and m.y("right_wrist") < knees)


def pick_up(u):
    hip, knee = u(75, 92), u(112, 130)
    hinge, flex = u(55, 75), u(15, 30)
    return {**_both(lambda u, s: _leg(s, hip + u(-5, 5), u(80, 95), u(0, 15), knee, _flat_foot(hip, knee)), u),
            "hinge": hinge, "spine_flex": flex,
            **_arm("l", hinge + flex + u(-5, 10), u(80, 100), 0, u(0, 10)),
            **_arm("r", u(10, 40), u(60, 100), 0, u(20, 60))}


def pick_up_shape(m):
    hand_down = min(m.y("left_wrist"), m.y("right_wrist")) < 0.3 * m.scale
    knees_bent = m.knee_flex("left") > 30 and m.knee_flex("right") > 30
    knees_up = min(m.y("left_knee"), m.y("right_knee")) > 0.25 * m.scale
    return (hand_down and knees_bent and knees_up and m.trunk_pitch > 30
            and m.on_floor("left_ankle") and m.on_floor("right_ankle"))


def arch_back(u):
    return {"hinge": u(-20, -10), "spine_flex": u(-35, -20), "neck_flex": u(-35, -10),
            **_both(lambda u, s: _arm(s, u(150, 180), u(-10, 40), 0, u(0, 20)), u),
            **_both(lambda u, s: _leg(s, u(0, 5), 0, 0, u(10, 25), u(5, 20)), u)}


def arch_back_shape(m):
    return (m.trunk_pitch < -20 and m["head"][2] < -0.15 * m.scale and m.y("pelvis") > m.standing_pelvis - 0.2
            and m.on_floor("left_ankle") and m.on_floor("right_ankle"))


def side_bend_left(u):
    side = u(28, 40)  # the left arm hangs straight down in the world while the trunk tilts
    return {"spine_side": side, "neck_side": u(5, 20),
            **_arm("r", u(150, 175), u(-10, 20), 0, u(0, 20)), **_arm("l", side + u(-5, 10), u(-10, 10), 0, u(0, 15))}


def side_bend_right(u):
    return _mirror_dict(side_bend_left(u))


def leaning_to(m, side):
    lean = m.trunk[0] if side == "left" else -m.trunk[0]
    return lean > 0.12 * m.scale and m.on_floor("left_ankle") and m.on_floor("right_ankle")


def twist(u):
    return {"spine_twist": u(38, 50), "neck_turn": u(20, 50),
            **_both(lambda u, s: _arm(s, u(60, 85), u(60, 100), u(-20, 0), u(70, 100)), u)}


def torso_turn(m) -> float:
    """Degrees the shoulder line is turned against the hip line about the vertical."""
    hips = m["left_hip"] - m["right_hip"]
    shoulders = m["left_shoulder"] - m["right_shoulder"]
    turn = np.degrees(np.arctan2(hips[2], hips[0]) - np.arctan2(shoulders[2], shoulders[0]))
    return abs((turn + 180) % 360 - 180)


def twist_shape(m):
    return torso_turn(m) > 25 and standing(m)


# --- legs and stances -------------------------------------------------------------------------------------


def squat(u):
    hip, knee = u(80, 105), u(120, 145)
    return {**_both(lambda u, s: _leg(s, hip, u(60, 80), u(0, 20), knee, _flat_foot(hip, knee)), u),
            "hinge": u(15, 40), **_both(lambda u, s: _arm(s, u(60, 95), u(75, 100), 0, u(0, 30)), u)}


def squat_shape(m):
    feet_down = m.on_floor("left_ankle", 0.2) and m.on_floor("right_ankle", 0.2)
    knees_bent = m.knee_flex("left") > 70 and m.knee_flex("right") > 70
    knees_ahead = all(m[f"{s}_knee"][2] - m[f"{s}_ankle"][2] > 0.07 * m.scale for s in ("left", "right"))
    knees_up = min(m.y("left_knee"), m.y("right_knee")) > 0.25 * m.scale
    return (0.3 * m.scale < m.y("pelvis") < m.standing_pelvis - 0.25 and feet_down and knees_bent and knees_up
            and knees_ahead and -20 < m.trunk_pitch < 60)


def _back_knee(front_hip, front_knee, back_hip):
    """Knee angle of a leg swung back by back_hip so its ankle ends ~4 cm above the front ankle (toes down)."""
    thigh, shin = 0.40, 0.385
    front_drop = thigh * np.cos(np.radians(front_hip)) + shin * np.cos(np.radians(front_hip - front_knee))
    cos_shin = (front_drop - 0.04 - thigh * np.cos(np.radians(back_hip))) / shin
    return float(np.degrees(np.arccos(np.clip(cos_shin, -1.0, 1.0)))) - back_hip


def lunge_left(u):
    front_hip = u(65, 85)
    front_knee = front_hip + u(0, 15)
    back_hip = u(30, 40)
    return {**_leg("l", front_hip, 90, u(0, 10), front_knee, _flat_foot(front_hip, front_knee)),
            **_leg("r", back_hip, -90, u(0, 10), _back_knee(front_hip, front_knee, back_hip), u(-40, -20)),
            "hinge": u(-5, 10)}


def lunge_right(u):
    return _mirror_dict(lunge_left(u))


def lunging_with(m, front, back):
    feet_down = m.on_floor("left_foot", 0.1) and m.on_floor("right_foot", 0.1)
    return (m[f"{front}_knee"][2] > 0.25 * m.scale and m.knee_flex(front) > 50 and feet_down
            and m[f"{back}_ankle"][2] < -0.3 * m.scale and m.y(f"{back}_knee") > 0.1 * m.scale
            and m.y("pelvis") < m.standing_pelvis - 0.12)


def _kneeling_leg(u, side):
    hip = u(0, 8)
    return _leg(side, hip, 90, u(0, 10), hip + 90 + u(0, 8), u(-50, -35))  # shin flat on the floor


def kneel(u):
    return {**_both(_kneeling_leg, u),
            "hinge": u(-5, 10)}


def kneel_shape(m):
    return (m.on_floor("left_knee") and m.on_floor("right_knee") and abs(m.trunk_pitch) < 25
            and 0.4 * m.scale < m.y("pelvis") < 0.7 * m.scale)


def kneel_one_knee(u):
    hip, knee = u(85, 92), u(85, 95)
    return {**_kneeling_leg(u, "l"),
            **_leg("r", hip, 90, u(0, 10), knee, _flat_foot(hip, knee)), "hinge": u(-5, 10)}


def kneel_one_knee_shape(m):
    def down_up(down, up):
        return m.on_floor(f"{down}_knee") and m.y(f"{up}_knee") > 0.3 * m.scale and m.on_floor(f"{up}_ankle")
    return (down_up("left", "right") or down_up("right", "left")) and 0.35 * m.scale < m.y("pelvis") < 0.7 * m.scale


def sit_chair(u):
    hip, knee = u(80, 95), u(82, 98)
    hands_on_thighs = _both(lambda u, s: _arm(s, u(25, 45), u(80, 100), u(-10, 10), u(50, 80)), u)
    return {**_both(lambda u, s: _leg(s, hip, u(80, 100), u(0, 10), knee, _flat_foot(hip, knee)), u),
            "hinge": u(-10, 10), **hands_on_thighs}


def sit_chair_shape(m):
    thighs = all(abs(m.from_horizontal(f"{s}_hip", f"{s}_knee")) < 25 for s in ("left", "right"))
    shins = all(m.from_horizontal(f"{s}_knee", f"{s}_ankle") < -65 for s in ("left", "right"))
    return (thighs and shins and 0.35 * m.scale < m.y("pelvis") < 0.65 * m.scale and abs(m.trunk_pitch) < 30
            and m.on_floor("left_ankle") and m.on_floor("right_ankle"))


def sit_cross_legged(u):
    return {**_both(lambda u, s: _leg(s, u(85, 95), u(50, 58), u(82, 90), u(148, 155), u(-50, -35)), u),
            "hinge": u(-5, 10), **_both(lambda u, s: _arm(s, u(20, 40), u(60, 90), 0, u(20, 50)), u)}


def sit_cross_legged_shape(m):
    knees_out = m["left_knee"][0] > 0.25 * m.scale and m["right_knee"][0] < -0.25 * m.scale
    ankles_in = all(abs(m[f"{s}_ankle"][0]) < 0.25 * m.scale and m[f"{s}_ankle"][2] > 0.1 for s in ("left", "right"))
    return m.y("pelvis") < 0.33 * m.scale and knees_out and ankles_in and abs(m.trunk_pitch) < 30


def sit_legs_out(u):
    return {**_both(lambda u, s: _leg(s, u(82, 95), u(85, 95), u(0, 15), u(0, 12), u(-20, 10)), u),
            "hinge": u(-10, 20), **_both(lambda u, s: _arm(s, u(25, 40), u(-60, -35), 0, u(0, 10)), u)}


def sit_legs_out_shape(m):
    legs_forward = all(m[f"{s}_ankle"][2] > 0.55 * m.scale and m.on_floor(f"{s}_knee", 0.25) for s in ("left", "right"))
    return m.y("pelvis") < 0.3 * m.scale and legs_forward and -30 < m.trunk_pitch < 45


def one_leg_balance(u):
    return {**_leg("l", u(70, 100), u(75, 100), u(0, 15), u(70, 100), u(-30, 0)),
            **_both(lambda u, s: _arm(s, u(30, 90), u(-10, 20), 0, u(0, 20)), u)}


def one_foot_up(m, up, down, height=0.25):
    return m.on_floor(f"{down}_ankle", 0.12) and m.y(f"{up}_ankle") > height * m.scale


def one_leg_balance_shape(m):
    def knee_up(up, down):
        return one_foot_up(m, up, down) and m.y(f"{up}_knee") > m.y("pelvis") - 0.3 and m.knee_flex(up) > 45
    return (knee_up("left", "right") or knee_up("right", "left")) and m.y("pelvis") > m.standing_pelvis - 0.1


def kick_forward(u):
    return {**_leg("l", u(75, 110), u(80, 100), u(0, 15), u(0, 15), u(-40, 0)), "hinge": u(-20, 0),
            **_both(lambda u, s: _arm(s, u(30, 80), u(-10, 30), 0, u(10, 60)), u)}


def kick_forward_shape(m):
    def kicking(up, down):
        return one_foot_up(m, up, down, 0.55) and m[f"{up}_ankle"][2] > 0.5 * m.scale
    return kicking("left", "right") or kicking("right", "left")


def side_kick(u):
    return {**_leg("l", u(60, 85), u(-5, 15), u(-30, 0), u(0, 15), u(-20, 10)), "spine_side": u(-30, -12),
            **_both(lambda u, s: _arm(s, u(30, 70), u(30, 90), 0, u(60, 110)), u)}


def side_kick_shape(m):
    def kicking(up, down):
        return one_foot_up(m, up, down, 0.45) and abs(m[f"{up}_ankle"][0]) > 0.5 * m.scale
    return kicking("left", "right") or kicking("right", "left")


def walk_stride(u):
    return {**_leg("l", u(20, 30), 90, u(0, 10), u(0, 10), u(5, 20)),
            **_leg("r", u(12, 22), -90, u(0, 10), u(5, 20), u(-20, -5)),
            **_arm("l", u(10, 25), u(-90, -70), 0, u(5, 20)), **_arm("r", u(10, 25), u(80, 95), 0, u(15, 35))}


def split_front_back(m):
    """(front, back, distance along z) of the two ankles."""
    left, right = m["left_ankle"][2], m["right_ankle"][2]
    return ("left", "right", left - right) if left > right else ("right", "left", right - left)


def walk_stride_shape(m):
    front, back, split = split_front_back(m)
    upright = m.y("pelvis") > m.standing_pelvis - 0.08 and m.trunk_from_vertical < 15
    return (0.3 * m.scale < split < 0.9 * m.scale and m.knee_flex(front) < 30 and upright
            and m.on_floor("left_ankle", 0.2) and m.on_floor("right_ankle", 0.2))


def run_stride(u):
    return {**_leg("l", u(50, 70), 90, u(0, 10), u(50, 90), u(-10, 10)),
            **_leg("r", u(20, 35), -90, u(0, 10), u(80, 110), u(-40, -20)),
            **_arm("l", u(25, 45), u(-90, -70), 0, u(80, 100)), **_arm("r", u(35, 60), u(80, 95), 0, u(80, 100)),
            "hinge": u(5, 15), "lift": u(0.0, 0.08)}


def run_stride_shape(m):
    front, back, split = split_front_back(m)
    thigh_up = m.from_horizontal(f"{front}_hip", f"{front}_knee") > -60
    elbows = m.elbow_flex("left") > 50 and m.elbow_flex("right") > 50
    return split > 0.25 * m.scale and m.y(f"{back}_ankle") > 0.3 * m.scale and thigh_up and elbows


def jump(u):
    return {**_both(lambda u, s: _leg(s, u(15, 40), 90, u(0, 15), u(30, 60), u(-40, -20)), u),
            **_both(lambda u, s: _arm(s, u(100, 170), u(20, 80), 0, u(0, 30)), u), "lift": u(0.18, 0.35)}


def airborne(m):
    return m.lowest() > 0.1


def jump_shape(m):
    return airborne(m) and m.trunk_from_vertical < 30


def star_jump(u):
    return {**_both(lambda u, s: _leg(s, u(22, 35), u(-5, 10), u(0, 20), u(0, 10), u(-30, -10)), u),
            **_both(lambda u, s: _arm(s, u(120, 150), u(-5, 15), 0, u(0, 15)), u), "lift": u(0.15, 0.3)}


def star_jump_shape(m):
    legs_apart = abs(m["left_ankle"][0] - m["right_ankle"][0]) > 0.5 * m.scale
    arms_wide = m["left_wrist"][0] > 0.3 * m.scale and m["right_wrist"][0] < -0.3 * m.scale
    arms_high = all(m.y(f"{s}_wrist") > m.y(f"{s}_shoulder") for s in ("left", "right"))
    return airborne(m) and legs_apart and arms_wide and arms_high


# --- on the floor -----------------------------------------------------------------------------------------


def lie_back(u):
    return {"root_pitch": u(-92, -86), "neck_flex": u(-5, 20), "hinge": 0.0, "spine_flex": u(-3, 3),
            **_both(lambda u, s: _arm(s, u(0, 70), u(-10, 10), 0, u(0, 20)), u),
            **_both(lambda u, s: _leg(s, u(0, 8), u(0, 90), u(0, 20), u(0, 10), u(-30, 0)), u),
            "lift": u(0.05, 0.1)}


def lying(m):
    return m.trunk_from_horizontal < 20 and m.y("pelvis") < 0.3 * m.scale


def lie_back_shape(m):
    return lying(m) and m.chest_front[1] > 0.7


def lie_front(u):
    return {"root_pitch": u(86, 92), "neck_flex": u(-20, 5), "hinge": 0.0, "spine_flex": u(-3, 3),
            **_both(lambda u, s: _arm(s, u(0, 40), u(-10, 10), 0, u(0, 20)), u),
            **_both(lambda u, s: _leg(s, u(0, 8), u(0, 90), u(0, 20), u(0, 10), u(-50, -30)), u),
            "lift": u(0.05, 0.1)}


def lie_front_shape(m):
    return lying(m) and m.chest_front[1] < -0.7


def plank(u):
    pitch = u(72, 76)  # the body line from the toes to hands under the shoulders
    return {"root_pitch": pitch, "hinge": 0.0, "spine_flex": u(-3, 3), "neck_flex": u(-20, 0),
            **_both(lambda u, s: _arm(s, pitch + u(-3, 3), u(85, 95), 0, u(0, 5)), u),
            **_both(lambda u, s: _leg(s, u(0, 4), u(0, 90), 0, u(0, 5), u(0, 20)), u)}


def plank_shape(m):
    hands_toes_down = all(m.on_floor(f"{s}_wrist", 0.12) and m.on_floor(f"{s}_foot", 0.12) for s in ("left", "right"))
    knees_up = min(m.y("left_knee"), m.y("right_knee")) > 0.12 * m.scale
    return (m.chest_front[1] < -0.5 and m.trunk_from_horizontal < 35 and hands_toes_down and knees_up
            and 0.2 * m.scale < m.y("pelvis") < 0.7 * m.scale)


def downward_dog(u):
    pitch = u(45, 51)
    hinge = 110 - 2.5 * (pitch - 45) + u(-3, 0)  # steeper legs need a wider hip angle to reach the floor
    return {"root_pitch": pitch, "hinge": hinge, "spine_flex": u(-3, 3), "neck_flex": u(-10, 10),
            **_both(lambda u, s: _arm(s, u(165, 180), u(85, 95), 0, u(0, 5)), u),
            **_both(lambda u, s: _leg(s, u(0, 4), 0, 0, u(0, 5), u(5, 15)), u)}


def downward_dog_shape(m):
    hands_feet_down = all(m.on_floor(f"{s}_wrist") and m.on_floor(f"{s}_foot") for s in ("left", "right"))
    hips_highest = m.y("pelvis") > max(m.y("neck"), m.y("head"), 0.55 * m.scale)
    return hands_feet_down and hips_highest


def cobra(u):
    return {"root_pitch": u(88, 92), "hinge": u(-30, -25), "spine_flex": u(-40, -30), "neck_flex": u(-30, -10),
            **_both(lambda u, s: _arm(s, u(0, 8), u(85, 95), u(-10, 10), u(80, 95)), u),
            **_both(lambda u, s: _leg(s, u(0, 5), u(0, 90), 0, u(0, 5), u(-50, -35)), u)}


def cobra_shape(m):
    chest_up = m.y("neck") > m.y("pelvis") + 0.2 * m.scale
    return (m.y("pelvis") < 0.3 * m.scale and m.on_floor("left_knee", 0.2) and m.on_floor("right_knee", 0.2)
            and chest_up and m.chest_front[1] < 0.3 and m.on_floor("left_wrist") and m.on_floor("right_wrist"))


def childs_pose(u):
    trunk_bend, hinge = u(107, 113), u(98, 105)  # more bend would put the hands below the knees
    return {"hinge": hinge, "spine_flex": trunk_bend - hinge, "neck_flex": u(0, 20),
            **_both(lambda u, s: _leg(s, u(57, 63), u(85, 95), u(0, 10), u(152, 155), u(-50, -40)), u),
            **_both(lambda u, s: _arm(s, u(174, 180), u(85, 95), 0, u(0, 10)), u)}


def childs_pose_shape(m):
    return (m.on_floor("left_knee") and m.on_floor("right_knee") and m.y("head") < 0.4 * m.scale
            and m.chest_front[1] < 0
            and m.y("pelvis") < 0.55 * m.scale and min(m["left_wrist"][2], m["right_wrist"][2]) > m["head"][2])


def bridge(u):
    hip, knee = u(10, 25), u(100, 125)
    return {"root_pitch": u(-92, -88), "hinge": u(-30, -20), "spine_flex": u(-10, 0), "neck_flex": u(30, 50),
            **_both(lambda u, s: _leg(s, hip, u(80, 95), u(0, 10), knee, u(-10, 10)), u),
            **_both(lambda u, s: _arm(s, u(20, 35), u(-90, -70), 0, u(0, 10)), u)}  # arms along the floor


def bridge_shape(m):
    return (0.25 * m.scale < m.y("pelvis") < 0.65 * m.scale and m.on_floor("neck", 0.28)
            and m.on_floor("left_foot", 0.12) and m.on_floor("right_foot", 0.12) and m.chest_front[1] > 0.3)


# --- yoga and sports --------------------------------------------------------------------------------------


def tree_pose(u):
    hands = (_both(lambda u, s: _arm(s, u(165, 180), u(40, 70), 0, u(10, 30)), u) if u(0, 1) < 0.5
             else prayer_hands(u))
    return {**_leg("l", u(35, 50), u(10, 25), u(55, 70), u(135, 150), u(-20, 0)), **hands}


def tree_pose_shape(m):
    def foot_on_leg(up, down):
        ankle_near_leg = abs(m[f"{up}_ankle"][0] - m[f"{down}_knee"][0]) < 0.18 * m.scale
        knee_out = abs(m[f"{up}_knee"][0]) > 0.25 * m.scale
        return one_foot_up(m, up, down, 0.3) and ankle_near_leg and knee_out
    return (foot_on_leg("left", "right") or foot_on_leg("right", "left")) and m.y("pelvis") > m.standing_pelvis - 0.1


def warrior_two(u):
    return {**_leg("l", u(58, 66), u(0, 10), u(55, 65), u(60, 75), u(-10, 10)),
            **_leg("r", u(42, 50), u(-10, 0), u(0, 15), u(0, 8), u(-10, 10)),
            **t_pose(u), "neck_turn": u(40, 70)}


def warrior_two_shape(m):
    wide = abs(m["left_ankle"][0] - m["right_ankle"][0]) > 0.75 * m.scale
    knee_bent = max(m.knee_flex("left"), m.knee_flex("right")) > 45
    arms = arm_out_sideways(m, "left") and arm_out_sideways(m, "right")
    return wide and knee_bent and arms and m.on_floor("left_ankle") and m.on_floor("right_ankle")


def _family(name, angles, shape, mirror=False):
    return Family(name, angles, shape, TRAINING[name], HELDOUT[name], mirror, VALIDATION[name])


FAMILIES = [
    _family("stand", stand, stand_shape),
    _family("t_pose", t_pose, t_pose_shape),
    _family("arms_up", arms_up, arms_up_shape),
    _family("raise_left_arm", left_arm_up, left_arm_up_shape),
    _family("raise_right_arm", lambda u: _mirror_dict(left_arm_up(u)), right_arm_up_shape),
    _family("wave", wave, wave_shape, mirror=True),
    _family("hands_on_hips", hands_on_hips, hands_on_hips_shape),
    _family("arms_crossed", arms_crossed, arms_crossed_shape),
    _family("reach_forward", reach_forward, reach_forward_shape),
    _family("reach_up", reach_up, reach_up_shape),
    _family("prayer_hands", prayer_hands, prayer_hands_shape),
    _family("hands_on_head", hands_on_head, hands_on_head_shape),
    _family("salute", salute, salute_shape),
    _family("punch", punch, punch_shape, mirror=True),
    _family("boxing_guard", boxing_guard, boxing_guard_shape),
    _family("bow", bow, bow_shape),
    _family("bend_forward", bend_forward, bend_forward_shape),
    _family("touch_toes", touch_toes, touch_toes_shape),
    _family("pick_up", pick_up, pick_up_shape, mirror=True),
    _family("arch_back", arch_back, arch_back_shape),
    _family("side_bend_left", side_bend_left, lambda m: leaning_to(m, "left")),
    _family("side_bend_right", side_bend_right, lambda m: leaning_to(m, "right")),
    _family("twist", twist, twist_shape, mirror=True),
    _family("squat", squat, squat_shape),
    _family("lunge_left", lunge_left, lambda m: lunging_with(m, "left", "right")),
    _family("lunge_right", lunge_right, lambda m: lunging_with(m, "right", "left")),
    _family("kneel", kneel, kneel_shape),
    _family("kneel_one_knee", kneel_one_knee, kneel_one_knee_shape, mirror=True),
    _family("sit_chair", sit_chair, sit_chair_shape),
    _family("sit_cross_legged", sit_cross_legged, sit_cross_legged_shape),
    _family("sit_legs_out", sit_legs_out, sit_legs_out_shape),
    _family("one_leg_balance", one_leg_balance, one_leg_balance_shape, mirror=True),
    _family("kick_forward", kick_forward, kick_forward_shape, mirror=True),
    _family("side_kick", side_kick, side_kick_shape, mirror=True),
    _family("walk_stride", walk_stride, walk_stride_shape, mirror=True),
    _family("run_stride", run_stride, run_stride_shape, mirror=True),
    _family("jump", jump, jump_shape),
    _family("star_jump", star_jump, star_jump_shape),
    _family("lie_back", lie_back, lie_back_shape),
    _family("lie_front", lie_front, lie_front_shape),
    _family("plank", plank, plank_shape),
    _family("downward_dog", downward_dog, downward_dog_shape),
    _family("cobra", cobra, cobra_shape),
    _family("childs_pose", childs_pose, childs_pose_shape),
    _family("bridge", bridge, bridge_shape),
    _family("tree_pose", tree_pose, tree_pose_shape, mirror=True),
    _family("warrior_two", warrior_two, warrior_two_shape, mirror=True),
]
FAMILY_BY_NAME = {family.name: family for family in FAMILIES}
