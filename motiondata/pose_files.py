"""The three files of one generated pose: <stem>.png, <stem>.json, <stem>.npy.

`write_pose_files` runs in a render worker process: it writes all three into the temp folder and renames
them into the output folder only after all three were written, so a failed render leaves nothing behind
and a killed job leaves only complete files. A caption is done when all three files exist.
"""
import json
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from motiondata.atomic import atomic_path
from motiondata.render import render_pose_png
from motiondata.skeleton import JOINT_NAMES, NUM_JOINTS


def pose_json(item):
    joints = np.asarray(item["joints"], dtype=np.float32)
    return {
        "caption": item["caption"],
        "frame_index": int(item["frame_index"]),
        "num_joints": NUM_JOINTS,
        "joints": joints.tolist(),
        "joint_names": JOINT_NAMES,
        "id": int(item["id"]),
        "seed": int(item["seed"]),
        "rng": item["rng"],
        "model": item["model"],
        "num_frames": int(item["num_frames"]),
        "skeleton_fit": bool(item.get("skeleton_fit", False)),
        "units": "metres, Y up",
    }


def check_joints(item):
    joints = np.asarray(item["joints"], dtype=np.float32)
    if joints.shape != (NUM_JOINTS, 3):
        raise ValueError(f"caption {item['id']} {item['caption']!r}: joints have shape {joints.shape}, "
                         f"expected ({NUM_JOINTS}, 3)")
    if not np.isfinite(joints).all():
        raise ValueError(f"caption {item['id']} {item['caption']!r}: the generated pose has non-finite values")
    return joints


def write_pose_files(item, output_dir, temp_dir=None):
    """Writes <stem>.png/.json/.npy for one prediction item (a dict); raises on any failure."""
    joints = check_joints(item)
    output_dir = Path(output_dir)
    stem = item["stem"]
    with ExitStack() as stack:  # renames happen on exit, after all three files were written
        png, npy, js = (stack.enter_context(atomic_path(output_dir / f"{stem}{ext}", temp_dir))
                        for ext in (".png", ".npy", ".json"))
        render_pose_png(joints, item["caption"], png)
        np.save(npy, joints)
        js.write_text(json.dumps(pose_json(item), ensure_ascii=False, indent=2), encoding="utf-8")
    return item["id"]
