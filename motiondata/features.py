"""HumanML3D 67-d features -> joint positions (MARDM's `recover_from_ric`).

Feature layout per frame: [0] root rotation velocity about Y (quaternion half-angle increment),
[1:3] root linear velocity (x, z) in the root-facing frame, [3] root height, [4:67] joints 1..21 relative
to the root xz in the root-facing frame (y absolute). Quaternions are (w, x, y, z).
"""
import numpy as np
import torch


def qinv(q: torch.Tensor) -> torch.Tensor:
    return q * q.new_tensor([1.0, -1.0, -1.0, -1.0])


def qrot(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4)."""
    q, v = torch.broadcast_tensors(q, torch.cat([torch.zeros_like(v[..., :1]), v], -1))
    u, w, v = q[..., 1:], q[..., :1], v[..., 1:]
    uv = torch.cross(u, v, dim=-1)
    uuv = torch.cross(u, uv, dim=-1)
    return v + 2 * (w * uv + uuv)


def recover_root_rot_pos(data: torch.Tensor):
    """Root rotation quaternions (..., T, 4) and root positions (..., T, 3) from features (..., T, 67)."""
    rot_vel = data[..., 0]
    ang = torch.zeros_like(rot_vel)
    ang[..., 1:] = rot_vel[..., :-1]
    ang = torch.cumsum(ang, dim=-1)  # exclusive cumsum: frame i turns by the velocities of frames < i
    zeros = torch.zeros_like(ang)
    r_rot_quat = torch.stack([torch.cos(ang), zeros, torch.sin(ang), zeros], dim=-1)

    r_pos = torch.zeros(data.shape[:-1] + (3,), dtype=data.dtype, device=data.device)
    r_pos[..., 1:, 0] = data[..., :-1, 1]
    r_pos[..., 1:, 2] = data[..., :-1, 2]
    r_pos = qrot(qinv(r_rot_quat), r_pos)
    r_pos = torch.cumsum(r_pos, dim=-2)
    r_pos[..., 1] = data[..., 3]
    return r_rot_quat, r_pos


def recover_from_ric(data: torch.Tensor, joints_num: int = 22) -> torch.Tensor:
    """Features (..., T, 4 + (J-1)*3) -> joint positions (..., T, J, 3), Y up, metres."""
    r_rot_quat, r_pos = recover_root_rot_pos(data)
    positions = data[..., 4:(joints_num - 1) * 3 + 4].reshape(data.shape[:-1] + (joints_num - 1, 3))
    quat = r_rot_quat[..., None, :].expand(positions.shape[:-1] + (4,))
    positions = qrot(qinv(quat), positions)
    positions[..., 0] += r_pos[..., None, 0]
    positions[..., 2] += r_pos[..., None, 2]
    return torch.cat([r_pos[..., None, :], positions], dim=-2)


# ---------------------------------------------------------------------------------------------------------
# joints -> features (the inverse of recover_from_ric), numpy, float64 inside


def rotate_about_y(v: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by `angle` radians about +Y (broadcast over v[..., 0]); +z turns toward +x."""
    cos, sin = np.cos(angle), np.sin(angle)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    return np.stack([x * cos + z * sin, y, -x * sin + z * cos], axis=-1)


def root_facing_angle(joints: np.ndarray) -> np.ndarray:
    """Heading (radians) of joints (..., 22, 3): the body faces (sin a, 0, cos a).

    As in HumanML3D: across = (r_hip - l_hip) + (r_shoulder - l_shoulder), forward = cross(up, across).
    """
    across = (joints[..., 2, :] - joints[..., 1, :]) + (joints[..., 17, :] - joints[..., 16, :])
    return np.arctan2(across[..., 2], -across[..., 0])  # forward = (across_z, 0, -across_x)


def normalize_first_frame(joints: np.ndarray) -> np.ndarray:
    """Move joints (T, 22, 3) so frame 0's root is at xz = 0 and frame 0 faces +z. Heights are kept."""
    joints = np.asarray(joints, dtype=np.float64)
    joints = joints - joints[0, 0] * np.array([1.0, 0.0, 1.0])
    return rotate_about_y(joints, -root_facing_angle(joints[0]))


def joints_to_features(joints: np.ndarray) -> np.ndarray:
    """Joint positions (T, 22, 3), Y up, metres -> HumanML3D 67-d features (T, 67) float32.

    `recover_from_ric(joints_to_features(J))` returns `normalize_first_frame(J)`: J with frame 0's root
    moved to xz = 0 and turned to face +z; nothing else is normalised (heights are kept as they are, unlike
    HumanML3D which also drops the clip onto the floor). Velocities [0:3] of frame t describe t -> t+1; the
    last frame repeats the one before (0 for a single frame); recover_from_ric never reads them.
    """
    joints = normalize_first_frame(joints)
    num_frames = joints.shape[0]
    heading = np.unwrap(root_facing_angle(joints))  # unwrap: steps stay within (-pi, pi]
    root = joints[:, 0]

    ric = joints[:, 1:] - root[:, None] * np.array([1.0, 0.0, 1.0])
    ric = rotate_about_y(ric, -heading[:, None])

    features = np.zeros((num_frames, 67))
    if num_frames > 1:
        # recover_from_ric builds q = (cos a, 0, sin a, 0) with a = -heading / 2 from an exclusive cumsum
        features[:-1, 0] = -np.diff(heading) / 2
        # step t -> t+1 is seen from the facing frame of t+1, as recover_root_rot_pos undoes it
        features[:-1, 1:3] = rotate_about_y(root[1:] - root[:-1], -heading[1:])[:, [0, 2]]
        features[-1, 0:3] = features[-2, 0:3]
    features[:, 3] = root[:, 1]
    features[:, 4:] = ric.reshape(num_frames, 63)
    return features.astype(np.float32)
