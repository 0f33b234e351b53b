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

A patch is centred on the unit's receptive field and has its full size. Where
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from .backbones.common import IMAGENET_MEAN
from .errors import InputError
from .receptive_field import ReceptiveField, receptive_field

__all__ = [
    "IMAGENET_MEAN",
    "TopPatches",
    "top_patches",
    "top_patches_many",
    "crop_patch",
    "find_top_patch",
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
    """The ``size x size`` patch of ``image`` that unit ``(row, col)`` sees.

    Args:
        image: ``[1, 3, H, W]`` (or ``[3, H, W]``) in [0, 1].
        size, stride, start: the layer's receptive field (see
            :class:`~course_nst.receptive_field.ReceptiveField`).
        row, col: the unit's position in the activation map.
        fill: the colour of the parts of the patch outside the image.

    Returns:
        ``[1, 3, size, size]``, centred on the unit's receptive field.
    """
    if image.dim() == 3:
        image = image[None]
    if image.dim() != 4 or image.shape[1] != 3:
        raise InputError(f"expected an image [1,3,H,W], got shape {list(image.shape)}")
    size, stride = int(size), int(stride)
    if size < 1 or stride < 1:
        raise InputError(f"size and stride must be >= 1, got size={size}, stride={stride}")
    H, W = image.shape[-2:]
    half = (size - 1) / 2
    top = math.floor(start + row * stride - half + 0.5)
    left = math.floor(start + col * stride - half + 0.5)
    out = torch.empty(1, 3, size, size, dtype=image.dtype, device=image.device)
    out[:] = torch.as_tensor(fill, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    t0, l0 = max(top, 0), max(left, 0)
    t1, l1 = min(top + size, H), min(left + size, W)
    if t1 > t0 and l1 > l0:
        out[:, :, t0 - top : t1 - top, l0 - left : l1 - left] = image[:1, :, t0:t1, l0:l1]
    return out


def find_top_patch(
    activation_map: Tensor,
    image: Tensor,
    size: int,
    stride: int,
    start: float,
    fill: Sequence[float] = IMAGENET_MEAN,
) -> tuple[float, tuple[int, int], Tensor]:
    """The strongest position of one unit's activation map and the patch it sees.

    Args:
        activation_map: ``[n_H, n_W]``, one unit's activations for ``image``.
        image: ``[1, 3, H, W]`` in [0, 1], the image that produced it.
        size, stride, start: the layer's receptive field.
        fill: colour of the padding (the ImageNet mean by default).

    Returns:
        ``(value, (row, col), patch)``: the maximum, its position (the first
        one in row-major order if it is tied) and the ``[1, 3, size, size]`` patch
        centred on that unit's receptive field, padded with ``fill`` where it
        leaves the image.
    """
    a = torch.as_tensor(activation_map)
    if a.dim() != 2:
        raise InputError(f"activation_map must be 2-D [n_H, n_W], got shape {list(a.shape)}")
    flat = int(torch.argmax(a.reshape(-1)))
    row, col = divmod(flat, a.shape[1])
    value = float(a[row, col])
    return value, (row, col), crop_patch(image, size, stride, start, row, col, fill)


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


def _iter_images(images, max_size: int | None) -> Iterator[Tensor]:
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


#: scikit-image files used by :func:`image_set`: colour photos, then textures.
_SOURCES = {
    "astronaut": "astronaut.png",
    "chelsea": "chelsea.png",
    "coffee": "coffee.png",
    "rocket": "rocket.jpg",
    "motorcycle": "motorcycle_left.png",
    "hubble": "hubble_deep_field.jpg",
    "immunohistochemistry": "ihc.png",
    "retina": "retina.jpg",
    "brick": "brick.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
    "camera": "camera.png",
}


def image_set_sources() -> list[str]:
    """Names of the scikit-image pictures :func:`image_set` draws from."""
    return list(_SOURCES)


def _load_sources(names: Sequence[str] | None) -> dict[str, Tensor]:
    import importlib.util

    from .images import load_image

    names = list(_SOURCES) if names is None else list(names)
    unknown = [n for n in names if n not in _SOURCES]
    if unknown:
        raise InputError(f"unknown image source {unknown[0]!r}; choose from: " + ", ".join(_SOURCES))
    spec = importlib.util.find_spec("skimage.data")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("scikit-image is not installed; it provides the offline images")
    root = Path(list(spec.submodule_search_locations)[0])
    # 512 px on the longer side is plenty for crops of 100-300 px
    return {n: load_image(root / _SOURCES[n], max_size=512) for n in names}


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
        """The unit's top patches ``[n, 3, size, size]`` in [0, 1], best first."""
        crops = []
        for _, img, r, c in self.entries(unit):
            image = self.images[img].float().div(255.0)[None]
            crops.append(crop_patch(image, self.rf.size, self.rf.stride, self.rf.start, r, c, self.fill))
        if not crops:
            return torch.empty(0, 3, self.rf.size, self.rf.size)
        return torch.cat(crops)

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
        self.values = self.ids = self.rows = self.cols = None
        self.n_positions = 0

    def _mask(self, h: int, w: int, H: int, W: int) -> Tensor | None:
        """``[h*w]`` True where a position's receptive-field centre is ``margin`` px inside the image."""
        if self.margin <= 0:
            return None
        rf, m = self.rf, self.margin
        cy = rf.start + rf.stride * torch.arange(h)
        cx = rf.start + rf.stride * torch.arange(w)
        ok_y = (cy >= m) & (cy <= H - 1 - m)
        ok_x = (cx >= m) & (cx <= W - 1 - m)
        return (ok_y[:, None] & ok_x[None, :]).reshape(-1)

    def update(self, act: Tensor, first_id: int, image_hw: tuple[int, int]) -> None:
        B, C, h, w = act.shape
        if self.units is None:
            self.units = list(range(C))
        if self.values is None:
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
    backbone,
    images,
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

    def units_for(layer):
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
        from tqdm.auto import tqdm

        stream = tqdm(stream, desc="batches", unit="batch")
    with torch.inference_mode():
        for batch in stream:
            x = torch.cat(batch).to(device)
            h = backbone.preprocess(x)
            for name in backbone.layer_names[: last + 1]:
                h = backbone.layers[name](h)
                if name in wanted:
                    # reduce now, before a later (possibly in-place) module can touch h
                    accs[name].update(h, n_images, tuple(x.shape[-2:]))
            referenced = set()
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
    fill = tuple(float(v) for v in backbone.mean.flatten().tolist())
    out = {}
    for name in layers:
        acc = accs[name]
        out[name] = TopPatches(
            layer=name,
            units=list(acc.units),
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
    backbone,
    images,
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
