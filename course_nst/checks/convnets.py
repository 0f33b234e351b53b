"""Checkers for notebook 01 (what deep ConvNets learn).

* ``rf_recurrence(layers)``: the receptive-field recurrence, compared with
  :func:`course_nst.receptive_field.rf_recurrence` on several stacks (VGG19's
  among them), with the usual mistakes named in words.
* ``find_top_patch(activation_map, image, size, stride, start)``: the strongest
  position of an activation map and the image patch it sees, compared with
  :func:`course_nst.patches.find_top_patch`.

Each checker prints ``<function>: all checks passed`` on success, the problems
otherwise, and never raises.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from ..backbones.common import IMAGENET_MEAN as _MEAN  # the colour zero padding stands for
from ._common import Exercise, Prediction

__all__ = ["EXERCISES", "check_rf_recurrence", "check_find_top_patch"]

NOTEBOOK = "01_what_convnets_learn.ipynb"


# ======================================================================================
# rf_recurrence
# ======================================================================================
def _vgg19_stack() -> list[tuple[int, int, int]]:
    """VGG19's (kernel, stride, padding) from input to pool5, read from its modules."""
    from ..backbones import vgg19
    from ..receptive_field import layer_geometry

    out = []
    for _, module in vgg19.layers("max"):
        out += [(k, s, p) for k, s, p, _ in layer_geometry(module)]
    return out


def _stacks() -> dict[str, list[tuple[int, int, int]]]:
    return {
        "one 3x3 convolution with padding 1": [(3, 1, 1)],
        "VGG19 (conv1_1 ... pool5)": _vgg19_stack(),
        "AlexNet-like (11/4/2, pool 3/2/0, 5/1/2, ...)": [
            (11, 4, 2),
            (3, 2, 0),
            (5, 1, 2),
            (3, 2, 0),
            (3, 1, 1),
            (3, 1, 1),
            (3, 1, 1),
            (3, 2, 0),
        ],
        "strided, no padding": [(5, 2, 0), (3, 2, 0), (3, 1, 0), (1, 1, 0)],
        "even kernels": [(2, 2, 0), (4, 2, 1), (7, 1, 3)],
    }


def _recurrence(layers, variant: str = "") -> list[tuple[float, float, float]]:
    """The reference recurrence, or one of the usual mistakes (``variant``)."""
    size, jump, start = 1.0, 1.0, 0.0
    if variant == "start_half":
        start = 0.5
    if variant == "size_zero":
        size = 0.0
    out: list[tuple[float, float, float]] = []
    for k, s, p in layers:
        if variant == "jump_first":
            jump = jump * s
        step = s if variant == "size_uses_stride" else jump
        size = size + (k if variant == "size_k" else k - 1) * step
        pad = 0 if variant == "start_no_padding" else p
        start = start + ((k - 1) / 2 - pad) * (s if variant == "size_uses_stride" else jump)
        if variant == "stride_not_cumulative":
            jump = s
        elif variant != "jump_first":
            jump = jump * s
        out.append((size, jump, start))
    return out


_MISTAKES = {
    "size_uses_stride": (
        "you multiply by the stride s of the current layer where the recurrence needs jump_in, "
        "the distance in input pixels between the positions of the layer below (the product of all "
        "earlier strides): size_out = size_in + (k-1)*jump_in, start_out = start_in + ((k-1)/2 - p)*jump_in"
    ),
    "stride_not_cumulative": (
        "your jump is just the stride of the last layer; the jump multiplies: jump_out = jump_in * s, "
        "so after two stride-2 layers neighbouring positions are 4 pixels apart"
    ),
    "jump_first": (
        "you update jump before using it: size_out and start_out use jump_in, the jump of the layer "
        "*below* (compute them first, then jump_out = jump_in * s)"
    ),
    "start_no_padding": (
        "your start ignores the padding: start_out = start_in + ((k-1)/2 - p) * jump_in; padding "
        "moves the first position's window p positions up and to the left"
    ),
    "size_k": "off by one in size: a kernel of k adds (k-1) * jump_in pixels, not k * jump_in",
    "size_zero": "off by one in size: start from size 1 (one pixel sees itself), not 0",
    "start_half": (
        "your starts are all 0.5 larger than ours: you put the centre of pixel i at i + 0.5; "
        "this course puts it at i, so start from start = 0 (size 1, jump 1, start 0)"
    ),
}


def _as_triples(result: Any) -> list[tuple[float, float, float]] | str:
    if result is None:
        return "your function returned None; return the list of (size, jump, start) tuples"
    try:
        rows = list(result)
    except TypeError:
        return f"expected a list of (size, jump, start) tuples, got {type(result).__name__}"
    out = []
    for row in rows:
        try:
            vals = [float(v) for v in row]
        except (TypeError, ValueError):
            return f"each entry must be a (size, jump, start) tuple of numbers, got {row!r}"
        if len(vals) != 3:
            return f"each entry must have 3 numbers (size, jump, start), got {row!r}"
        out.append((vals[0], vals[1], vals[2]))
    return out


def _same(a, b) -> bool:
    return len(a) == len(b) and all(
        all(math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-6) for x, y in zip(r, s, strict=True))
        for r, s in zip(a, b, strict=True)
    )


def _diagnose_rf_recurrence(fn: Callable[..., Any]) -> list[str]:
    stacks = _stacks()
    got: dict[str, list] = {}
    problems: list[str] = []
    for name, layers in stacks.items():
        result = _as_triples(fn([tuple(l) for l in layers]))
        if isinstance(result, str):
            return [result]
        got[name] = result
    wrong = [n for n in stacks if not _same(got[n], _recurrence(stacks[n]))]
    if not wrong:
        return []
    for name in wrong:
        if len(got[name]) != len(stacks[name]):
            return [
                f"for the stack '{name}' ({len(stacks[name])} layers) you returned {len(got[name])} "
                "entries; return one (size, jump, start) per layer, after that layer (not the input's)"
            ]
    for variant, message in _MISTAKES.items():
        if all(_same(got[n], _recurrence(stacks[n], variant)) for n in wrong):
            return [message]
    # no known mistake: say where it first goes wrong
    for name in wrong:
        expected = _recurrence(stacks[name])
        for i, (g, e) in enumerate(zip(got[name], expected, strict=True)):
            if not _same([g], [e]):
                parts = [
                    w
                    for w, x, y in zip(("size", "jump", "start"), g, e, strict=True)
                    if not math.isclose(x, y, abs_tol=1e-6)
                ]
                problems.append(
                    f"stack '{name}', after layer {i} (kernel, stride, padding) = {tuple(stacks[name][i])}: "
                    f"expected (size, jump, start) = ({e[0]:g}, {e[1]:g}, {e[2]:g}), got "
                    f"({g[0]:g}, {g[1]:g}, {g[2]:g}); wrong: {', '.join(parts)}"
                )
                break
    problems.append(
        "the recurrence: size_out = size_in + (k-1)*jump_in; jump_out = jump_in*s; "
        "start_out = start_in + ((k-1)/2 - p)*jump_in, from size 1, jump 1, start 0"
    )
    return problems


# ======================================================================================
# find_top_patch
# ======================================================================================


def _crop(image, size, stride, start, row, col, fill=_MEAN, mode="centre"):
    """Reference crop and the usual wrong crops (``mode``)."""
    from ..patches import crop_patch
    from ..receptive_field import patch_box

    H, W = image.shape[-2:]
    if mode == "centre":
        return crop_patch(image, size, stride, start, row, col, fill)
    if mode == "no_mapping":  # the activation-map position used as a pixel position
        return crop_patch(image, size, 1, 0.0, row, col, fill)
    if mode == "top_left":  # row*stride taken as the top-left corner
        return crop_patch(image, size, 1, (size - 1) / 2, row * stride, col * stride, fill)
    if mode == "no_start":
        return crop_patch(image, size, stride, 0.0, row, col, fill)
    if mode == "shifted":  # moved back inside the image instead of padded
        top, left, _, _ = patch_box(size, stride, start, row, col)
        top = min(max(top, 0), max(H - size, 0))
        left = min(max(left, 0), max(W - size, 0))
        return crop_patch(image, size, 1, (size - 1) / 2, top, left, fill)
    if mode == "zero_pad":
        return crop_patch(image, size, stride, start, row, col, (0.0, 0.0, 0.0))
    if mode == "image_mean_pad":
        return crop_patch(image, size, stride, start, row, col, tuple(image.mean(dim=(0, 2, 3)).tolist()))
    raise ValueError(mode)


def _cases():
    g = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, 40, 48, generator=g)
    cases = []
    # interior unit, non-square map, row != col (swapping them is detectable)
    a = torch.rand(6, 9, generator=g) * 0.5
    a[2, 6] = 2.0
    cases.append(("an interior position", a, image, 16, 4, 1.5))
    # a unit at the top-left corner: its patch leaves the image
    a = torch.rand(10, 12, generator=g) - 1.0
    a[0, 1] = 0.5
    cases.append(("a position near the top-left corner", a, image, 11, 4, 1.0))
    # bottom-right, even-sized patch, negative activations everywhere
    a = -torch.rand(5, 6, generator=g) - 0.1
    a[4, 5] = -0.05
    cases.append(("a position at the bottom-right corner (all activations negative)", a, image, 16, 8, 3.5))
    return cases


def _diagnose_find_top_patch(fn: Callable[..., Any]) -> list[str]:
    problems: list[str] = []
    for label, amap, image, size, stride, start in _cases():
        flat = int(torch.argmax(amap))
        r, c = divmod(flat, amap.shape[1])
        value = float(amap[r, c])
        result = fn(amap.clone(), image.clone(), size, stride, start)
        if not isinstance(result, (tuple, list)) or len(result) != 3:
            return ["return a tuple (value, (row, col), patch)"]
        v, pos, patch = result
        try:
            v = float(v)
        except (TypeError, ValueError):
            return [f"value must be a number (the maximum activation), got {type(v).__name__}"]
        if not math.isclose(v, value, rel_tol=1e-5, abs_tol=1e-6):
            problems.append(f"{label}: the maximum activation is {value:.4g}, you returned {v:.4g}")
            continue
        try:
            rr, cc = (int(x) for x in pos)
        except (TypeError, ValueError):
            return [f"the position must be (row, col), got {pos!r}"]
        if (rr, cc) != (r, c):
            if (rr, cc) == (c, r):
                problems.append(
                    f"{label}: row and column are swapped: the maximum is at (row {r}, col {c}), you returned "
                    f"({rr}, {cc}); a flat index i of a map with n_W columns is row i // n_W, col i % n_W"
                )
            else:
                problems.append(f"{label}: the maximum is at (row {r}, col {c}), you returned ({rr}, {cc})")
            continue
        if not isinstance(patch, torch.Tensor):
            return [f"the patch must be a torch tensor [1, 3, size, size], got {type(patch).__name__}"]
        if patch.dim() == 3:
            patch = patch[None]
        if tuple(patch.shape) != (1, 3, size, size):
            problems.append(
                f"{label}: the patch must be [1, 3, {size}, {size}] (the whole receptive field), got "
                f"{list(patch.shape)}; where it leaves the image, pad it with the mean colour "
                f"{_MEAN} instead of cutting it short"
            )
            continue
        patch = patch.detach().float().cpu()
        if torch.allclose(patch, _crop(image, size, stride, start, r, c), atol=1e-5):
            continue
        for mode, message in (
            (
                "no_mapping",
                "you cropped around pixel (row, col) of the image; map the position to input pixels: "
                "centre = start + row * stride (and the same for col)",
            ),
            (
                "top_left",
                "you used row * stride as the top-left corner of the patch; it is the centre "
                "(start + row * stride), so the top is centre - (size - 1) / 2",
            ),
            ("no_start", "your patch is off by `start` pixels: the centre is start + row * stride, not row * stride"),
            (
                "shifted",
                "near the border you moved the patch back inside the image; keep it centred on "
                "the position and pad the part outside the image with the mean colour",
            ),
            (
                "zero_pad",
                f"you padded with black (zeros); pad with the ImageNet mean colour {_MEAN}, "
                "which is what the network's zero padding stands for",
            ),
            (
                "image_mean_pad",
                f"you padded with the image's own mean colour; pad with the ImageNet mean "
                f"{_MEAN}, which is what the network's zero padding stands for",
            ),
        ):
            if torch.allclose(patch, _crop(image, size, stride, start, r, c, mode=mode), atol=1e-5):
                problems.append(f"{label}: {message}")
                break
        else:
            problems.append(
                f"{label}: the patch is not the {size}x{size} window centred on pixel "
                f"(start + row*stride, start + col*stride) = ({start + r * stride:g}, {start + c * stride:g})"
            )
    return problems


# ======================================================================================
EXERCISES = [
    Exercise(
        grade_id="rf_recurrence",
        function="rf_recurrence",
        diagnose=_diagnose_rf_recurrence,
        notebook=NOTEBOOK,
        teaches="the receptive-field recurrence: size, jump and start after each layer",
    ),
    Exercise(
        grade_id="find_top_patch",
        function="find_top_patch",
        diagnose=_diagnose_find_top_patch,
        notebook=NOTEBOOK,
        teaches="from the strongest position of an activation map to the image patch it sees",
    ),
]


def check_rf_recurrence(fn: Callable[..., Any]) -> None:
    """Check a student's ``rf_recurrence(layers)``; prints the result, never raises."""
    EXERCISES[0].check(fn)


def check_find_top_patch(fn: Callable[..., Any]) -> None:
    """Check a student's ``find_top_patch(activation_map, image, size, stride, start)``; never raises."""
    EXERCISES[1].check(fn)


# --------------------------------------------------------------------------- prediction questions

PREDICTIONS: list[Prediction] = [
    Prediction(
        grade_id="predict_receptive_field",
        variable="predict_receptive_field",
        notebook="01_what_convnets_learn",
        question="In VGG19, the layers up to relu3_1 are: conv 3x3, conv 3x3, max-pool 2x2 (stride 2), conv 3x3, "
        "conv 3x3, max-pool 2x2 (stride 2), conv 3x3 (all convolutions stride 1). How many input pixels wide "
        "is the patch that one position of relu3_1 sees (its receptive field)?",
        answer=24,
        why="Each layer adds (k - 1) times the current jump between neighbouring positions, and a pool of "
        "stride 2 doubles the jump: 1 + 2 + 2 = 5, + 1 = 6 (jump 2), + 4 + 4 = 14, + 2 = 16 (jump 4), + 8 = 24.",
        hint="Start from r = 1 pixel and a jump j = 1; each layer of kernel k and stride s gives "
        "r = r + (k - 1) * j, then j = j * s.",
    ),
]
