import json
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from motiondata import manifest, monitor, verify
from motiondata.atomic import atomic_save_npy, atomic_write_bytes, atomic_write_json
from motiondata.manifest import (append_failure, expected_files, index_records, is_done, merge_failures,
                                 read_failures, read_index, scan_done, write_index)
from motiondata.progress import ProgressFile, clear_progress, read_progress

REPO_ROOT = Path(__file__).resolve().parents[1]


# --- a fake job output ---------------------------------------------------------------------------

def png_bytes(width=1200, height=1200) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\xff" * width for _ in range(height))  # 8-bit grayscale, white
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PNG = png_bytes()


def write_pose(output_dir: Path, id: int, stem: str, caption: str):
    joints = np.full((22, 3), 0.5, dtype=np.float32)
    atomic_write_bytes(output_dir / f"{stem}.png", PNG)
    atomic_write_json(output_dir / f"{stem}.json", {
        "caption": caption, "frame_index": 0, "num_joints": 22, "joints": joints.tolist(),
        "joint_names": [f"j{i}" for i in range(22)], "id": id, "seed": 0, "model": "mardm"})
    atomic_save_npy(output_dir / f"{stem}.npy", joints)


def make_job(output_dir: Path, count=6, done=(0, 1, 2, 3)):
    captions = [f"a person pose {i}" for i in range(count)]
    stems = [f"a_person_pose_{i}" for i in range(count)]
    write_index(output_dir, index_records(captions, stems))
    for id in done:
        write_pose(output_dir, id, stems[id], captions[id])
    return captions, stems


# --- manifest --------------------------------------------------------------------------------------

def test_expected_files_and_is_done(tmp_path):
    assert [path.name for path in expected_files(tmp_path, "x")] == ["x.png", "x.json", "x.npy"]
    (tmp_path / "x.png").write_bytes(b"")
    (tmp_path / "x.json").write_bytes(b"")
    assert not is_done(tmp_path, "x")
    (tmp_path / "x.npy").write_bytes(b"")
    assert is_done(tmp_path, "x")


def test_scan_done_list_and_mapping(tmp_path):
    for name in ["a.png", "a.json", "a.npy", "b.png", "b.json", "c.png", "c.json", "c.npy"]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "d.png").mkdir()  # a folder is not a file
    (tmp_path / "d.json").write_bytes(b"")
    (tmp_path / "d.npy").write_bytes(b"")
    assert scan_done(tmp_path, ["a", "b", "c", "d"]) == {0, 2}
    assert scan_done(tmp_path, {10: "c", 11: "b"}) == {10}


def test_scan_done_10000_stems_uses_one_listing(tmp_path, monkeypatch):
    stems = [f"pose_{i}" for i in range(10_000)]
    for stem in stems[::4]:
        for extension in (".png", ".json", ".npy"):
            os.close(os.open(tmp_path / f"{stem}{extension}", os.O_CREAT | os.O_WRONLY))

    def no_stat(*args, **kwargs):
        raise AssertionError("scan_done must not stat each file")
    monkeypatch.setattr(os, "stat", no_stat)
    monkeypatch.setattr(Path, "exists", no_stat)
    monkeypatch.setattr(Path, "is_file", no_stat)
    start = time.perf_counter()
    done = scan_done(tmp_path, stems)
    assert time.perf_counter() - start < 1.0
    assert done == set(range(0, 10_000, 4))


def test_index_roundtrip_and_statuses(tmp_path):
    records = index_records(["a", "b", "c"], ["a", "b", "c"], done={0}, failures={1: "boom", 0: "old"})
    assert [record["status"] for record in records] == ["done", "failed", "pending"]
    write_index(tmp_path, records)
    assert read_index(tmp_path) == records
    lines = (tmp_path / "index.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {"id": 0, "caption": "a", "stem": "a", "status": "done"}
    with pytest.raises(ValueError, match="status"):
        write_index(tmp_path, [{"id": 0, "caption": "a", "stem": "a", "status": "skipped"}])


def test_failures_per_rank_read_and_merge(tmp_path):
    append_failure(tmp_path, rank=1, id=7, caption="c7", stem="c7", reason="RuntimeError: CUDA OOM")
    append_failure(tmp_path, rank=0, id=2, caption="c2", stem="c2", reason="ValueError: nan pose")
    append_failure(tmp_path, rank=0, id=5, caption="c5", stem="c5", reason="first try")
    with open(tmp_path / "failures.rank0.jsonl", "ab") as file:
        file.write(b'{"id": 9, "capt')  # rank 0 was killed mid-append
    assert read_failures(tmp_path) == {7: "RuntimeError: CUDA OOM", 2: "ValueError: nan pose", 5: "first try"}

    merged = merge_failures(tmp_path, done={5})
    assert merged == {2: "ValueError: nan pose", 7: "RuntimeError: CUDA OOM"}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["failures.jsonl"]
    lines = [json.loads(line) for line in (tmp_path / "failures.jsonl").read_text().splitlines()]
    assert [record["id"] for record in lines] == [2, 7]
    assert set(lines[0]) == {"id", "caption", "stem", "rank", "reason", "time"}

    # a resumed run fails id 2 again and id 11: later records win, merge is repeatable
    append_failure(tmp_path, rank=0, id=2, caption="c2", stem="c2", reason="second try")
    append_failure(tmp_path, rank=0, id=11, caption="c11", stem="c11", reason="x")
    assert merge_failures(tmp_path) == {2: "second try", 7: "RuntimeError: CUDA OOM", 11: "x"}
    assert merge_failures(tmp_path) == {2: "second try", 7: "RuntimeError: CUDA OOM", 11: "x"}


def test_merge_without_failures_writes_nothing(tmp_path):
    assert merge_failures(tmp_path) == {}
    assert list(tmp_path.iterdir()) == []


def test_corrupt_failure_line_names_file_and_line(tmp_path):
    (tmp_path / "failures.jsonl").write_text('{"id": 1, "reason": "a"}\nnot json\n{"id": 2}\n')
    with pytest.raises(manifest.ManifestError, match=r"failures.jsonl line 2"):
        read_failures(tmp_path)


# --- progress --------------------------------------------------------------------------------------

class FakeClock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def test_progress_file_is_throttled(tmp_path):
    clock = FakeClock()
    progress_file = ProgressFile(tmp_path, rank=1, world_size=2, total_job=100, assigned=50,
                                 min_interval=5.0, clock=clock)
    path = tmp_path / ".progress" / "rank1.json"
    first = json.loads(path.read_text())
    assert first["done"] == 0 and first["started_at"] == 1000.0 and first["finished"] is False
    assert set(first) == {"rank", "world_size", "total_job", "assigned", "done", "failed", "started_at",
                          "updated_at", "finished", "pid", "host"}

    clock.now = 1002.0
    assert not progress_file.update(done=3)
    assert json.loads(path.read_text())["done"] == 0
    assert progress_file.update(done=4, force=True)
    assert json.loads(path.read_text())["done"] == 4
    clock.now = 1006.0
    assert not progress_file.update(done=5, failed=1)
    clock.now = 1007.0
    assert progress_file.update(done=6)
    clock.now = 1008.0
    progress_file.finish(done=50)
    last = json.loads(path.read_text())
    assert (last["done"], last["failed"], last["finished"], last["updated_at"]) == (50, 1, True, 1008.0)
    assert read_progress(tmp_path)[1] == last
    assert [path.name for path in (tmp_path / ".progress").iterdir()] == ["rank1.json"]
    clear_progress(tmp_path)
    assert read_progress(tmp_path) == {}


# --- monitor ---------------------------------------------------------------------------------------

def write_progress(output_dir, rank, world_size, done, failed, started_at, updated_at, finished=False,
                   total_job=6, assigned=3):
    (output_dir / ".progress").mkdir(exist_ok=True)
    atomic_write_json(output_dir / ".progress" / f"rank{rank}.json", {
        "rank": rank, "world_size": world_size, "total_job": total_job, "assigned": assigned, "done": done,
        "failed": failed, "started_at": started_at, "updated_at": updated_at, "finished": finished,
        "pid": 100 + rank, "host": "node1"})


def test_monitor_running_job(tmp_path):
    make_job(tmp_path, count=6, done=(0, 1, 2))
    append_failure(tmp_path, rank=1, id=5, caption="c", stem="a_person_pose_5", reason="boom")
    write_progress(tmp_path, 0, 2, done=2, failed=0, started_at=1000.0, updated_at=1010.0)
    write_progress(tmp_path, 1, 2, done=1, failed=1, started_at=1000.0, updated_at=1008.0)
    write_progress(tmp_path, 3, 4, done=9, failed=0, started_at=500.0, updated_at=600.0)  # an older run

    status = monitor.job_status(tmp_path, now=1015.0)
    assert status["state"] == "running"
    assert (status["total"], status["done"], status["failed"], status["remaining"]) == (6, 3, 1, 2)
    assert status["rate"] == pytest.approx(0.4)  # 4 captions in 10 s
    text = monitor.format_status(status)
    assert "running (last update 5s ago)" in text
    assert "captions 6: done 3 (50.0%), failed 1, remaining 2" in text
    assert "this run: 4/6 processed in 10s, 0.40 captions/s, ETA 5s" in text
    assert "rank 0/2 node1 pid 100: 2/3 done, 0 failed, 0.20/s, updated 5s ago" in text
    assert "ignored progress files of ranks [3]" in text

    assert monitor.job_status(tmp_path, now=1010.0 + 121)["state"] == "stale"


def test_monitor_finished_and_without_progress_files(tmp_path):
    make_job(tmp_path, count=3, done=(0, 1, 2))
    status = monitor.job_status(tmp_path, now=5000.0)
    assert status["state"] == "finished" and status["remaining"] == 0
    assert "no progress files" in monitor.format_status(status)

    make_job(tmp_path, count=4, done=(0,))
    assert monitor.job_status(tmp_path)["state"] == "stale"


def test_monitor_all_ranks_finished(tmp_path):
    make_job(tmp_path, count=4, done=(0, 1, 2))  # id 3 left pending, e.g. a run over part of the captions
    write_progress(tmp_path, 0, 1, done=3, failed=0, started_at=0.0, updated_at=8.0, finished=True, assigned=3)
    status = monitor.job_status(tmp_path, now=10_000.0)
    assert status["state"] == "finished" and status["remaining"] == 1


def test_monitor_cli(tmp_path, capsys):
    make_job(tmp_path, count=2, done=(0,))
    assert monitor.main([str(tmp_path)]) == 0
    assert "captions 2: done 1 (50.0%)" in capsys.readouterr().out
    assert monitor.main([str(tmp_path / "nope")]) == 2
    (tmp_path / "empty").mkdir()
    assert monitor.main([str(tmp_path / "empty")]) == 2
    assert "not a job output folder" in capsys.readouterr().err

    result = subprocess.run([sys.executable, "-m", "motiondata.monitor", str(tmp_path)], cwd=REPO_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0 and "done 1" in result.stdout


# --- verify ----------------------------------------------------------------------------------------

def test_verify_complete_job(tmp_path, capsys):
    make_job(tmp_path, count=3, done=(0, 1, 2))
    report = verify.verify(tmp_path)
    assert report.ok and report.done == 3
    assert report.counts == {".png": 3, ".json": 3, ".npy": 3}
    assert verify.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "3 .png, 3 .json, 3 .npy" in out and "MB in total" in out and out.strip().endswith("OK")


def test_verify_failures_are_excused_unless_strict(tmp_path):
    make_job(tmp_path, count=3, done=(0, 1))
    append_failure(tmp_path, rank=0, id=2, caption="c", stem="a_person_pose_2", reason="boom")
    report = verify.verify(tmp_path)
    assert report.ok and report.failed == {2: "boom"}
    assert not verify.verify(tmp_path, strict=True).ok
    assert verify.main([str(tmp_path), "--strict"]) == 1


def test_verify_finds_missing_temp_and_extra_files(tmp_path, capsys):
    make_job(tmp_path, count=3, done=(0, 1, 2))
    (tmp_path / "a_person_pose_1.npy").unlink()
    (tmp_path / ".a_person_pose_1.4242-0123abcd.tmp.npy").write_bytes(b"half")
    (tmp_path / "old_caption.png").write_bytes(PNG)
    report = verify.verify(tmp_path)
    assert report.missing == [(1, "a_person_pose_1", [".npy"])]
    assert report.temp_files == [".a_person_pose_1.4242-0123abcd.tmp.npy"]
    assert report.extra_files == ["old_caption.png"]
    assert report.counts == {".png": 4, ".json": 3, ".npy": 2}  # as `ls *.npy | wc -l` would say
    assert verify.main([str(tmp_path)]) == 1
    assert "NOT OK" in capsys.readouterr().out


@pytest.mark.parametrize("damage, problem", [
    (lambda d: np.save(d / "a_person_pose_0.npy", np.zeros((22, 3))), "expected float32"),
    (lambda d: np.save(d / "a_person_pose_0.npy", np.zeros((21, 3), np.float32)), "expected float32"),
    (lambda d: np.save(d / "a_person_pose_0.npy", np.full((22, 3), np.nan, np.float32)), "NaN"),
    (lambda d: (d / "a_person_pose_0.npy").write_bytes(b"\x93NUMPY garbage"), "unreadable"),
    (lambda d: (d / "a_person_pose_0.png").write_bytes(png_bytes(64, 48)), "got 64x48"),
    (lambda d: (d / "a_person_pose_0.png").write_bytes(PNG[:-20]), "cut off"),
    (lambda d: (d / "a_person_pose_0.png").write_bytes(b"GIF89a" + PNG), "not a PNG"),
    (lambda d: (d / "a_person_pose_0.json").write_text('{"caption": "x"}'), "missing keys"),
    (lambda d: (d / "a_person_pose_0.json").write_text('{"caption": '), "not valid UTF-8 JSON"),
    (lambda d: (d / "a_person_pose_0.json").write_text(
        (d / "a_person_pose_1.json").read_text()), "has id 1"),
])
def test_verify_finds_invalid_files(tmp_path, damage, problem):
    make_job(tmp_path, count=2, done=(0, 1))
    damage(tmp_path)
    report = verify.verify(tmp_path)
    assert not report.ok
    assert len(report.invalid) == 1 and report.invalid[0][0].startswith("a_person_pose_0.")
    assert problem in report.invalid[0][1]


def test_verify_not_a_job_folder(tmp_path, capsys):
    assert verify.main([str(tmp_path)]) == 1
    assert "not a job output folder" in capsys.readouterr().err


def test_verify_cli_subprocess(tmp_path):
    make_job(tmp_path, count=2, done=(0,))
    result = subprocess.run([sys.executable, "-m", "motiondata.verify", str(tmp_path)], cwd=REPO_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 1 and "missing 1" in result.stdout
