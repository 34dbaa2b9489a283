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
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import FrozenBatchNorm2d, MultiScaleRoIAlign

from sslreg import Backbone
from sslreg_detection.layout import C4_HEAD, C4_TAP, STAGES, Layout
from sslreg_detection.options import DetectorOptions


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
