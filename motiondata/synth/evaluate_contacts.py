"""Contact quality of a CDM on the held-out scenes of the generated contact corpus.

    python -m motiondata.synth.evaluate_contacts [--data DIR] [--model cdm_default] [--manifest FILE]

For every test scene, one held-out phrasing of its kind (they take turns over the scenes) is sampled through the
cdm_stage1 experiment's model config. The predicate: the predicted contact peak of the named joint (the point where
that joint's contact is highest) lies on the named object ("touch the wall with the right hand": right wrist, wall).
Printed per kind and overall, next to two references: chance (the share of the cloud's points on that object) and
the ground truth's own peak (which passes by construction of the corpus); plus the median distance between the
predicted and the ground-truth peak point (how close to the right spot on the object the peak lands).
"""
import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from datamodules.contact_data import ContactHumanML3DDataset, ensure_contact_corpus, read_contacts
from models.contact import CONTACT_JOINTS
from motiondata.runtime import PROJECT_ROOT, compose_predict
from motiondata.synth.evaluate import record_evaluation

DEFAULT_DATA = PROJECT_ROOT / "data" / "generated" / "contact_synth"


def load_module(model, overrides=()):
    from hydra.utils import instantiate

    cfg = compose_predict("cdm_stage1", [f"model={model}", *overrides])
    return instantiate(cfg.model).eval(), cfg


def one_phrasing_per_scene(entries):
    """The held-out entries of each scene, reduced to one phrasing; the phrasings take turns within a kind."""
    per_scene, chosen, turn = defaultdict(list), [], defaultdict(int)
    for entry in entries:
        per_scene[entry["id"]].append(entry)
    for scene_id in sorted(per_scene):
        options = per_scene[scene_id]
        kind = options[0]["kind"]
        chosen.append(options[turn[kind] % len(options)])
        turn[kind] += 1
    return chosen


def peak_on_object(contact_column, labels, target):
    return bool(labels[int(np.argmax(contact_column))] == target)


def evaluate(data_dir, model="cdm_default", batch_size=8, overrides=(), limit=None):
    """`limit`: about that many scenes, taken at an even stride over the kinds (a quick check)."""
    data_dir = Path(data_dir)
    h3d = data_dir / "H3D"
    entries = one_phrasing_per_scene([json.loads(line) for line in (h3d / "eval_scenes.jsonl").read_text().splitlines()])
    if limit:
        entries = entries[:: max(1, -(-len(entries) // limit))]
    module, cfg = load_module(model, overrides)
    stats = ContactHumanML3DDataset(data_dir, "test", sigma=cfg.sigma, num_points=cfg.num_points)
    module.set_stats(stats.mean, stats.std)
    passed, total, chance, truth = defaultdict(int), defaultdict(int), defaultdict(list), defaultdict(int)
    peak_errors = []
    for first in range(0, len(entries), batch_size):
        chunk = entries[first: first + batch_size]
        scenes = [read_contacts(h3d / "contacts" / f"{e['id']}.npz", cfg.num_points) for e in chunk]
        xyz = torch.from_numpy(np.stack([points[:, :3] for points, _ in scenes]))
        with torch.no_grad():
            contact, _ = module.to_contact_and_distance(
                module.sample([e["caption"] for e in chunk], xyz, list(range(first, first + len(chunk)))))
        for entry, (points, dist), predicted in zip(chunk, scenes, contact.numpy()):
            labels = np.load(h3d / "labels" / f"{entry['id']}.npy")
            kind, column = entry["kind"], CONTACT_JOINTS.index(entry["joint_index"])
            true_peak, predicted_peak = np.argmin(dist[:, entry["joint_index"]]), np.argmax(predicted[:, column])
            peak_errors.append(float(np.linalg.norm(points[true_peak, :3] - points[predicted_peak, :3])))
            total[kind] += 1
            passed[kind] += peak_on_object(predicted[:, column], labels, entry["object"])
            truth[kind] += peak_on_object(-dist[:, entry["joint_index"]], labels, entry["object"])
            chance[kind].append(float(np.mean(labels == entry["object"])))
        print(f"  {first + len(chunk)}/{len(entries)} scenes sampled", flush=True)
    count = sum(total.values())
    return {"model": model, "held_out_scenes": count,
            "pass_rate": round(sum(passed.values()) / count, 3),
            "chance_rate": round(float(np.mean([c for kind in chance.values() for c in kind])), 3),
            "ground_truth_rate": round(sum(truth.values()) / count, 3),
            "median_peak_error_m": round(float(np.median(peak_errors)), 3),
            "pass_rate_per_kind": {kind: round(passed[kind] / total[kind], 3) for kind in sorted(total)},
            "sampling": {"respacing": cfg.model.respacing, "method": cfg.model.method, "seed": cfg.seed}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--model", default="cdm_default")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--limit", type=int, help="about this many scenes, spread over the kinds (quick check)")
    parser.add_argument("--manifest", help="bundle manifest.json to record the figures in")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the cdm_stage1 experiment")
    args = parser.parse_args(argv)
    if Path(args.data) == DEFAULT_DATA:
        ensure_contact_corpus(args.data, seed=0)  # the default corpus is made on first use
    report = evaluate(args.data, args.model, args.batch_size, args.overrides, args.limit)
    for kind, rate in report["pass_rate_per_kind"].items():
        print(f"  {kind:24s} {rate:6.1%}")
    print(f"{report['model']}: the contact peak of the named joint lies on the named object in {report['pass_rate']:.1%} "
          f"of {report['held_out_scenes']} held-out scenes (chance {report['chance_rate']:.1%}, ground truth "
          f"{report['ground_truth_rate']:.1%}); median distance to the true peak {report['median_peak_error_m']:.2f} m")
    if args.manifest:
        record_evaluation(args.manifest, report, "motiondata.synth.evaluate_contacts", argv)


if __name__ == "__main__":
    main()
