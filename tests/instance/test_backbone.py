"""The FPN's top-down pathway uses lesson 02's nearest_upsample: same outputs as F.interpolate.

Before, ``FeaturePyramidNetwork`` called ``F.interpolate(mode="nearest")``; now it calls
``coursekit.upsampling.nearest_upsample(size=...)``. These tests check that nothing moved:
the FPN against a copy of its old forward and against torchvision's FPN on random features
(odd sizes too), and the shipped Mask R-CNN's detections on ShapesWorld scenes (to 1e-5).
"""

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck
from torch.testing import assert_close

import coursekit.instance.backbone as backbone_module
from coursekit.checkpoints import checkpoint_dir, read_manifest
from coursekit.data import render_batch
from coursekit.instance.backbone import BackboneWithFPN, FeaturePyramidNetwork


def interpolate_fpn_forward(fpn, x):
    """The FPN's forward as it was: torch's nearest F.interpolate in the top-down pathway."""
    names, feats = list(x.keys()), list(x.values())
    inner = fpn.inner_blocks[-1](feats[-1])
    results = [fpn.layer_blocks[-1](inner)]
    for idx in range(len(feats) - 2, -1, -1):
        lateral = fpn.inner_blocks[idx](feats[idx])
        inner = lateral + F.interpolate(inner, size=lateral.shape[-2:], mode="nearest")
        results.insert(0, fpn.layer_blocks[idx](inner))
    return OrderedDict(zip(names, results, strict=True))


def features(sizes, channels=(4, 6, 8), batch=2, dtype=torch.float32):
    return OrderedDict((str(i), torch.randn(batch, c, *s, dtype=dtype))
                       for i, (c, s) in enumerate(zip(channels, sizes, strict=True)))


# 64 x 64 images (exact 2x), odd images (70 x 53: 35x27 -> 18x14 -> 9x7), and other rounding
SIZES = [[(32, 32), (16, 16), (8, 8)], [(35, 27), (18, 14), (9, 7)],
         [(27, 53), (14, 27), (7, 14)], [(5, 3), (3, 2), (1, 1)]]


@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fpn_equals_the_interpolate_version(sizes, dtype):
    fpn = FeaturePyramidNetwork([4, 6, 8], 5).to(dtype)
    x = features(sizes, dtype=dtype)
    with torch.no_grad():
        ours, ref = fpn(x), interpolate_fpn_forward(fpn, x)
    assert list(ours) == list(ref)
    for name in ours:
        assert torch.equal(ours[name], ref[name]), name  # the same copies: bit for bit


def test_fpn_upsamples_with_lesson_02s_nearest_upsample(monkeypatch):
    calls = []
    original = backbone_module.nearest_upsample

    def spy(x, scale_factor=None, size=None):
        calls.append((tuple(x.shape[-2:]), size))
        return original(x, scale_factor, size=size)

    monkeypatch.setattr(backbone_module, "nearest_upsample", spy)
    FeaturePyramidNetwork([4, 6, 8], 5)(features(SIZES[1]))
    assert calls == [((9, 7), (18, 14)), ((18, 14), (35, 27))]  # coarse to fine


@pytest.mark.parametrize("sizes", SIZES[:3])
def test_fpn_equals_torchvision(sizes):
    from torchvision.ops import FeaturePyramidNetwork as TVFeaturePyramidNetwork

    ours = FeaturePyramidNetwork([4, 6, 8], 5).double()
    ref = TVFeaturePyramidNetwork([4, 6, 8], 5).double()
    with torch.no_grad():
        for ref_block, block in zip(list(ref.inner_blocks) + list(ref.layer_blocks),
                                    list(ours.inner_blocks) + list(ours.layer_blocks),
                                    strict=True):
            ref_block[0].weight.copy_(block.weight)
            ref_block[0].bias.copy_(block.bias)
    x = features(sizes, dtype=torch.float64)
    for a, b in zip(ours(x).values(), ref(x).values(), strict=True):
        assert_close(a, b)


def test_fpn_by_hand():
    """Identity laterals and output convs: P_2 = C_2, P_1 = C_1 + up(P_2), P_0 = C_0 + up(P_1)."""
    fpn = FeaturePyramidNetwork([1, 1, 1], 1).double()
    with torch.no_grad():
        for block in fpn.inner_blocks:
            block.weight.fill_(1.0)
            block.bias.zero_()
        for block in fpn.layer_blocks:
            block.weight.zero_()
            block.weight[0, 0, 1, 1] = 1.0  # the centre tap: identity
            block.bias.zero_()
    c2 = torch.tensor([[7.0]], dtype=torch.float64)
    c1 = torch.tensor([[1.0, 2.0]], dtype=torch.float64)  # 1 x 2: width doubles, height stays
    c0 = torch.tensor([[0.0, 10.0, 20.0, 30.0], [40.0, 50.0, 60.0, 70.0]], dtype=torch.float64)
    x = OrderedDict([("0", c0.view(1, 1, 2, 4)), ("1", c1.view(1, 1, 1, 2)),
                     ("2", c2.view(1, 1, 1, 1))])
    out = fpn(x)
    assert out["2"].flatten().tolist() == [7.0]
    assert out["1"].flatten().tolist() == [8.0, 9.0]
    # P_1 = [8, 9] copied to 2 x 4: [[8, 8, 9, 9], [8, 8, 9, 9]]
    assert out["0"][0, 0].tolist() == [[8.0, 18.0, 29.0, 39.0], [48.0, 58.0, 69.0, 79.0]]


def test_fpn_gradcheck():
    fpn = FeaturePyramidNetwork([2, 3], 2).double()
    c0 = torch.randn(1, 2, 5, 3, dtype=torch.float64, requires_grad=True)
    c1 = torch.randn(1, 3, 3, 2, dtype=torch.float64, requires_grad=True)

    def run(a, b):
        return tuple(fpn(OrderedDict([("0", a), ("1", b)])).values())

    assert gradcheck(run, (c0, c1))


def test_fpn_bad_input():
    fpn = FeaturePyramidNetwork([4, 6, 8], 5)
    x = features(SIZES[0])
    with pytest.raises(TypeError, match=r"x must be a dict of 3 Tensor\[B, C_l, H_l, W_l\] with "
                                        r"C_l = \[4, 6, 8\], finest first, got list"):
        fpn(list(x.values()))
    with pytest.raises(ValueError, match=r"x must be a dict of 3 .* got \{'0': Tensor\[2, 4, 32, "
                                         r"32\] float32, '1': Tensor\[2, 6, 16, 16\] float32\}"):
        fpn(OrderedDict(list(x.items())[:2]))
    with pytest.raises(TypeError, match=r"got \{'0': list, "):
        fpn(OrderedDict([("0", [1.0]), ("1", x["1"]), ("2", x["2"])]))
    with pytest.raises(ValueError,
                       match=r"x\['1'\] must have 6 channels, got Tensor\[2, 5, 16, 16\]"):
        fpn(OrderedDict([("0", x["0"]), ("1", x["1"][:, :5]), ("2", x["2"])]))


def test_backbone_with_fpn_shapes_on_an_odd_image():
    model = BackboneWithFPN(widths=(8, 16, 24), stem=8, out_channels=16).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 70, 53))
    assert [tuple(t.shape) for t in out.values()] == [(2, 16, 35, 27), (2, 16, 18, 14),
                                                      (2, 16, 9, 7)]


MANIFEST = read_manifest(checkpoint_dir())


@pytest.mark.skipif("maskrcnn" not in MANIFEST, reason="no shipped maskrcnn checkpoint")
def test_shipped_maskrcnn_gives_the_same_outputs_as_with_interpolate(monkeypatch):
    """Four held-out ShapesWorld scenes and one odd-sized image: same detections to 1e-5."""
    from coursekit.instance import load_maskrcnn

    model = load_maskrcnn()
    scenes = render_batch(range(3_000_000, 3_000_004), size=64).image  # (4, 3, 64, 64)
    odd = F.interpolate(scenes[:1], size=(70, 53), mode="bilinear")  # (1, 3, 70, 53)

    def run():
        with torch.no_grad():
            feats = model.backbone(model.transform(scenes))
            odd_feats = model.backbone(model.transform(odd))
        preds = [model.predict(image, score_threshold=0.0) for image in scenes]
        return feats, odd_feats, preds + [model.predict(odd[0], score_threshold=0.0)]

    ours = run()

    def interpolate_nearest(x, scale_factor=None, size=None):
        return F.interpolate(x, size=size, scale_factor=scale_factor, mode="nearest")

    monkeypatch.setattr(backbone_module, "nearest_upsample", interpolate_nearest)
    ref = run()
    for a, b in ((ours[0], ref[0]), (ours[1], ref[1])):
        for name in a:
            assert_close(a[name], b[name], rtol=0, atol=1e-5)
    assert sum(len(p["boxes"]) for p in ours[2]) > 0  # there is something to compare
    for p, q in zip(ours[2], ref[2], strict=True):
        assert torch.equal(p["labels"], q["labels"])
        assert_close(p["boxes"], q["boxes"], rtol=0, atol=1e-5)
        assert_close(p["scores"], q["scores"], rtol=0, atol=1e-5)
        assert torch.equal(p["masks"], q["masks"])
