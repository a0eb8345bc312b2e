"""Figures of a report: one way to create them so that they render once, inline."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["pyplot_axes"]


def pyplot_axes() -> tuple[Figure, Axes]:
    """A closed pyplot figure: closed so it shows once, pyplot so notebooks render it inline."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    plt.close(fig)
    return fig, ax
