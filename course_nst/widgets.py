"""ipywidgets front ends for the notebooks: thin, they only call the package's functions.

``ipywidgets`` is imported when a widget is built, not when this module is
imported, so the package works without it (e.g. on the command line).

In a notebook::

    from course_nst.widgets import style_transfer_explorer
    style_transfer_explorer(content, style, backbone=backbone, size=128)

shows sliders for alpha/beta and the number of steps, a choice of start, a Run
button and the generated image (at ``display_size`` pixels, never stretched to the
notebook's width), which is redrawn every few steps while the optimisation runs.
Before the first run it shows the start image. Nothing runs until the button is
pressed (or :meth:`StyleTransferExplorer.run` is called); :meth:`StyleTransferExplorer.show`
displays the last result as a static PNG and a rounded summary, which a saved
notebook keeps and shows without a running kernel.
"""

from __future__ import annotations

import io
import math
from typing import Any

from torch import Tensor

from .backbones import Backbone
from .errors import InputError
from .transfer import Result, style_transfer

__all__ = ["StyleTransferExplorer", "style_transfer_explorer", "png_bytes", "image_layout"]


def _widgets():
    try:
        import ipywidgets
    except ImportError as e:  # pragma: no cover - ipywidgets is a dev dependency
        raise InputError("the interactive widgets need ipywidgets: pip install ipywidgets") from e
    return ipywidgets


INITS = ("content", "content+noise", "noise")
HINT = (
    "<b>Try:</b> move α/β to the right for more of the photo, to the left for more of the painting; "
    "start from <i>noise</i> (the lecture's start) with 100 steps and α/β 10 times the default; "
    "more steps refine the details. "
    "The image is the run's own size (nearest-neighbour enlarged), so each block is one pixel of G."
)
PLAIN_TEXT = (
    "[style-transfer explorer: an interactive widget. To use it, trust the notebook "
    "(JupyterLab: the Trust Notebook command, Ctrl+Shift+C) and run its cells (Run > Run All Cells).]"
)


def _load(image: Any, size: int) -> Tensor:
    """A sample name, path or tensor -> ``[1,3,H,W]`` with its longer side ``size`` (as style_transfer does)."""
    from . import images, samples

    if isinstance(image, str) and samples.is_sample(image):
        return samples.load(image, max_size=size)
    return images.resize(images.load_image(image), size)


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
        pil = pil.resize((round(pil.size[0] * factor), round(pil.size[1] * factor)), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def display_shape(image: Tensor, display_size: int | None) -> tuple[int, int]:
    """(width, height) in pixels at which :func:`png_bytes` draws ``image``."""
    H, W = image.shape[-2:]
    if display_size is None or max(H, W) >= display_size:
        return W, H
    factor = display_size / max(H, W)
    return round(W * factor), round(H * factor)


def image_layout(width: int, height: int) -> dict[str, str]:
    """Layout traits that show an ``ipywidgets.Image`` at exactly ``width`` x ``height`` pixels.

    Without them the image fills the width of the notebook's column (a flex box stretches
    its children), so a small result is magnified into a mosaic.
    """
    return {
        "width": f"{width}px",
        "height": f"{height}px",
        "min_width": f"{width}px",
        "max_width": "none",
        "flex": "0 0 auto",
        "align_self": "flex-start",
        "object_fit": "contain",
    }


class StyleTransferExplorer:
    """Sliders for alpha/beta and steps, a start, a Run button, and the image as it is optimised.

    Attributes:
        widget: the ``ipywidgets.VBox`` that is displayed.
        ratio, steps: the sliders (``ratio`` is alpha/beta, on a log scale).
        start: the dropdown of the initial image (``init``: noise, content, content+noise).
        button, image, status, hint: the Run button, the ``ipywidgets.Image``, the status
            line and the hint of what to try.
        result: the :class:`course_nst.Result` of the last run (``None`` before the first).

    ``alpha`` stays at the backbone's default; ``beta = alpha / ratio``; ``ratio`` is the
    slider's first value, as a multiple of that default. The defaults (128 px, 60 steps from
    the content image) give a recognisable result with efficientnet_lite0 in seconds;
    a notebook can set others.
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
        init: str = "content",
        ratio: float = 1.0,
        update_every: int = 5,
        display_size: int = 320,
        seed: int = 0,
        hint: str | None = None,
    ):
        if not isinstance(backbone, Backbone):
            raise InputError(f"backbone must be a Backbone (load_backbone(...)), got {type(backbone).__name__}")
        if not isinstance(update_every, int) or update_every < 1:
            raise InputError(f"update_every must be a positive integer, got {update_every!r}")
        if init not in INITS:
            raise InputError(f"init must be one of {', '.join(INITS)}; got {init!r}")
        if not (isinstance(ratio, (int, float)) and ratio > 0):
            raise InputError(f"ratio must be a positive number (a multiple of the default alpha/beta), got {ratio!r}")
        if not isinstance(display_size, int) or display_size < size:
            raise InputError(f"display_size must be an integer of at least size ({size}), got {display_size!r}")
        w = _widgets()
        self.content, self.style, self.backbone = content, style, backbone
        self.size, self.seed = size, seed
        self.update_every, self.display_size = update_every, display_size
        self.result: Result | None = None

        start_image = self._start_image(init)
        default_ratio = backbone.alpha / backbone.beta_for((start_image.shape[-2], start_image.shape[-1]))
        centre = math.log10(default_ratio)
        self.ratio = w.FloatLogSlider(
            value=default_ratio * ratio,
            base=10,
            min=centre - 3,
            max=centre + 3,
            step=0.25,
            description="α/β",
            readout_format=".1e",
            continuous_update=False,
        )
        self.steps = w.IntSlider(
            value=steps, min=10, max=max_steps, step=10, description="steps", continuous_update=False
        )
        self.start = w.Dropdown(options=list(INITS), value=init, description="start")
        self.button = w.Button(description="Run", button_style="primary", icon="play")
        self.image = w.Image(
            format="png",
            value=png_bytes(start_image, display_size),
            layout=w.Layout(**image_layout(*display_shape(start_image, display_size))),
        )
        self.status = w.HTML(
            value=f"The image shows the start ({init}, {size} px). "
            f"α/β = {default_ratio:.1e} is {backbone.name}'s default at this size. Press Run."
        )
        self.hint = w.HTML(value=hint if hint is not None else HINT)
        self.start.observe(self._show_start, names="value")
        self.button.on_click(lambda _button: self.run())
        self.widget = w.VBox(
            [w.HBox([self.ratio, self.steps]), w.HBox([self.start, self.button]), self.status, self.image, self.hint]
        )

    def _start_image(self, init: str) -> Tensor:
        from .transfer import initial_image

        content = _load(self.content, self.size)
        return initial_image(init, content, (content.shape[-2], content.shape[-1]), self.seed)

    def _show_start(self, change: dict) -> None:
        self._show(self._start_image(change["new"]))
        self.status.value = f"The image shows the start ({change['new']}, {self.size} px). Press Run."

    def _show(self, image: Tensor) -> None:
        self.image.value = png_bytes(image, self.display_size)
        width, height = display_shape(image, self.display_size)
        self.image.layout.width, self.image.layout.height = f"{width}px", f"{height}px"
        self.image.layout.min_width = f"{width}px"

    # -- running -------------------------------------------------------------------
    def _callback(self, step: int, image: Tensor, record: dict[str, float]) -> None:
        total = self.steps.value
        if step % self.update_every == 0 or step == total:
            self._show(image)
            self.status.value = (
                f"step {step}/{total}: J = {record['J']:.4g}, J_content = {record['J_content']:.4g}, "
                f"J_style = {record['J_style']:.4g}"
            )

    def run(self) -> Result:
        """Run style transfer with the controls' values (what Run does); the image updates as it goes."""
        alpha = self.backbone.alpha
        beta = alpha / self.ratio.value
        self.button.disabled = True
        self.status.value = f"running: α = {alpha:.3g}, β = {beta:.3g}, from {self.start.value} ..."
        try:
            self.result = style_transfer(
                self.content,
                self.style,
                backbone=self.backbone,
                size=self.size,
                steps=int(self.steps.value),
                init=self.start.value,
                alpha=alpha,
                beta=beta,
                seed=self.seed,
                callback=self._callback,
                progress=False,
            )
        except Exception as e:
            self.status.value = f"<b>stopped</b>: {type(e).__name__}: {e}"
            raise
        finally:
            self.button.disabled = False
        self._show(self.result.image)
        self.status.value = f"done: {self.summary()}"
        return self.result

    def summary(self) -> str:
        """One line on the last run, rounded to 3 significant digits (``""`` before the first run)."""
        if self.result is None:
            return ""
        final = self.result.final
        return (
            f"α/β = {self.ratio.value:.1e}, {len(self.result.history)} steps from {self.result.settings['init']}, "
            f"{self.size} px: J = {final['J']:.3g}, J_content = {final['J_content']:.3g}, "
            f"J_style = {final['J_style']:.3g}"
        )

    def show(self) -> None:
        """Display the last result as a static PNG (at the widget's size) and print its summary.

        A saved notebook keeps this output and shows it without a kernel and without trust,
        unlike the live widget.
        """
        from IPython.display import Image, display

        if self.result is None:
            print("no run yet: press Run (or call .run()) first")
            return
        width, _ = display_shape(self.result.image, self.display_size)
        display(Image(data=png_bytes(self.result.image, self.display_size), width=width))
        print(self.summary())

    # -- display -------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = PLAIN_TEXT  # what a notebook shows where the live widget cannot be drawn
        return bundle


def style_transfer_explorer(content: Any, style: Any, *, backbone: Backbone, **kwargs) -> StyleTransferExplorer:
    """Build a :class:`StyleTransferExplorer` (display it by making it a cell's last value)."""
    return StyleTransferExplorer(content, style, backbone=backbone, **kwargs)
