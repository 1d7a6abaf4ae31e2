"""The HumanML3D 22-joint skeleton (SMPL order, Y up, metres, left = +x, facing +z)."""
import numpy as np

JOINT_NAMES = [
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee",
    "spine2", "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot",
    "neck", "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist",
]
NUM_JOINTS = len(JOINT_NAMES)

# right leg, left leg, spine-head, right arm, left arm (MARDM's t2m_kinematic_chain)
KINEMATIC_CHAIN = [
    [0, 2, 5, 8, 11],
    [0, 1, 4, 7, 10],
    [0, 3, 6, 9, 12, 15],
    [9, 14, 17, 19, 21],
    [9, 13, 16, 18, 20],
]
CHAIN_COLORS = ["red", "blue", "black", "red", "blue"]

# parent of each joint, derived from the chains
PARENTS = [-1] * NUM_JOINTS
for _chain in KINEMATIC_CHAIN:
    for _parent, _child in zip(_chain[:-1], _chain[1:]):
        PARENTS[_child] = _parent

FEATURE_DIM = 4 + (NUM_JOINTS - 1) * 3  # 67: root rot vel, root lin vel xz, root y, ric positions


def fit_bone_lengths(joints, lengths):
    """Joints (..., 22, 3) with every bone PARENTS[j] -> j set to lengths[..., j - 1], keeping its direction.

    Walks the tree from the pelvis (which stays put), so each joint moves with its parent; a pose keeps its
    shape and gets the skeleton's proportions. A zero-length bone stays zero.
    """
    joints = np.asarray(joints, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.float64)
    fitted = joints.copy()
    for joint in range(1, NUM_JOINTS):  # SMPL order: every parent comes before its children
        parent = PARENTS[joint]
        bone = joints[..., joint, :] - joints[..., parent, :]
        norm = np.linalg.norm(bone, axis=-1, keepdims=True)
        direction = np.divide(bone, norm, out=np.zeros_like(bone), where=norm > 1e-9)
        fitted[..., joint, :] = fitted[..., parent, :] + direction * lengths[..., joint - 1, None]
    return fitted
