"""HumanML3D 67-d features -> joint positions (MARDM's `recover_from_ric`).

Feature layout per frame: [0] root rotation velocity about Y (quaternion half-angle increment),
[1:3] root linear velocity (x, z) in the root-facing frame, [3] root height, [4:67] joints 1..21 relative
to the root xz in the root-facing frame (y absolute). Quaternions are (w, x, y, z).
"""
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
