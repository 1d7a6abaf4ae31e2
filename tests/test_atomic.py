import errno
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from motiondata import atomic
from motiondata.atomic import (append_jsonl, atomic_path, atomic_save_npy, atomic_write_bytes,
                               atomic_write_json, atomic_write_text, is_temp_name)

REPO_ROOT = Path(__file__).resolve().parents[1]


def names_in(folder):
    return sorted(path.name for path in Path(folder).iterdir())


def test_write_bytes_text_json_npy(tmp_path):
    atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01")
    atomic_write_text(tmp_path / "b.txt", "héllo\n")
    atomic_write_json(tmp_path / "c.json", {"caption": "一个人", "joints": [[0.5, 1.0]]})
    atomic_save_npy(tmp_path / "d.npy", np.arange(66, dtype=np.float32).reshape(22, 3))

    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "héllo\n"
    text = (tmp_path / "c.json").read_text(encoding="utf-8")
    assert '"一个人"' in text and '\n  "joints"' in text and text.endswith("}\n")
    array = np.load(tmp_path / "d.npy")
    assert array.dtype == np.float32 and array.shape == (22, 3) and array[21, 2] == 65
    assert names_in(tmp_path) == ["a.bin", "b.txt", "c.json", "d.npy"]  # no temp files left


def test_overwrite_replaces_the_whole_file(tmp_path):
    atomic_write_bytes(tmp_path / "a.bin", b"x" * 1000)
    atomic_write_bytes(tmp_path / "a.bin", b"short")
    assert (tmp_path / "a.bin").read_bytes() == b"short"


def test_json_with_nan_raises_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "bad.json", {"x": float("nan")})
    assert names_in(tmp_path) == []


def test_atomic_path_temp_name_keeps_extension_and_is_hidden(tmp_path):
    with atomic_path(tmp_path / "pose.png") as temp_path:
        assert temp_path.parent == tmp_path
        assert temp_path.suffix == ".png" and temp_path.name.startswith(".")
        assert is_temp_name(temp_path.name) and not is_temp_name("pose.png")
        assert str(os.getpid()) in temp_path.name
        temp_path.write_bytes(b"png")
    assert names_in(tmp_path) == ["pose.png"]


def test_atomic_path_works_with_np_save_by_name(tmp_path):
    with atomic_path(tmp_path / "x.npy") as temp_path:
        np.save(temp_path, np.ones(3))  # np.save appends .npy unless the name ends with it
    assert np.load(tmp_path / "x.npy").tolist() == [1, 1, 1]
    assert names_in(tmp_path) == ["x.npy"]


def test_failure_keeps_old_file_and_removes_temp(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "a.txt") as temp_path:
            temp_path.write_text("half")
            raise RuntimeError("renderer crashed")
    assert (tmp_path / "a.txt").read_text() == "old"
    assert names_in(tmp_path) == ["a.txt"]


def test_nothing_written_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing was written"):
        with atomic_path(tmp_path / "a.txt"):
            pass
    assert names_in(tmp_path) == []


def test_long_stem_gives_a_short_enough_temp_name(tmp_path):
    stem = "一" * 81  # 243 bytes
    atomic_write_text(tmp_path / f"{stem}.json", "{}")
    assert names_in(tmp_path) == [f"{stem}.json"]


def test_temp_dir(tmp_path):
    temp_dir = tmp_path / "scratch"
    temp_dir.mkdir()
    seen = []
    with atomic_path(tmp_path / "a.txt", temp_dir) as temp_path:
        seen.append(temp_path.parent)
        temp_path.write_text("x")
    assert seen == [temp_dir] and names_in(temp_dir) == [] and (tmp_path / "a.txt").read_text() == "x"


def test_cross_filesystem_replace_falls_back_to_copy(tmp_path, monkeypatch):
    temp_dir = tmp_path / "other_fs"
    temp_dir.mkdir()
    real_replace = os.replace
    calls = []

    def replace_failing_across_devices(source, target):
        calls.append(Path(source).parent)
        if Path(source).parent == temp_dir:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(source, target)

    monkeypatch.setattr(atomic.os, "replace", replace_failing_across_devices)
    atomic_write_bytes(tmp_path / "a.bin", b"data", temp_dir=temp_dir)
    assert (tmp_path / "a.bin").read_bytes() == b"data"
    assert calls == [temp_dir, tmp_path]  # second rename: from a temp name in the final folder
    assert names_in(temp_dir) == [] and names_in(tmp_path) == ["a.bin", "other_fs"]


def test_append_jsonl_one_line_per_record_and_repairs_a_cut_line(tmp_path):
    path = tmp_path / "log.jsonl"
    append_jsonl(path, {"id": 1, "reason": "é\nnewline in text"})
    with open(path, "ab") as file:
        file.write(b'{"id": 2, "rea')  # an append cut off by a kill
    append_jsonl(path, {"id": 3})
    lines = path.read_text(encoding="utf-8").split("\n")
    assert json.loads(lines[0]) == {"id": 1, "reason": "é\nnewline in text"}
    assert lines[1] == '{"id": 2, "rea'
    assert json.loads(lines[2]) == {"id": 3} and lines[3] == ""


# --- killed in the middle of writing -------------------------------------------------------------

WRITER = textwrap.dedent("""
    import hashlib, itertools, os, sys
    import numpy as np
    from motiondata.atomic import atomic_path, atomic_save_npy, atomic_write_json
    out = sys.argv[1]
    for i in itertools.count():
        k = i % 12
        payload = os.urandom(256 * 1024 * (1 + i % 8))
        with atomic_path(f"{out}/blob{k}.bin") as temp_path:
            with open(temp_path, "wb") as file:  # written in flushed chunks, like a renderer would
                file.write(hashlib.sha256(payload).digest())
                for start in range(0, len(payload), 65536):
                    file.write(payload[start:start + 65536])
                    file.flush()
        numbers = list(range(i % 5000, i % 5000 + 20000))
        atomic_write_json(f"{out}/data{k}.json", {"numbers": numbers, "sum": sum(numbers)})
        atomic_save_npy(f"{out}/pose{k}.npy", np.full((300, 22, 3), i, dtype=np.float32))
        if i == 12:
            print("ready", flush=True)
""")

def check_complete(path: Path):
    try:
        if path.suffix == ".bin":
            data = path.read_bytes()
            assert hashlib.sha256(data[32:]).digest() == data[:32]
        elif path.suffix == ".json":
            data = json.loads(path.read_text())
            assert sum(data["numbers"]) == data["sum"] and len(data["numbers"]) == 20000
        elif path.suffix == ".npy":
            array = np.load(path)
            assert array.shape == (300, 22, 3) and (array == array.flat[0]).all()
        else:
            raise AssertionError("unexpected file")
    except (AssertionError, ValueError, EOFError) as error:
        raise AssertionError(f"partial or corrupt file at a final path: {path.name} ({error!r})") from None


def test_sigkill_during_writes_leaves_only_complete_files(tmp_path):
    rng = random.Random(0)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    kills = 8
    for _ in range(kills):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], env=env,
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.2))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()

    final_files = [path for path in tmp_path.iterdir() if not path.name.startswith(".")]
    leftovers = [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]
    assert len(final_files) == 36
    for path in final_files:
        check_complete(path)
    # a killed writer may leave its one temp file: hidden, recognisable, never at a final path
    assert len(leftovers) <= kills and all(is_temp_name(name) for name in leftovers), leftovers
