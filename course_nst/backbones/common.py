"""What every backbone module shares: its default cost settings, its input normalisation,
and reading a weights file safely."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from ..errors import InputError

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "BackboneDefaults", "InputNormalization", "read_state_dict"]

#: The per-channel mean and standard deviation of ImageNet's RGB pixels in [0, 1], with which
#: torchvision's networks and efficientnet_lite0 were trained.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BackboneDefaults:
    """The cost settings :func:`course_nst.style_transfer` uses unless the caller overrides them."""

    content_layer: str
    style_layers: Mapping[str, float]
    alpha: float
    beta: float
    tv_weight: float
    steps: int
    notes: str = ""
    #: the longer side, in pixels, of the images the weights were chosen at: ``beta`` is the
    #: style weight at that size, see :meth:`beta_for`.
    size: int = 256

    def beta_for(self, shape: tuple[int, int]) -> float:
        """The default beta for an image of ``shape`` = (H, W): ``beta * (max(H, W) / size)**2``.

        J_content and the total variation are sums over positions, so they grow with the
        number of pixels; J_style is normalised by it (1/(2 n_H n_W n_C)^2) and does not. With
        one fixed beta a larger image would come out as more photo and a smaller one as more
        texture (and noisier: the smoothing weighs less). Growing beta with the pixels keeps the
        balance alpha : beta : tv_weight, and so the look, the same at every size: twice the
        size, four times beta.
        """
        return self.beta * (max(shape) / self.size) ** 2


@dataclass(frozen=True)
class InputNormalization:
    """How a network wants its input: ``(x - mean) / std`` on RGB images in [0, 1], then the
    channels reversed to BGR when ``bgr`` (Caffe's order).

    Caffe's preprocessing (BGR, pixel values 0-255, minus the mean pixel) is
    ``mean = mean_pixel / 255`` (in RGB order), ``std = 1/255`` and ``bgr=True``.
    """

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    bgr: bool = False
    description: str = field(default="", compare=False)


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """A ``torch.save``'d dict of tensors, read with ``weights_only=True`` (no code runs)."""
    if not path.exists():
        raise InputError(f"weights file not found: {path}")
    if path.is_dir():
        raise InputError(f"weights path is a directory, not a file: {path}")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any failure here means a bad file
        raise InputError(f"could not read weights file {path}: {type(e).__name__}: {e}".splitlines()[0]) from e
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise InputError(f"weights file {path} does not hold a state dict")
    return sd
