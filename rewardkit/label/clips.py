"""Trajectory clips: two segments of control episodes shown side by side as short animations, for a person to say
which one does the task better (rewardkit.control's segment pairs; the labels train `rewardkit control fit`).

A clip is an SVG drawing of the segment's path in the plane of two observation dimensions (by default the first
two: the position of a point mass, the cos/sin of a pendulum's angle) with a dot moving along it at the segment's
pace (SVG's own animation: no JavaScript). Both clips of a pair share one scale, so their paths compare.
"""

from __future__ import annotations

import numpy as np

SIZE, PAD = 260, 14


def bounds(segments: list[dict], dims: tuple[int, int] = (0, 1)) -> tuple[float, float, float, float]:
    """(x min, x max, y min, y max) over the segments' observations in the two dimensions."""
    points = np.concatenate([np.asarray(s["observations"], dtype=float)[:, list(dims)] for s in segments])
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    return x0, max(x1, x0 + 1e-6), y0, max(y1, y0 + 1e-6)


def clip_svg(segment: dict, box: tuple[float, float, float, float], dims: tuple[int, int] = (0, 1),
             seconds_per_step: float = 0.08) -> str:
    """The SVG of one segment: its path, where it starts (hollow) and a dot moving along it, looping."""
    obs = np.asarray(segment["observations"], dtype=float)[:, list(dims)]
    x0, x1, y0, y1 = box
    xs = PAD + (obs[:, 0] - x0) / (x1 - x0) * (SIZE - 2 * PAD)
    ys = SIZE - PAD - (obs[:, 1] - y0) / (y1 - y0) * (SIZE - 2 * PAD)  # y grows upwards
    path = "M " + " L ".join(f"{x:.1f} {y:.1f}" for x, y in zip(xs, ys, strict=True))
    duration = max(len(obs) * seconds_per_step, 0.5)
    return (f'<svg class="clip" width="{SIZE}" height="{SIZE}" viewBox="0 0 {SIZE} {SIZE}" xmlns="http://www.w3.org/2000/svg">'
            f'<rect width="{SIZE}" height="{SIZE}" fill="#f6f6f6"/>'
            f'<path d="{path}" fill="none" stroke="#8aa" stroke-width="1.5"/>'
            f'<circle cx="{xs[0]:.1f}" cy="{ys[0]:.1f}" r="5" fill="none" stroke="#555"/>'
            f'<circle r="6" fill="#d33"><animateMotion dur="{duration:.2f}s" repeatCount="indefinite" path="{path}"/></circle>'
            f'</svg>')
