"""Panoptic FPN: the semantic branch on the shared FPN, and the two outputs fused."""

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

import coursekit.panoptic.panoptic_fpn as panoptic_fpn_module
from coursekit.instance import build_mask_rcnn
from coursekit.panoptic import PanopticFPN, SemanticFPNHead, panoptic_fusion

FEATURES_64 = {"0": (32, 32), "1": (16, 16), "2": (8, 8)}  # a 64 x 64 image, strides 2, 4, 8
FEATURES_ODD = {"0": (35, 27), "1": (18, 14), "2": (9, 7)}  # a 70 x 53 image


def random_features(sizes, channels=16, batch=2):
    return {k: torch.randn(batch, channels, *s) for k, s in sizes.items()}


def test_semantic_head_shapes():
    head = SemanticFPNHead(in_channels=16, num_levels=3, num_classes=8, channels=16)
    features = random_features(FEATURES_64)
    assert head(features, (64, 64)).shape == (2, 8, 64, 64)
    # level i: i upsampling stages (at least 1 conv)
    assert [len(stages) for stages in head.scale_heads] == [1, 1, 2]


@pytest.mark.parametrize("sizes, image_size", [(FEATURES_64, (64, 64)),
                                               (FEATURES_ODD, (70, 53))])
def test_semantic_head_equals_the_interpolate_version(monkeypatch, sizes, image_size):
    """The head upsamples with lesson 02's bilinear_upsample; F.interpolate gives the same."""
    head = SemanticFPNHead(in_channels=16, num_levels=3, num_classes=8, channels=16).eval()
    features = random_features(sizes)
    calls = []
    original = panoptic_fpn_module.bilinear_upsample

    def spy(x, size=None, scale_factor=None, align_corners=False):
        calls.append((tuple(x.shape[-2:]), tuple(size), align_corners))
        return original(x, size=size, scale_factor=scale_factor, align_corners=align_corners)

    def interpolate(x, size=None, scale_factor=None, align_corners=False):
        return F.interpolate(x, size=size, scale_factor=scale_factor, mode="bilinear",
                             align_corners=align_corners)

    monkeypatch.setattr(panoptic_fpn_module, "bilinear_upsample", spy)
    with torch.no_grad():
        ours = head(features, image_size)
    (h2, w2), (h1, w1), (h0, w0) = sizes["2"], sizes["1"], sizes["0"]
    assert calls == [((h1, w1), (h0, w0), False),  # level 1 -> level 0
                     ((h2, w2), (h1, w1), False), ((h1, w1), (h0, w0), False),  # level 2
                     ((h0, w0), image_size, False)]  # the logits -> the image
    monkeypatch.setattr(panoptic_fpn_module, "bilinear_upsample", interpolate)
    with torch.no_grad():
        ref = head(features, image_size)
    assert_close(ours, ref, rtol=0, atol=1e-5)


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
        # not a multiple of the coarsest stride
        detections, semantic = model(torch.rand(1, 3, 70, 53))
    assert semantic.shape == (1, 8, 70, 53) and detections[0]["masks"].shape[1:] == (70, 53)
    with pytest.raises(ValueError,
                       match=r"images must be Tensor\[B, 3, H, W\], got Tensor\[3, 64, 64\]"):
        model(torch.rand(3, 64, 64))
    with pytest.raises(TypeError, match=r"images must be Tensor\[B, 3, H, W\], got list"):
        model([torch.rand(3, 64, 64)])
    with pytest.raises(ValueError, match=r"channels must be a multiple of 8 "
                                         r"\(GroupNorm with 8 groups\), got 4"):
        SemanticFPNHead(in_channels=16, num_levels=3, num_classes=8, channels=4)
    head = SemanticFPNHead(in_channels=16, num_levels=3, num_classes=8, channels=8)
    two_levels = dict(list(random_features(FEATURES_64).items())[:2])
    with pytest.raises(ValueError, match=r"features must have 3 levels \(finest first\), got 2"):
        head(two_levels, (64, 64))


def test_semantic_head_overfits_one_batch():
    torch.manual_seed(0)
    head = SemanticFPNHead(in_channels=8, num_levels=3, num_classes=3, channels=8)
    features = random_features({"0": (8, 8), "1": (4, 4), "2": (2, 2)}, channels=8)
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
