"""Contact maps <-> distances (afford-motion): contact = exp(-d^2 / (2 sigma^2)) per point and joint, normalized
with the dataset's mean/std. sigma must be the training sigma (0.8 in all of the fork's scripts)."""
import torch

CONTACT_JOINTS = (0, 10, 11, 12, 20, 21)  # 'contact_cont_joints': pelvis, feet, neck, wrists


def distance_to_contact(dist, sigma):
    return torch.exp(-0.5 * dist ** 2 / sigma ** 2)


def normalize_contact(contact, mean, std):
    return (contact - mean) / std


def denormalize_contact(x, mean, std, clip_min=1e-20):
    """Model space -> contact values, clipped to [clip_min, 1] as the reference's denormalize(clip=True)."""
    return torch.clamp(x * std + mean, clip_min, 1.0)


def contact_to_distance(contact, sigma, clip_min=1e-6):
    """Inverse of distance_to_contact: sqrt(-2 ln(c) sigma^2), with c clipped to [clip_min, 1] first.

    clip_min 1e-6 is gen_train_contact.py's (max distance ~5.26 sigma); the test evaluator uses 1e-20.
    """
    return torch.sqrt(-2 * torch.log(torch.clamp(contact, clip_min, 1.0)) * sigma ** 2)


def dataset_contact(dist_all_joints, mean, std, sigma, joints=CONTACT_JOINTS):
    """The dataset direction: per-point distances to the 22 joints [..., 22] -> normalized contact [..., 6]."""
    return normalize_contact(distance_to_contact(dist_all_joints[..., list(joints)], sigma), mean, std)


def model_output_to_distance(x, mean, std, sigma, clip_min=1e-6):
    """Sampled normalized map -> distances, as gen_train_contact.py (clip_min 1e-6) / the evaluator (1e-20)."""
    return contact_to_distance(denormalize_contact(x, mean, std), sigma, clip_min)
