"""Receptive fields: the recurrence, the values for VGG19, and brute-force gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_nst import InputError
from course_nst.backbones import Backbone, BackboneDefaults, InputNormalization
from course_nst.checks.convnets import EXERCISES, _recurrence, check_rf_recurrence
from course_nst.receptive_field import (
    ReceptiveField,
    layer_geometry,
    patch_box,
    receptive_field,
    receptive_fields,
    rf_recurrence,
)

DEFAULTS = BackboneDefaults("a", {"a": 1.0}, 1.0, 1.0, 0.0, 1)


def measured_box(backbone: Backbone, image: torch.Tensor, layer: str, row: int, col: int):
    """Bounding box (top, left, bottom, right; exclusive) of the pixels with a non-zero gradient."""
    x = image.clone().requires_grad_(True)
    with torch.enable_grad():
        h = backbone.preprocess(x)
        for name in backbone.layer_names[: backbone.layer_names.index(layer) + 1]:
            h = backbone.layers[name](h)
        # every channel of the unit: a channel whose path is gated off by ReLU does not hide pixels
        (g,) = torch.autograd.grad(h[0, :, row, col].sum(), x)
    nz = g[0].abs().sum(0) > 0
    rows = torch.nonzero(nz.any(1)).flatten()
    cols = torch.nonzero(nz.any(0)).flatten()
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def expected_box(rf: ReceptiveField, row, col, H, W):
    top, left, bottom, right = rf.box(row, col)
    return max(top, 0), max(left, 0), min(bottom, H), min(right, W)


# --------------------------------------------------------------------------- recurrence
def test_recurrence_small_stack():
    assert rf_recurrence([(3, 1, 1), (3, 1, 1), (2, 2, 0)]) == [(3, 1, 0.0), (5, 1, 0.0), (6, 2, 0.5)]
    assert rf_recurrence([]) == []
    # a dilated 3x3 (d=2) spans 5 pixels
    assert rf_recurrence([(3, 1, 2, 2)]) == [(5, 1, 0.0)]
    # padding moves the first centre; stride only matters for the next layer
    assert rf_recurrence([(5, 2, 0), (3, 2, 0)]) == [(5, 2, 2.0), (9, 4, 4.0)]


@pytest.mark.parametrize("bad", [[(3, 1)], [(0, 1, 0)], [(3, 1, -1)], [("a", 1, 1)], [3]])
def test_recurrence_rejects_bad_layers(bad):
    with pytest.raises(InputError):
        rf_recurrence(bad)


def test_vgg19_values(vgg_random):
    rf = receptive_fields(vgg_random)
    assert list(rf) == vgg_random.layer_names
    assert rf["conv1_1"].size == 3 and rf["conv1_1"].stride == 1
    assert rf["conv3_1"].size == rf["relu3_1"].size == 24 and rf["conv3_1"].stride == 4
    assert rf["conv4_2"].size == 84 and rf["conv4_2"].stride == 8
    assert rf["conv5_1"].size == 156 and rf["conv5_1"].stride == 16
    assert rf["pool5"].as_tuple() == (268, 32, 15.5)
    assert receptive_field(vgg_random, "conv4_2") == rf["conv4_2"]
    # the package and the exercise's reference agree on VGG19's stack
    stack = [g[:3] for n in vgg_random.layer_names for g in layer_geometry(vgg_random.layers[n])]
    assert tuple(rf["pool5"].as_tuple()) == tuple(_recurrence(stack)[-1])


def test_unknown_layer(vgg_random):
    with pytest.raises(InputError, match="unknown layer 'conv9_9'.*conv1_1"):
        receptive_field(vgg_random, "conv9_9")


def test_box_and_centre():
    rf = ReceptiveField(16, 4, 1.5)
    assert rf.centre(2, 3) == (9.5, 13.5)
    assert rf.box(2, 3) == (2, 6, 18, 22)
    assert rf.jump == 4
    # an odd size: the box is centred on the unit, one whole pixel each side of the centre
    assert patch_box(3, 2, 0.0, 1, 2) == (1, 3, 4, 6)


def test_one_layer_or_all(vgg_random):
    """receptive_field gives one ReceptiveField; receptive_fields the table (a layer name is required)."""
    assert isinstance(receptive_field(vgg_random, "conv1_1"), ReceptiveField)
    assert list(receptive_fields(vgg_random, upto="pool1")) == vgg_random.layer_names[:5]
    with pytest.raises(InputError, match="receptive_fields"):
        receptive_field(vgg_random, None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- brute force
@pytest.mark.parametrize("layer", ["conv1_2", "pool1", "conv2_2", "conv3_1", "pool3", "conv4_2"])
def test_vgg19_against_gradient(vgg_random, layer):
    H = W = 96
    torch.manual_seed(0)
    image = torch.rand(1, 3, H, W)
    rf = receptive_field(vgg_random, layer)
    n = (H - 1) // rf.stride  # a unit near the middle, and one at the corner
    for row, col in [(n // 2, n // 2 + 1), (0, 0)]:
        if rf.size < H or (row, col) == (0, 0):
            assert measured_box(vgg_random, image, layer, row, col) == expected_box(rf, row, col, H, W)


def test_efficientnet_lite0_against_gradient(lite0):
    """Pretrained weights; a central unit whose receptive field lies inside the image."""
    torch.manual_seed(0)
    image = torch.rand(1, 3, 384, 384)
    for layer in ["stem", "block1_1", "block2_2", "block3_1", "block3_2", "block4_3", "block5_3"]:
        rf = receptive_field(lite0, layer)
        n = 384 // rf.stride
        row, col = n // 2, n // 2 - 1
        top, left, bottom, right = rf.box(row, col)
        assert top >= 0 and left >= 0 and bottom <= 384 and right <= 384, layer
        assert measured_box(lite0, image, layer, row, col) == (top, left, bottom, right), layer
    # and a corner unit, whose field is cut by the border
    rf = receptive_field(lite0, "block3_2")
    assert measured_box(lite0, image, "block3_2", 0, 1) == expected_box(rf, 0, 1, 384, 384)


def test_efficientnet_lite0_table(lite0):
    rf = receptive_fields(lite0)
    assert rf["stem"].as_tuple() == (3, 2, 0.0)
    assert [rf[n].stride for n in ("block2_1", "block3_1", "block4_1", "block6_1")] == [4, 8, 16, 32]
    sizes = [r.size for r in rf.values()]
    assert sizes == sorted(sizes)  # never shrinks with depth


def test_generic_modules_against_gradient():
    """Dilation, 'same' padding, pool with default stride, nested Sequentials, in-place ReLU."""
    torch.manual_seed(0)
    layers = [
        ("a", nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True))),
        ("b", nn.MaxPool2d(2)),
        ("c", nn.Sequential(nn.Sequential(nn.Conv2d(4, 4, 3, dilation=2, padding="same")), nn.BatchNorm2d(4).eval())),
        ("d", nn.AvgPool2d(3, stride=2, padding=1)),
        ("e", nn.Conv2d(4, 4, 5, stride=2)),
    ]
    bb = Backbone("tiny", layers, InputNormalization((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)), DEFAULTS)
    rf = receptive_fields(bb)
    assert rf["c"].as_tuple() == (12, 2, 0.5)  # 4 + (5 - 1) * 2: a dilated 3x3 spans 5
    image = torch.rand(1, 3, 64, 64)
    for layer in bb.layer_names:
        for row, col in [(0, 0), (2, 3)]:
            assert measured_box(bb, image, layer, row, col) == expected_box(rf[layer], row, col, 64, 64), layer


def test_unsupported_module_is_reported():
    bb = Backbone(
        "up",
        [("a", nn.Conv2d(3, 3, 3)), ("b", nn.Upsample(scale_factor=2))],
        InputNormalization((0, 0, 0), (1, 1, 1)),
        DEFAULTS,
    )
    assert receptive_field(bb, "a").size == 3
    with pytest.raises(InputError, match="Upsample"):
        receptive_field(bb, "b")
    bb = Backbone("rect", [("a", nn.Conv2d(3, 3, (3, 5)))], InputNormalization((0, 0, 0), (1, 1, 1)), DEFAULTS)
    with pytest.raises(InputError, match="non-square"):
        receptive_fields(bb)


# --------------------------------------------------------------------------- the checker
def test_checker_passes_reference(capsys):
    check_rf_recurrence(rf_recurrence)
    assert capsys.readouterr().out.strip() == "rf_recurrence: all checks passed"
    assert EXERCISES[0].grade_id == "rf_recurrence"


@pytest.mark.parametrize(
    "variant, words",
    [
        ("size_uses_stride", "stride s of the current layer"),
        ("stride_not_cumulative", "jump multiplies"),
        ("jump_first", "update jump before using it"),
        ("start_no_padding", "ignores the padding"),
        ("size_k", "off by one in size"),
        ("size_zero", "start from size 1"),
        ("start_half", "i + 0.5"),
    ],
)
def test_checker_names_the_mistake(variant, words):
    result = EXERCISES[0].evaluate(lambda layers: _recurrence(layers, variant))
    assert not result.passed
    assert len(result.problems) == 1 and words in result.problems[0]


def test_checker_other_failures():
    ex = EXERCISES[0]
    r = ex.evaluate(lambda layers: None)
    assert not r.passed and "None" in r.problems[0]
    r = ex.evaluate(lambda layers: [(s + (i == 1), j, st) for i, (s, j, st) in enumerate(rf_recurrence(layers))])
    assert not r.passed and "after layer 1" in r.problems[0] and "wrong: size" in r.problems[0]

    def boom(layers):
        raise NotImplementedError

    assert ex.evaluate(boom).not_implemented
    r = ex.evaluate(lambda layers: 1 / 0)
    assert "ZeroDivisionError" in r.problems[0]


# --------------------------------------------------------------------------- the prediction question of notebook 01


def test_predict_receptive_field_matches_vgg19():
    """The question describes VGG19 up to relu3_1 and its answer is what receptive_field computes there."""
    from course_nst.checks.convnets import PREDICTIONS

    (question,) = [p for p in PREDICTIONS if p.grade_id == "predict_receptive_field"]
    from course_nst import load_backbone

    vgg = load_backbone("vgg19", weights="random", device="cpu")
    assert question.answer == receptive_field(vgg, "relu3_1").size == 24
    # the layers the question lists are VGG19's, in order: conv 3x3 stride 1 or max-pool 2x2 stride 2
    modules = [m for name in vgg.layer_names[: vgg.layer_names.index("relu3_1") + 1] for m in [vgg.layers[name]]]
    kinds = [
        "conv 3x3" if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) and m.stride == (1, 1) else "max-pool 2x2"
        for m in modules
        if isinstance(m, nn.Conv2d | nn.MaxPool2d)
    ]
    assert all(isinstance(m, nn.Conv2d | nn.MaxPool2d | nn.ReLU) for m in modules)
    text = question.question
    listed = [k.strip().split(" (")[0] for k in text.split("are: ")[1].split(" (all")[0].split(", ")]
    assert listed == kinds
    answer = str(int(question.answer))
    assert "relu3_1" in text and answer not in text and answer not in question.hint
    assert question.why.rstrip(".").endswith(answer)  # the explanation's running total ends on the answer
