"""The image patches that activate a unit most (Zeiler & Fergus style).

A unit (one channel of a layer) is a small detector that slides over the image:
its activation map has one value per position, and each position sees only
the patch of the image inside its receptive field
(:mod:`course_nst.receptive_field`). To see what a unit has learned, run many
images through the network and show the patches where it fires most.

:func:`top_patches` does that in one streaming pass over any iterable of images
(a folder, a list of tensors, a generator): for every unit it keeps only the
``k`` best ``(activation, image, position)`` so far, never all activations, so
memory does not grow with the number of images. As in Zeiler & Fergus (2014), a
unit contributes at most one patch per image (its strongest position there), so
near-duplicate neighbouring positions do not fill the grid.

A patch is centred on the receptive field of the unit's position and has its full size. Where
it reaches outside the image it is padded with the colour that the network's
zero padding stands for: a zero *after* normalisation is the ImageNet mean
colour before it (``backbone.mean``). The patch is never shifted back inside
the image, which would show the unit something it did not see.

Ties are broken deterministically: the earlier image wins, and inside one
image the first position in row-major order.

:func:`course_nst.plotting.plot_patch_grid` and
:func:`course_nst.plotting.plot_unit_patches` turn the result into figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from .backbones.common import IMAGENET_MEAN
from .errors import InputError
from .receptive_field import ReceptiveField, patch_box, receptive_field

if TYPE_CHECKING:
    from .backbones import Backbone

#: What :func:`top_patches` streams: a folder, a tensor ``[N, 3, H, W]``, or an iterable of
#: images (tensors, paths, PIL images, sample names).
Images = str | Path | Tensor | Iterable[Any]

__all__ = [
    "IMAGENET_MEAN",
    "TopPatches",
    "top_patches",
    "top_patches_many",
    "crop_patch",
    "find_top_patch",
    "position_mask",
    "driving_box",
    "crop_box",
    "photo_set",
    "photo_set_order",
    "image_set",
    "image_set_sources",
    "iter_image_folder",
    "IMAGE_SUFFIXES",
]


#: File suffixes that :func:`iter_image_folder` reads.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


# ======================================================================================
# One patch
# ======================================================================================
def crop_patch(
    image: Tensor,
    size: int,
    stride: int,
    start: float,
    row: int,
    col: int,
    fill: Sequence[float] = IMAGENET_MEAN,
) -> Tensor:
    """The ``size x size`` patch of ``image`` that position ``(row, col)`` of a layer sees.

    Args:
        image: ``[1, 3, H, W]`` (or ``[3, H, W]``) in [0, 1].
        size, stride, start: the layer's receptive field (see
            :class:`~course_nst.receptive_field.ReceptiveField`).
        row, col: the position in the activation map.
        fill: the colour of the parts of the patch outside the image.

    Returns:
        ``[1, 3, size, size]``, centred on the position's receptive field.
    """
    if image.dim() == 3:
        image = image[None]
    if image.dim() != 4 or image.shape[1] != 3:
        raise InputError(f"expected an image [1,3,H,W], got shape {list(image.shape)}")
    size, stride = int(size), int(stride)
    if size < 1 or stride < 1:
        raise InputError(f"size and stride must be >= 1, got size={size}, stride={stride}")
    H, W = image.shape[-2:]
    top, left, bottom, right = patch_box(size, stride, start, row, col)
    out = torch.empty(1, 3, size, size, dtype=image.dtype, device=image.device)
    out[:] = torch.as_tensor(fill, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    t0, l0 = max(top, 0), max(left, 0)
    t1, l1 = min(bottom, H), min(right, W)
    if t1 > t0 and l1 > l0:
        out[:, :, t0 - top : t1 - top, l0 - left : l1 - left] = image[:1, :, t0:t1, l0:l1]
    return out


def position_mask(rf: ReceptiveField, n_H: int, n_W: int, H: int, W: int, margin: int) -> Tensor:
    """``[n_H, n_W]`` True where a position's receptive-field centre lies ``margin`` px or more inside the image.

    The margin rule of this module: a position whose receptive field is centred
    near the border sees mostly padding (and often fires on the sharp edge
    between the image and its padding), so it is not a candidate.

    >>> from course_nst.receptive_field import ReceptiveField
    >>> position_mask(ReceptiveField(size=5, stride=2, start=0.0), 1, 4, 8, 8, margin=2).tolist()
    [[False, False, False, False]]
    >>> position_mask(ReceptiveField(size=5, stride=2, start=0.0), 4, 4, 8, 8, margin=2)[1].tolist()
    [False, True, True, False]
    """
    cy = rf.start + rf.stride * torch.arange(n_H)
    cx = rf.start + rf.stride * torch.arange(n_W)
    ok_y = (cy >= margin) & (cy <= H - 1 - margin)
    ok_x = (cx >= margin) & (cx <= W - 1 - margin)
    return ok_y[:, None] & ok_x[None, :]


def find_top_patch(
    activation_map: Tensor,
    image: Tensor,
    size: int,
    stride: int,
    start: float,
    fill: Sequence[float] = IMAGENET_MEAN,
    *,
    margin: int = 0,
) -> tuple[float, tuple[int, int], Tensor]:
    """The strongest position of one unit's activation map and the patch it sees.

    Args:
        activation_map: ``[n_H, n_W]``, one unit's activations for ``image``.
        image: ``[1, 3, H, W]`` in [0, 1], the image that produced it.
        size, stride, start: the layer's receptive field.
        fill: colour of the padding (the ImageNet mean by default).
        margin: only positions whose receptive-field centre is at least this
            many pixels inside the image are candidates (:func:`position_mask`).

    Returns:
        ``(value, (row, col), patch)``: the maximum, its position (the first
        one in row-major order if it is tied) and the ``[1, 3, size, size]`` patch
        centred on that position's receptive field, padded with ``fill`` where it
        leaves the image.
    """
    a = torch.as_tensor(activation_map)
    if a.dim() != 2:
        raise InputError(f"activation_map must be 2-D [n_H, n_W], got shape {list(a.shape)}")
    if margin:
        H, W = image.shape[-2:]
        rf = ReceptiveField(int(size), int(stride), float(start))
        ok = position_mask(rf, int(a.shape[0]), int(a.shape[1]), int(H), int(W), margin)
        if not bool(ok.any()):
            raise InputError(f"no position of the {H}x{W} image is {margin} px inside it; use a smaller margin")
        a = a.float().masked_fill(~ok.to(a.device), -math.inf)
    flat = int(torch.argmax(a.reshape(-1)))
    row, col = divmod(flat, a.shape[1])
    value = float(a[row, col])
    return value, (row, col), crop_patch(image, size, stride, start, row, col, fill)


# ======================================================================================
# The part of the receptive field that drives a unit
# ======================================================================================
def driving_box(
    backbone: Backbone,
    image: Tensor,
    layer: str,
    unit: int,
    row: int,
    col: int,
    mass: float = 0.9,
) -> tuple[int, int, int]:
    """The square of the receptive field that really drives one unit at one position.

    A deep position's receptive field is large, but its pixels do not count
    equally: the gradient of the activation with respect to the input pixels is
    strong near the centre and fades towards the edge. This returns the smallest
    square, centred on the gradient's centre of mass (``|gradient|`` summed over
    the colour channels), that holds the fraction ``mass`` of it.

    The gradient is computed exactly on a window of the image around the
    receptive field (offset by a multiple of the layer's stride, so the
    position's activation is the same as in the whole image), not on the whole
    image: one forward and backward pass on about ``(size + stride)^2`` pixels.

    Args:
        backbone, image: the network and the ``[1, 3, H, W]`` image in [0, 1].
        layer, unit: the layer name and the unit (channel) index.
        row, col: the position in the unit's activation map.
        mass: the share of the gradient the square must hold, in (0, 1].

    Returns:
        ``(top, left, side)`` in image pixels (the square may reach outside the
        image, like the receptive field; crop it with :func:`crop_box`).
    """
    if not 0 < mass <= 1:
        raise InputError(f"mass must be a fraction in (0, 1], got {mass!r}")
    rf = receptive_field(backbone, layer)
    grad, (y0, x0) = _input_gradient(backbone, image, layer, unit, row, col, rf)
    top, left, bottom, right = rf.box(row, col)
    weight = grad.abs().sum(dim=0).double()  # [h, w] over the window
    total = float(weight.sum())
    if total == 0.0:  # a dead position: fall back to the whole receptive field
        return top, left, rf.size
    ys = torch.arange(weight.shape[0], dtype=torch.float64) + y0
    xs = torch.arange(weight.shape[1], dtype=torch.float64) + x0
    cy = float((weight.sum(dim=1) * ys).sum()) / total
    cx = float((weight.sum(dim=0) * xs).sum()) / total
    # integral image: the mass of any square in O(1)
    cum = torch.zeros(weight.shape[0] + 1, weight.shape[1] + 1, dtype=torch.float64)
    cum[1:, 1:] = weight.cumsum(0).cumsum(1)

    def held(t: int, left_: int, side: int) -> float:
        t0 = min(max(t - y0, 0), weight.shape[0])
        t1 = min(max(t + side - y0, 0), weight.shape[0])
        l0 = min(max(left_ - x0, 0), weight.shape[1])
        l1 = min(max(left_ + side - x0, 0), weight.shape[1])
        return float(cum[t1, l1] - cum[t0, l1] - cum[t1, l0] + cum[t0, l0])

    for side in range(1, rf.size + 1):
        t = math.floor(cy - (side - 1) / 2 + 0.5)
        left_ = math.floor(cx - (side - 1) / 2 + 0.5)
        if held(t, left_, side) >= mass * total - 1e-9 * total:
            return t, left_, side
    return top, left, rf.size


def _input_gradient(
    backbone: Backbone, image: Tensor, layer: str, unit: int, row: int, col: int, rf: ReceptiveField
) -> tuple[Tensor, tuple[int, int]]:
    """``d activation / d pixels`` ``[3, h, w]`` on a window of ``image``, and the window's top-left pixel."""
    if image.dim() != 4 or image.shape[:2] != (1, 3):
        raise InputError(f"expected an image [1,3,H,W], got shape {list(image.shape)}")
    H, W = (int(v) for v in image.shape[-2:])
    J = rf.stride
    top, left, bottom, right = rf.box(row, col)
    # The window starts on a multiple of the stride (so the position stays on the layer's grid), at the image's
    # border at the latest, and ends a stride past the receptive field or at the border: every activation the
    # position depends on is computed from the same pixels, with the same zero padding, as in the whole image.
    y0, x0 = max(0, (top // J) * J), max(0, (left // J) * J)
    y1, x1 = min(H, bottom + J), min(W, right + J)
    window = image[:, :, y0:y1, x0:x1].detach().to(backbone.device).clone().requires_grad_(True)
    with torch.enable_grad():
        a = backbone.features(window, [layer])[layer]
        r, c = row - y0 // J, col - x0 // J
        if not (0 <= unit < a.shape[1] and 0 <= r < a.shape[2] and 0 <= c < a.shape[3]):
            raise InputError(f"position ({row}, {col}) of unit {unit} is outside {layer}'s activation map")
        a[0, unit, r, c].backward()
    assert window.grad is not None
    return window.grad[0].detach().cpu(), (y0, x0)


def crop_box(image: Tensor, top: int, left: int, side: int, fill: Sequence[float] = IMAGENET_MEAN) -> Tensor:
    """The ``side x side`` square of ``image`` at ``(top, left)``, ``fill`` where it leaves the image."""
    return crop_patch(image, side, 1, (side - 1) / 2, top, left, fill)


# ======================================================================================
# Image sources
# ======================================================================================
def iter_image_folder(folder: str | Path, max_size: int | None = None) -> Iterator[Tensor]:
    """Every image file under ``folder`` (recursively, sorted by path) as ``[1,3,H,W]``."""
    from .images import load_image

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InputError(f"not a folder: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) found under {folder}")
    for p in files:
        yield load_image(p, max_size=max_size)


def _iter_images(images: Images, max_size: int | None) -> Iterator[Tensor]:
    from .images import load_image, resize

    if isinstance(images, (str, Path)):
        p = Path(images).expanduser()
        if p.is_dir():
            yield from iter_image_folder(p, max_size)
            return
        images = [images]
    elif isinstance(images, Tensor):
        if images.dim() == 4:
            images = list(images.split(1))
        else:
            images = [images]
    try:
        iterator = iter(images)
    except TypeError as e:
        raise InputError(
            f"images must be a folder, a tensor or an iterable of images, got {type(images).__name__}"
        ) from e
    for item in iterator:
        if isinstance(item, str):
            from . import samples

            if samples.is_sample(item):
                yield samples.load(item, max_size=max_size)
                continue
        if (
            isinstance(item, Tensor)
            and item.dim() == 4
            and item.shape[0] == 1
            and item.shape[1] == 3
            and item.dtype == torch.float32
        ):
            x = item.detach()
            if float(x.min()) < 0 or float(x.max()) > 1:
                raise InputError("image tensors must hold values in [0, 1]")
            if max_size is not None and max(x.shape[-2:]) > max_size:
                x = resize(x, max_size)
            yield x
        else:
            yield load_image(item, max_size=max_size)


def _batches(images: Iterator[Tensor], batch_size: int) -> Iterator[list[Tensor]]:
    """Consecutive images of the same size, at most ``batch_size`` at a time."""
    batch: list[Tensor] = []
    for x in images:
        if batch and (len(batch) == batch_size or x.shape != batch[0].shape):
            yield batch
            batch = []
        batch.append(x)
    if batch:
        yield batch


def photo_set(n: int | None = None, size: int = 224) -> list[Tensor]:
    """Real photographs, each one once: the photo set of :func:`course_nst.samples.photo_set_names`.

    The 20 ImageNet photos come first, then scikit-image's and matplotlib's.
    Each photo is scaled down to ``size`` pixels on its longer side (all of
    them are larger than 400 px), neither cropped nor augmented, so the images
    have a few different shapes.

    Args:
        n: how many photos (default: all 33).
        size: the longer side in pixels.

    Returns:
        a list of tensors ``[1, 3, h, w]`` in [0, 1], ``max(h, w) == size``.
    """
    from .images import load_image
    from .samples import photo_path

    names = photo_set_order()
    if n is None:
        n = len(names)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= len(names):
        raise InputError(f"n must be a number of photos from 1 to {len(names)}, got {n!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 16:
        raise InputError(f"size must be at least 16 pixels, got {size!r}")
    return [load_image(photo_path(name), max_size=size) for name in names[:n]]


def photo_set_order() -> list[str]:
    """The names of :func:`photo_set`'s photos, in its order (the ImageNet photos first)."""
    from .samples import photo_set_names

    names = photo_set_names()
    return [x for x in names if x.startswith("imagenet_")] + [x for x in names if not x.startswith("imagenet_")]


def image_set(
    n: int = 48,
    size: int = 224,
    seed: int = 0,
    names: Sequence[str] | None = None,
) -> list[Tensor]:
    """An offline image set: scikit-image's photos and textures, augmented.

    Each image is a random square crop (random scale between 1x and 2x the
    crop's size, random horizontal flip) of one of the colour photos and
    textures bundled with scikit-image, cycling through the sources so each
    appears about equally often. Deterministic for a given ``seed``.

    Args:
        n: how many images.
        size: their side in pixels.
        seed: the random seed of the crops.
        names: which sources (see :func:`image_set_sources`); all of them by default.

    Returns:
        a list of ``n`` tensors ``[1, 3, size, size]`` in [0, 1].
    """
    from .images import resize

    if not isinstance(n, int) or n < 1:
        raise InputError(f"n must be a positive number of images, got {n!r}")
    if not isinstance(size, int) or size < 16:
        raise InputError(f"size must be at least 16 pixels, got {size!r}")
    sources = _load_sources(names)
    keys = list(sources)
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        src = sources[keys[i % len(keys)]]
        H, W = src.shape[-2:]
        # the crop covers between 1/2 and all of the source's shorter side
        scale = 0.5 + 0.5 * float(torch.rand((), generator=g))
        side = max(16, int(round(min(H, W) * scale)))
        top = int(torch.randint(0, H - side + 1, (), generator=g))
        left = int(torch.randint(0, W - side + 1, (), generator=g))
        crop = src[:, :, top : top + side, left : left + side]
        if bool(torch.rand((), generator=g) < 0.5):
            crop = crop.flip(-1)
        out.append(resize(crop, (size, size)))
    return out


def image_set_sources() -> list[str]:
    """Names of the scikit-image pictures :func:`image_set` draws from (:func:`course_nst.samples.photo_set_names`)."""
    from .samples import photo_set_names

    return photo_set_names()


def _load_sources(names: Sequence[str] | None) -> dict[str, Tensor]:
    from .images import load_image
    from .samples import photo_path, photo_set_names

    known = photo_set_names()
    names = known if names is None else list(names)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(f"unknown image source {unknown[0]!r}; choose from: " + ", ".join(known))
    # 512 px on the longer side is plenty for crops of 100-300 px
    return {n: load_image(photo_path(n), max_size=512) for n in names}


# ======================================================================================
# Streaming top-k
# ======================================================================================
@dataclass
class TopPatches:
    """The ``k`` strongest (activation, image, position) of some units of one layer.

    Attributes:
        layer: the layer name.
        units: the channel indices kept, in order; row ``i`` of the tensors
            below belongs to unit ``units[i]``.
        values: ``[U, k]`` activations, best first (``-inf`` where fewer than
            ``k`` images were seen).
        image_ids: ``[U, k]`` index of the image in the order it was streamed
            (``-1`` where empty).
        rows, cols: ``[U, k]`` position in the activation map.
        rf: the layer's receptive field.
        fill: the padding colour of the patches.
        n_images: how many images were streamed.
        n_positions: how many candidate positions one unit had in total.
        margin: the ``margin`` (pixels) that candidate positions kept from the border.
        images: the streamed images that hold a top patch (uint8 ``[3, H, W]``), by id.
        boxes: ``(unit, rank) -> (top, left, side)``, the part of the receptive
            field that drives the unit there (:meth:`focus`); :meth:`patches` crops
            to it where it is known, and to the whole receptive field elsewhere.
    """

    layer: str
    units: list[int]
    values: Tensor
    image_ids: Tensor
    rows: Tensor
    cols: Tensor
    rf: ReceptiveField
    fill: tuple[float, float, float]
    n_images: int = 0
    n_positions: int = 0
    margin: int = 0
    images: dict[int, Tensor] = field(default_factory=dict, repr=False)
    boxes: dict[tuple[int, int], tuple[int, int, int]] = field(default_factory=dict, repr=False)

    @property
    def k(self) -> int:
        return self.values.shape[1]

    def __repr__(self) -> str:
        return (
            f"TopPatches(layer={self.layer!r}, {len(self.units)} units, k={self.k}, "
            f"receptive field {self.rf.size} px, {self.n_images} images, {self.n_positions} positions)"
        )

    def _index(self, unit: int) -> int:
        try:
            return self.units.index(int(unit))
        except ValueError:
            raise InputError(
                f"unit {unit} of {self.layer} was not tracked; tracked units: "
                + (f"0..{max(self.units)}" if self.units == list(range(len(self.units))) else str(self.units))
            ) from None

    def entries(self, unit: int) -> list[tuple[float, int, int, int]]:
        """``(activation, image id, row, col)`` of the unit's top patches, best first."""
        i = self._index(unit)
        out = []
        for j in range(self.k):
            img = int(self.image_ids[i, j])
            if img < 0:
                break
            out.append((float(self.values[i, j]), img, int(self.rows[i, j]), int(self.cols[i, j])))
        return out

    def is_active(self, unit: int) -> bool:
        """Whether the unit's strongest activation over all images is above zero."""
        e = self.entries(unit)
        return bool(e) and e[0][0] > 0

    def patches(self, unit: int) -> Tensor:
        """The unit's top patches ``[n, 3, size, size]`` in [0, 1], best first.

        Each is the whole receptive field, or, after :meth:`focus`, the square that
        drives the unit, scaled to the receptive field's ``size``.
        """
        from .images import resize

        crops = []
        for rank, (_, img, r, c) in enumerate(self.entries(unit)):
            image = self.image(img)
            box = self.boxes.get((int(unit), rank))
            if box is None:
                crops.append(crop_patch(image, self.rf.size, self.rf.stride, self.rf.start, r, c, self.fill))
            else:
                crop = crop_box(image, *box, fill=self.fill)
                crops.append(crop if box[2] == self.rf.size else resize(crop, (self.rf.size, self.rf.size)))
        if not crops:
            return torch.empty(0, 3, self.rf.size, self.rf.size)
        return torch.cat(crops)

    def focus(self, backbone: Backbone, units: Sequence[int] | None = None, mass: float = 0.9) -> TopPatches:
        """A copy whose patches are cropped to the part of the receptive field that drives each unit.

        For every top patch of ``units`` (default: all tracked), :func:`driving_box`
        finds the square that holds ``mass`` of the activation's input gradient:
        one forward and backward pass on a window of about the receptive field.
        """
        units = self.units if units is None else [int(u) for u in units]
        boxes = dict(self.boxes)
        for u in units:
            for rank, (value, img, r, c) in enumerate(self.entries(u)):
                if value > 0:
                    boxes[(u, rank)] = driving_box(backbone, self.image(img), self.layer, u, r, c, mass)
        return replace(self, boxes=boxes)

    def image(self, image_id: int) -> Tensor:
        """A kept image (one that holds some unit's top patch) as ``[1,3,H,W]``."""
        if image_id not in self.images:
            raise InputError(f"image {image_id} holds none of the top patches, so it was not kept")
        return self.images[image_id].float().div(255.0)[None]

    def strongest_units(self, n: int | None = None) -> list[int]:
        """Units sorted by their best activation (strongest first); ties by unit index."""
        best = self.values[:, 0]
        order = sorted(range(len(self.units)), key=lambda i: (-float(best[i]), self.units[i]))
        units = [self.units[i] for i in order]
        return units if n is None else units[:n]

    def summary(self, units: Sequence[int] | None = None, digits: int = 4) -> str:
        """A deterministic text summary (activations to ``digits`` significant digits)."""
        units = self.units if units is None else list(units)
        lines = [
            f"{self.layer}: receptive field {self.rf.size} px, stride {self.rf.stride}; "
            f"{self.n_images} images, {self.n_positions} positions per unit"
        ]
        for u in units:
            e = self.entries(u)
            if not e or e[0][0] <= 0:
                lines.append(f"  unit {u}: never active")
                continue
            lines.append(
                f"  unit {u}: top {_sig(e[0][0], digits)} (image {e[0][1]}, row {e[0][2]}, col {e[0][3]}), "
                f"k-th {_sig(e[-1][0], digits)}"
            )
        return "\n".join(lines)


def _sig(x: float, digits: int = 4) -> str:
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    return f"{x:.{digits}g}"


class _Accumulator:
    """Running top-k of one layer."""

    def __init__(self, layer: str, units: list[int] | None, k: int, rf: ReceptiveField, margin: int):
        self.layer, self.units, self.k, self.rf, self.margin = layer, units, k, rf, margin
        # [U, k] each once the first batch has given the number of channels (empty until then)
        self.started = False
        self.values = self.ids = self.rows = self.cols = self._index = torch.empty(0, dtype=torch.long)
        self.n_positions = 0

    def _mask(self, h: int, w: int, H: int, W: int) -> Tensor | None:
        """``[h*w]`` True where a position's receptive-field centre is ``margin`` px inside the image."""
        if self.margin <= 0:
            return None
        return position_mask(self.rf, h, w, H, W, self.margin).reshape(-1)

    def update(self, act: Tensor, first_id: int, image_hw: tuple[int, int]) -> None:
        B, C, h, w = act.shape
        if self.units is None:
            self.units = list(range(C))
        if not self.started:
            self.started = True
            bad = [u for u in self.units if not 0 <= u < C]
            if bad:
                raise InputError(f"unit {bad[0]} does not exist: layer {self.layer} has {C} channels (0..{C - 1})")
            U = len(self.units)
            self.values = torch.full((U, self.k), -math.inf)
            self.ids = torch.full((U, self.k), -1, dtype=torch.long)
            self.rows = torch.full((U, self.k), -1, dtype=torch.long)
            self.cols = torch.full((U, self.k), -1, dtype=torch.long)
            self._index = torch.tensor(self.units, dtype=torch.long)
        a = act if self.units == list(range(C)) else act.index_select(1, self._index.to(act.device))
        flat = a.reshape(B, a.shape[1], h * w).float()
        flat = torch.nan_to_num(flat, nan=-math.inf)
        mask = self._mask(h, w, *image_hw)
        if mask is None:
            self.n_positions += B * h * w
        else:
            self.n_positions += B * int(mask.sum())
            flat = flat.masked_fill(~mask.to(flat.device), -math.inf)
        pos = flat.argmax(dim=2)  # first maximum in row-major order
        best = flat.gather(2, pos[..., None])[..., 0]
        # candidates [U, B]; image ids increase along B, after every id already kept
        cand_v = best.t().cpu()
        cand_p = pos.t().cpu()
        cand_i = torch.arange(first_id, first_id + B).expand_as(cand_v)
        values = torch.cat([self.values, cand_v], dim=1)
        ids = torch.cat([self.ids, cand_i], dim=1)
        rows = torch.cat([self.rows, cand_p // w], dim=1)
        cols = torch.cat([self.cols, cand_p % w], dim=1)
        # stable: equal activations keep the earlier image first
        order = torch.sort(values, dim=1, descending=True, stable=True).indices[:, : self.k]
        self.values = values.gather(1, order)
        self.ids = ids.gather(1, order)
        self.rows = rows.gather(1, order)
        self.cols = cols.gather(1, order)
        empty = torch.isneginf(self.values)
        self.ids[empty] = -1
        self.rows[empty] = -1
        self.cols[empty] = -1


def top_patches_many(
    backbone: Backbone,
    images: Images,
    layers: Sequence[str],
    units: Sequence[int] | dict[str, Sequence[int]] | None = None,
    k: int = 9,
    *,
    batch_size: int = 8,
    max_size: int | None = None,
    margin: int = 0,
    progress: bool = False,
) -> dict[str, TopPatches]:
    """:func:`top_patches` for several layers in one pass over the images.

    ``units`` is ``None`` (every channel), one list for all layers, or a dict
    ``{layer: units}``. The results share the kept images.
    """
    layers = backbone.check_layers(layers)
    if not layers:
        raise InputError("give at least one layer")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InputError(f"k must be a positive whole number, got {k!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive whole number, got {batch_size!r}")

    def units_for(layer: str) -> list[int] | None:
        u = units.get(layer) if isinstance(units, dict) else units
        if u is None:
            return None
        if isinstance(u, int):
            raise InputError("units must be a list of channel indices (e.g. [0, 5, 7]) or None for all")
        u = [int(x) for x in u]
        if not u:
            raise InputError(f"no units given for layer {layer}")
        if len(set(u)) != len(u):
            raise InputError(f"units for layer {layer} contain duplicates: {u}")
        return u

    if not isinstance(margin, int) or isinstance(margin, bool) or margin < 0:
        raise InputError(f"margin must be a whole number of pixels >= 0, got {margin!r}")
    accs = {name: _Accumulator(name, units_for(name), k, receptive_field(backbone, name), margin) for name in layers}
    index = {n: i for i, n in enumerate(backbone.layer_names)}
    last = max(index[n] for n in layers)
    wanted = set(layers)
    device = backbone.device
    kept: dict[int, Tensor] = {}
    n_images = 0
    stream = _batches(_iter_images(images, max_size), batch_size)
    if progress:
        from .progress import progress_bar

        stream = progress_bar(stream, desc="batches", unit="batch")
    with torch.inference_mode():
        for batch in stream:
            x = torch.cat(batch).to(device)
            h = backbone.preprocess(x)
            for name in backbone.layer_names[: last + 1]:
                h = backbone.layers[name](h)
                if name in wanted:
                    # reduce now, before a later (possibly in-place) module can touch h
                    accs[name].update(h, n_images, (int(x.shape[-2]), int(x.shape[-1])))
            referenced: set[int] = set()
            for acc in accs.values():
                referenced.update(int(i) for i in acc.ids.unique() if int(i) >= 0)
            for j, img in enumerate(batch):
                if n_images + j in referenced:
                    kept[n_images + j] = (img[0].clamp(0, 1) * 255).round().to(torch.uint8).cpu()
            for i in list(kept):
                if i not in referenced:
                    del kept[i]
            n_images += len(batch)
    if n_images == 0:
        raise InputError("no images were given")
    r, g, b = (float(v) for v in backbone.mean.flatten().tolist())
    fill = (r, g, b)
    out = {}
    for name in layers:
        acc = accs[name]
        out[name] = TopPatches(
            layer=name,
            units=list(acc.units or []),
            values=acc.values,
            image_ids=acc.ids,
            rows=acc.rows,
            cols=acc.cols,
            rf=acc.rf,
            fill=fill,
            n_images=n_images,
            n_positions=acc.n_positions,
            margin=margin,
            images=kept,
        )
    return out


def top_patches(
    backbone: Backbone,
    images: Images,
    layer: str,
    units: Sequence[int] | None = None,
    k: int = 9,
    *,
    batch_size: int = 8,
    max_size: int | None = None,
    margin: int = 0,
    progress: bool = False,
) -> TopPatches:
    """The ``k`` image patches that activate each unit of ``layer`` most.

    Args:
        backbone: a :class:`~course_nst.Backbone`.
        images: a folder (searched recursively), one image tensor ``[N,3,H,W]``,
            or any iterable of images (tensors ``[1,3,H,W]`` in [0,1], file
            paths, PIL images, sample names...). Streamed once, in batches of
            consecutive same-size images.
        layer: the layer name.
        units: the channel indices to track; ``None`` for all of them.
        k: how many patches per unit (each from a different image).
        batch_size: images per forward pass.
        max_size: scale larger images down to this longer side first.
        margin: only positions whose receptive-field centre is at least this
            many pixels inside the image are candidates (0: all positions).
            Units near the border often fire on the sharp edge between the
            image and its padding; a margin keeps them out of the grids.
        progress: show a tqdm progress bar.

    Returns:
        a :class:`TopPatches`; memory is ``O(units x k)`` plus the few images
        that hold a top patch, whatever the number of images.
    """
    if not isinstance(layer, str):
        raise InputError(f"layer must be one layer name (use top_patches_many for several), got {layer!r}")
    return top_patches_many(
        backbone,
        images,
        [layer],
        units,
        k,
        batch_size=batch_size,
        max_size=max_size,
        margin=margin,
        progress=progress,
    )[layer]
