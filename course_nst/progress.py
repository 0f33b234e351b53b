"""Progress bars that read the same live and in a saved notebook.

tqdm's notebook bar is an ipywidget: a saved notebook stores only its first state
("0%| | 0/200") as text, and on reopening it shows "Error displaying widget: model not
found". So the package draws a plain text bar everywhere. In a Jupyter kernel it writes to
stdout (stderr would be shown with the red background of a warning) and stays when it is
done (``leave=True``), so the saved output is the finished bar: ``100%|...| 200/200``.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["progress_bar", "in_jupyter_kernel"]


def in_jupyter_kernel() -> bool:
    """True when the code runs in a Jupyter (IPython) kernel, whose stdout is sent to a notebook."""
    return type(sys.stdout).__module__.startswith("ipykernel")


def progress_bar(iterable: Any = None, **kwargs: Any):
    """A text ``tqdm`` bar over ``iterable`` (or with ``total=``) that is kept when finished."""
    from tqdm import tqdm

    if in_jupyter_kernel():
        kwargs.setdefault("file", sys.stdout)
        kwargs.setdefault("mininterval", 0.5)
        kwargs.setdefault("ncols", 100)
    kwargs.setdefault("leave", True)
    return tqdm(iterable, **kwargs)
