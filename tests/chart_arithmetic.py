"""The trend's and sparklines' arithmetic written out plainly, as the reference the
rendering shortcuts (rounding with floor(), look-up tables) are checked against."""

from __future__ import annotations

from casereport.render.charts import _x_positions
from casereport.render.filters import _SPARKS


def line_computed(values: list[float], top: float) -> str:
    """A trend line's path data: each value's height rounded as ``int()`` rounds."""
    scale = 100 / top if top > 0 else 0.0
    heights = [116 - int(v * scale + 0.5) for v in values]
    positions = _x_positions(len(values))
    return "M" + " L".join(f"{x} {y}" for x, y in zip(positions, heights, strict=True))


def spark_computed(values: list[float], low: float, high: float) -> str:
    """A text sparkline from ``low`` to ``high``: each level rounded as ``int()`` rounds."""
    if high == low:
        return _SPARKS[3] * len(values)
    scale = (len(_SPARKS) - 1) / (high - low)
    offset = 0.5 - low * scale
    return "".join(_SPARKS[int(v * scale + offset)] for v in values)
