"""Backbones: pretrained weights really load, VGG19's loading path works offline, features are right."""

import pytest
import torch
import torchvision

from course_nst import InputError, load_backbone, samples
from course_nst.backbones import VGG19_FILENAME, classify, vgg19_weights_path


@pytest.mark.parametrize("photo, imagenet_class", [("chelsea", 285), ("coffee", 967)])
def test_efficientnet_weights_are_really_loaded(lite0, photo, imagenet_class):
    image = samples.load(photo)
    image = torch.nn.functional.interpolate(image, size=(224, 224), mode="bilinear", antialias=True)
    top5 = classify(lite0, image).topk(5).indices[0].tolist()
    assert imagenet_class in top5


def test_random_weights_do_not_classify(lite0):
    # the control: the same check on a random network must not find the cat
    random_net = load_backbone("efficientnet_lite0", weights="random", device="cpu")
    random_net._classifier = lite0._classifier
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


def test_vgg19_loads_by_name_from_torch_home_without_network(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    sd, path = _write_vgg19_standin(tmp_path)
    assert vgg19_weights_path() == path

    def no_network(*a, **k):
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    vgg = load_backbone("vgg19", device="cpu")
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


def test_auto_prefers_vgg19_when_present_and_env_overrides(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("COURSE_NST_BACKBONE", raising=False)
    assert load_backbone("auto", device="cpu").name == "efficientnet_lite0"
    notice = capsys.readouterr().err
    assert "course-nst weights download vgg19" in notice and notice.count("\n") == 1
    _write_vgg19_standin(tmp_path)
    assert load_backbone("auto", device="cpu").name == "vgg19"
    monkeypatch.setenv("COURSE_NST_BACKBONE", "efficientnet_lite0")
    assert load_backbone(device="cpu").name == "efficientnet_lite0"


def test_missing_vgg19_weights_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(InputError, match="course-nst weights download vgg19.*weights="):
        load_backbone("vgg19", device="cpu")
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
