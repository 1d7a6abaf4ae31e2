"""motiondata.render: PNG size and DPI, content, titles, framing, errors and the worker pool."""
import os
import signal
import struct
import subprocess
import sys
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from mpl_toolkits.mplot3d import proj3d

from motiondata.render import REST_POSE, RenderPool, build_figure, normalize_pose, render_pose_png, wrap_title

SIZE = 1200


def png_chunks(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = {}, 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0] == zlib.crc32(kind + body)
        chunks.setdefault(kind.decode(), body)
        pos += 12 + length
    return chunks


def rotated(joints, axis, degrees):
    """The pose rotated about the root by `degrees` around x, y or z."""
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    matrix = {"x": [[1, 0, 0], [0, c, -s], [0, s, c]],
              "y": [[c, 0, s], [0, 1, 0], [-s, 0, c]],
              "z": [[c, -s, 0], [s, c, 0], [0, 0, 1]]}[axis]
    return (joints - joints[0]) @ np.array(matrix).T


def arms_up():
    joints = REST_POSE.copy()
    joints[[18, 19, 20, 21]] = [[0.20, 1.66, 0.0], [-0.20, 1.66, 0.0], [0.22, 1.92, 0.03], [-0.22, 1.92, 0.03]]
    joints[:, 1] += 0.3  # on tiptoe: the wrists reach ~2.2 m after normalisation
    return joints


def test_png_size_and_dpi(tmp_path):
    path = tmp_path / "pose.tmp.png"
    render_pose_png(REST_POSE, "a person stands still", path)
    chunks = png_chunks(path)
    width, height = struct.unpack(">II", chunks["IHDR"][:8])
    assert (width, height) == (SIZE, SIZE)
    ppm_x, ppm_y, unit = struct.unpack(">IIB", chunks["pHYs"])
    assert (ppm_x, ppm_y, unit) == (5906, 5906, 1)  # 150 DPI in pixels per metre
    assert b"Software" not in path.read_bytes()  # no version string: outputs stay reproducible


def test_image_has_red_blue_black_and_grey(tmp_path):
    path = tmp_path / "pose.png"
    render_pose_png(REST_POSE, "a person stands still", path)
    rgb = (imread(path)[..., :3] * 255).round().astype(int)
    colours = {tuple(c) for c in rgb.reshape(-1, 3)}
    assert len(colours) > 20
    assert (255, 0, 0) in colours and (0, 0, 255) in colours and (0, 0, 0) in colours
    assert (rgb == 255).all(-1).mean() > 0.5  # mostly white background


def test_left_side_on_screen_right_and_up_is_up():
    joints = REST_POSE.copy()
    joints[20] = [0.25, 1.9, 0.0]  # left wrist raised
    screen = projected(joints)
    head, pelvis, left_wrist, right_wrist = screen[[15, 0, 20, 21]]
    assert head[1] > pelvis[1] and left_wrist[1] > head[1]  # +Y up
    assert left_wrist[0] > pelvis[0] > right_wrist[0]  # +X (the body's left) on screen right
    toes, ankles = screen[[10, 11]].mean(0), screen[[7, 8]].mean(0)
    assert toes[1] < ankles[1]  # the toes point at the viewer, who looks from above


def projected(joints, title="t"):
    """Pixel coordinates (x right, y up) of the drawn joints."""
    fig, ax = build_figure(joints, title)
    fig.canvas.draw()
    j = normalize_pose(joints)
    xs, ys, _ = proj3d.proj_transform(j[:, 0], j[:, 1], j[:, 2], ax.get_proj())
    return ax.transData.transform(np.c_[xs, ys])


@pytest.mark.parametrize("name, joints", [
    ("standing", REST_POSE),
    ("arms up", arms_up()),
    *[(f"lying, head toward {deg}", rotated(rotated(arms_up(), "x", 90), "y", deg)) for deg in range(0, 360, 45)],
])
def test_whole_body_in_frame_below_title(name, joints):
    title = " ".join(["a person lies down on the floor and stretches both arms over the head"] * 4)
    fig, _ = build_figure(joints, title)
    fig.canvas.draw()
    title_bottom = fig.texts[0].get_window_extent().y0
    screen = projected(joints, title)
    margin = 10
    assert screen.min() > margin and screen[:, 0].max() < SIZE - margin, name
    assert screen[:, 1].max() < title_bottom - margin, name


def test_wrap_title():
    words = [f"w{i}" for i in range(25)]
    assert wrap_title(" ".join(words)).split("\n") == [
        " ".join(words[:10]), " ".join(words[10:20]), " ".join(words[20:])]
    lines = wrap_title("x" * 500).split("\n")
    assert len(lines) == 4 and lines[-1].endswith("…")
    cjk = wrap_title("一个人举起左手" * 10).split("\n")
    assert len(cjk) == 3 and all(len(line) <= 32 for line in cjk)


@pytest.mark.parametrize("title", [
    "",
    " ".join(["word"] * 200),
    "supercalifragilistic" * 30,
    "一个人举起左手，然后慢慢地转身。" * 8,
    "emoji 😀 and accents é ñ ü, arabic مرحبا, $5 and $x^2$ and \\frac{ and a tab\there",
])
def test_odd_titles_render(tmp_path, title):
    path = tmp_path / "pose.png"
    render_pose_png(REST_POSE, title, path)
    assert path.stat().st_size > 10_000


def test_missing_glyph_warnings_are_silenced(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        render_pose_png(REST_POSE, "一个人举起左手", tmp_path / "pose.png")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_joints_raise(tmp_path, bad):
    joints = REST_POSE.copy()
    joints[5, 1] = bad
    with pytest.raises(ValueError, match="a broken pose"):
        render_pose_png(joints, "a broken pose", tmp_path / "pose.png")
    assert not (tmp_path / "pose.png").exists()
    with RenderPool(0) as pool:
        with pytest.raises(ValueError, match="a broken pose"):
            pool.submit(joints, "a broken pose", tmp_path / "pose.png").result()


def test_wrong_shape_raises(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        render_pose_png(np.zeros((21, 3)), "short", tmp_path / "pose.png")


def test_pool_outputs_are_byte_identical(tmp_path):
    poses = [REST_POSE, arms_up(), rotated(arms_up(), "z", 90)]
    titles = ["a person stands", "a person raises both arms", "一个人躺在地上"]
    outputs = {}
    for workers in (0, 2):
        folder = tmp_path / str(workers)
        folder.mkdir()
        with RenderPool(workers) as pool:
            futures = [pool.submit(p, t, folder / f"{i}.png") for i, (p, t) in enumerate(zip(poses, titles))]
        assert all(f.done() and f.exception() is None for f in futures)
        outputs[workers] = [(folder / f"{i}.png").read_bytes() for i in range(len(poses))]
    assert outputs[0] == outputs[2]


def test_pool_runs_a_function_and_reports_errors(tmp_path):
    with RenderPool(2) as pool:
        ok = pool.submit(render_pose_png, REST_POSE, "t", tmp_path / "a.png", show_joints=False)
        bad = pool.submit(REST_POSE * np.nan, "a broken pose", tmp_path / "b.png")
        assert ok.result(timeout=60) is None
        with pytest.raises(ValueError, match="a broken pose"):
            bad.result(timeout=60)
    assert (tmp_path / "a.png").exists() and not (tmp_path / "b.png").exists()


def test_pool_copies_joints_at_submit(tmp_path):
    joints = REST_POSE.copy()
    with RenderPool(0) as pool:
        pool.submit(joints, "t", tmp_path / "a.png").result()
    with RenderPool(1) as pool:
        future = pool.submit(joints, "t", tmp_path / "b.png")
        joints[:] = np.nan  # the caller reuses its buffer
        future.result(timeout=60)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_workers_ignore_sigint(tmp_path):
    with RenderPool(1) as pool:
        pool.submit(REST_POSE, "t", tmp_path / "a.png").result(timeout=60)
        for pid in pool._executor._processes:
            os.kill(pid, signal.SIGINT)  # what Ctrl-C sends to the whole foreground process group
        time.sleep(0.2)
        pool.submit(REST_POSE, "t", tmp_path / "b.png").result(timeout=60)  # BrokenProcessPool if a worker died


def test_module_does_not_import_torch():
    code = "import sys, motiondata.render; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
