"""Pose quality of a model on the held-out paraphrases of the generated corpus, or on the pose10k captions.

    python -m motiondata.synth.evaluate [--corpus DIR] [--model mardm_default] [--repeats 2] [--manifest FILE]
    python -m motiondata.synth.evaluate --captions pose10k --limit 940 --repeats 1 [--manifest FILE]
    python -m motiondata.synth.evaluate --captions validation [--model mardm_default] [--repeats 2] [cfg=3 ...]

`--captions heldout` (default): the held-out paraphrases, worded unlike any training caption, measure how the
model follows new wordings. `--captions pose10k`: the first `--limit` captions of the default job's list
(data/pose10k_captions.txt, made of training phrases with new subject / adverb / tail combinations) measure
what the default job delivers. `--captions validation`: other unseen paraphrases (motiondata.synth.phrases
VALIDATION), for choosing sampling settings without looking at the held-out ones. Trailing `key=value` arguments
are overrides of the pose10k experiment's config (e.g. `cfg=3`, `model.num_steps=20`).

Generates one pose per caption (and per repeat, with another seed) through the pose10k experiment's
model config, checks it with its family's geometric predicate (plausible skeleton: bone lengths within 5 %,
nothing below the floor; plus the family's shape, e.g. both wrists above the head) and prints the pass rate
per family and overall, for the poses as pose10k writes them and, when the config refits poses to the
skeleton, for the network's joints before the fit. `--manifest` also records the figures in a bundle manifest.
"""
import argparse
import sys
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from motiondata.runtime import PROJECT_ROOT, compose_predict
from motiondata.synth.body import fit_to_skeleton, worst_bone_error
from motiondata.synth.poses import FAMILY_BY_NAME, Measures

DEFAULT_CORPUS = PROJECT_ROOT / "data" / "generated" / "humanml3d_synth"


def load_module(model, overrides=()):
    from hydra.utils import instantiate

    return instantiate(compose_predict("pose10k", [f"model={model}", *overrides]).model).eval()


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


def heldout_entries(corpus):
    return [json.loads(line) for line in (Path(corpus) / "eval_captions.jsonl").read_text().splitlines()]


def validation_entries():
    from motiondata.synth.captions import validation_captions
    from motiondata.synth.poses import FAMILIES

    return [{"caption": caption, "family": family.name}
            for family in FAMILIES for caption in validation_captions(family)]


def pose10k_entries(limit):
    from motiondata.synth.captions import compose_captions

    return [{"caption": caption, "family": family} for caption, family in compose_captions(10000, seed=0)[:limit]]


def evaluate(entries, model="mardm_default", repeats=2, overrides=()):
    """Pass rates of the poses for `entries` ({"caption", "family"}) as the pose10k experiment writes them and, when
    the model config refits them to the skeleton (`skeleton_fit`), of the network's own joints ("raw")."""
    module = load_module(model, overrides)
    skeleton_fit, module.skeleton_fit = module.skeleton_fit, False
    raw, written = [], []
    for repeat in range(repeats):
        poses = generate_poses(module, [e["caption"] for e in entries], seed=1000 + repeat)
        raw += poses
        written += [fit_to_skeleton(joints) if skeleton_fit else joints for joints in poses]
    families = [entry["family"] for entry in entries] * repeats
    report = {"model": module.model_name, "captions": len(entries), "repeats": repeats, "cfg": module.cfg,
              "time_steps": module.time_steps, "skeleton_fit": bool(skeleton_fit),
              **pass_rates(families, written, repeats)}
    if skeleton_fit:
        report["raw"] = {key: value for key, value in pass_rates(families, raw, repeats).items()
                         if key != "pass_rate_per_family"}
    return report


def pass_rates(families, poses, repeats=1):
    """`families` and `poses` hold `repeats` runs over the same captions, one after the other."""
    passed, shape_passed, total, bone_errors, checks = defaultdict(int), 0, defaultdict(int), [], []
    for name, joints in zip(families, poses):
        family = FAMILY_BY_NAME[name]
        total[name] += 1
        checks.append(bool(family.check(joints)))
        passed[name] += checks[-1]
        shape_passed += bool(family.shape(Measures(joints)))
        bone_errors.append(float(worst_bone_error(joints)))
    return {"pass_rate": round(sum(passed.values()) / len(poses), 3),
            "pass_rate_95ci": caption_bootstrap_interval(np.reshape(checks, (repeats, -1)).mean(axis=0)),
            "shape_only_pass_rate": round(shape_passed / len(poses), 3),
            "median_worst_bone_error": round(float(np.median(bone_errors)), 3),
            "pass_rate_per_family": {name: round(passed[name] / total[name], 3) for name in sorted(total)}}


def caption_bootstrap_interval(rate_per_caption, draws=4000, seed=0):
    """95 % interval of the overall pass rate, resampling captions (a caption's repeats share its wording, so they
    are not independent trials)."""
    rates = np.asarray(rate_per_caption, dtype=np.float64)
    resampled = np.random.default_rng(seed).choice(rates, size=(draws, len(rates))).mean(axis=1)
    return [round(float(q), 3) for q in np.quantile(resampled, [0.025, 0.975])]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--captions", choices=("heldout", "pose10k", "validation"), default="heldout")
    parser.add_argument("--corpus", default=DEFAULT_CORPUS, help="the pose corpus with eval_captions.jsonl")
    parser.add_argument("--limit", type=int, default=940, help="pose10k captions to take (from the top)")
    parser.add_argument("--model", default="mardm_default")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--manifest", help="bundle manifest.json to record the figures in")
    parser.add_argument("overrides", nargs="*", help="pose10k experiment config overrides, e.g. cfg=3")
    args = parser.parse_args(argv)
    if args.captions == "pose10k":
        entries = pose10k_entries(args.limit)
    elif args.captions == "validation":
        entries = validation_entries()
    else:
        if not (Path(args.corpus) / "eval_captions.jsonl").is_file():
            from motiondata.synth.corpus import write_corpus
            write_corpus(args.corpus, seed=0)
        entries = heldout_entries(args.corpus)
    report = {"captions_set": args.captions, **evaluate(entries, args.model, args.repeats, args.overrides)}
    for name, rate in report["pass_rate_per_family"].items():
        print(f"  {name:24s} {rate:6.1%}")
    fit = ", skeleton fit on" if report["skeleton_fit"] else ""
    print(f"{report['model']} (cfg {report['cfg']}) on {report['captions']} {args.captions} captions x "
          f"{report['repeats']} seeds{fit}: {summary(report)}")
    if "raw" in report:
        print(f"  before the skeleton fit: {summary(report['raw'])}")
    if args.manifest:
        key = {"heldout": "evaluation", "pose10k": "evaluation_pose10k", "validation": "evaluation_validation"}[
            args.captions]
        record_evaluation(args.manifest, report, "motiondata.synth.evaluate", argv, key)


def summary(rates):
    low, high = rates["pass_rate_95ci"]
    return (f"{rates['pass_rate']:.1%} (95 % interval over captions {low:.1%}-{high:.1%}) pass their family's "
            f"predicate, {rates['shape_only_pass_rate']:.1%} its shape test alone, "
            f"median worst bone-length error {rates['median_worst_bone_error']:.1%}")


def record_evaluation(manifest_path, report, module, argv=None, key="evaluation"):
    """Stores `report` and the command that made it under `key` in a bundle manifest (atomically)."""
    from motiondata.atomic import atomic_write_json

    path = Path(manifest_path)
    manifest = json.loads(path.read_text()) if path.is_file() else {}
    arguments = sys.argv[1:] if argv is None else argv
    manifest[key] = {**report, "command": " ".join(["python", "-m", module, *arguments])}
    atomic_write_json(path, manifest)


if __name__ == "__main__":
    main()
