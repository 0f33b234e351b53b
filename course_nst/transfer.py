"""The Neural Style Transfer algorithm of the lecture.

1. Initialise the generated image G (white noise, as in the lecture, or the content
   image).
2. Repeatedly compute J(G) = alpha J_content(C, G) + beta J_style(S, G) on the
   backbone's activations and let an optimiser update the pixels of G.

The targets (the content image's activations and the style image's Gram
matrices) are computed once, before the loop. Each cost evaluation is then one
forward pass of G up to the deepest layer used, the costs, and one backward pass
to the pixels (the network's own parameters are frozen and get no gradients).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from . import controls, costs
from ._fast import WeightCache, bfloat16_pays, fast_features
from .backbones import Backbone, load_backbone
from .errors import InputError
from .images import resize

__all__ = [
    "NonFiniteCostError",
    "Result",
    "StyleTransferObjective",
    "check_fits_in_memory",
    "converged",
    "default_scales",
    "estimate_memory",
    "fast_path_settings",
    "initial_image",
    "output_shape",
    "stage_sizes",
    "stage_steps",
    "style_transfer",
]


@dataclass
class Result:
    """What :func:`style_transfer` returns.

    Attributes:
        image: the best generated image (lowest J at the final size), ``[1,3,H,W]`` in
            [0,1], on the CPU.
        history: one record per cost evaluation: ``{"step", "scale", "J", "J_content",
            "J_style", "J_tv"}`` (floats; ``scale`` is the stage's size relative to the
            final size, and each stage's costs are measured at its own size).
        start: the costs of the starting image, seen at the final size (the "before").
        stopped: why the run ended before ``steps``: ``None`` (it did not),
            ``"converged"`` (J stopped improving, see ``tol``), ``"callback"``,
            ``"interrupted"`` (Ctrl-C) or ``"non-finite"``.
        settings: the settings used (backbone, layers, alpha, beta, ...).
        seconds: wall time of the optimisation loop.
    """

    image: Tensor
    history: list[dict[str, float]] = field(default_factory=list)
    start: dict[str, float] = field(default_factory=dict)
    stopped: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def curve(self, key: str = "J", *, final_size: bool = False) -> list[float]:
        """One cost (``"J"``, ``"J_content"``, ``"J_style"`` or ``"J_tv"``) per evaluation
        (``final_size=True``: only the evaluations at the final size)."""
        return [rec[key] for rec in self.history if not final_size or rec.get("scale", 1.0) == 1.0]

    @property
    def final(self) -> dict[str, float]:
        """The record of the best (returned) image: the lowest J at the final size."""
        last = [r for r in self.history if r.get("scale", 1.0) == 1.0]
        return min(last, key=lambda r: r["J"]) if last else {}

    def save(self, path: str | Path) -> Path:
        from .images import save_image

        return save_image(self.image, path)


class NonFiniteCostError(RuntimeError):
    """The cost became NaN or infinite. ``.result`` holds the last finite image."""

    def __init__(self, message: str, result: Result):
        super().__init__(message)
        self.result = result


# --------------------------------------------------------------------------------------
def _as_image(x: Any) -> Tensor:
    """Tensors pass through; paths, PIL images, arrays and sample names are loaded (at their own size:
    :func:`style_transfer` checks the memory before it resizes)."""
    from . import images

    img = None
    if isinstance(x, str) and not Path(x).exists():
        from . import samples

        if samples.is_sample(x):
            img = samples.load(x)
    if img is None:
        img = images.load_image(x)
    return img


def output_shape(image: Tensor, size: int | None) -> tuple[int, int]:
    """``(H, W)`` of ``image`` with its longer side made ``size`` (``None``: as it is)."""
    H, W = image.shape[-2:]
    if size is None:
        return int(H), int(W)
    scale = size / max(H, W)
    return max(1, round(H * scale)), max(1, round(W * scale))


def initial_image(
    init: str | Tensor,
    content: Tensor | None,
    shape: tuple[int, int],
    seed: int = 0,
) -> Tensor:
    """The starting point of the optimisation, ``[1,3,H,W]`` in [0,1].

    ``"noise"``: white noise, every pixel uniform in [0,1] (the lecture's step 1).
    ``"content"``: a copy of the content image.
    ``"content+noise"``: ``0.6 * noise + 0.4 * content``, white noise mixed with the content
        image (a noise ratio of 0.6, as in the Coursera assignment's start), already in [0,1].
    A tensor: used as given (resized to the content's size if needed).
    """
    H, W = shape
    gen = torch.Generator().manual_seed(int(seed))
    if isinstance(init, Tensor):
        from .images import load_image

        img = load_image(init)
        if img.shape[-2:] != (H, W):
            img = F.interpolate(img, size=(H, W), mode="bilinear", align_corners=False, antialias=True)
        return img.clamp(0, 1)
    if init == "noise":
        return torch.rand(1, 3, H, W, generator=gen)
    if init in ("content", "content+noise"):
        if content is None:
            raise InputError(f"init={init!r} needs a content image")
        if init == "content":
            return content.clone()
        noise = torch.rand(1, 3, H, W, generator=gen)
        return 0.6 * noise + 0.4 * content
    raise InputError(f"unknown init {init!r}; use 'noise', 'content', 'content+noise' or an image tensor")


class StyleTransferObjective:
    """J(G) for fixed C and S: the targets are computed once, then ``__call__`` is cheap.

    ``objective(G)`` returns a dict of 0-d tensors ``J, J_content, J_style, J_tv``; J is
    differentiable with respect to G. ``winograd``, ``bfloat16``: see :func:`style_transfer`.

    ``style`` may be one image or a list of images. Without ``masks``, their Gram matrices
    are blended with ``style_weights`` (normalised to sum 1; default equal) into one target
    per layer. With ``masks`` (one ``[1,1,H,W]`` mask per style, at the generated image's
    size), style r is the target of the guided Gram matrix of region r, and each region's
    cost is weighted by its style weight (normalised to average 1).
    """

    def __init__(
        self,
        backbone: Backbone,
        content: Tensor | None,
        style: Tensor | Sequence[Tensor] | None,
        *,
        content_layer: str,
        style_layers: Mapping[str, float],
        alpha: float,
        beta: float,
        tv_weight: float,
        out_shape: tuple[int, int],
        winograd: bool = False,
        bfloat16: bool = False,
        style_weights: Sequence[float] | None = None,
        masks: Sequence[Tensor] | None = None,
    ):
        self.backbone = backbone
        self.winograd = bool(winograd)
        self.bfloat16 = bool(bfloat16)
        self.alpha, self.beta, self.tv_weight = float(alpha), float(beta), float(tv_weight)
        self.use_content = content is not None and self.alpha != 0.0
        self.use_style = style is not None and self.beta != 0.0 and bool(style_layers)
        self.content_layer = content_layer
        self.style_layers = dict(style_layers) if self.use_style else {}
        self.layers = list(dict.fromkeys(([content_layer] if self.use_content else []) + list(self.style_layers)))
        backbone.check_layers(self.layers)
        dev = backbone.device
        H, W = out_shape
        # channels_last / BN-folded weights of the fast path, kept for this objective's life
        self._weights_cache = WeightCache()
        with torch.inference_mode():
            # the shape of every layer used, for the generated image's size (one pass)
            probe = backbone.features(torch.zeros(1, 3, H, W, device=dev), self.layers) if self.layers else {}
            self.a_C: Tensor | None = None
            if content is not None and self.use_content:
                self.a_C = self._features(content.to(dev), [content_layer])[content_layer].clone()
            self.gram_S: dict[str, Tensor] = {}
            # with masks: per layer, one (mask at the layer's size, target, weight) per region
            self.regions: dict[str, list[tuple[Tensor, Tensor, float]]] = {}
            if style is not None and self.use_style:
                self._style_targets(style, style_weights, masks, probe)
        # the layer masks are used in autograd: normal tensors, not inference-mode ones
        self.regions = {n: [(m.clone(), t, w) for m, t, w in rs] for n, rs in self.regions.items()}
        if self.a_C is not None and self.a_C.shape != probe[content_layer].shape:
            raise InputError("the content image and the generated image must have the same size")

    def _style_targets(
        self,
        style: Tensor | Sequence[Tensor],
        style_weights: Sequence[float] | None,
        masks: Sequence[Tensor] | None,
        probe: Mapping[str, Tensor],
    ) -> None:
        styles = [style] if isinstance(style, Tensor) else list(style)
        weights = controls.check_style_weights(style_weights, len(styles))
        dev = self.backbone.device
        grams: list[dict[str, Tensor]] = []
        for S in styles:
            acts_S = self._features(S.to(dev), list(self.style_layers))
            # rescale G(S) by the layer's positions when the style image has another
            # size (see costs.layer_style_cost)
            grams.append(
                {
                    name: costs.style_target(a_S, probe[name].shape[2], probe[name].shape[3])
                    for name, a_S in acts_S.items()
                }
            )
        for name in self.style_layers:
            if masks is None:  # the blend: one target, the weighted mean of the Gram matrices
                target = weights[0] * grams[0][name]
                for w, g in zip(weights[1:], grams[1:], strict=True):
                    target = target + w * g[name]
                self.gram_S[name] = target.clone()
                continue
            self.regions[name] = []
            pos_G = probe[name].shape[2] * probe[name].shape[3]
            for w, g, mask in zip(weights, grams, masks, strict=True):
                m = controls.layer_mask(mask.to(dev), (probe[name].shape[-2], probe[name].shape[-1]))
                # the region's share of the positions, counted as the guided Gram matrix counts them
                share = float((m * m).sum()) / pos_G
                self.regions[name].append((m.clone(), (g[name] * share).clone(), w * len(styles)))

    def _features(self, image: Tensor, layers: list[str]) -> dict[str, Tensor]:
        # Backbone.features' activations, computed by its fast path (channels_last)
        return fast_features(
            self.backbone, image, layers, self._weights_cache, winograd=self.winograd, bfloat16=self.bfloat16
        )

    def __call__(self, G: Tensor) -> dict[str, Tensor]:
        zero = G.new_zeros(())
        acts = self._features(G, self.layers) if self.layers else {}
        J_content = costs.content_cost(self.a_C, acts[self.content_layer]) if self.a_C is not None else zero
        J_style = zero
        for name, lam in self.style_layers.items():
            if name in self.regions:  # guided Gram matrices, one per region
                for m, target, w in self.regions[name]:
                    J_style = J_style + lam * w * costs.layer_style_cost(None, acts[name] * m, gram_S=target)
                continue
            J_style = J_style + lam * costs.layer_style_cost(None, acts[name], gram_S=self.gram_S[name])
        J = costs.total_cost(J_content, J_style, self.alpha, self.beta)
        J_tv = costs.total_variation(G) if self.tv_weight else zero
        if self.tv_weight:
            J = J + self.tv_weight * J_tv
        return {"J": J, "J_content": J_content, "J_style": J_style, "J_tv": J_tv}


def _check_positive(value: Any, what: str, *, integer: bool = False, allow_zero: bool = False) -> None:
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if (
        isinstance(value, bool)
        or not ok_type
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        kind = "an integer" if integer else "a number"
        bound = ">= 0" if allow_zero else "> 0"
        raise InputError(f"{what} must be {kind} {bound}, got {value!r}")


# --------------------------------------------------------------------------------------
# The schedule: coarse to fine
# --------------------------------------------------------------------------------------
#: The smallest side a stage may have: below it VGG19's pool5 has no positions left.
MIN_STAGE_SIDE = 32


def default_scales(long_side: int) -> tuple[float, ...]:
    """The coarse-to-fine schedule :func:`style_transfer` uses unless told otherwise.

    Up to 160 px: one stage at full size (the lecture's algorithm as it stands). Up to
    384 px: half size, then full size. Larger: a quarter, a half, then full size. Each
    coarse stage costs a quarter of the next per evaluation, lays out the image's large
    structures without low-frequency blotches, and hands the next stage a start much
    closer to the end than white noise (measured in ``benchmarks/bench_time_to_image.py``).
    """
    if long_side <= 160:
        return (1.0,)
    if long_side <= 384:
        return (0.5, 1.0)
    return (0.25, 0.5, 1.0)


def stage_sizes(scales: Sequence[float], shape: tuple[int, int]) -> list[tuple[int, int]]:
    """``(H, W)`` of each stage: the final ``shape`` times each scale (at least 32 px a side)."""
    H, W = shape
    out = []
    for s in scales:
        h, w = max(1, round(H * s)), max(1, round(W * s))
        if min(h, w) < MIN_STAGE_SIDE and s != 1.0:
            continue  # too small to say anything: skip the stage
        out.append((h, w))
    return out


def stage_steps(steps: int | Sequence[int], n_stages: int) -> list[int]:
    """Evaluations per stage: ``steps`` split so that each coarser stage gets twice as many
    as the next finer one (it costs about a quarter as much per evaluation), or one number
    per stage as given. ``stage_steps(300, 2) == [200, 100]``."""
    if isinstance(steps, int) and not isinstance(steps, bool):
        _check_positive(steps, "steps", integer=True)
        if steps < n_stages:
            raise InputError(f"steps={steps} is fewer than the {n_stages} stages of the schedule; use scales=(1.0,)")
        weights = [2 ** (n_stages - 1 - i) for i in range(n_stages)]
        counts = [max(1, round(steps * w / sum(weights))) for w in weights[:-1]]
        return [*counts, max(1, steps - sum(counts))]
    if isinstance(steps, int):  # a bool
        raise InputError(f"steps must be an integer > 0, got {steps!r}")
    counts = list(steps)
    if len(counts) != n_stages:
        raise InputError(f"steps has {len(counts)} entries but the schedule has {n_stages} stages; give one per stage")
    for n in counts:
        _check_positive(n, "every entry of steps", integer=True)
    return counts


def fast_path_settings(
    backbone: Backbone, shape: tuple[int, int], *, winograd: bool | None = None, bfloat16: bool | None = None
) -> dict[str, bool]:
    """``{"winograd": ..., "bfloat16": ...}``: how :func:`style_transfer` computes the network
    for an image of ``shape`` (``None``: its default; see its docstring), to build a
    :class:`StyleTransferObjective` whose evaluations cost what its evaluations cost."""
    if winograd and bfloat16:
        raise InputError("winograd=True computes in float32: it cannot be combined with bfloat16=True")
    if bfloat16 is None:
        bfloat16 = not winograd and bfloat16_pays(backbone)
    if winograd is None:
        winograd = not bfloat16 and backbone.device.type == "cpu" and max(shape) <= 384
    return {"winograd": winograd, "bfloat16": bfloat16}


# --------------------------------------------------------------------------------------
# Memory: refuse a run that cannot fit before it starts
# --------------------------------------------------------------------------------------
#: Peak memory of a style-transfer run per pixel of the generated image (bytes, with the
#: default layers), and the size-independent part (the network, its cached fast-path weights,
#: the allocator's slack). Measured with ``benchmarks/bench_time_to_image.py --memory-only``
#: (peak RSS of three evaluations in a fresh process) at 512 and 1024 px: VGG19 1,700 B/px,
#: efficientnet_lite0 930 B/px; the constants add about 15% so that a run that is let start
#: fits. (Below 384 px VGG19's Winograd path needs more per pixel, but a few hundred MB at most.)
#: A whole run also keeps L-BFGS's history, which three evaluations do not show: see
#: :data:`LBFGS_HISTORY`.
BYTES_PER_PIXEL = {"vgg19": 2000.0, "efficientnet_lite0": 1100.0}
#: How many past steps L-BFGS remembers: two float32 images each (the step and the change of
#: gradient), 24 bytes per pixel per remembered step.
LBFGS_HISTORY = 50
BYTES_FIXED = {"vgg19": 700e6, "efficientnet_lite0": 250e6}


def estimate_memory(backbone: Backbone | str, shape: tuple[int, int]) -> float:
    """Estimated peak bytes of a style-transfer run whose final image is ``shape`` = (H, W)."""
    name = backbone if isinstance(backbone, str) else backbone.name
    H, W = shape
    return BYTES_FIXED.get(name, 700e6) + _bytes_per_pixel(name) * H * W


def _bytes_per_pixel(name: str) -> float:
    return BYTES_PER_PIXEL.get(name, 2000.0) + LBFGS_HISTORY * 2 * 3 * 4


def available_memory(device: torch.device) -> float:
    """Bytes the run may use on ``device``: free GPU memory, or the machine's available RAM."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return float(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return math.inf  # unknown (not Linux): do not refuse


def check_fits_in_memory(backbone: Backbone, shape: tuple[int, int]) -> None:
    """Raise a one-line InputError, saying which size would fit, if the run cannot fit."""
    need, have = estimate_memory(backbone, shape), available_memory(backbone.device)
    if need <= have:
        return
    H, W = shape
    name = backbone.name
    per_pixel = _bytes_per_pixel(name)
    fits_pixels = max(0.0, (have - BYTES_FIXED.get(name, 700e6)) / per_pixel)
    fits_long = int(math.sqrt(fits_pixels * max(H, W) / min(H, W)))
    raise InputError(
        f"a {W}x{H} image with {name} needs about {need / 1e9:.1f} GB but only {have / 1e9:.1f} GB is free "
        f"on {backbone.device.type}; use a size of at most about {fits_long} px"
        + (" (or efficientnet_lite0)" if name == "vgg19" else "")
    )


# --------------------------------------------------------------------------------------
# One stage of optimisation
# --------------------------------------------------------------------------------------
def converged(curve: Sequence[float], window: int, tol: float) -> bool:
    """True when the best J has improved by less than ``tol`` (relative) over ``window`` evaluations."""
    if tol <= 0 or len(curve) <= window:
        return False
    before, now = min(curve[:-window]), min(curve)
    return before - now <= tol * abs(before)


#: L-BFGS's first step moves the most-changed pixel by this much (times ``lr``; pixels in [0, 1]).
#: torch's own first step, ``lr / sum |g|``, moves each pixel about 1e-5; the curvature that the
#: second step is scaled by is then measured over almost no distance, and from a good start
#: (the content image) VGG19's cost jumped from 1e13 to inf at the second step (128 px, chelsea
#: in the swirls). Measured with a first step of 0.01 / 0.05 / 0.1 / 0.2 / 0.3: 0.01 still
#: overflowed, 0.05 overshot 20-fold once, 0.1-0.3 fell steadily from the content, from white
#: noise and from an upsampled coarse result, at 128 and 256 px (after 60-80 evaluations within
#: 5% of each other, 0.2 best or equal-best).
FIRST_STEP = 0.2
#: No L-BFGS step moves a pixel by more than this (times ``lr``). L-BFGS scales its steps by the
#: curvature it has measured along its last steps; early on that estimate can be far too flat,
#: and the step then overshoots: chelsea in the stained glass (the style image at half the size
#: of G, from the content, 128 px) jumped from 6.5e13 to 7e14 at the third evaluation and never
#: came back below 4.3e13 in 60 (restarting L-BFGS from the best image did not help: the same
#: overshoot came back). With the cap at 0.2 (the size of the first step): 2.7e11, and on six other
#: pairs and starts no evaluation above the start and J after 60 evaluations within 6% of the
#: uncapped runs or lower (0.1: up to 18% higher).
MAX_STEP = 0.2


def _limit_step(opt: torch.optim.Optimizer, G: Tensor, before: Tensor, limit: float) -> None:
    """Shorten the L-BFGS step just taken so that no pixel moved by more than ``limit``.

    The step is ``t * d`` (torch keeps both in the optimiser's state, and the next iteration
    takes its curvature pair from ``s = t * d``): shortening it means scaling ``t`` too.
    """
    step = G - before
    largest = float(step.abs().max())
    if largest <= limit:
        return
    shrink = limit / largest
    G.copy_(before + step * shrink)
    state = opt.state[G]
    state["t"] = state["t"] * shrink


def _optimise(
    objective: StyleTransferObjective,
    G: Tensor,
    steps: int,
    *,
    optimizer: str,
    lr: float,
    tol: float,
    window: int,
    on_record: Callable[[Tensor, dict[str, float]], bool],
) -> tuple[Tensor, str | None]:
    """Optimise the pixels of ``G`` for up to ``steps`` evaluations of ``objective``.

    ``on_record(image, record)`` is called after each evaluation with the clamped image;
    it returns True to stop. Returns the best image (lowest J) and why the stage ended
    early (``None``, ``"converged"`` or ``"callback"``). Ctrl-C and a non-finite cost
    propagate (as KeyboardInterrupt and NonFiniteCostError) to the caller.
    """
    G = G.detach().clone().requires_grad_(True)
    curve: list[float] = []
    best = (math.inf, G.detach().clamp(0, 1).cpu())
    stop: list[str] = []
    ready: list[Tensor] = []  # J at the start, evaluated before the first step (its gradient is in G.grad)

    def closure() -> Tensor:
        nonlocal best
        if ready:
            return ready.pop()
        G.grad = None
        terms = objective(G)
        J = terms["J"]
        record = {k: float(v.detach()) for k, v in terms.items()}
        if not math.isfinite(record["J"]):
            raise NonFiniteCostError(f"the cost became {record['J']}", Result(image=best[1]))
        J.backward()  # type: ignore[no-untyped-call]
        image = G.detach().clamp(0, 1).cpu()
        curve.append(record["J"])
        if record["J"] < best[0]:
            best = (record["J"], image)
        if on_record(image, record):
            stop.append("callback")
        return J

    def start_lbfgs() -> torch.optim.Optimizer:
        # torch's first L-BFGS step is -g * lr / max(sum |g|, 1): this lr makes its largest change FIRST_STEP * lr
        new = torch.optim.LBFGS([G], lr=lr, max_iter=1, history_size=LBFGS_HISTORY)
        ready.append(closure())
        g = G.grad.abs()  # type: ignore[union-attr]
        if float(g.max()) > 0:
            new.param_groups[0]["lr"] = FIRST_STEP * lr * max(float(g.sum()), 1.0) / float(g.max())
        return new

    opt = start_lbfgs() if optimizer == "lbfgs" and steps > 0 else torch.optim.Adam([G], lr=lr)
    while len(curve) < steps and not stop:
        before = G.detach().clone() if optimizer == "lbfgs" else None
        opt.step(closure)  # type: ignore[arg-type]
        opt.param_groups[0]["lr"] = lr  # only L-BFGS's first step has its own size (start_lbfgs), later ones lr
        with torch.no_grad():
            if before is not None:
                _limit_step(opt, G, before, MAX_STEP * lr)
            G.clamp_(0, 1)
        if not stop and converged(curve, window, tol):
            stop.append("converged")
    return best[1], (stop[0] if stop else None)


def style_transfer(
    content: Any,
    style: Any,
    *,
    backbone: Backbone | str | None = None,
    size: int | None = None,
    steps: int | Sequence[int] | None = None,
    scales: Sequence[float] | None = None,
    tol: float = 1e-3,
    window: int = 25,
    optimizer: str = "lbfgs",
    lr: float | None = None,
    init: str | Tensor = "noise",
    alpha: float | None = None,
    beta: float | None = None,
    content_layer: str | None = None,
    style_layers: Mapping[str, float] | list[str] | None = None,
    tv_weight: float | None = None,
    seed: int = 0,
    callback: Callable[[int, Tensor, dict[str, float]], Any] | None = None,
    progress: bool = True,
    winograd: bool | None = None,
    bfloat16: bool | None = None,
    colour: str | None = None,
    style_weights: Sequence[float] | None = None,
    masks: Sequence[Tensor] | None = None,
    style_scale: float = 1.0,
) -> Result:
    """Generate an image with the content of ``content`` and the style of ``style``.

    Args:
        content: the content image C (tensor ``[1,3,H,W]`` in [0,1], path, PIL image,
            array or sample name). ``None`` for a pure style reconstruction (then
            ``size`` sets the output size, in the style image's aspect).
        style: the style image S (any size or aspect). ``None`` for a pure content
            reconstruction.
        backbone: a :class:`Backbone`, a name, or ``None`` for ``load_backbone("auto")``.
        size: longer side, in pixels, to resize the content image to (``None``: as given).
        steps: the most cost evaluations in all (``None``: the backbone's default), split
            among the stages of the schedule by :func:`stage_steps`, or one number per stage.
        scales: the coarse-to-fine schedule, fractions of the final size ending with 1,
            e.g. ``(0.5, 1.0)``: optimise at half size, upsample the result, finish at full
            size. ``None``: :func:`default_scales` of the size; ``(1.0,)`` is the lecture's
            algorithm exactly. At a coarse stage alpha and tv_weight are multiplied by the
            ratio of the numbers of pixels (J_content and the total variation grow with
            them, J_style does not), so every stage strikes the final size's balance.
        tol, window: a stage stops early when its best J has improved by less than
            ``tol`` (relative) over the last ``window`` evaluations (``tol=0``: never).
        optimizer: ``"lbfgs"`` (default; one evaluation per step) or ``"adam"``.
        lr: learning rate (``None``: 1.0 for L-BFGS, 0.02 for Adam).
        init: ``"noise"`` (the lecture's white noise), ``"content"``,
            ``"content+noise"``, or an image tensor (at the first stage's size).
        alpha, beta: weights of J_content and J_style (``None``: backbone defaults; the
            default beta grows with the image's pixels, see ``BackboneDefaults.beta_for``, so
            that the balance is the same at every size; a number given is used as it is).
        content_layer: layer name for J_content (``None``: backbone default).
        style_layers: ``{layer: lambda}`` or a list of layers (equal lambdas summing to 1).
        tv_weight: weight of an optional total-variation smoothness term (``None``:
            backbone default; ``0`` for the lecture's cost exactly).
        seed: seeds the initial noise; a CPU run with the same seed gives the same
            image bit for bit.
        callback: ``callback(step, image, record)`` after each evaluation; return True
            to stop.
        progress: show a progress bar.
        winograd: on the CPU, compute VGG19's wide 3x3 convolutions (conv2_2 and deeper)
            with Winograd's F(4x4, 3x3) algorithm: each evaluation about 1.3-1.4x faster,
            for about 170 MB more memory and float32 rounding ~10x larger (still ~1e-5).
            ``None`` (default): on where it is faster within the memory goal (a CPU,
            images up to 384 px, float32; see ``benchmarks/README.md``). No effect on
            efficientnet_lite0 or on a GPU.
        bfloat16: run the network in bfloat16 (the costs, their sums and the gradient
            stay float32): on a CPU with bfloat16 instructions (AVX512-BF16, AMX), a VGG19
            run ends about 1.6x sooner, its activations about 0.5% off float32's, and its
            final J within about 1% of float32's (``benchmarks/README.md``).
            The J in ``history`` is then the one bfloat16 computed. ``None`` (default): on
            where it is faster (such a CPU and a network of dense convolutions, i.e. VGG19;
            ``course_nst._fast.bfloat16_pays``), else off. Winograd's form is float32
            only: ``winograd=True`` turns the default off, and asking for both is an error.

    Controls (Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style Transfer";
    the maths is in :mod:`course_nst.controls`):
        colour: ``None`` (the style's colours), ``"luminance"`` (transfer on the luminance Y
            only, the style's Y matched to the content's mean and std, then the result's Y
            with the content's colour channels I, Q of YIQ) or ``"histogram"`` (the style's
            colours given the content's mean and covariance before the run).
        style: may also be a list of style images; ``style_weights`` blends them (one number
            >= 0 per style, normalised to sum 1; default equal): the Gram target of each
            layer is the weighted mean of the styles' Gram matrices.
        masks: one mask per style, ``[1,1,H,W]`` in [0,1] over the content image (its size as
            given or after ``size``): style r is matched by the guided Gram matrices of
            region r, so each region takes its own style.
        style_scale: the style image's longer side relative to the output's (default 1):
            a style image scaled up by 2 has strokes twice as large, and so has the result.

    Returns:
        :class:`Result` with the best image of the last stage and one history record per
        evaluation. Ctrl-C stops the run and returns the best image so far
        (``result.stopped == "interrupted"``). A NaN or infinite cost raises
        :class:`NonFiniteCostError`, whose ``.result`` keeps the last finite image.
    """
    if backbone is None or isinstance(backbone, str):
        backbone = load_backbone(backbone or "auto")
    if not isinstance(backbone, Backbone):
        raise InputError(f"backbone must be a Backbone or a name, got {type(backbone).__name__}")
    d = backbone.defaults
    steps = d.steps if steps is None else steps
    alpha = d.alpha if alpha is None else alpha
    tv_weight = d.tv_weight if tv_weight is None else tv_weight
    content_layer = d.content_layer if content_layer is None else content_layer
    if style_layers is None:
        style_layers = dict(d.style_layers)
    elif not isinstance(style_layers, Mapping):
        style_layers = list(style_layers)
        style_layers = {n: 1.0 / len(style_layers) for n in style_layers} if style_layers else {}
    if size is not None:
        _check_positive(size, "size", integer=True)
    for value, what in ((alpha, "alpha"), (beta, "beta"), (tv_weight, "tv_weight"), (tol, "tol")):
        if value is not None:
            _check_positive(value, what, allow_zero=True)
    _check_positive(window, "window", integer=True)
    for lam in style_layers.values():
        _check_positive(lam, "every style-layer weight lambda", allow_zero=True)
    backbone.check_layers([content_layer, *style_layers])
    if optimizer not in ("lbfgs", "adam"):
        raise InputError(f"optimizer must be 'lbfgs' or 'adam', got {optimizer!r}")
    lr = (1.0 if optimizer == "lbfgs" else 0.02) if lr is None else lr
    _check_positive(lr, "lr")
    if content is None and style is None:
        raise InputError("give a content image, a style image, or both")
    if winograd is not None and not isinstance(winograd, bool):
        raise InputError(f"winograd must be True, False or None, got {winograd!r}")
    if bfloat16 is not None and not isinstance(bfloat16, bool):
        raise InputError(f"bfloat16 must be True, False or None, got {bfloat16!r}")

    if colour not in controls.COLOUR_MODES:
        raise InputError(f"colour must be None, 'luminance' or 'histogram', got {colour!r}")
    if colour is not None and (content is None or style is None):
        raise InputError(f"colour={colour!r} needs a content image and a style image")
    style_scale = controls.check_style_scale(style_scale)
    style_list = list(style) if isinstance(style, (list, tuple)) else None
    if style_list is not None and not style_list:
        raise InputError("style is an empty list; give at least one style image")
    styles = [_as_image(s) for s in style_list] if style_list is not None else None
    if styles is not None:
        controls.check_style_weights(style_weights, len(styles))
    elif style_weights is not None:
        controls.check_style_weights(style_weights, 1)
    C0 = _as_image(content) if content is not None else None
    if masks is not None and C0 is None:
        raise InputError("masks are over the content image; give a content image")
    S = styles[0] if styles is not None else (_as_image(style) if style is not None else None)
    H, W = output_shape(C0 if C0 is not None else S, size)  # type: ignore[arg-type]
    if beta is None:  # the default balance holds at every size (BackboneDefaults.beta_for)
        beta = d.beta_for((H, W))
    check_fits_in_memory(backbone, (H, W))  # before anything of that size is made
    C = C0
    if C is not None and tuple(C.shape[-2:]) != (H, W):
        C = resize(C, (H, W))
    if scales is None:
        scales = default_scales(max(H, W))
    scales = [float(s) for s in scales]
    if not scales or scales[-1] != 1.0 or any(not 0 < s <= 1 for s in scales) or scales != sorted(scales):
        raise InputError(f"scales must rise to 1.0, each in (0, 1], e.g. (0.5, 1.0); got {tuple(scales)}")
    sizes = stage_sizes(scales, (H, W))
    per_stage = stage_steps(steps, len(sizes))
    fast = fast_path_settings(backbone, (H, W), winograd=winograd, bfloat16=bfloat16)
    winograd, bfloat16 = fast["winograd"], fast["bfloat16"]
    if styles is None and S is not None:
        styles = [S]
    if styles is not None:  # the style's long side is style_scale times the stage's long side
        smallest = round(style_scale * max(sizes[0]))
        if smallest < 16:
            raise InputError(f"style_scale={style_scale:g} makes the style image {smallest} px; use a larger scale")
    if masks is not None:
        if C0 is None:
            raise InputError("masks lie over the content image: give a content image")
        masks = controls.check_masks(
            masks, len(styles) if styles is not None else 1, (C0.shape[-2], C0.shape[-1]), (H, W)
        )
    colour_C = C  # the content's colours, for colour="luminance"
    if colour is not None:
        if C is None or styles is None:
            raise InputError(f"colour={colour!r} needs both a content and a style image")
        C, styles = _colour_inputs(colour, C, styles)
        S = styles[0]

    settings = dict(
        backbone=backbone.name,
        weights=backbone.weights,
        size=(H, W),
        steps=steps,
        scales=tuple(scales),
        stages=tuple(sizes),
        tol=tol,
        window=window,
        optimizer=optimizer,
        lr=lr,
        init=init if isinstance(init, str) else "tensor",
        alpha=alpha,
        beta=beta,
        content_layer=content_layer if C is not None and alpha != 0 else None,
        style_layers=dict(style_layers) if S is not None and beta != 0 else {},
        tv_weight=tv_weight,
        seed=seed,
        winograd=winograd,
        bfloat16=bfloat16,
        colour=colour,
        styles=len(styles) if styles is not None else int(S is not None),
        style_weights=controls.check_style_weights(style_weights, len(styles)) if styles is not None else None,
        masks=len(masks) if masks is not None else 0,
        style_scale=style_scale,
    )
    h0, w0 = sizes[0]
    G = initial_image(init, None if C is None else resize(C, (h0, w0)), (h0, w0), seed)
    result = Result(image=resize(G, (H, W)), settings=settings)
    bar = None
    if progress:
        from .progress import progress_bar

        bar = progress_bar(total=sum(per_stage), desc="style transfer")

    def make_objective(h: int, w: int) -> StyleTransferObjective:
        more = (H * W) / (h * w)  # J_content and the total variation grow with the pixels
        return StyleTransferObjective(
            backbone,
            None if C is None else resize(C, (h, w)),
            # the style's long side is style_scale times the stage's
            None if styles is None else _stage_styles(styles, round(style_scale * max(h, w)), style_list is None),
            content_layer=content_layer,
            style_layers=style_layers,
            alpha=alpha * more,
            beta=beta,
            tv_weight=tv_weight * more,
            out_shape=(h, w),
            winograd=winograd,
            bfloat16=bfloat16,
            style_weights=style_weights,
            masks=None if masks is None else [controls.resize_mask(m, (h, w)) for m in masks],
        )

    start_full = resize(G, (H, W))  # the starting image, seen at the final size
    stage_best: dict[str, Any] = {}
    final_stage = False
    t0 = time.perf_counter()
    try:
        for stage, ((h, w), n) in enumerate(zip(sizes, per_stage, strict=True)):
            final_stage = stage == len(sizes) - 1
            if stage > 0:
                G = F.interpolate(G, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
            objective = make_objective(h, w)
            if final_stage:
                with torch.inference_mode():
                    result.start = {k: float(v) for k, v in objective(start_full.to(backbone.device)).items()}
            stage_best.clear()

            def on_record(
                image: Tensor, record: dict[str, float], h: int = h, w: int = w, final_stage: bool = final_stage
            ) -> bool:
                rec = {"step": float(len(result.history) + 1), "scale": h / H, **record}
                result.history.append(rec)
                if rec["J"] < stage_best.get("J", math.inf):
                    stage_best.update(J=rec["J"], image=image)
                    result.image = image if final_stage else result.image
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(J=f"{rec['J']:.4g}", size=f"{w}x{h}")
                return bool(callback is not None and callback(len(result.history), image, rec))

            G, why = _optimise(
                objective,
                G.to(backbone.device),
                n,
                optimizer=optimizer,
                lr=lr,
                tol=tol,
                window=window,
                on_record=on_record,
            )
            del objective
            if why == "callback" or final_stage:
                result.stopped = why
                break
    except KeyboardInterrupt:
        result.stopped = "interrupted"
        print(f"interrupted after {len(result.history)} evaluations: returning the best image so far")
    except NonFiniteCostError as e:
        result.stopped = "non-finite"
        result.seconds = time.perf_counter() - t0
        if "image" in stage_best and not final_stage:
            result.image = resize(stage_best["image"], (H, W))
        if colour == "luminance" and colour_C is not None:
            result.image = controls.recombine_luminance(result.image, colour_C)
        raise NonFiniteCostError(
            f"{e} at evaluation {len(result.history) + 1}; "
            "lower lr, alpha or beta (the last finite image is in .result)",
            result,
        ) from None
    finally:
        if bar is not None:
            bar.close()
    if not result.final and "image" in stage_best:  # stopped before the last stage: its best, upsampled
        result.image = resize(stage_best["image"], (H, W))
    result.seconds = time.perf_counter() - t0
    if colour == "luminance" and colour_C is not None:  # the result's luminance with the content's colours
        result.image = controls.recombine_luminance(result.image, colour_C)
    if result.final and result.start and result.final["J"] >= result.start["J"]:
        warnings.warn(
            f"the cost never decreased in {len(result.history)} evaluations: the result is the "
            "starting image; lower lr, or check alpha, beta and the images",
            RuntimeWarning,
            stacklevel=2,
        )
    return result


def _stage_styles(styles: list[Tensor], long_side: int, single: bool) -> Tensor | list[Tensor]:
    """The style images at one stage: their long side ``long_side`` (style_scale times the stage's)."""
    out = [resize(s, long_side) for s in styles]
    return out[0] if single else out


def _colour_inputs(colour: str, C: Tensor, S: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
    """The content and style images the run sees for ``colour`` (see :mod:`course_nst.controls`).

    ``"histogram"``: each style recoloured to the content's colour mean and covariance.
    ``"luminance"``: the content's luminance, and each style's luminance matched to it
    (mean and std), as gray images (Y in the three channels, for the network).
    """
    if colour == "histogram":
        return C, [controls.match_colour_histogram(s, C).clamp(0, 1) for s in S]
    Y_C = controls.luminance(C)
    out = [controls.match_luminance(controls.luminance(s), Y_C).clamp(0, 1).repeat(1, 3, 1, 1) for s in S]
    return Y_C.clamp(0, 1).repeat(1, 3, 1, 1), out
