"""Check a finished job's output folder: python -m motiondata.verify OUTPUT_DIR [--strict]

Checks that every caption in index.jsonl has <stem>.png, <stem>.json and <stem>.npy (recorded failures
excepted, unless --strict), that no temp files were left behind, and that each file is valid:
  .json  parses, has the keys JSON_KEYS, and its "id" is the caption's id
  .npy   float32, shape (22, 3), all finite
  .png   PNG signature, 1200x1200 in the IHDR chunk, ends with the IEND chunk (not cut off)
Prints the report; exits 0 if complete and valid, 1 otherwise.
"""
import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from motiondata.atomic import is_temp_name
from motiondata.manifest import EXTENSIONS, INDEX_NAME, ManifestError, read_failures, read_index
from motiondata.naming import name_key
from motiondata.progress import progress_dir

JSON_KEYS = ("caption", "frame_index", "num_joints", "joints", "joint_names", "id", "seed", "model")
NPY_SHAPE = (22, 3)
PNG_SIZE = (1200, 1200)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
MAX_LISTED = 20


@dataclass
class Report:
    output_dir: Path
    total: int = 0                                          # captions in index.jsonl
    done: int = 0                                           # captions with all three files
    failed: dict[int, str] = field(default_factory=dict)    # recorded failures without files: id -> reason
    missing: list[tuple[int, str, list[str]]] = field(default_factory=list)  # (id, stem, missing extensions)
    invalid: list[tuple[str, str]] = field(default_factory=list)            # (file name, problem)
    temp_files: list[str] = field(default_factory=list)
    extra_files: list[str] = field(default_factory=list)    # .png/.json/.npy not named in the index
    counts: dict[str, int] = field(default_factory=dict)    # like `ls *.png | wc -l`, per extension
    total_bytes: int = 0
    strict: bool = False

    @property
    def ok(self) -> bool:
        return not (self.missing or self.invalid or self.temp_files or (self.strict and self.failed))

    def format(self) -> str:
        lines = [f"verify {self.output_dir}: {self.total} captions in {INDEX_NAME}",
                 f"  done {self.done}, recorded failures {len(self.failed)}, missing {len(self.missing)}",
                 "  files: " + ", ".join(f"{count} {ext}" for ext, count in self.counts.items())
                 + f"; {self.total_bytes / 1e6:.1f} MB in total"]
        lines += listed("recorded failure", [f"id {id}: {reason}" for id, reason in self.failed.items()])
        lines += listed("missing", [f"id {id} {stem}: no {', '.join(exts)}" for id, stem, exts in self.missing])
        lines += listed("invalid", [f"{name}: {problem}" for name, problem in self.invalid])
        lines += listed("temp file left by a killed writer (delete it)", self.temp_files)
        lines += listed("extra file not in the index (warning only)", self.extra_files)
        lines.append("OK" if self.ok else "NOT OK")
        return "\n".join(lines)


def listed(label: str, items: list[str]) -> list[str]:
    lines = [f"  {label}: {item}" for item in items[:MAX_LISTED]]
    if len(items) > MAX_LISTED:
        lines.append(f"  ... and {len(items) - MAX_LISTED} more ({label})")
    return lines


def verify(output_dir, strict: bool = False) -> Report:
    output_dir = Path(output_dir)
    if not (output_dir / INDEX_NAME).is_file():
        raise ManifestError(f"{output_dir} is not a job output folder: no {INDEX_NAME}; "
                            f"pass the output_dir of predict.py")
    report = Report(output_dir, strict=strict)
    index = read_index(output_dir)
    failures = read_failures(output_dir)
    files = list_files(output_dir, report)
    report.total = len(index)
    report.invalid += check_index(index)

    index_names = set()
    for record in index:
        id, stem = record["id"], record["stem"]
        names = [f"{stem}{ext}" for ext in EXTENSIONS]
        index_names.update(names)
        missing = [ext for ext, name in zip(EXTENSIONS, names) if name not in files]
        for ext, name in zip(EXTENSIONS, names):
            if name in files:
                problem = check_file(output_dir / name, ext, id)
                if problem:
                    report.invalid.append((name, problem))
        if not missing:
            report.done += 1
        elif id in failures:
            report.failed[id] = failures[id]
        else:
            report.missing.append((id, stem, missing))

    report.extra_files = sorted(name for name in files
                                if name.endswith(EXTENSIONS) and name not in index_names
                                and not name.startswith("."))
    return report


def list_files(output_dir: Path, report: Report) -> set[str]:
    """Regular file names in output_dir; fills the counts, total size and temp files of the report."""
    names = set()
    report.counts = {ext: 0 for ext in EXTENSIONS}
    for folder in (output_dir, progress_dir(output_dir)):
        if not folder.is_dir():
            continue
        with os.scandir(folder) as entries:
            for entry in entries:
                if not entry.is_file():
                    continue
                report.total_bytes += entry.stat().st_size
                if is_temp_name(entry.name) or entry.name.endswith(".tmp"):
                    report.temp_files.append(Path(entry.path).relative_to(output_dir).as_posix())
                if folder != output_dir:
                    continue
                names.add(entry.name)
                suffix = os.path.splitext(entry.name)[1]
                if suffix in report.counts and not entry.name.startswith("."):  # as `ls *.png` counts
                    report.counts[suffix] += 1
    report.temp_files.sort()
    return names


def check_index(index: list[dict]) -> list[tuple[str, str]]:
    problems = []
    ids = [record["id"] for record in index]
    if ids != list(range(len(index))):
        problems.append((INDEX_NAME, "ids are not 0, 1, 2, ... in order"))
    seen = {}
    for record in index:
        key = name_key(record["stem"])
        if key in seen:
            problems.append((INDEX_NAME, f"ids {seen[key]} and {record['id']} have the same stem up to case: "
                                         f"{record['stem']!r}"))
        seen.setdefault(key, record["id"])
    return problems


def check_file(path: Path, ext: str, id: int) -> str | None:
    """A description of what is wrong with the file, or None."""
    try:
        if ext == ".json":
            return check_json(path, id)
        if ext == ".npy":
            return check_npy(path)
        if ext == ".png":
            return check_png(path)
    except (OSError, ValueError) as error:
        return f"unreadable: {error}"
    return None


def check_json(path: Path, id: int) -> str | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return f"not valid UTF-8 JSON: {error}"
    if not isinstance(data, dict):
        return f"expected a JSON object, got {type(data).__name__}"
    missing = [key for key in JSON_KEYS if key not in data]
    if missing:
        return f"missing keys {missing}"
    if data["id"] != id:
        return f"has id {data['id']!r}, but index.jsonl gives this stem id {id}"
    return None


def check_npy(path: Path) -> str | None:
    array = np.load(path, allow_pickle=False)
    if array.dtype != np.float32 or array.shape != NPY_SHAPE:
        return f"expected float32 {NPY_SHAPE}, got {array.dtype} {array.shape}"
    if not np.isfinite(array).all():
        return "has NaN or inf values"
    return None


def check_png(path: Path) -> str | None:
    with open(path, "rb") as file:
        head = file.read(24)  # signature (8), IHDR length (4), "IHDR" (4), width (4), height (4)
        file.seek(0, 2)
        size = file.tell()
        file.seek(max(size - len(PNG_IEND), 0))
        tail = file.read()
    if not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return "not a PNG file (bad signature or no IHDR chunk first)"
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if (width, height) != PNG_SIZE:
        return f"expected {PNG_SIZE[0]}x{PNG_SIZE[1]} pixels, got {width}x{height}"
    if tail != PNG_IEND:
        return "cut off: does not end with the IEND chunk"
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m motiondata.verify", description=__doc__.split("\n")[0])
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--strict", action="store_true", help="recorded failures also make the check fail")
    args = parser.parse_args(argv)
    try:
        report = verify(args.output_dir, strict=args.strict)
    except (ManifestError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(report.format())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
