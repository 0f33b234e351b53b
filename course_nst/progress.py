"""Progress bars that read the same live and in a saved notebook.

tqdm's notebook bar is an ipywidget: a saved notebook stores only its first state
("0%| | 0/200") as text, and on reopening it shows "Error displaying widget: model not
found". So the package draws tqdm's plain text bar everywhere and keeps it when it is done
(``leave=True``). In a Jupyter kernel the bar is one plain-text display output that each
update replaces (``display_id``), so the saved notebook holds its last state, e.g.
``style transfer: 100%|##########| 200/200 [00:41<00:00, J=8.6e+05]``: no widget, nothing
to trust, and no red stderr background.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["progress_bar", "in_jupyter_kernel", "DisplayLine"]


def in_jupyter_kernel() -> bool:
    """True when the code runs in a Jupyter (IPython) kernel, whose stdout is sent to a notebook."""
    return type(sys.stdout).__module__.startswith("ipykernel")


class DisplayLine:
    """A file for tqdm that shows the latest line as one updated ``text/plain`` display output."""

    def __init__(self) -> None:
        self.handle: Any = None
        self.last = ""

    def write(self, text: str) -> int:
        line = text.replace("\n", "").split("\r")[-1].rstrip()
        if line and line != self.last:
            from IPython.display import display

            self.last = line
            if self.handle is None:
                self.handle = display({"text/plain": line}, raw=True, display_id=True)
            else:
                self.handle.update({"text/plain": line}, raw=True)
        return len(text)

    def flush(self) -> None:
        pass


def progress_bar(iterable: Any = None, **kwargs: Any):
    """A text ``tqdm`` bar over ``iterable`` (or with ``total=``) that is kept when finished."""
    from tqdm import tqdm

    if in_jupyter_kernel():
        kwargs.setdefault("file", DisplayLine())
        kwargs.setdefault("mininterval", 0.5)
        kwargs.setdefault("ncols", 100)
        kwargs.setdefault("ascii", False)
    kwargs.setdefault("leave", True)
    return tqdm(iterable, **kwargs)
