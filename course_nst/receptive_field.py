"""Receptive fields: which patch of the input image one position of a layer sees.

A *unit* is one channel of a layer (one filter applied at every position); its
activation at one *position* ``(row, col)`` is computed from a ``k x k`` window of
positions of the layer before it, each of which is computed from a window of the layer before
that, and so on down to the pixels. Three numbers describe the result for every
position of a layer (the same along rows and columns for square kernels):

``size``
    the side, in input pixels, of the square patch one position sees;
``stride`` (the "jump")
    how many input pixels apart two neighbouring positions of the layer are;
``start``
    the centre of the receptive field of the first position (row 0 or column 0).

Convention used throughout the course: **pixel** ``i`` **has its centre at
coordinate** ``i`` (the pixel index), so the input image itself has
``size = 1, jump = 1, start = 0``. Unit ``(row, col)`` of a layer then sees the
input pixels centred on ``(start + row * stride, start + col * stride)``, from
``start + row * stride - (size - 1) / 2`` to ``start + row * stride + (size - 1) / 2``
inclusive (always whole pixel indices; negative ones, or ones past the image,
fall in the zero padding).

Each layer with kernel ``k``, stride ``s``, padding ``p`` (and dilation ``d``,
which acts like a kernel of ``d * (k - 1) + 1``) updates them by the standard
recurrence::

    size_out  = size_in  + (k - 1) * jump_in
    jump_out  = jump_in  * s
    start_out = start_in + ((k - 1) / 2 - p) * jump_in

:func:`receptive_field` applies it to the modules of a :class:`~course_nst.Backbone`
themselves (every ``Conv2d``, ``MaxPool2d`` and ``AvgPool2d``, in the order they
are registered), so it follows the network's real definition instead of a
hand-typed table. Pointwise modules (ReLU, BatchNorm, 1x1 convolutions) do not
change the receptive field, and neither do residual additions: the identity
branch sees a smaller patch, inside the one of the main branch.

For VGG19: conv1_1 sees 3 pixels, conv3_1 24, conv4_2 84 and conv5_1 156.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

from .errors import InputError

if TYPE_CHECKING:
    from .backbones import Backbone

__all__ = [
    "ReceptiveField",
    "receptive_field",
    "receptive_fields",
    "patch_box",
    "rf_recurrence",
    "module_geometry",
    "layer_geometry",
]

# Modules that move pixels around in ways the recurrence does not describe.
_UNSUPPORTED = (
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Upsample,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.Linear,
    nn.Flatten,
    nn.PixelShuffle,
    nn.PixelUnshuffle,
    nn.Fold,
    nn.Unfold,
)


def patch_box(size: int, stride: int, start: float, row: int, col: int) -> tuple[int, int, int, int]:
    """``(top, left, bottom, right)`` of the ``size x size`` patch that position ``(row, col)`` sees.

    The patch is centred on ``start + row * stride`` (and ``start + col * stride``),
    rounded to whole pixels; ``bottom`` and ``right`` are exclusive, as in
    ``image[..., top:bottom, left:right]``. The box may reach outside the image
    (into the padding).

    >>> patch_box(size=5, stride=2, start=0.0, row=1, col=0)
    (0, -2, 5, 3)
    """
    half = (size - 1) / 2
    top = math.floor(start + row * stride - half + 0.5)
    left = math.floor(start + col * stride - half + 0.5)
    return top, left, top + size, left + size


@dataclass(frozen=True)
class ReceptiveField:
    """Where the positions of one layer look in the input image.

    Attributes:
        size: side of the square patch one position sees, in input pixels.
        stride: distance in input pixels between neighbouring positions (the "jump").
        start: centre of the first position's patch, in input pixel indices
            (pixel ``i`` has its centre at ``i``).
    """

    size: int
    stride: int
    start: float

    @property
    def jump(self) -> int:
        """Another name for :attr:`stride`, as in the recurrence."""
        return self.stride

    def centre(self, row: int, col: int) -> tuple[float, float]:
        """Centre of position ``(row, col)``'s patch, in input pixel indices."""
        return (self.start + row * self.stride, self.start + col * self.stride)

    def box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """``(top, left, bottom, right)`` of position ``(row, col)``'s patch.

        ``bottom`` and ``right`` are exclusive, as in ``image[..., top:bottom, left:right]``;
        the box may reach outside the image (into the padding).
        """
        return patch_box(self.size, self.stride, self.start, row, col)

    def as_tuple(self) -> tuple[int, int, float]:
        """``(size, stride, start)``, the recurrence's triple."""
        return (self.size, self.stride, self.start)


def rf_recurrence(
    layers: Iterable[Sequence[int]], initial: tuple[int, int, float] = (1, 1, 0.0)
) -> list[tuple[int, int, float]]:
    """The receptive-field recurrence over a stack of layers.

    Args:
        layers: ``(kernel, stride, padding)`` or ``(kernel, stride, padding,
            dilation)`` for each layer, from the input upwards.
        initial: ``(size, jump, start)`` before the first layer; the input
            image's ``(1, 1, 0.0)`` unless you continue from a deeper layer.

    Returns:
        ``(size, jump, start)`` after each layer, starting from the input's
        ``size = 1, jump = 1, start = 0`` (pixel ``i`` has its centre at ``i``).

    >>> rf_recurrence([(3, 1, 1), (3, 1, 1), (2, 2, 0)])
    [(3, 1, 0.0), (5, 1, 0.0), (6, 2, 0.5)]
    """
    size, jump, start = initial
    out: list[tuple[int, int, float]] = []
    for i, layer in enumerate(layers):
        try:
            values = [int(v) for v in layer]
        except (TypeError, ValueError) as e:
            raise InputError(
                f"layer {i}: expected (kernel, stride, padding[, dilation]) integers, got {layer!r}"
            ) from e
        if len(values) not in (3, 4):
            raise InputError(f"layer {i}: expected (kernel, stride, padding[, dilation]), got {layer!r}")
        k, s, p = values[:3]
        d = values[3] if len(values) == 4 else 1
        if k < 1 or s < 1 or p < 0 or d < 1:
            raise InputError(f"layer {i}: kernel, stride and dilation must be >= 1 and padding >= 0, got {layer!r}")
        k = d * (k - 1) + 1  # a dilated kernel spans this many pixels
        size = size + (k - 1) * jump
        start = start + ((k - 1) / 2 - p) * jump
        jump = jump * s
        out.append((size, jump, start))
    return out


def _square(value: object, what: str, module: nn.Module) -> int:
    if isinstance(value, (tuple, list)):
        if len(set(value)) != 1:
            raise InputError(
                f"{type(module).__name__} has a non-square {what} {tuple(value)}; "
                "receptive_field only handles square kernels, strides and paddings"
            )
        value = value[0]
    if not isinstance(value, (int, float)):
        raise InputError(f"{type(module).__name__} has a {what} {value!r} that is not a number")
    return int(value)


def module_geometry(module: nn.Module) -> tuple[int, int, int, int] | None:
    """``(kernel, stride, padding, dilation)`` of one leaf module, or ``None`` if pointwise."""
    if isinstance(module, _UNSUPPORTED):
        raise InputError(
            f"receptive_field cannot follow a {type(module).__name__} layer; it handles "
            "Conv2d, MaxPool2d, AvgPool2d and pointwise layers"
        )
    if isinstance(module, nn.Conv2d):
        k = _square(module.kernel_size, "kernel", module)
        d = _square(module.dilation, "dilation", module)
        s = _square(module.stride, "stride", module)
        if isinstance(module.padding, str):
            p = 0 if module.padding == "valid" else (d * (k - 1)) // 2  # 'same'
        else:
            p = _square(module.padding, "padding", module)
        return (k, s, p, d)
    if isinstance(module, nn.MaxPool2d):
        k = _square(module.kernel_size, "kernel", module)
        s = _square(module.stride if module.stride is not None else module.kernel_size, "stride", module)
        return (k, s, _square(module.padding, "padding", module), _square(module.dilation, "dilation", module))
    if isinstance(module, nn.AvgPool2d):
        k = _square(module.kernel_size, "kernel", module)
        s = _square(module.stride if module.stride is not None else module.kernel_size, "stride", module)
        return (k, s, _square(module.padding, "padding", module), 1)
    return None


def layer_geometry(module: nn.Module) -> list[tuple[int, int, int, int]]:
    """The ``(kernel, stride, padding, dilation)`` of every spatial module inside ``module``.

    Children are visited recursively in registration order (the order in which
    Sequential and the MBConv blocks apply them); pointwise ones are skipped.
    """
    children = list(module.children())
    if not children:
        g = module_geometry(module)
        return [] if g is None else [g]
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):  # a subclass with children
        g = module_geometry(module)
        return [] if g is None else [g]
    out: list[tuple[int, int, int, int]] = []
    for child in children:
        out.extend(layer_geometry(child))
    return out


def _layer_modules(backbone: Backbone, layer: str) -> list[nn.Module]:
    modules = getattr(backbone, "receptive_field_modules", None)
    if modules is not None:
        return list(modules(layer))
    return [backbone.layers[layer]]


def receptive_fields(backbone: Backbone, upto: str | None = None) -> dict[str, ReceptiveField]:
    """Receptive field of every layer of a backbone, from input to output.

    Args:
        backbone: a :class:`~course_nst.Backbone` (anything with ``layer_names``
            and ``layers``).
        upto: stop after this layer (all layers when ``None``).

    Returns:
        ``{layer name: ReceptiveField}`` in the backbone's order.

    >>> from course_nst import load_backbone
    >>> vgg = load_backbone("vgg19", weights="random")
    >>> receptive_fields(vgg)["conv3_1"].size
    24
    """
    names = list(backbone.layer_names)
    if upto is not None:
        if not isinstance(upto, str) or upto not in names:
            raise InputError(
                f"unknown layer {upto!r} for {getattr(backbone, 'name', 'this backbone')}; "
                "valid layers are: " + ", ".join(names)
            )
        names = names[: names.index(upto) + 1]
    size, jump, start = 1, 1, 0.0
    table: dict[str, ReceptiveField] = {}
    for name in names:
        geometry = [g for m in _layer_modules(backbone, name) for g in layer_geometry(m)]
        if geometry:
            size, jump, start = rf_recurrence(geometry, initial=(size, jump, start))[-1]
        table[name] = ReceptiveField(int(size), int(jump), float(start))
    return table


def receptive_field(backbone: Backbone, layer: str) -> ReceptiveField:
    """Receptive field of one layer of a backbone, computed from its modules.

    Args:
        backbone: a :class:`~course_nst.Backbone` (anything with ``layer_names``
            and ``layers``).
        layer: the layer name (:func:`receptive_fields` gives every layer's).

    Returns:
        The layer's :class:`ReceptiveField` (``size``, ``stride``, ``start``).

    >>> from course_nst import load_backbone
    >>> vgg = load_backbone("vgg19", weights="random")
    >>> receptive_field(vgg, "conv4_2")
    ReceptiveField(size=84, stride=8, start=3.5)
    """
    if not isinstance(layer, str):
        raise InputError(f"layer must be a layer name, got {layer!r}; receptive_fields(backbone) gives every layer's")
    return receptive_fields(backbone, upto=layer)[layer]
