"""Show how far a generation job is: python -m motiondata.monitor OUTPUT_DIR [--watch SECONDS]

Counts come from the files on disk (index.jsonl + the finished <stem>.png/.json/.npy + failures), so the
monitor also works for a finished job or one whose .progress/ folder is gone; the rate, ETA and per-rank
lines come from the progress files (motiondata/progress.py). The job is
    running   some rank not finished and a progress file updated in the last 2 minutes
    finished  every caption done or failed on disk, or every rank wrote finished=true
    stale     otherwise: no update for over 2 minutes, or no progress files while captions are left
"""
import argparse
import sys
import time
from pathlib import Path

from motiondata.manifest import INDEX_NAME, ManifestError, read_failures, read_index, scan_done
from motiondata.progress import PROGRESS_DIR, read_progress

STALE_AFTER_S = 120.0


class NotAJobError(ValueError):
    pass


def job_status(output_dir, now: float | None = None) -> dict:
    output_dir = Path(output_dir)
    now = time.time() if now is None else now
    if not output_dir.is_dir():
        raise NotAJobError(f"{output_dir} is not a folder")
    has_index = (output_dir / INDEX_NAME).is_file()
    progress = read_progress(output_dir)
    if not has_index and not progress:
        raise NotAJobError(f"{output_dir} is not a job output folder: it has no {INDEX_NAME} and no "
                           f"{PROGRESS_DIR}/rank*.json; pass the output_dir of predict.py")

    ranks, ignored = current_run_ranks(progress)
    status = {"output_dir": str(output_dir), "now": now, "ranks": ranks, "ignored_ranks": ignored,
              "world_size": ranks[min(ranks)]["world_size"] if ranks else None}
    status.update(disk_counts(output_dir) if has_index else progress_counts(ranks))
    status.update(run_rate(ranks))
    status["state"] = job_state(status, now)
    return status


def current_run_ranks(progress: dict[int, dict]) -> tuple[dict[int, dict], list[int]]:
    """Ranks of the newest run: those below the world_size of the most recently updated file."""
    if not progress:
        return {}, []
    newest = max(progress.values(), key=lambda record: record.get("updated_at") or 0)
    world_size = newest["world_size"]
    ranks = {rank: record for rank, record in progress.items() if rank < world_size}
    return ranks, sorted(rank for rank in progress if rank >= world_size)


def disk_counts(output_dir: Path) -> dict:
    index = read_index(output_dir)
    stems = {record["id"]: record["stem"] for record in index}
    done = scan_done(output_dir, stems)
    failed = (set(read_failures(output_dir)) & set(stems)) - done
    return {"source": "disk", "total": len(index), "done": len(done), "failed": len(failed),
            "remaining": len(index) - len(done) - len(failed)}


def progress_counts(ranks: dict[int, dict]) -> dict:
    """Without index.jsonl: this run's counts from the progress files only."""
    total = max(record["total_job"] for record in ranks.values())
    done = sum(record["done"] for record in ranks.values())
    failed = sum(record["failed"] for record in ranks.values())
    return {"source": "progress", "total": total, "done": done, "failed": failed,
            "remaining": total - done - failed}


def run_rate(ranks: dict[int, dict]) -> dict:
    if not ranks:
        return {"processed": 0, "total_run": 0, "elapsed": 0.0, "rate": None, "last_update": None}
    processed = sum(record["done"] + record["failed"] for record in ranks.values())
    total_run = max(record["total_job"] for record in ranks.values())
    started = min(record["started_at"] for record in ranks.values())
    last_update = max(record["updated_at"] for record in ranks.values())
    elapsed = last_update - started
    rate = processed / elapsed if elapsed > 0 and processed else None
    return {"processed": processed, "total_run": total_run, "elapsed": elapsed, "rate": rate,
            "last_update": last_update}


def job_state(status: dict, now: float) -> str:
    ranks = status["ranks"]
    if status["source"] == "disk" and status["remaining"] == 0:
        return "finished"
    if ranks and len(ranks) == status["world_size"] and all(r["finished"] for r in ranks.values()):
        return "finished"
    if not ranks or now - status["last_update"] > STALE_AFTER_S:
        return "stale"
    return "running"


def format_status(status: dict) -> str:
    now = status["now"]
    lines = [f"job {status['output_dir']}: {status['state']}"
             + (f" (last update {format_duration(now - status['last_update'])} ago)"
                if status["last_update"] else " (no progress files)")]
    total = status["total"]
    percent = 100.0 * status["done"] / total if total else 100.0
    lines.append(f"captions {total}: done {status['done']} ({percent:.1f}%), failed {status['failed']}, "
                 f"remaining {status['remaining']}"
                 + ("" if status["source"] == "disk" else " (this run, from progress files)"))
    if status["ranks"]:
        line = (f"this run: {status['processed']}/{status['total_run']} processed in "
                f"{format_duration(status['elapsed'])}")
        if status["rate"]:
            line += f", {status['rate']:.2f} captions/s"
            if status["state"] == "running":
                eta = max(status["total_run"] - status["processed"], 0) / status["rate"]
                line += f", ETA {format_duration(eta)}"
        lines.append(line)
    for rank in range(status["world_size"] or 0):
        lines.append(format_rank(rank, status["world_size"], status["ranks"].get(rank), now))
    if status["ignored_ranks"]:
        lines.append(f"  (ignored progress files of ranks {status['ignored_ranks']}: from an earlier run "
                     f"with more ranks)")
    return "\n".join(lines)


def format_rank(rank: int, world_size: int, record: dict | None, now: float) -> str:
    if record is None:
        return f"  rank {rank}/{world_size}: no progress file"
    elapsed = record["updated_at"] - record["started_at"]
    processed = record["done"] + record["failed"]
    rate = f"{processed / elapsed:.2f}/s" if elapsed > 0 else "-/s"
    state = "finished" if record["finished"] else f"updated {format_duration(now - record['updated_at'])} ago"
    return (f"  rank {rank}/{world_size} {record['host']} pid {record['pid']}: "
            f"{record['done']}/{record['assigned']} done, {record['failed']} failed, {rate}, {state}")


def format_duration(seconds: float) -> str:
    seconds = max(int(round(seconds)), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m motiondata.monitor", description=__doc__.split("\n")[0])
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--watch", type=float, metavar="SECONDS",
                        help="print again every SECONDS until the job is finished (Ctrl-C to stop)")
    args = parser.parse_args(argv)
    try:
        while True:
            status = job_status(args.output_dir)
            print(format_status(status), flush=True)
            if not args.watch or status["state"] == "finished":
                return 0
            time.sleep(args.watch)
            print()
    except (NotAJobError, ManifestError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
