"""Matplotlib figures for the notebooks.

Plain functions: each takes tensors (images ``[1,3,H,W]`` in [0,1], activations
``[1,n_C,n_H,n_W]``) or results from the package, converts to NumPy at the edge,
and returns the :class:`matplotlib.figure.Figure` it drew (call ``plt.show()``
in a notebook). Nothing here changes global matplotlib state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import InputError

if TYPE_CHECKING:
    from .receptive_field import ReceptiveField
    from .transfer import Result

# what the notebooks import (01: receptive fields, filters, feature maps, top patches;
# 02-04: images, Gram matrices, cost curves, ratio grids), and patch_mosaic behind plot_unit_patches
__all__ = [
    "to_display",
    "plot_filters",
    "plot_feature_maps",
    "plot_rf_growth",
    "plot_receptive_fields",
    "plot_patch_grid",
    "plot_unit_patches",
    "patch_mosaic",
    "plot_images",
    "plot_cost_curves",
    "plot_gram",
    "plot_ratio_grid",
    "plot_grams",
    "plot_optimiser_race",
]


def _plt():
    import matplotlib.pyplot as plt

    return plt


def to_display(image: Tensor) -> np.ndarray:
    """``[1,3,H,W]`` / ``[3,H,W]`` in [0,1] -> ``H x W x 3`` NumPy array for ``imshow``."""
    x = image.detach().float().cpu()
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise InputError(f"expected one image [1,3,H,W], got shape {list(x.shape)}")
        x = x[0]
    if x.dim() != 3 or x.shape[0] != 3:
        raise InputError(f"expected an image [1,3,H,W] or [3,H,W], got shape {list(image.shape)}")
    return x.clamp(0, 1).permute(1, 2, 0).numpy()


def _resize_tile(patch: Tensor, tile: int) -> Tensor:
    """Resize ``[3,s,s]`` to ``[3,tile,tile]``: nearest when enlarging (pixels stay visible)."""
    s = patch.shape[-1]
    if s == tile:
        return patch
    mode = "nearest" if s < tile else "area"
    return F.interpolate(patch[None], size=(tile, tile), mode=mode)[0]


def patch_mosaic(
    patches: Tensor,
    ncols: int = 3,
    tile: int = 64,
    gap: int = 2,
    n: int | None = None,
    blank: Sequence[bool] | None = None,
    background: float = 1.0,
) -> np.ndarray:
    """Tile ``[n,3,s,s]`` patches into one ``H x W x 3`` array, ``ncols`` per row.

    ``n`` slots are drawn (default: as many as patches); empty slots and those
    flagged in ``blank`` are light grey.
    """
    count = patches.shape[0] if n is None else n
    nrows = max(1, math.ceil(count / ncols))
    H = nrows * tile + (nrows - 1) * gap
    W = ncols * tile + (ncols - 1) * gap
    out = torch.full((3, H, W), background)
    for i in range(count):
        r, c = divmod(i, ncols)
        y, x = r * (tile + gap), c * (tile + gap)
        if i < patches.shape[0] and not (blank is not None and blank[i]):
            out[:, y : y + tile, x : x + tile] = _resize_tile(patches[i].float(), tile)
        else:
            out[:, y : y + tile, x : x + tile] = 0.85
    return out.clamp(0, 1).permute(1, 2, 0).numpy()


def plot_filters(weight: Tensor, ncols: int = 8, title: str | None = None, scale: float = 0.9):
    """First-layer filters ``[n_C, 3, k, k]`` as small colour images.

    Each filter is scaled on its own, symmetrically around zero: mid-grey is 0,
    a saturated colour is the filter's strongest weight. A filter that looks red
    responds to red light where it is bright and to cyan where it is dark.
    """
    plt = _plt()
    w = weight.detach().float().cpu()
    if w.dim() != 4 or w.shape[1] != 3:
        raise InputError(f"expected first-layer weights [n_C, 3, k, k], got shape {list(w.shape)}")
    n = w.shape[0]
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * scale, nrows * scale), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            f = w[i]
            f = 0.5 + 0.5 * f / f.abs().max().clamp_min(1e-12)
            ax.imshow(f.permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_title(str(i), fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_feature_maps(
    activation: Tensor,
    channels: Sequence[int] | None = None,
    ncols: int = 8,
    title: str | None = None,
    scale: float = 1.2,
):
    """Feature maps of one image: ``activation[0, c]`` for each channel ``c`` (default: the first 16).

    Each map has its own colour scale (dark: low, bright: high).
    """
    plt = _plt()
    a = activation.detach().float().cpu()
    if a.dim() != 4 or a.shape[0] != 1:
        raise InputError(f"expected an activation [1, n_C, n_H, n_W], got shape {list(a.shape)}")
    channels = list(range(min(16, a.shape[1]))) if channels is None else list(channels)
    nrows = math.ceil(len(channels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * scale, nrows * scale), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(channels):
            ax.imshow(a[0, channels[i]].numpy(), cmap="magma")
            ax.set_title(f"unit {channels[i]}", fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_rf_growth(
    tables: Mapping[str, Mapping[str, ReceptiveField]],
    image_size: int | None = None,
    ax=None,
    log: bool = True,
):
    """Receptive-field size against depth, one line per backbone.

    ``tables`` maps a label (e.g. a backbone name) to ``{layer: ReceptiveField}``
    as :func:`course_nst.receptive_field.receptive_fields` returns it. The x axis
    is the position of the layer in the backbone; a few layer names are
    written next to their points. ``image_size`` draws a line at the input size.
    """
    plt = _plt()
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 4.5))
    else:
        fig = ax.figure
    for line_no, (label, table) in enumerate(tables.items()):
        names = list(table)
        sizes = [table[n].size for n in names]
        depth = np.arange(1, len(names) + 1)
        line = ax.plot(depth, sizes, marker="o", ms=3, label=label)[0]
        # label where the stride changes (and the last layer)
        last_stride = None
        for d, n in zip(depth, names, strict=True):
            stride = table[n].stride
            if stride != last_stride or n == names[-1]:
                ax.annotate(
                    f"{n} ({table[n].size})",
                    (d, table[n].size),
                    fontsize=7,
                    color=line.get_color(),
                    xytext=(3, -9) if line_no % 2 else (-6, 6),
                    textcoords="offset points",
                    ha="left" if line_no % 2 else "right",
                )
                last_stride = stride
    if image_size:
        ax.axhline(image_size, color="grey", ls="--", lw=1)
        ax.text(1, image_size * 1.05, f"input image {image_size} px", color="grey", fontsize=8)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("layer (position in the network, input side on the left)")
    ax.set_ylabel("receptive field size (pixels)")
    ax.set_title("A unit sees a larger patch of the image the deeper its layer is")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_receptive_fields(
    image: Tensor,
    fields: Mapping[str, ReceptiveField],
    centre: tuple[int, int] | None = None,
    ax=None,
):
    """Draw the receptive fields of several layers, centred near one point of ``image``.

    For each layer, the unit whose receptive field is centred closest to
    ``centre`` (default: the middle of the image) is drawn as a square.
    """
    plt = _plt()
    from matplotlib.patches import Rectangle

    img = to_display(image)
    H, W = img.shape[:2]
    cy, cx = (H // 2, W // 2) if centre is None else centre
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 5))
    else:
        fig = ax.figure
    ax.imshow(img)
    colours = plt.cm.viridis(np.linspace(0, 0.9, max(1, len(fields))))
    lo_y, lo_x, hi_y, hi_x = 0, 0, H, W
    for (name, rf), colour in zip(fields.items(), colours, strict=True):
        row = max(0, round((cy - rf.start) / rf.stride))
        col = max(0, round((cx - rf.start) / rf.stride))
        top, left, bottom, right = rf.box(row, col)
        ax.add_patch(
            Rectangle(
                (left - 0.5, top - 0.5), rf.size, rf.size, fill=False, lw=2, ec=colour, label=f"{name}: {rf.size} px"
            )
        )
        lo_y, lo_x = min(lo_y, top), min(lo_x, left)
        hi_y, hi_x = max(hi_y, bottom), max(hi_x, right)
    pad = 0.03 * max(hi_y - lo_y, hi_x - lo_x)
    ax.set_xlim(lo_x - 0.5 - pad, hi_x - 0.5 + pad)
    ax.set_ylim(hi_y - 0.5 + pad, lo_y - 0.5 - pad)
    ax.legend(fontsize=7, loc="upper right", framealpha=0.8)
    ax.set_title("receptive fields (squares may reach into the padding)")
    ax.axis("off")
    fig.tight_layout()
    return fig


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def plot_patch_grid(
    result,
    units: Sequence[int] | None = None,
    ncols: int = 3,
    patch_cols: int = 3,
    tile: int = 48,
    title: str | None = None,
    scale: float = 2.3,
):
    """Zeiler & Fergus grid: for each unit, its top patches (best top-left, row by row).

    Args:
        result: a :class:`course_nst.patches.TopPatches`.
        units: which units (default: the first 9 tracked).
        ncols: units per row of the figure.
        patch_cols: patches per row inside a unit's block.
        tile: pixels per patch in the mosaic (patches are rescaled to it).
        title: the figure title (default: layer, receptive field and images).

    Each unit's block is titled with its index and the activations of its best
    and its k-th patch. Patches where the unit is not active (activation <= 0)
    are left grey; a unit that is never active says so.
    """
    plt = _plt()
    units = list(result.units[:9] if units is None else units)
    if not units:
        raise InputError("no units to plot")
    nrows = math.ceil(len(units) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * scale, nrows * scale + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, u in zip(axes.flat, units, strict=False):  # the last row may have spare axes
        entries = result.entries(u)
        patches = result.patches(u)
        blank = [e[0] <= 0 for e in entries]
        ax.imshow(patch_mosaic(patches, patch_cols, tile, n=result.k, blank=blank))
        if not entries or entries[0][0] <= 0:
            ax.set_title(f"unit {u}: never active", fontsize=8)
        else:
            ax.set_title(f"unit {u}: {_fmt(entries[0][0])} … {_fmt(entries[-1][0])}", fontsize=8)
    rf = result.rf
    if title is None:
        title = (
            f"{result.layer}: receptive field {rf.size}×{rf.size} px (stride {rf.stride}); "
            f"top {result.k} of {result.n_images} images"
        )
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_unit_patches(result, unit: int, ncols: int = 9, scale: float = 1.3, show_boxes: bool = True):
    """One unit's top patches, each labelled with its activation and image."""
    plt = _plt()
    entries = result.entries(unit)
    patches = result.patches(unit)
    n = max(1, result.k)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * scale, nrows * scale + 0.6), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(entries):
            value, img, r, c = entries[i]
            if value <= 0:
                ax.set_title("not active", fontsize=7)
                continue
            ax.imshow(to_display(patches[i]), interpolation="nearest" if result.rf.size < 32 else "antialiased")
            ax.set_title(f"{_fmt(value)}\nimg {img} ({r},{c})", fontsize=7)
    fig.suptitle(
        f"{result.layer}, unit {unit}: top {len(entries)} patches, "
        f"receptive field {result.rf.size}×{result.rf.size} px",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


# ======================================================================================
# Notebooks 02-04: image rows, cost curves, Gram heatmaps, alpha/beta grids
# ======================================================================================

_COST_LABELS = {
    "J": r"$J(G)$",
    "J_content": r"$J_{content}(C,G)$",
    "J_style": r"$J_{style}(S,G)$",
    "J_tv": "total variation",
}


def plot_images(
    images: Sequence[Tensor],
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    scale: float = 2.8,
    suptitle: str | None = None,
    fontsize: int = 9,
):
    """Images ``[1,3,H,W]`` side by side (``ncols`` per row, default: all in one row).

    Each image keeps its aspect ratio; ``titles`` (one per image) go above them.
    """
    plt = _plt()
    images = list(images)
    if not images:
        raise InputError("plot_images needs at least one image")
    if titles is not None and len(titles) != len(images):
        raise InputError(f"got {len(images)} images but {len(titles)} titles")
    ncols = len(images) if ncols is None else max(1, min(int(ncols), len(images)))
    nrows = math.ceil(len(images) / ncols)
    arrays = [to_display(im) for im in images]
    aspect = max(a.shape[0] / a.shape[1] for a in arrays)
    extra = 0.35 if titles is not None else 0.0
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(ncols * scale, nrows * (scale * aspect + extra) + (0.4 if suptitle else 0)),
        squeeze=False,
    )
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(arrays):
            ax.imshow(arrays[i])
            if titles is not None:
                ax.set_title(titles[i], fontsize=fontsize)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def _as_runs(results: Result | Mapping[str, Result]) -> dict[str, Result]:
    """One result (anything with ``.curve``) or ``{label: result}`` -> ``{label: result}``."""
    if isinstance(results, Mapping):
        if results and all(hasattr(r, "curve") for r in results.values()):
            return dict(results)
    elif hasattr(results, "curve"):
        return {"": results}
    raise InputError("expected a style-transfer Result or a dict {label: Result}")


def plot_cost_curves(
    results: Result | Mapping[str, Result],
    keys: Sequence[str] = ("J", "J_content", "J_style"),
    weighted: bool = False,
    log: bool = True,
    title: str | None = None,
    scale: float = 3.6,
):
    """Cost curves of one or several style-transfer runs, one panel per cost.

    Args:
        results: a :class:`course_nst.Result` or ``{label: Result}`` (one line per run).
        keys: which costs, each in its own panel (``"J"``, ``"J_content"``,
            ``"J_style"``, ``"J_tv"``).
        weighted: plot ``alpha * J_content`` and ``beta * J_style`` (the terms as they
            enter J, read from each run's settings) instead of the raw costs.
        log: logarithmic y axis (the costs fall by orders of magnitude).
    """
    plt = _plt()
    runs = _as_runs(results)
    keys = list(keys)
    if not keys:
        raise InputError("no cost to plot: keys is empty")
    fig, axes = plt.subplots(1, len(keys), figsize=(scale * len(keys), 3.0 + (0.3 if title else 0)), squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=True):
        for label, res in runs.items():
            values = np.asarray(res.curve(key), dtype=np.float64)
            factor, prefix = 1.0, ""
            if weighted and key in ("J_content", "J_style"):
                name = "alpha" if key == "J_content" else "beta"
                factor = float(getattr(res, "settings", {}).get(name, 1.0))
                prefix = r"$\alpha\,$" if key == "J_content" else r"$\beta\,$"
            values = values * factor
            steps = np.arange(1, len(values) + 1)
            if log:
                values = np.where(values > 0, values, np.nan)  # log axes cannot show 0
            ax.plot(steps, values, label=label or None, lw=1.5)
        ax.set_title(
            prefix + _COST_LABELS.get(key, key)
            if weighted and key in ("J_content", "J_style")
            else _COST_LABELS.get(key, key),
            fontsize=10,
        )
        ax.set_xlabel("cost evaluation")
        if log:
            ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.25)
        if len(runs) > 1:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _colour_bar(fig, im, ax, **kwargs):
    """A colour bar whose ticks carry their whole value (7e+09, not 7 under an offset "1e9" that meets a title)."""
    from matplotlib.ticker import FuncFormatter

    return fig.colorbar(im, ax=ax, format=FuncFormatter(lambda v, _: f"{v:g}"), **kwargs)


def plot_gram(
    gram: Tensor,
    ax=None,
    title: str | None = None,
    max_channels: int | None = 64,
    cmap: str = "viridis",
):
    """A Gram matrix ``[n_C, n_C]`` as a heatmap (row k, column k': G_kk'), with a colour bar.

    Only the first ``max_channels`` channels are drawn (``None``: all).
    """
    plt = _plt()
    g = gram.detach().float().cpu()
    if g.dim() != 2 or g.shape[0] != g.shape[1]:
        raise InputError(f"expected a square Gram matrix [n_C, n_C], got shape {list(g.shape)}")
    n = g.shape[0] if max_channels is None else min(g.shape[0], int(max_channels))
    g = g[:n, :n]
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.6, 4))
    else:
        fig = ax.figure
    im = ax.imshow(g.numpy(), cmap=cmap, interpolation="nearest")
    _colour_bar(fig, im, ax, fraction=0.046, pad=0.04)
    ax.set_xlabel("channel k'")
    ax.set_ylabel("channel k")
    shown = f" (first {n} of {gram.shape[0]} channels)" if n < gram.shape[0] else ""
    ax.set_title((title or "Gram matrix") + shown, fontsize=10)
    return fig


def plot_ratio_grid(
    results: Mapping[str, Result],
    ncols: int | None = None,
    scale: float = 2.6,
    suptitle: str | None = None,
    show_costs: bool = True,
):
    """Images of several runs (e.g. one per alpha/beta ratio), titled by their labels.

    ``results`` maps a label (``"α/β = 1e-4"``) to a :class:`course_nst.Result`;
    with ``show_costs`` each title also gives the run's final J_content and J_style.
    """
    runs = _as_runs(results)
    titles = []
    for label, res in runs.items():
        if show_costs and res.final:
            f = res.final
            titles.append(f"{label}\n$J_{{content}}$={f['J_content']:.3g}, $J_{{style}}$={f['J_style']:.3g}")
        else:
            titles.append(label)
    return plot_images(
        [r.image for r in runs.values()], titles, ncols=ncols, scale=scale, suptitle=suptitle, fontsize=8
    )


def plot_grams(
    grams: Sequence[Tensor],
    titles: Sequence[str] | None = None,
    max_channels: int | None = None,
    cmap: str = "viridis",
    scale: float = 3.6,
    gamma: float = 1.0,
):
    """Several Gram matrices ``[n_C, n_C]`` side by side on one shared colour scale (one colour bar).

    The same colour means the same number in every panel, so two images' matrices can be
    compared entry by entry. Only the first ``max_channels`` channels are drawn (``None``: all).
    ``gamma`` < 1 spreads the colours over the small entries (a power scale, e.g. 0.5: the
    colour follows the square root of the value; the colour bar is labelled in values).
    """
    from matplotlib.colors import PowerNorm

    plt = _plt()
    gs = [g.detach().float().cpu() for g in grams]
    if not gs:
        raise InputError("plot_grams needs at least one Gram matrix")
    for g in gs:
        if g.dim() != 2 or g.shape[0] != g.shape[1]:
            raise InputError(f"expected square Gram matrices [n_C, n_C], got shape {list(g.shape)}")
    if titles is not None and len(titles) != len(gs):
        raise InputError(f"got {len(gs)} Gram matrices but {len(titles)} titles")
    shown = [g if max_channels is None else g[: int(max_channels), : int(max_channels)] for g in gs]
    if not gamma > 0:
        raise InputError(f"gamma must be > 0, got {gamma}")
    vmin = min(float(g.min()) for g in shown)
    vmax = max(float(g.max()) for g in shown)
    if gamma != 1.0 and vmin < 0:
        raise InputError("a power colour scale (gamma != 1) needs entries >= 0")
    norm = PowerNorm(gamma, vmin=vmin, vmax=vmax)
    fig, axes = plt.subplots(1, len(shown), figsize=(len(shown) * scale + 1.0, scale), squeeze=False)
    im = None
    for i, (ax, g) in enumerate(zip(axes[0], shown, strict=True)):
        im = ax.imshow(g.numpy(), cmap=cmap, interpolation="nearest", norm=norm)
        ax.set_xlabel("channel k'")
        ax.set_ylabel("channel k")
        part = f" (first {g.shape[0]} of {gs[i].shape[0]} channels)" if g.shape[0] < gs[i].shape[0] else ""
        ax.set_title((titles[i] if titles is not None else "Gram matrix") + part, fontsize=10)
    _colour_bar(fig, im, list(axes[0]), fraction=0.046 / len(shown) * 2, pad=0.02)
    return fig


def plot_optimiser_race(
    runs: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str | None = None,
    scale: float = 4.4,
):
    """J of several runs against the number of cost evaluations and against the seconds spent.

    Args:
        runs: ``{label: (J at each evaluation, seconds since the start at each evaluation)}``,
            e.g. one run of Adam and one of L-BFGS on the same objective.
        title: the figure's title.

    Two panels, both with a logarithmic J axis: per evaluation (what the optimiser does
    with the same information) and per second (what it costs on this machine, with
    each method's own overhead).
    """
    plt = _plt()
    if not runs:
        raise InputError("no run to plot: runs is empty")
    for label, (values, seconds) in runs.items():
        if len(values) != len(seconds) or not len(values):
            raise InputError(
                f"run {label!r}: {len(values)} costs and {len(seconds)} times; give one time per cost, at least one"
            )
    fig, axes = plt.subplots(1, 2, figsize=(2 * scale, 3.0 + (0.3 if title else 0)))
    for label, (values, seconds) in runs.items():
        J = np.asarray(values, dtype=np.float64)
        J = np.where(J > 0, J, np.nan)  # log axes cannot show 0
        axes[0].plot(np.arange(1, len(J) + 1), J, label=label, lw=1.5)
        axes[1].plot(np.asarray(seconds, dtype=np.float64), J, label=label, lw=1.5)
    for ax, xlabel in zip(axes, ("cost evaluation", "seconds since the start"), strict=True):
        ax.set_xlabel(xlabel)
        ax.set_ylabel("$J$")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
