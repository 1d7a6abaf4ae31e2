"""Static 3-D pose PNGs in MARDM's `plot_3d_motion` style, and a process pool that renders them.

Camera and scale: data stay Y up with no axis swapping and the camera is MARDM's
`view_init(elev=120, azim=-90)`: with matplotlib 3.11 +Y appears up, +X right and +Z toward the viewer, about
30 degrees above the body, so a body facing +Z shows its left side (+x) on screen right. MARDM's radius-4 box
leaves the body tiny, so every image uses one fixed cube instead: x and z in [-1.1, 1.1] m, y in [0, 2.2] m,
after the pose is shifted so that its lowest joint is at y = 0 and its root (pelvis) xz is at 0. All images
therefore share one scale: a standing body (1.7 m), a body with the arms up (2.2 m) or one lying 1.7 m long
stays in view. Nothing is clipped at the box: a body lying with its arms overhead (~1.2 m from the root) still
lies inside the image (tests/test_render.py checks the projected joints of such poses). The grey floor is the
box's 2.2 m square at y = 0 (MARDM sizes it to the motion's xz extent, which for one pose would be a sliver).
MARDM's `ax.dist = 7.5` no longer exists; `set_box_aspect(zoom=...)` and a slightly raised axes frame the
box under a title of up to four lines.

This module imports only numpy and matplotlib (Agg, no pyplot state), so worker processes start fast.
"""
import concurrent.futures
import multiprocessing
import pickle
import signal
import unicodedata
import warnings

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from mpl_toolkits.mplot3d import proj3d
from mpl_toolkits.mplot3d.art3d import Poly3DCollection

from motiondata.skeleton import CHAIN_COLORS, KINEMATIC_CHAIN, NUM_JOINTS

HALF_WIDTH = 1.1  # m, horizontal half-extent of the view box (x and z)
HEIGHT = 2.2  # m, vertical extent of the view box (y)
ELEV, AZIM = 120, -90  # MARDM's camera; elev > 90 flips matplotlib's up vector so that +Y is up
# Zoom and a raised axes fit the floor square and a 2.2 m body (with ~0.2 m to spare) under a 4-line title.
ZOOM = 1.25
AXES_BOTTOM = 0.04  # figure fraction
TITLE_FONTSIZE = 12
TITLE_WIDTH = 64  # wrapped title line width in half-width characters (CJK characters count 2)
TITLE_MAX_LINES = 4

# A standing rest pose (SMPL order, facing +z, left = +x) for tests, benchmarks and quick looks.
REST_POSE = np.array([
    [0.00, 0.95, 0.00], [0.09, 0.88, 0.00], [-0.09, 0.88, 0.00], [0.00, 1.05, -0.01],
    [0.10, 0.50, 0.00], [-0.10, 0.50, 0.00], [0.00, 1.18, 0.00], [0.10, 0.08, -0.03],
    [-0.10, 0.08, -0.03], [0.00, 1.24, 0.02], [0.11, 0.02, 0.10], [-0.11, 0.02, 0.10],
    [0.00, 1.45, 0.00], [0.07, 1.38, 0.00], [-0.07, 1.38, 0.00], [0.00, 1.60, 0.05],
    [0.17, 1.40, 0.00], [-0.17, 1.40, 0.00], [0.20, 1.14, 0.00], [-0.20, 1.14, 0.00],
    [0.22, 0.90, 0.03], [-0.22, 0.90, 0.03],
])


def wrap_title(title: str) -> str:
    """MARDM's line breaks after 10 and 20 words, then wrapped by width so long or CJK titles fit."""
    words = title.split()
    groups = [words[:10], words[10:20], words[20:]]
    lines = []
    for group in groups:
        if group:
            lines += _wrap_width(" ".join(group), TITLE_WIDTH)
    if len(lines) > TITLE_MAX_LINES:
        lines = lines[:TITLE_MAX_LINES]
        lines[-1] = lines[-1][: max(len(lines[-1]) - 1, 0)] + "…"
    return "\n".join(lines)


def _char_width(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _wrap_width(text: str, width: int) -> list[str]:
    """Greedy wrap by display width, breaking words (or space-free CJK runs) that are too long."""
    lines, line, line_w = [], "", 0
    for word in text.split(" "):
        word_w = sum(_char_width(c) for c in word)
        if line and line_w + 1 + word_w <= width:
            line, line_w = line + " " + word, line_w + 1 + word_w
            continue
        if line:
            lines.append(line)
        line, line_w = "", 0
        for ch in word:
            if line_w + _char_width(ch) > width:
                lines.append(line)
                line, line_w = "", 0
            line, line_w = line + ch, line_w + _char_width(ch)
    if line:
        lines.append(line)
    return lines


def normalize_pose(joints: np.ndarray) -> np.ndarray:
    """Shift the lowest joint to y = 0 and the root xz to 0."""
    return joints - np.array([joints[0, 0], joints[:, 1].min(), joints[0, 2]])


def build_figure(joints: np.ndarray, title: str, dpi: int = 150, size_px: int = 1200, show_joints: bool = True):
    """The figure and its 3-D axes for one pose (22, 3); see the module docstring for camera and limits."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.shape != (NUM_JOINTS, 3):
        raise ValueError(f"expected joints of shape ({NUM_JOINTS}, 3), got {joints.shape} for title {title!r}")
    if not np.isfinite(joints).all():
        raise ValueError(f"non-finite joint positions for title {title!r}")
    joints = normalize_pose(joints)

    fig = Figure(figsize=(size_px / dpi, size_px / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, AXES_BOTTOM, 1, 1), projection="3d")
    ax.set_xlim(-HALF_WIDTH, HALF_WIDTH)
    ax.set_ylim(0, HEIGHT)
    ax.set_zlim(-HALF_WIDTH, HALF_WIDTH)
    ax.set_box_aspect((2 * HALF_WIDTH, HEIGHT, 2 * HALF_WIDTH), zoom=ZOOM)
    ax.view_init(elev=ELEV, azim=AZIM)
    ax.set_axis_off()
    # Draw in zorder: floor, bones far to near, dots. The camera is above the floor and the body above y = 0, so
    # nothing may hide behind the floor, but matplotlib's own depth sort would tint the lower legs through it.
    ax.computed_zorder = False

    f = HALF_WIDTH
    floor = [[(-f, 0, -f), (f, 0, -f), (f, 0, f), (-f, 0, f)]]
    ax.add_collection3d(Poly3DCollection(floor, facecolor=(0.5, 0.5, 0.5, 0.5), edgecolor="none", zorder=0))
    depth = proj3d.proj_transform(joints[:, 0], joints[:, 1], joints[:, 2], ax.get_proj())[2]  # larger: farther
    far_to_near = sorted(range(len(KINEMATIC_CHAIN)), key=lambda i: -depth[KINEMATIC_CHAIN[i]].mean())
    for rank, i in enumerate(far_to_near):
        chain = KINEMATIC_CHAIN[i]
        ax.plot(joints[chain, 0], joints[chain, 1], joints[chain, 2], color=CHAIN_COLORS[i], linewidth=4.0,
                zorder=1 + rank / 10)
    if show_joints:
        ax.scatter(joints[:, 0], joints[:, 1], joints[:, 2], color="black", s=6, depthshade=False, zorder=2)

    fig.suptitle(wrap_title(title), fontsize=TITLE_FONTSIZE, y=0.98, va="top", parse_math=False)
    return fig, ax


def render_pose_png(joints: np.ndarray, title: str, path, dpi: int = 150, size_px: int = 1200,
                    show_joints: bool = True) -> None:
    """Write one pose (22, 3), Y up, metres, as a size_px x size_px PNG at dpi to `path` (written as given).

    Raises ValueError, naming the title, for non-finite joints or a wrong shape.
    """
    fig, _ = build_figure(joints, title, dpi=dpi, size_px=size_px, show_joints=show_joints)
    with warnings.catch_warnings():
        # a font without a glyph for a title character draws a box and warns; the render must go on
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from font", category=UserWarning)
        # no bbox_inches="tight": it would change the pixel size; no Software tag: outputs stay byte-reproducible
        fig.savefig(path, format="png", dpi=dpi, metadata={"Software": None})


def _run_pickled(payload: bytes):
    fn, *args, kwargs = pickle.loads(payload)
    return fn(*args, **kwargs)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class RenderPool:
    """Renders PNGs in `num_workers` spawned processes; num_workers=0 renders synchronously in the caller.

    Spawned children re-import the caller's `__main__` module (a multiprocessing rule), so a script that creates
    a pool should keep heavy work under `if __name__ == "__main__":`; this module itself needs no torch.
    """

    def __init__(self, num_workers: int):
        self.num_workers = num_workers
        self._executor = None
        if num_workers > 0:
            self._executor = concurrent.futures.ProcessPoolExecutor(
                max_workers=num_workers,
                mp_context=multiprocessing.get_context("spawn"),  # fork is unsafe after torch/CUDA start
                initializer=_ignore_sigint,  # Ctrl-C goes to the main process only
            )

    def submit(self, *args, **kwargs) -> concurrent.futures.Future:
        """submit(joints, title, path) renders one PNG; submit(fn, *args, **kwargs) runs a picklable
        module-level fn in a worker instead (e.g. one that renders and writes more files). Errors come back
        through the future."""
        if not callable(args[0]):
            args = (render_pose_png,) + args
        # pickled now, not later by the pool's feeder thread, so the caller may reuse its buffers at once and
        # unpicklable arguments fail here
        payload = pickle.dumps(args + (kwargs,), protocol=pickle.HIGHEST_PROTOCOL)
        if self._executor is not None:
            return self._executor.submit(_run_pickled, payload)
        future = concurrent.futures.Future()
        try:
            future.set_result(_run_pickled(payload))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def close(self, cancel: bool = False) -> None:
        """Wait for all submitted renders (or cancel the queued ones) and stop the workers."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=cancel)
            self._executor = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(cancel=exc_type is not None)
