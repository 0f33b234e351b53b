"""top_patches: streaming top-k against brute force, ties, dead units, padding, checkers."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

matplotlib.use("Agg")

from course_nst import InputError
from course_nst.backbones import IMAGENET_STD, Backbone, BackboneDefaults, InputNormalization
from course_nst.checks.convnets import EXERCISES, _crop, check_find_top_patch
from course_nst.patches import (
    IMAGENET_MEAN,
    _input_gradient,
    crop_box,
    crop_patch,
    driving_box,
    find_top_patch,
    image_set,
    photo_set,
    photo_set_order,
    position_mask,
    top_patches,
    top_patches_many,
)
from course_nst.receptive_field import receptive_field

DEFAULTS = BackboneDefaults("a", {"a": 1.0}, 1.0, 1.0, 0.0, 1)
MEAN, STD = IMAGENET_MEAN, IMAGENET_STD


def tiny_net(seed: int = 0) -> Backbone:
    """conv -> in-place ReLU -> pool -> strided conv; channel 2 of conv1 can never fire."""
    torch.manual_seed(seed)
    conv1 = nn.Conv2d(3, 4, 3, padding=1)
    with torch.no_grad():
        conv1.bias[2] = -1e3
    layers = [
        ("conv1", conv1),
        ("relu1", nn.ReLU(inplace=True)),  # would overwrite conv1's output if it were kept
        ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(4, 5, 3, stride=2, padding=1)),
    ]
    return Backbone("tiny", layers, InputNormalization(MEAN, STD), DEFAULTS)


def random_images(n=11, size=(20, 20), seed=0, quantise=False):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        hw = size if i % 4 != 3 else (24, 16)  # a few of another size: batches split there
        x = torch.rand(1, 3, *hw, generator=g)
        out.append((x * 255).round() / 255 if quantise else x)
    return out


def brute_force(backbone, images, layer, k):
    """Every activation of every image, then sort: (value, image, row, col) per unit."""
    per_unit = {}
    for i, x in enumerate(images):
        net = {n: m for n, m in backbone.layers.items()}
        h = backbone.preprocess(x)
        with torch.no_grad():
            for name in backbone.layer_names[: backbone.layer_names.index(layer) + 1]:
                h = net[name](h.clone())
        a = h.clone()[0]
        for u in range(a.shape[0]):
            flat = a[u].reshape(-1)
            p = int(torch.argmax(flat))
            per_unit.setdefault(u, []).append((float(flat[p]), i, p // a.shape[2], p % a.shape[2]))
    return {u: sorted(c, key=lambda e: (-e[0], e[1]))[:k] for u, c in per_unit.items()}


# --------------------------------------------------------------------------- brute force
@pytest.mark.parametrize("layer", ["conv1", "relu1", "pool1", "conv2"])
@pytest.mark.parametrize("batch_size", [1, 4, 16])
def test_matches_brute_force(layer, batch_size):
    bb = tiny_net()
    images = random_images()
    k = 3
    res = top_patches(bb, images, layer, k=k, batch_size=batch_size)
    ref = brute_force(bb, images, layer, k)
    assert res.units == list(range(len(ref)))
    assert res.n_images == len(images)
    for u, expected in ref.items():
        got = res.entries(u)
        assert [(i, r, c) for _, i, r, c in got] == [(i, r, c) for _, i, r, c in expected], (layer, u)
        assert np.allclose([v for v, *_ in got], [v for v, *_ in expected], atol=1e-5)


def test_in_place_relu_does_not_corrupt_the_conv_output():
    """conv1 is followed by an in-place ReLU; asking for both must keep conv1's negative values."""
    bb = tiny_net()
    images = random_images(5)
    res = top_patches_many(bb, images, ["conv1", "relu1"], k=2)
    ref = brute_force(bb, images, "conv1", 2)
    assert res["conv1"].entries(2)[0][0] < -100  # the biased channel: really negative before the ReLU
    assert math.isclose(res["conv1"].entries(2)[0][0], ref[2][0][0], rel_tol=1e-5)
    assert res["relu1"].entries(2)[0][0] == 0.0


def test_units_subset_and_order():
    bb = tiny_net()
    images = random_images(6)
    full = top_patches(bb, images, "conv2", k=4)
    part = top_patches(bb, images, "conv2", units=[4, 1], k=4)
    assert part.units == [4, 1]
    assert part.entries(1) == full.entries(1) and part.entries(4) == full.entries(4)
    with pytest.raises(InputError, match="not tracked"):
        part.entries(0)


def test_one_patch_per_image_and_fewer_images_than_k():
    bb = tiny_net()
    images = random_images(4)
    res = top_patches(bb, images, "conv1", k=9)
    for u in res.units:
        ids = [i for _, i, _, _ in res.entries(u)]
        assert sorted(ids) == [0, 1, 2, 3]  # each image once, no more entries than images
    assert res.patches(0).shape == (4, 3, 3, 3)


def test_ties_break_by_image_then_position():
    """Constant images through a 1x1 conv: every position and every image ties."""
    conv = nn.Conv2d(3, 2, 1)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
    bb = Backbone("flat", [("c", conv)], InputNormalization(MEAN, STD), DEFAULTS)
    images = [torch.full((1, 3, 6, 6), 0.7) for _ in range(5)]
    res = top_patches(bb, images, "c", k=3, batch_size=2)
    for u in (0, 1):
        assert [(i, r, c) for _, i, r, c in res.entries(u)] == [(0, 0, 0), (1, 0, 0), (2, 0, 0)]


def test_dead_unit_is_reported_and_plotted():
    from course_nst.plotting import plot_patch_grid, plot_unit_patches

    bb = tiny_net()
    res = top_patches(bb, random_images(5), "relu1", k=3)
    assert not res.is_active(2) and res.is_active(0)
    assert "unit 2: never active" in res.summary()
    fig = plot_patch_grid(res, units=[0, 2])
    titles = [ax.get_title() for ax in fig.axes]
    assert "unit 2: never active" in titles and titles[0].startswith("unit 0: ")
    assert "receptive field 3×3 px" in fig._suptitle.get_text()
    plot_unit_patches(res, 2)
    import matplotlib.pyplot as plt

    plt.close("all")


def test_patches_are_centred_and_padded_with_the_mean_colour():
    bb = tiny_net()
    images = random_images(6, quantise=True)
    res = top_patches(bb, images, "conv2", k=3)
    rf = res.rf
    assert (rf.size, rf.stride, rf.start) == (8, 4, 0.5)
    assert res.fill == pytest.approx(MEAN)
    for u in res.units:
        patches = res.patches(u)
        for j, (_, i, r, c) in enumerate(res.entries(u)):
            expected = crop_patch(images[i], rf.size, rf.stride, rf.start, r, c, MEAN)
            assert torch.allclose(patches[j : j + 1], expected, atol=1e-6)
    # a corner unit's patch reaches outside: top-left rows are the mean colour, not shifted pixels
    p = crop_patch(images[0], rf.size, rf.stride, rf.start, 0, 0, MEAN)
    assert torch.allclose(p[0, :, :3, :], torch.tensor(MEAN).view(3, 1, 1).expand(3, 3, 8))
    assert torch.allclose(p[0, :, :, :3], torch.tensor(MEAN).view(3, 1, 1).expand(3, 8, 3))
    assert torch.equal(p[0, :, 3:, 3:], images[0][0, :, :5, :5])
    # kept images are bounded by units x k
    assert len(res.images) <= len(res.units) * res.k


def test_margin_keeps_positions_inside():
    bb = tiny_net()
    images = [x for x in random_images(8) if x.shape[-1] == 20]
    res = top_patches(bb, images, "conv1", k=3, margin=5)
    full = top_patches(bb, images, "conv1", k=3)
    assert res.n_positions == len(images) * 10 * 10 and full.n_positions == len(images) * 400
    for u in res.units:
        for _, _, r, c in res.entries(u):
            assert 5 <= r <= 14 and 5 <= c <= 14


def test_sources_folder_generator_and_batch_tensor(tmp_path):
    bb = tiny_net()
    images = random_images(6, quantise=True)
    for i, x in enumerate(images):
        arr = (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(arr).save(tmp_path / f"img{i:02d}.png")
    ref = top_patches(bb, images, "conv2", k=2)
    from_folder = top_patches(bb, tmp_path, "conv2", k=2)
    from_generator = top_patches(bb, (x for x in images), "conv2", k=2)
    for u in ref.units:
        assert [e[1:] for e in from_folder.entries(u)] == [e[1:] for e in ref.entries(u)]
        assert [e[0] for e in from_folder.entries(u)] == pytest.approx([e[0] for e in ref.entries(u)], abs=1e-5)
        assert from_generator.entries(u) == ref.entries(u)
    same = [x for x in images if x.shape[-1] == 20]
    stacked = top_patches(bb, torch.cat(same), "conv2", k=2)
    assert stacked.n_images == len(same)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(layer="nope"), "unknown layer"),
        (dict(layer="conv1", units=[7]), "does not exist"),
        (dict(layer="conv1", units=3), "list of channel indices"),
        (dict(layer="conv1", k=0), "k must be"),
        (dict(layer="conv1", margin=-1), "margin"),
    ],
)
def test_errors(kwargs, words):
    with pytest.raises(InputError, match=words):
        top_patches(tiny_net(), random_images(2), **kwargs)


def test_no_images():
    with pytest.raises(InputError, match="no images"):
        top_patches(tiny_net(), [], "conv1")
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        top_patches(tiny_net(), [torch.full((1, 3, 8, 8), 2.0)], "conv1")


# --------------------------------------------------------------------------- edge detector
def test_hand_built_edge_detector_finds_vertical_edges():
    """One unit responds to dark-left / bright-right edges; its top patches must be such edges."""
    conv = nn.Conv2d(3, 1, 3, padding=1, bias=False)
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    with torch.no_grad():
        conv.weight.copy_(sobel.expand(1, 3, 3, 3) / 3)
    bb = Backbone(
        "edges", [("edge", conv), ("relu", nn.ReLU())], InputNormalization((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), DEFAULTS
    )
    g = torch.Generator().manual_seed(0)
    images, kinds = [], []
    for i in range(24):
        x = 0.4 + 0.05 * torch.rand(1, 3, 32, 32, generator=g)
        kind = ["vertical", "horizontal", "flat", "reversed"][i % 4]
        pos = 6 + int(torch.randint(0, 20, (), generator=g))
        if kind == "vertical":
            x[..., :, pos:] += 0.5
        elif kind == "horizontal":
            x[..., pos:, :] += 0.5
        elif kind == "reversed":
            x[..., :, :pos] += 0.5
        images.append(x.clamp(0, 1))
        kinds.append((kind, pos))
    # the zero padding (black here) makes a dark-to-bright edge at every left border: keep
    # the two outer columns out, as the notebook's margin does for the real network
    res = top_patches(bb, images, "relu", k=6, margin=2)
    for value, i, _r, c in res.entries(0):
        kind, pos = kinds[i]
        assert kind == "vertical" and value > 1.0
        assert c in (pos - 1, pos)  # the unit sits on the edge
        patch = res.patches(0)[[e[1] for e in res.entries(0)].index(i)]
        assert patch[:, :, 2].mean() - patch[:, :, 0].mean() > 0.3  # dark left, bright right


# --------------------------------------------------------------------------- find_top_patch
def test_find_top_patch_reference():
    image = torch.rand(1, 3, 30, 30)
    a = torch.zeros(5, 7)
    a[1, 4] = 3.0
    v, (r, c), patch = find_top_patch(a, image, 10, 4, 1.5)
    assert (v, r, c) == (3.0, 1, 4) and patch.shape == (1, 3, 10, 10)
    assert torch.equal(patch, image[:, :, 1:11, 13:23])  # centre (5.5, 17.5), +-4.5
    with pytest.raises(InputError):
        find_top_patch(torch.zeros(3), image, 9, 4, 1.5)


def test_find_top_patch_checker_passes_reference(capsys):
    check_find_top_patch(find_top_patch)
    assert capsys.readouterr().out.strip() == "find_top_patch: all checks passed"
    assert EXERCISES[1].grade_id == "find_top_patch"


def _student(mode="centre", swap=False, pad=True, index=False):
    def fn(activation_map, image, size, stride, start):
        flat = int(torch.argmax(activation_map))
        r, c = divmod(flat, activation_map.shape[1])
        patch = _crop(image, size, stride, start, r, c, mode=mode)
        if not pad:  # cut at the border instead of padding
            H, W = image.shape[-2:]
            top = int(start + r * stride - (size - 1) / 2)
            left = int(start + c * stride - (size - 1) / 2)
            patch = image[:, :, max(top, 0) : top + size, max(left, 0) : left + size]
        value = flat if index else float(activation_map[r, c])
        return value, ((c, r) if swap else (r, c)), patch

    return fn


@pytest.mark.parametrize(
    "student, words",
    [
        (_student(swap=True), "row and column are swapped"),
        (_student("no_mapping"), "map the position to input pixels"),
        (_student("top_left"), "top-left corner"),
        (_student("no_start"), "off by `start` pixels"),
        (_student("shifted"), "moved the patch back inside"),
        (_student("zero_pad"), "padded with black"),
        (_student("image_mean_pad"), "image's own mean"),
        (_student(pad=False), "pad it with the mean colour"),
        (_student(index=True), "maximum activation is"),
    ],
)
def test_find_top_patch_checker_diagnoses(student, words):
    result = EXERCISES[1].evaluate(student)
    assert not result.passed
    assert any(words in p for p in result.problems), result.problems


def test_find_top_patch_checker_bad_returns():
    r = EXERCISES[1].evaluate(lambda *a: None)
    assert not r.passed and "(value, (row, col), patch)" in r.problems[0]


# --------------------------------------------------------------------------- the image set
def test_image_set_is_deterministic_and_sized():
    a = image_set(4, 64, seed=3)
    b = image_set(4, 64, seed=3)
    c = image_set(4, 64, seed=4)
    assert len(a) == 4 and all(x.shape == (1, 3, 64, 64) for x in a)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))
    assert all(float(x.min()) >= 0 and float(x.max()) <= 1 for x in a)
    with pytest.raises(InputError):
        image_set(0)
    with pytest.raises(InputError, match="unknown image source"):
        image_set(2, names=["mona_lisa"])


# --------------------------------------------------------------------------- the margin rule, one photo


def test_find_top_patch_margin_skips_border_positions():
    rf = receptive_field(tiny_net(), "conv2")
    a = torch.zeros(5, 5)
    a[0, 0] = 9.0  # the strongest position is in the corner: its field is mostly padding
    a[2, 3] = 5.0
    image = torch.rand(1, 3, 20, 20)
    assert find_top_patch(a, image, rf.size, rf.stride, rf.start)[1] == (0, 0)
    value, pos, patch = find_top_patch(a, image, rf.size, rf.stride, rf.start, margin=4)
    assert (value, pos) == (5.0, (2, 3))
    assert position_mask(rf, 5, 5, 20, 20, 4)[pos]
    assert not position_mask(rf, 5, 5, 20, 20, 4)[0, 0]
    with pytest.raises(InputError, match="margin"):
        find_top_patch(a, image, rf.size, rf.stride, rf.start, margin=10)


# --------------------------------------------------------------------------- the part that drives a unit


def _full_gradient(backbone, image, layer, unit, row, col):
    x = image.clone().requires_grad_(True)
    backbone.features(x, [layer])[layer][0, unit, row, col].backward()
    return x.grad[0]


@pytest.mark.parametrize("layer", ["conv1", "conv2"])
def test_window_gradient_equals_the_whole_image_gradient(layer):
    """The window keeps the position on the layer's grid and the image's own zero padding: exact, border included."""
    net = tiny_net(3)
    image = torch.rand(1, 3, 21, 18, generator=torch.Generator().manual_seed(5))
    rf = receptive_field(net, layer)
    n_H, n_W = net.features(image, [layer])[layer].shape[-2:]
    for row in range(n_H):
        for col in range(n_W):
            unit = (row + col) % 4
            grad, (y0, x0) = _input_gradient(net, image, layer, unit, row, col, rf)
            full = _full_gradient(net, image, layer, unit, row, col)
            placed = torch.zeros_like(full)
            placed[:, y0 : y0 + grad.shape[1], x0 : x0 + grad.shape[2]] = grad
            assert torch.allclose(placed, full, atol=1e-6), (row, col)
            assert grad.shape[1] < image.shape[2] or rf.size + rf.stride >= image.shape[2]


def test_window_gradient_equals_the_whole_image_gradient_vgg19():
    from course_nst import load_backbone

    vgg = load_backbone("vgg19", weights="random", device="cpu")
    image = torch.rand(1, 3, 64, 72, generator=torch.Generator().manual_seed(2))
    rf = receptive_field(vgg, "conv3_1")  # before the ReLU: never a zero gradient, even with random weights
    for row, col, unit in [(0, 0, 3), (7, 9, 10), (15, 17, 40), (3, 12, 99)]:
        grad, (y0, x0) = _input_gradient(vgg, image, "conv3_1", unit, row, col, rf)
        full = _full_gradient(vgg, image, "conv3_1", unit, row, col)
        placed = torch.zeros_like(full)
        placed[:, y0 : y0 + grad.shape[1], x0 : x0 + grad.shape[2]] = grad
        assert full.abs().sum() > 0
        assert torch.allclose(placed, full, atol=1e-5 * float(full.abs().max())), (row, col)


def test_driving_box_holds_the_mass_and_shrinks_with_it():
    net = tiny_net(3)
    image = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(7))
    rf = receptive_field(net, "conv2")
    a = net.features(image, ["conv2"])["conv2"][0].detach()
    unit = 1
    row, col = 3, 2
    assert a[unit, row, col] != 0
    weight = _full_gradient(net, image, "conv2", unit, row, col).abs().sum(0)
    sides = []
    for mass in (0.3, 0.6, 0.9, 1.0):
        top, left, side = driving_box(net, image, "conv2", unit, row, col, mass=mass)
        held = weight[max(top, 0) : top + side, max(left, 0) : left + side].sum()
        assert held >= mass * weight.sum() - 1e-6
        assert 1 <= side <= rf.size
        sides.append(side)
    assert sides == sorted(sides) and sides[0] < rf.size
    # mass 1: every pixel the position depends on is inside the square
    top, left, side = driving_box(net, image, "conv2", unit, row, col, mass=1.0)
    ys, xs = torch.nonzero(weight, as_tuple=True)
    assert top <= int(ys.min()) and int(ys.max()) < top + side
    assert left <= int(xs.min()) and int(xs.max()) < left + side


@pytest.mark.parametrize("mass", [0, -0.5, 1.5])
def test_driving_box_rejects_a_bad_mass(mass):
    with pytest.raises(InputError, match="mass"):
        driving_box(tiny_net(), torch.rand(1, 3, 16, 16), "conv2", 0, 1, 1, mass=mass)


def test_focus_crops_active_patches_and_keeps_their_shape():
    net = tiny_net(1)
    images = random_images(6, size=(24, 24), seed=4)
    res = top_patches(net, images, "conv2", k=3)
    focused = res.focus(net, [0, 1, 2], mass=0.5)
    assert res.boxes == {}  # the original is left alone
    for u in (0, 1, 2):
        patches = focused.patches(u)
        entries = focused.entries(u)
        assert patches.shape == (len(entries), 3, res.rf.size, res.rf.size)
        for rank, (value, img, r, c) in enumerate(entries):
            if value <= 0:
                assert (u, rank) not in focused.boxes
                continue
            top, left, side = focused.boxes[(u, rank)]
            assert side < res.rf.size
            assert (top, left, side) == driving_box(net, res.image(img), "conv2", u, r, c, mass=0.5)
            # the kept square lies in the position's receptive field
            t, lft, b, rt = res.rf.box(r, c)
            assert t <= top and top + side <= b and lft <= left and left + side <= rt
    # a never-active unit keeps its (blank) patches
    assert all((2, rank) not in focused.boxes for rank in range(3)) or focused.is_active(2)
    assert torch.equal(focused.patches(3), res.patches(3))


def test_crop_box_pads_outside_the_image():
    image = torch.rand(1, 3, 10, 12)
    out = crop_box(image, -2, 9, 5, fill=(0.1, 0.2, 0.3))
    assert out.shape == (1, 3, 5, 5)
    assert torch.equal(out[:, :, 2:, :3], image[:, :, 0:3, 9:12])
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([0.1, 0.2, 0.3]))


# --------------------------------------------------------------------------- the real photos


def test_photo_set_is_real_distinct_photos():
    photos = photo_set(size=64)
    names = photo_set_order()
    assert len(photos) == len(names) == 33
    assert names[:20] == [n for n in names if n.startswith("imagenet_")]
    assert all(max(x.shape[-2:]) == 64 and x.shape[:2] == (1, 3) for x in photos)
    # no photo is another one cropped, flipped or repeated: coarse thumbnails all differ clearly
    thumbs = torch.cat([torch.nn.functional.interpolate(x, size=(8, 8), mode="area") for x in photos]).flatten(1)
    distance = torch.cdist(thumbs, thumbs) + torch.eye(len(photos)) * 1e9
    assert float(distance.min()) > 0.2
    assert len(photo_set(5, size=32)) == 5


@pytest.mark.parametrize("kwargs", [{"n": 0}, {"n": 34}, {"n": 2.5}, {"size": 8}])
def test_photo_set_rejects_bad_arguments(kwargs):
    with pytest.raises(InputError):
        photo_set(**kwargs)
