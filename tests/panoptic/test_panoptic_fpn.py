"""Panoptic FPN: the semantic branch on the shared FPN, and the two outputs fused."""

import torch

from coursekit.instance import build_mask_rcnn
from coursekit.panoptic import PanopticFPN, SemanticFPNHead, panoptic_fusion


def test_semantic_head_shapes():
    head = SemanticFPNHead(in_channels=16, num_levels=3, num_classes=8, channels=16)
    features = {"0": torch.randn(2, 16, 32, 32), "1": torch.randn(2, 16, 16, 16), "2": torch.randn(2, 16, 8, 8)}
    assert head(features, (64, 64)).shape == (2, 8, 64, 64)
    assert [len(stages) for stages in head.scale_heads] == [1, 1, 2]  # level i: i upsampling stages (at least 1 conv)


def test_panoptic_fpn_runs_backbone_once_and_fuses(device):
    torch.manual_seed(0)
    model = PanopticFPN(build_mask_rcnn(), num_classes=8).to(device).eval()
    calls = []
    model.mask_rcnn.backbone.register_forward_hook(lambda *args: calls.append(1))
    with torch.no_grad():
        detections, semantic = model(torch.rand(2, 3, 64, 64, device=device))
    assert len(calls) == 1 and len(detections) == 2
    assert semantic.shape == (2, 8, 64, 64) and semantic.device.type == device.type
    det = detections[0]
    assert det["masks"].shape[1:] == (64, 64) and det["masks"].dtype == torch.bool
    ids, segments = panoptic_fusion(det, semantic[0], score_threshold=0.0)
    assert ids.shape == (64, 64) and {s["id"] for s in segments} == set(ids.unique().tolist()) - {0}
