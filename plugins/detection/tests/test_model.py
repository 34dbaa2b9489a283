"""The detector's glue: C4 split of a ResNet, the fallback tap, what is frozen, what is trained, what runs once."""

from __future__ import annotations

import pytest
import torch
from sslreg_detection.evaluator import DetectionConfig, optimizer_for
from sslreg_detection.layout import choose_layout, default_tap, has_c4_stages
from sslreg_detection.model import PreparedImages, build_detector, trainable_parameters
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from sslreg import BackboneConfig, UserError, build_trunk, get_registry
from sslreg.testing import TinyBackbone

SMALL = dict(
    name="voc07_detection", anchor_sizes=[16, 32], roi_resolution=4, roi_batch_size=8, rpn_batch_size=16,
    rpn_pre_nms_train=50, rpn_post_nms_train=20, rpn_pre_nms_test=50, rpn_post_nms_test=10, mlp_dim=16,
)  # fmt: skip


@pytest.fixture(scope="module")
def resnet():
    return build_trunk(get_registry(), {"name": "resnet18"}, seed=0).freeze()


def batch(channels: int = 3, sizes=((64, 80), (72, 64))):
    torch.manual_seed(1)
    images = [torch.randn(channels, h, w) for h, w in sizes]
    targets = [
        {"boxes": torch.tensor([[4.0, 6.0, 40.0, 50.0]]), "labels": torch.tensor([1])},
        {"boxes": torch.tensor([[10.0, 10.0, 30.0, 60.0], [0.0, 0.0, 20.0, 20.0]]), "labels": torch.tensor([2, 1])},
    ]
    return images, targets


def counting(trunk):
    calls = []
    handle = trunk.register_forward_hook(lambda module, args, output: calls.append(list(output)))
    return calls, handle


def test_layouts(resnet):
    alexnet = build_trunk(get_registry(), {"name": "alexnet"}, seed=0).freeze()
    tiny = TinyBackbone().freeze()
    assert has_c4_stages(resnet) and not has_c4_stages(alexnet) and not has_c4_stages(tiny)
    assert choose_layout(resnet, "auto", "res4") == choose_layout(resnet, ["res4"], "res4")
    assert choose_layout(resnet, "auto", "res4").name == "C4"
    assert default_tap(alexnet) == "conv5"  # conv3..conv5 are all stride 16: the deepest
    assert default_tap(tiny) == "l2"  # strides 2 and 4: the nearest to 16
    layout = choose_layout(alexnet, "auto", "res4")
    assert (layout.name, layout.tap, layout.frozen) == ("fallback", "conv5", "conv5")
    assert choose_layout(resnet, ["res3"], "res4").name == "fallback"  # another tap: the fallback there
    with pytest.raises(UserError, match="freeze_at 'res1'"):
        choose_layout(resnet, "auto", "res1")
    with pytest.raises(UserError, match="training trunk layers needs the C4 layout"):
        choose_layout(alexnet, "auto", "conv2")
    with pytest.raises(UserError, match="name one tap"):
        choose_layout(resnet, ["res3", "res4"], "res4")
    with pytest.raises(UserError, match="unknown layer"):
        choose_layout(resnet, ["conv9"], "res4")


def train_step(trunk, freeze_at="res4", layers="auto", channels=3):
    cfg = DetectionConfig(**SMALL, freeze_at=freeze_at)
    torch.manual_seed(0)
    model = build_detector(trunk, choose_layout(trunk, layers, freeze_at), cfg.detector_options(2))
    model.train()
    images, targets = batch(channels)
    calls, handle = counting(trunk)
    losses = model(images, targets)
    handle.remove()
    sum(losses.values()).backward()
    return model, losses, calls


def test_c4_trains_res5_and_heads_only_and_runs_the_frozen_trunk_once(resnet):
    before = {k: v.clone() for k, v in resnet.state_dict().items()}
    model, losses, calls = train_step(resnet)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    assert calls == [["res4"]]  # one trunk pass per batch, stopping at res4 (res5 never runs on the image)
    assert all(p.grad is None and not p.requires_grad for p in resnet.parameters())
    head = model.roi_heads.box_head.res5
    assert head is not resnet.layer4 and all(p.grad is not None for p in head.parameters())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in head.modules())
    assert sum(isinstance(m, FrozenBatchNorm2d) for m in head.modules()) == 5  # resnet18 layer4: 2 blocks + down
    assert all(isinstance(m, nn.BatchNorm2d) for m in (resnet.layer4[0].bn1, resnet.bn1))  # the shared trunk
    trained = {id(p) for p in trainable_parameters(model)}
    assert not trained & {id(p) for p in resnet.parameters()}
    assert {id(p) for p in head.parameters()} <= trained
    optimizer_for(model, DetectionConfig(**SMALL)).step()
    for key, value in resnet.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_freeze_at_res3_trains_a_copy_of_res4(resnet):
    model, _, calls = train_step(resnet, freeze_at="res3")
    assert calls == [["res3"]]
    stages = model.backbone.stages
    assert all(p.grad is not None for p in stages.parameters())
    assert stages[0] is not resnet.layer3 and not any(isinstance(m, nn.BatchNorm2d) for m in stages.modules())


def test_freeze_at_res5_trains_only_the_new_layers(resnet):
    model, _, calls = train_step(resnet, freeze_at="res5")
    assert calls == [["res4"]]
    assert not any(p.requires_grad for p in model.roi_heads.box_head.parameters())
    assert all(p.grad is not None for p in model.roi_heads.box_predictor.parameters())
    assert all(p.grad is not None for p in model.rpn.parameters())


def test_fallback_on_alexnet_and_the_features_need_no_graph():
    alexnet = build_trunk(get_registry(), {"name": "alexnet"}, seed=0).freeze()
    cfg = DetectionConfig(**SMALL)
    model = build_detector(alexnet, choose_layout(alexnet, "auto", "res4"), cfg.detector_options(2))
    images, targets = batch(sizes=((128, 160), (144, 128)))
    features = model.backbone(torch.stack([images[0][:, :128, :128]] * 2))
    assert features["0"].shape[1] == 256 and not features["0"].requires_grad
    model.train()
    losses = model(images, targets)
    sum(losses.values()).backward()
    assert model.roi_heads.box_head.fc6.in_features == 256 * 4 * 4
    assert all(p.grad is None for p in alexnet.parameters())


def test_one_channel_trunk_gets_its_own_input():
    tiny = TinyBackbone(BackboneConfig(name="tiny", in_channels=1)).freeze()
    model, losses, calls = train_step(tiny, channels=1)
    assert calls == [["l2"]] and all(torch.isfinite(v) for v in losses.values())


def test_prepared_images_are_only_padded():
    transform = PreparedImages().eval()
    images = [torch.randn(3, 40, 50), torch.randn(3, 70, 33)]
    batched, _ = transform(images)
    assert batched.tensors.shape == (2, 3, 96, 64)  # padded to multiples of 32
    assert batched.image_sizes == [(40, 50), (70, 33)]
    assert torch.equal(batched.tensors[0, :, :40, :50], images[0])  # no ImageNet normalisation, no resize
    assert torch.equal(batched.tensors[1, :, :70, :33], images[1])
    assert batched.tensors[0, :, 40:].abs().sum() == 0
