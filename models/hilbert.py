"""Hilbert-curve ordering of point clouds, as ContactPointMamba (afford-motion) uses it.

`encode` maps integer coordinates to their index along a 3-D Hilbert curve with Skilling's (2004) transform:
coordinate bits MSB first, bits of dims 0,1,2 interleaved per level (dim 0 = x most significant), Gray-decoded.
`hilbert_order` quantizes each sample's coordinates to 16 bits per axis exactly as the reference (float32 min-max,
x0.999, truncation) and returns the sort permutation and its inverse.
"""
import torch


def encode(locs, num_dims=3, num_bits=16):
    """Hilbert indices (int64, shape locs.shape[:-1]) of integer coordinates `locs` [..., num_dims] in [0, 2^bits)."""
    if locs.shape[-1] != num_dims:
        raise ValueError(f"locs must end in {num_dims} coordinates, got shape {tuple(locs.shape)}")
    if num_dims * num_bits > 63:
        raise ValueError(f"num_dims * num_bits = {num_dims * num_bits} does not fit an int64 code (max 63)")
    batch_shape = locs.shape[:-1]
    locs = locs.reshape(-1, num_dims).long()
    shifts = torch.arange(num_bits - 1, -1, -1, device=locs.device)
    gray = (locs[..., None] >> shifts) & 1  # [M, dims, bits], low `num_bits` bits, MSB first

    # Skilling's transform: walk levels MSB -> LSB, dims 0..D-1; dim 0's lower bits absorb the inversions.
    for bit in range(num_bits):
        for dim in range(num_dims):
            mask = gray[:, dim, bit, None]
            gray[:, 0, bit + 1:] ^= mask
            to_flip = (1 - mask) & (gray[:, 0, bit + 1:] ^ gray[:, dim, bit + 1:])
            gray[:, dim, bit + 1:] ^= to_flip
            gray[:, 0, bit + 1:] ^= to_flip

    interleaved = gray.transpose(1, 2).reshape(-1, num_bits * num_dims)  # per level: dims 0, 1, 2
    binary = torch.cumsum(interleaved, dim=1) % 2  # Gray -> binary is a prefix XOR
    weights = 2 ** torch.arange(num_bits * num_dims - 1, -1, -1, device=locs.device, dtype=torch.int64)
    return (binary * weights).sum(dim=1).reshape(batch_shape)


def quantize(xyz, num_bits=16):
    """Per-sample, per-axis min-max scaling of xyz [B,N,3] to integers in [0, 2^bits - 1) (float32 arithmetic)."""
    xyz_min = xyz.min(dim=1, keepdim=True).values
    xyz_max = xyz.max(dim=1, keepdim=True).values
    xyz_norm = (xyz - xyz_min) / (xyz_max - xyz_min + 1e-8) * 0.999
    return (xyz_norm * (2 ** num_bits - 1)).long()


def hilbert_order(xyz, num_bits=16):
    """(sort_idx, unsort_idx) [B,N]: points in Hilbert order, and the permutation back to the input order.

    The reference uses an unstable argsort; here it is stable, so points with equal codes (duplicated points)
    keep their input order on every device. With unique codes the result is the same.
    """
    codes = encode(quantize(xyz, num_bits), num_dims=xyz.shape[-1], num_bits=num_bits)
    sort_idx = torch.argsort(codes, dim=1, stable=True)
    positions = torch.arange(sort_idx.shape[1], device=xyz.device).expand_as(sort_idx)
    unsort_idx = torch.empty_like(sort_idx).scatter_(1, sort_idx, positions)  # = argsort(sort_idx)
    return sort_idx, unsort_idx
