"""A contact map as a PNG: the point cloud from MARDM's camera (as the pose images), each point coloured by its
strongest contact over the six joints (0 = none, 1 = touching), the caption as title. Agg canvas only."""
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from motiondata.atomic import atomic_path
from motiondata.render import ELEV, AZIM, wrap_title


def render_contact_png(xyz, contact, title, path, dpi=100, size_px=600):
    """xyz (N,3) points, contact (N,6) in [0,1] -> PNG at `path` (written atomically)."""
    xyz, strength = np.asarray(xyz, dtype=np.float32), np.asarray(contact, dtype=np.float32).max(axis=-1)
    figure = Figure(figsize=(size_px / dpi, size_px / dpi), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(projection="3d")
    order = np.argsort(strength)  # strong contacts drawn last, on top
    points = axes.scatter(xyz[order, 0], xyz[order, 1], xyz[order, 2], c=strength[order], cmap="viridis",
                          vmin=0.0, vmax=1.0, s=2)
    figure.colorbar(points, ax=axes, shrink=0.6, label="contact")
    axes.view_init(elev=ELEV, azim=AZIM)
    axes.set_title(wrap_title(title), fontsize=9)
    axes.set_axis_off()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=dpi)
    return path
