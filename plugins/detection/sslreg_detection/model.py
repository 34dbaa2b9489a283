"""Faster R-CNN (torchvision) on a frozen sslreg trunk: the paper's C4 layout, or a fallback for other trunks.

C4 (ResNets in the torchvision layout, whose stages are ``layer1``..``layer4`` = res2..res5, as sslreg-backbones'):
the RPN and RoIAlign read the stride-16 res4 map; each RoI (14x14 by default) runs through res5 (its first block
has stride 2) and is average-pooled: that is the box head, followed by the box predictor (Detectron's
``ResNet.add_ResNet_roi_conv5_head``). The trunk is frozen through ``freeze_at`` (res4 in the paper): the shared
trunk runs up to there under ``no_grad`` in eval mode, once per batch; the stages after it (res5, and res4 when
``freeze_at`` is shallower) are deep copies, trained, with every BatchNorm turned into a FrozenBatchNorm2d (fixed
statistics and affine, as Detectron's AffineChannel), so the trunk handed to other evaluators is never touched.

Fallback (AlexNet, third-party trunks, or a named tap other than res4): the whole trunk is frozen up to its tap
(the deepest stride-16 layer, else the one whose stride is nearest 16); RoIAlign 7x7 on that map, then
torchvision's two-layer MLP box head and the predictor.

Images reach the model already resized and normalised by the trunk's input contract (dataset side), so the
torchvision transform only pads and batches them (:class:`PreparedImages`): no ImageNet statistics are applied.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import FrozenBatchNorm2d, MultiScaleRoIAlign

from sslreg import Backbone, UserError

#: Trunk layer -> the torchvision-layout stage module that computes it from the layer before.
STAGES = {"res2": "layer1", "res3": "layer2", "res4": "layer3", "res5": "layer4"}
C4_TAP, C4_HEAD = "res4", "res5"


@dataclass(frozen=True)
class Layout:
    """Where the detector reads the trunk: ``tap`` (RPN + RoIAlign), ``c4`` (res5 as box head), ``frozen`` (the
    deepest layer computed by the shared, frozen trunk; stages after it are trained copies)."""

    tap: str
    c4: bool
    frozen: str

    @property
    def name(self) -> str:
        return "C4" if self.c4 else "fallback"


def has_c4_stages(trunk: Backbone) -> bool:
    """Whether ``trunk`` has the torchvision ResNet layout: res4/res5 taps at strides 16/32 and stage modules
    ``layer1``..``layer4``, checked on a small input (``layer4(res4) == res5``)."""
    names, strides = trunk.layer_names, trunk.layer_strides
    if not {C4_TAP, C4_HEAD} <= set(names) or strides.get(C4_TAP) != 16 or strides.get(C4_HEAD) != 32:
        return False
    if not all(isinstance(getattr(trunk, stage, None), nn.Module) for stage in STAGES.values()):
        return False
    parameter = next(trunk.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    generator = torch.Generator().manual_seed(0)
    probe = torch.randn(1, trunk.config.in_channels, 64, 64, generator=generator).to(device)
    was_training = trunk.training
    trunk.eval()
    try:
        with torch.no_grad():
            maps = trunk(probe, [C4_TAP, C4_HEAD])
            again = getattr(trunk, STAGES[C4_HEAD])(maps[C4_TAP])
    except Exception:  # noqa: BLE001 - any failure means: not the layout we can split
        return False
    finally:
        trunk.train(was_training)
    return again.shape == maps[C4_HEAD].shape and torch.allclose(again, maps[C4_HEAD], rtol=1e-4, atol=1e-5)


def default_tap(trunk: Backbone) -> str:
    """The fallback tap: the deepest stride-16 layer, else the layer whose stride is nearest 16 (deeper on ties)."""
    strides = trunk.layer_strides
    distance = {layer: abs(math.log2(strides[layer] / 16)) for layer in trunk.layer_names}
    best = min(distance.values())
    return [layer for layer in trunk.layer_names if distance[layer] == best][-1]


def choose_layout(trunk: Backbone, layers: str | list[str], freeze_at: str) -> Layout:
    """The detector's layout for ``trunk``: C4 on res4 when the trunk allows it, else the fallback tap."""
    splittable = has_c4_stages(trunk)
    if layers == "auto":
        tap = C4_TAP if splittable else default_tap(trunk)
    else:
        if len(layers) != 1:
            raise UserError(f"voc07_detection: layers: name one tap (or 'auto'), got {layers}")
        [tap] = trunk.resolve_layers(layers)
    c4 = tap == C4_TAP and splittable
    if c4:
        allowed = list(STAGES)
        if freeze_at not in allowed:
            raise UserError(
                f"voc07_detection: freeze_at {freeze_at!r}: the C4 layout of {trunk.name!r} freezes through one of"
                f" {allowed} (the stem always stays frozen)"
            )
        return Layout(tap, True, freeze_at)
    names = list(trunk.layer_names)
    if freeze_at in names and names.index(freeze_at) < names.index(tap):
        raise UserError(
            f"voc07_detection: freeze_at {freeze_at!r}: {trunk.name!r} is read at {tap!r} in the fallback layout,"
            f" which freezes the whole trunk up to it; training trunk layers needs the C4 layout (a ResNet)"
        )
    return Layout(tap, False, tap)


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d inside ``module`` by a FrozenBatchNorm2d with its statistics and affine."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            with torch.no_grad():
                if child.affine:
                    frozen.weight.copy_(child.weight)
                    frozen.bias.copy_(child.bias)
                if child.running_mean is not None:
                    frozen.running_mean.copy_(child.running_mean)
                    frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen.to(child.weight.device if child.affine else frozen.weight.device))
        else:
            freeze_batchnorm(child)
    return module


def trainable_copy(trunk: Backbone, first: str, last: str) -> nn.Sequential:
    """Deep copies of the stages that compute layers ``first``..``last`` (trunk order), BatchNorm frozen."""
    names = list(STAGES)
    stages = [getattr(trunk, STAGES[layer]) for layer in names[names.index(first) : names.index(last) + 1]]
    copied = freeze_batchnorm(copy.deepcopy(nn.Sequential(*stages)))
    for parameter in copied.parameters():
        parameter.requires_grad_(True)
    return copied


class FrozenTrunkFeatures(nn.Module):
    """The detector's backbone: the shared trunk up to ``frozen`` (no_grad, eval, once per batch), then the
    trained stage copies up to the tap; returns ``{"0": map}`` with ``out_channels`` channels."""

    def __init__(self, trunk: Backbone, frozen: str, stages: nn.Module | None, out_channels: int) -> None:
        super().__init__()
        self.trunk = trunk
        self.frozen = frozen
        self.stages = stages if stages is not None else nn.Identity()
        self.out_channels = out_channels

    def forward(self, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        self.trunk.eval()
        with torch.no_grad():
            features = self.trunk(images, [self.frozen])[self.frozen]
        return OrderedDict([("0", self.stages(features))])


class Res5BoxHead(nn.Module):
    """C4 box head: res5 on each pooled RoI, then global average pooling to a vector."""

    def __init__(self, res5: nn.Module) -> None:
        super().__init__()
        self.res5 = res5

    def forward(self, rois: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.res5(rois), 1).flatten(1)


class PreparedImages(GeneralizedRCNNTransform):
    """torchvision's detection transform without its resize and ImageNet normalisation: images come resized and
    normalised by the trunk's input contract; this only pads them into a batch (and maps nothing back)."""

    def __init__(self, size_divisible: int = 32) -> None:
        super().__init__(min_size=1, max_size=1, image_mean=[0.0], image_std=[1.0], size_divisible=size_divisible)

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        return image

    def resize(self, image: torch.Tensor, target: dict[str, torch.Tensor] | None = None):  # type: ignore[override]
        return image, target


@dataclass(frozen=True)
class DetectorOptions:
    """The model options of the evaluator (see its Config for each one's meaning and paper value)."""

    num_classes: int
    anchor_sizes: tuple[int, ...]
    aspect_ratios: tuple[float, ...]
    roi_resolution: int
    roi_sampling_ratio: int
    mlp_dim: int
    rpn_batch_size: int
    rpn_positive_fraction: float
    rpn_pre_nms_train: int
    rpn_post_nms_train: int
    rpn_pre_nms_test: int
    rpn_post_nms_test: int
    rpn_nms: float
    roi_batch_size: int
    roi_positive_fraction: float
    score_threshold: float
    nms: float
    detections_per_image: int


def build_detector(trunk: Backbone, layout: Layout, options: DetectorOptions) -> FasterRCNN:
    """Faster R-CNN on ``trunk`` in ``layout``; the caller seeds torch for the new layers' initialisation."""
    channels = trunk.layer_channels
    if layout.c4:
        names = list(STAGES)
        after = names[names.index(layout.frozen) + 1 :] if layout.frozen in names else []
        to_tap = [layer for layer in after if layer != C4_HEAD]
        stages = trainable_copy(trunk, to_tap[0], to_tap[-1]) if to_tap else None
        res5 = getattr(trunk, STAGES[C4_HEAD])
        if C4_HEAD in after:
            res5 = trainable_copy(trunk, C4_HEAD, C4_HEAD)
        else:  # frozen through res5: the head runs the shared trunk's res5 as it is
            res5 = freeze_batchnorm(copy.deepcopy(res5)).requires_grad_(False)
        read = layout.frozen if layout.frozen != C4_HEAD else C4_TAP  # the shared trunk runs up to here
        backbone = FrozenTrunkFeatures(trunk, read, stages, channels[C4_TAP])
        box_head: nn.Module = Res5BoxHead(res5)
        head_dim = channels[C4_HEAD]
    else:
        backbone = FrozenTrunkFeatures(trunk, layout.tap, None, channels[layout.tap])
        box_head = TwoMLPHead(channels[layout.tap] * options.roi_resolution**2, options.mlp_dim)
        head_dim = options.mlp_dim
    anchors = AnchorGenerator(sizes=(tuple(options.anchor_sizes),), aspect_ratios=(tuple(options.aspect_ratios),))
    pool = MultiScaleRoIAlign(["0"], output_size=options.roi_resolution, sampling_ratio=options.roi_sampling_ratio)
    model = FasterRCNN(
        backbone,
        num_classes=None,
        rpn_anchor_generator=anchors,
        box_roi_pool=pool,
        box_head=box_head,
        box_predictor=FastRCNNPredictor(head_dim, options.num_classes + 1),
        rpn_pre_nms_top_n_train=options.rpn_pre_nms_train,
        rpn_post_nms_top_n_train=options.rpn_post_nms_train,
        rpn_pre_nms_top_n_test=options.rpn_pre_nms_test,
        rpn_post_nms_top_n_test=options.rpn_post_nms_test,
        rpn_nms_thresh=options.rpn_nms,
        rpn_batch_size_per_image=options.rpn_batch_size,
        rpn_positive_fraction=options.rpn_positive_fraction,
        box_batch_size_per_image=options.roi_batch_size,
        box_positive_fraction=options.roi_positive_fraction,
        box_score_thresh=options.score_threshold,
        box_nms_thresh=options.nms,
        box_detections_per_img=options.detections_per_image,
    )
    model.transform = PreparedImages()
    return model


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters the optimiser updates (never the shared trunk's)."""
    return [parameter for parameter in model.parameters() if parameter.requires_grad]
