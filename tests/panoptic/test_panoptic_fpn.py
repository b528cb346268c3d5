"""Panoptic FPN: the semantic branch on the shared FPN, and the two outputs fused."""

import pytest
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


def test_odd_image_sizes_and_bad_input():
    torch.manual_seed(0)
    model = PanopticFPN(build_mask_rcnn(), num_classes=8).eval()
    with torch.no_grad():
        detections, semantic = model(torch.rand(1, 3, 70, 53))  # not a multiple of the coarsest stride
    assert semantic.shape == (1, 8, 70, 53) and detections[0]["masks"].shape[1:] == (70, 53)
    with pytest.raises(ValueError, match=r"images must be Tensor\[B, 3, H, W\], got Tensor\[3, 64, 64\]"):
        model(torch.rand(3, 64, 64))
    with pytest.raises(ValueError, match=r"channels must be a multiple of 8 \(GroupNorm with 8 groups\), got 4"):
        SemanticFPNHead(in_channels=16, num_levels=3, num_classes=8, channels=4)


def test_semantic_head_overfits_one_batch():
    torch.manual_seed(0)
    head = SemanticFPNHead(in_channels=8, num_levels=3, num_classes=3, channels=8)
    features = {"0": torch.randn(2, 8, 8, 8), "1": torch.randn(2, 8, 4, 4), "2": torch.randn(2, 8, 2, 2)}
    target = torch.randint(0, 3, (2, 16, 16))
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(head(features, (16, 16)), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
