"""Per-rank progress files, read by `python -m motiondata.monitor`.

Each rank writes <output_dir>/.progress/rank{r}.json atomically, at most once per `min_interval`
seconds while it works and once more at the end (finish):

    {"rank": 0, "world_size": 4,
     "total_job": 9000,        captions to generate in this run, all ranks together (already done ones excluded)
     "assigned": 2250,         this rank's share of total_job
     "done": 1200, "failed": 3,  this rank's counts so far in this run
     "started_at": 1732350000.0, "updated_at": 1732350420.5,   Unix time in seconds
     "finished": false, "pid": 12345, "host": "gpu-node-1"}

Rank 0 should call clear_progress() before the ranks start (behind a barrier), so files of an earlier run
with more ranks do not linger; the monitor also ignores ranks >= the newest file's world_size.
"""
import json
import os
import shutil
import socket
import time
from pathlib import Path

from motiondata.atomic import atomic_write_json

PROGRESS_DIR = ".progress"


def progress_dir(output_dir) -> Path:
    return Path(output_dir) / PROGRESS_DIR


def clear_progress(output_dir):
    shutil.rmtree(progress_dir(output_dir), ignore_errors=True)


class ProgressFile:
    def __init__(self, output_dir, rank: int, world_size: int, total_job: int, assigned: int,
                 min_interval: float = 5.0, clock=time.time):
        self.path = progress_dir(output_dir) / f"rank{rank}.json"
        self.min_interval = min_interval
        self.clock = clock
        self.last_write = None
        self.state = {
            "rank": rank, "world_size": world_size, "total_job": total_job, "assigned": assigned,
            "done": 0, "failed": 0, "started_at": round(clock(), 3), "updated_at": None,
            "finished": False, "pid": os.getpid(), "host": socket.gethostname(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.write()

    def update(self, done: int | None = None, failed: int | None = None, force: bool = False) -> bool:
        """Records the counts; writes the file if forced or min_interval passed. Returns whether it wrote."""
        if done is not None:
            self.state["done"] = done
        if failed is not None:
            self.state["failed"] = failed
        if force or self.clock() - self.last_write >= self.min_interval:
            self.write()
            return True
        return False

    def finish(self, done: int | None = None, failed: int | None = None):
        self.state["finished"] = True
        self.update(done, failed, force=True)

    def write(self):
        self.last_write = self.clock()
        self.state["updated_at"] = round(self.last_write, 3)
        atomic_write_json(self.path, self.state)


def read_progress(output_dir) -> dict[int, dict]:
    """{rank: progress record} for every readable .progress/rank*.json (unreadable ones are skipped)."""
    records = {}
    folder = progress_dir(output_dir)
    if not folder.is_dir():
        return records
    for path in sorted(folder.glob("rank*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            records[int(record["rank"])] = record
        except (OSError, ValueError, KeyError, TypeError):
            continue  # written atomically, so this is a hand-made or foreign file: not ours to judge
    return records
