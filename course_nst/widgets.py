"""ipywidgets front ends for the notebooks: thin, they only call the package's functions.

``ipywidgets`` is imported when a widget is built, not when this module is
imported, so the package works without it (e.g. on the command line).

In a notebook::

    from course_nst.widgets import style_transfer_explorer
    style_transfer_explorer(content, style, backbone=backbone, size=128)

shows sliders for alpha/beta and the number of steps, a Run button and the
generated image, which is redrawn every few steps while the optimisation runs.
Nothing runs until the button is pressed, so a notebook's stored outputs never
depend on the widget.
"""

from __future__ import annotations

import io
import math
from typing import Any

from torch import Tensor

from .backbones import Backbone
from .errors import InputError
from .transfer import Result, style_transfer

__all__ = ["StyleTransferExplorer", "style_transfer_explorer", "png_bytes"]


def _widgets():
    try:
        import ipywidgets
    except ImportError as e:  # pragma: no cover - ipywidgets is a dev dependency
        raise InputError("the interactive widgets need ipywidgets: pip install ipywidgets") from e
    return ipywidgets


def png_bytes(image: Tensor, display_size: int | None = None) -> bytes:
    """``[1,3,H,W]`` in [0,1] -> PNG file bytes (for an ``ipywidgets.Image``).

    ``display_size`` scales the longer side up with nearest-neighbour pixels, so that a
    small image is shown large and sharp.
    """
    from PIL import Image

    from .images import to_pil

    pil = to_pil(image.detach().cpu().clamp(0, 1))
    if display_size is not None and max(pil.size) < display_size:
        factor = display_size / max(pil.size)
        pil = pil.resize((round(pil.size[0] * factor), round(pil.size[1] * factor)), Image.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


class StyleTransferExplorer:
    """Sliders for alpha/beta and steps, a Run button, and the image as it is optimised.

    Attributes:
        widget: the ``ipywidgets.VBox`` that is displayed.
        ratio, steps: the sliders (``ratio`` is alpha/beta, on a log scale).
        button, image, status: the Run button, the ``ipywidgets.Image`` and the status line.
        result: the :class:`course_nst.Result` of the last run (``None`` before the first).

    ``alpha`` stays at the backbone's default; ``beta = alpha / ratio``.
    """

    def __init__(
        self,
        content: Any,
        style: Any,
        *,
        backbone: Backbone,
        size: int = 128,
        steps: int = 60,
        max_steps: int = 500,
        init: str = "noise",
        update_every: int = 5,
        display_size: int = 320,
        seed: int = 0,
    ):
        if not isinstance(backbone, Backbone):
            raise InputError(f"backbone must be a Backbone (load_backbone(...)), got {type(backbone).__name__}")
        if not isinstance(update_every, int) or update_every < 1:
            raise InputError(f"update_every must be a positive integer, got {update_every!r}")
        w = _widgets()
        self.content, self.style, self.backbone = content, style, backbone
        self.size, self.init, self.seed = size, init, seed
        self.update_every, self.display_size = update_every, display_size
        self.result: Result | None = None

        default_ratio = backbone.alpha / backbone.beta
        centre = math.log10(default_ratio)
        self.ratio = w.FloatLogSlider(
            value=default_ratio, base=10, min=centre - 3, max=centre + 3, step=0.25,
            description="α/β", readout_format=".1e", continuous_update=False,
        )
        self.steps = w.IntSlider(value=steps, min=10, max=max_steps, step=10, description="steps",
                                 continuous_update=False)
        self.button = w.Button(description="Run", button_style="primary", icon="play")
        self.image = w.Image(format="png", value=b"")
        self.status = w.HTML(value=f"α/β = {default_ratio:.1e} is {backbone.name}'s default. Press Run.")
        self.button.on_click(lambda _button: self.run())
        self.widget = w.VBox([w.HBox([self.ratio, self.steps, self.button]), self.status, self.image])

    # -- running -------------------------------------------------------------------
    def _callback(self, step: int, image: Tensor, record: dict[str, float]) -> None:
        total = self.steps.value
        if step % self.update_every == 0 or step == total:
            self.image.value = png_bytes(image, self.display_size)
            self.status.value = (
                f"step {step}/{total}: J = {record['J']:.4g}, J_content = {record['J_content']:.4g}, "
                f"J_style = {record['J_style']:.4g}"
            )

    def run(self) -> Result:
        """Run style transfer with the sliders' values; the image updates as it goes."""
        alpha = self.backbone.alpha
        beta = alpha / self.ratio.value
        self.button.disabled = True
        self.status.value = f"running: α = {alpha:.3g}, β = {beta:.3g} ..."
        try:
            self.result = style_transfer(
                self.content, self.style, backbone=self.backbone, size=self.size,
                steps=int(self.steps.value), init=self.init, alpha=alpha, beta=beta,
                seed=self.seed, callback=self._callback, progress=False,
            )
        except Exception as e:  # noqa: BLE001 - show it in the widget, keep the widget alive
            self.status.value = f"<b>stopped</b>: {type(e).__name__}: {e}"
            raise
        finally:
            self.button.disabled = False
        final = self.result.final
        self.image.value = png_bytes(self.result.image, self.display_size)
        self.status.value = (
            f"done ({len(self.result.history)} evaluations, best image shown): J = {final['J']:.4g}, "
            f"J_content = {final['J_content']:.4g}, J_style = {final['J_style']:.4g}"
        )
        return self.result

    # -- display -------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def style_transfer_explorer(content: Any, style: Any, *, backbone: Backbone, **kwargs) -> StyleTransferExplorer:
    """Build a :class:`StyleTransferExplorer` (display it by making it a cell's last value)."""
    return StyleTransferExplorer(content, style, backbone=backbone, **kwargs)
