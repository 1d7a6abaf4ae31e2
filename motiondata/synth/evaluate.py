"""Pose quality of a model on the held-out paraphrases of the generated corpus.

    python -m motiondata.synth.evaluate [--corpus DIR] [--model mardm_default] [--repeats 2] [--manifest FILE]

Generates one pose per held-out caption (and per repeat, with another seed) through the pose10k experiment's
model config, checks it with its family's geometric predicate (plausible skeleton: bone lengths within 5 %,
nothing below the floor; plus the family's shape, e.g. both wrists above the head) and prints the pass rate
per family and overall. `--manifest` also records the figures in a bundle manifest.
"""
import argparse
import sys
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from motiondata.runtime import PROJECT_ROOT, register_resolvers
from motiondata.synth.body import bone_lengths, estimate_scale
from motiondata.synth.poses import BONE_LENGTHS, FAMILY_BY_NAME, Measures

DEFAULT_CORPUS = PROJECT_ROOT / "data" / "generated" / "humanml3d_synth"


def load_module(model, overrides=()):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    register_resolvers()
    with initialize_config_dir(str(PROJECT_ROOT / "configs"), version_base="1.3"):
        cfg = compose("predict", overrides=["+experiment=pose10k", f"model={model}", *overrides])
    return instantiate(cfg.model).eval()


def generate_poses(module, captions, seed, batch_size=32):
    module.seed = seed
    poses = []
    for first in range(0, len(captions), batch_size):
        chunk = captions[first: first + batch_size]
        batch = {"id": torch.arange(first, first + len(chunk)), "caption": chunk, "stem": chunk,
                 "length": torch.full((len(chunk),), 16)}
        with torch.no_grad():
            poses.extend(module.predict_step(batch, 0)["joints"])
    return poses


def evaluate(corpus, model="mardm_default", repeats=2, overrides=()):
    entries = [json.loads(line) for line in (Path(corpus) / "eval_captions.jsonl").read_text().splitlines()]
    module = load_module(model, overrides)
    passed, shape_passed, total, bone_errors = defaultdict(int), 0, defaultdict(int), []
    for repeat in range(repeats):
        poses = generate_poses(module, [e["caption"] for e in entries], seed=1000 + repeat)
        for entry, joints in zip(entries, poses):
            family = FAMILY_BY_NAME[entry["family"]]
            total[entry["family"]] += 1
            passed[entry["family"]] += bool(family.check(joints))
            shape_passed += bool(family.shape(Measures(joints)))
            bone_errors.append(worst_bone_error(joints))
    per_family = {name: round(passed[name] / total[name], 3) for name in sorted(total)}
    count = sum(total.values())
    return {"model": module.model_name, "held_out_captions": len(entries), "repeats": repeats,
            "pass_rate": round(sum(passed.values()) / count, 3),
            "shape_only_pass_rate": round(shape_passed / count, 3),
            "median_worst_bone_error": round(float(np.median(bone_errors)), 3),
            "pass_rate_per_family": per_family}


def worst_bone_error(joints):
    """Largest relative bone-length error against the skeleton at the pose's estimated body size."""
    scale = float(estimate_scale(joints))
    return float(np.abs(bone_lengths(joints) / (BONE_LENGTHS * scale) - 1.0).max())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=DEFAULT_CORPUS)
    parser.add_argument("--model", default="mardm_default")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--manifest", help="bundle manifest.json to record the figures in")
    args = parser.parse_args(argv)
    if not (Path(args.corpus) / "eval_captions.jsonl").is_file():
        from motiondata.synth.corpus import write_corpus
        write_corpus(args.corpus, seed=0)
    report = evaluate(args.corpus, args.model, args.repeats)
    for name, rate in report["pass_rate_per_family"].items():
        print(f"  {name:24s} {rate:6.1%}")
    print(f"{report['model']}: {report['pass_rate']:.1%} of {report['held_out_captions']} held-out captions x "
          f"{report['repeats']} seeds pass their family's predicate; {report['shape_only_pass_rate']:.1%} pass "
          f"its shape test alone; median worst bone-length error {report['median_worst_bone_error']:.1%}")
    if args.manifest:
        record_evaluation(args.manifest, report, "motiondata.synth.evaluate", argv)


def record_evaluation(manifest_path, report, module, argv=None):
    """Stores `report` and the command that made it under "evaluation" in a bundle manifest (atomically)."""
    from motiondata.atomic import atomic_write_json

    path = Path(manifest_path)
    manifest = json.loads(path.read_text()) if path.is_file() else {}
    arguments = sys.argv[1:] if argv is None else argv
    manifest["evaluation"] = {**report, "command": " ".join(["python", "-m", module, *arguments])}
    atomic_write_json(path, manifest)


if __name__ == "__main__":
    main()
