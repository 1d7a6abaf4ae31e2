"""The job's bookkeeping files in the output folder.

index.jsonl      one line per caption, in id order, written atomically by rank 0 at the start:
                     {"id": 0, "caption": "A person arching back", "stem": "arching_back", "status": "pending"}
                 status: "done"    all three files <stem>.png/.json/.npy exist
                         "failed"  not done and listed in the failures files
                         "pending" neither (not generated yet)
                 The status is a snapshot from when the index was written; the files on disk are the
                 truth (scan_done), so a resumed job recomputes it.
failures.rank{r}.jsonl   appended by rank r while it runs (append_failure), one line per failed caption:
                     {"id": 3, "caption": "...", "stem": "...", "rank": 0, "reason": "ValueError: ...",
                      "time": 1732350000.123}
failures.jsonl   the merged failures, sorted by id, one record per id (merge_failures, rank 0 at the end).
"""
import json
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from motiondata.atomic import append_jsonl, atomic_write_text

EXTENSIONS = (".png", ".json", ".npy")
INDEX_NAME = "index.jsonl"
FAILURES_NAME = "failures.jsonl"
RANK_FAILURES_RE = re.compile(r"^failures\.rank(\d+)\.jsonl$")
STATUSES = ("pending", "done", "failed")
INDEX_KEYS = ("id", "caption", "stem", "status")


class ManifestError(ValueError):
    """A bookkeeping file that cannot be read; the message names the file and line."""


def expected_files(output_dir, stem: str) -> list[Path]:
    return [Path(output_dir) / f"{stem}{extension}" for extension in EXTENSIONS]


def is_done(output_dir, stem: str) -> bool:
    return all(path.is_file() for path in expected_files(output_dir, stem))


def list_file_names(output_dir) -> set[str]:
    """Names of the regular files in output_dir, from one directory listing (no stat per file)."""
    with os.scandir(output_dir) as entries:
        return {entry.name for entry in entries if entry.is_file()}


def scan_done(output_dir, stems) -> set[int]:
    """Ids whose three files exist. `stems` is a list (stems[id]) or a mapping {id: stem}."""
    names = list_file_names(output_dir)
    items = stems.items() if isinstance(stems, Mapping) else enumerate(stems)
    return {id for id, stem in items if all(f"{stem}{extension}" in names for extension in EXTENSIONS)}


def index_records(captions: Sequence[str], stems: Sequence[str], done: set[int] = frozenset(),
                  failures: Mapping[int, str] | None = None) -> list[dict]:
    """The index lines for captions[id] / stems[id], with the status from the done ids and failures."""
    failures = failures or {}
    records = []
    for id, (caption, stem) in enumerate(zip(captions, stems, strict=True)):
        status = "done" if id in done else "failed" if id in failures else "pending"
        records.append({"id": id, "caption": caption, "stem": stem, "status": status})
    return records


def write_index(output_dir, records: Iterable[Mapping]):
    lines = []
    for record in records:
        missing = [key for key in INDEX_KEYS if key not in record]
        if missing or record["status"] not in STATUSES:
            raise ValueError(f"bad index record {dict(record)!r}: needs keys {INDEX_KEYS} "
                             f"and a status in {STATUSES}")
        lines.append(json.dumps(dict(record), ensure_ascii=False) + "\n")
    atomic_write_text(Path(output_dir) / INDEX_NAME, "".join(lines))


def read_index(output_dir) -> list[dict]:
    path = Path(output_dir) / INDEX_NAME
    records = []
    for line_number, record in read_jsonl(path, allow_cut_last_line=False):
        if not isinstance(record, dict) or any(key not in record for key in INDEX_KEYS):
            raise ManifestError(f"{path} line {line_number}: expected an object with keys {INDEX_KEYS}, "
                                f"got {record!r}")
        records.append(record)
    return records


def append_failure(output_dir, rank: int, id: int, caption: str, stem: str, reason: str):
    record = {"id": id, "caption": caption, "stem": stem, "rank": rank, "reason": reason,
              "time": round(time.time(), 3)}
    append_jsonl(Path(output_dir) / f"failures.rank{rank}.jsonl", record)


def failure_files(output_dir) -> list[Path]:
    """failures.jsonl (if any) first, then the per-rank files by rank: later records win."""
    output_dir = Path(output_dir)
    rank_files = []
    for name in list_file_names(output_dir):
        match = RANK_FAILURES_RE.match(name)
        if match:
            rank_files.append((int(match.group(1)), output_dir / name))
    merged = output_dir / FAILURES_NAME
    return ([merged] if merged.is_file() else []) + [path for _, path in sorted(rank_files)]


def read_failure_records(output_dir) -> dict[int, dict]:
    records = {}
    for path in failure_files(output_dir):
        for line_number, record in read_jsonl(path, allow_cut_last_line=True):
            if not isinstance(record, dict) or not isinstance(record.get("id"), int):
                raise ManifestError(f"{path} line {line_number}: expected an object with an integer 'id', "
                                    f"got {record!r}")
            records[record["id"]] = record
    return records


def read_failures(output_dir) -> dict[int, str]:
    """{id: reason} from failures.jsonl and failures.rank*.jsonl."""
    return {id: str(record.get("reason", "")) for id, record in read_failure_records(output_dir).items()}


def merge_failures(output_dir, done: set[int] = frozenset()) -> dict[int, str]:
    """Merges the per-rank failure files into failures.jsonl (sorted by id, atomic), then removes them.

    Ids in `done` are dropped: a caption that failed once and succeeded on a resumed run is no longer a
    failure. Call it on one rank (rank 0) after all ranks finished. Safe to re-run after a crash.
    """
    output_dir = Path(output_dir)
    rank_files = [path for path in failure_files(output_dir) if path.name != FAILURES_NAME]
    records = read_failure_records(output_dir)
    records = {id: record for id, record in records.items() if id not in done}
    merged = output_dir / FAILURES_NAME
    if records or merged.exists():
        lines = [json.dumps(records[id], ensure_ascii=False) + "\n" for id in sorted(records)]
        atomic_write_text(merged, "".join(lines))
    for path in rank_files:
        path.unlink()
    return {id: str(record.get("reason", "")) for id, record in sorted(records.items())}


def read_jsonl(path: Path, allow_cut_last_line: bool) -> list[tuple[int, object]]:
    """(line number, parsed record) for the lines of a JSONL file, skipping blank lines. A last line without a newline that does not
    parse is the fragment of an append cut off by a kill: skipped if allow_cut_last_line, else an error.
    Such a fragment in the middle (an append after a cut one) is skipped too."""
    # a kill can cut an append inside a multi-byte character: decode leniently where cuts are expected
    text = path.read_text(encoding="utf-8", errors="replace" if allow_cut_last_line else "strict")
    lines = text.split("\n")
    records = []
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append((line_number, json.loads(line)))
        except json.JSONDecodeError as error:
            is_last = line_number == len(lines)
            if allow_cut_last_line and (is_last or looks_cut_off(line)):
                continue
            raise ManifestError(f"{path} line {line_number}: not valid JSON ({error.msg}); "
                                f"fix or delete the line") from None
    return records


def looks_cut_off(line: str) -> bool:
    # append_jsonl starts a new line after a fragment, so a fragment is a line that starts a record
    # ('{"id": ...') but never closes it
    return line.startswith("{") and not line.rstrip().endswith("}")
