"""Sliding window and fully convolutional runs of one PatchClassifier give the same map."""

import pytest
import torch
import torch.nn.functional as F

from coursekit.segmentation.receptive_field import receptive_field_of
from coursekit.segmentation.sliding_window import (
    PatchClassifier,
    fcn_segment,
    sliding_window_segment,
    time_sliding_vs_fcn,
)


def test_patch_size_is_receptive_field():
    for layers in (1, 3, 10):
        model = PatchClassifier(num_layers=layers)
        assert model.patch_size == 1 + 2 * layers == receptive_field_of(model)["size"]
        patch = torch.rand(2, 3, model.patch_size, model.patch_size)
        assert model(patch).shape == (2, 8, 1, 1)  # one prediction for the centre pixel


def test_hand_computed_one_layer():
    # one 3x3 conv with all-ones weights, ReLU, 1x1 identity-ish head: each pixel = sum of its
    # 3x3 zero-padded neighbourhood. Image [[1, 2], [3, 4]] -> [[10, 10], [10, 10]] (every
    # neighbourhood of a 2x2 image holds all four pixels).
    model = PatchClassifier(num_classes=1, in_channels=1, width=1, num_layers=1)
    with torch.no_grad():
        model.net[0].weight.fill_(1.0)
        model.net[0].bias.zero_()
        model.net[2].weight.fill_(1.0)
        model.net[2].bias.zero_()
    image = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    expected = torch.full((1, 2, 2), 10.0)
    torch.testing.assert_close(sliding_window_segment(model, image, padding_mode="zeros"), expected)
    torch.testing.assert_close(fcn_segment(model, image, padding_mode="zeros"), expected)


@pytest.mark.parametrize("size", [(9, 9), (16, 16), (13, 21), (32, 24)])
@pytest.mark.parametrize("padding_mode", ["reflect", "zeros"])
def test_sliding_equals_fcn(size, padding_mode):
    torch.manual_seed(sum(size))
    model = PatchClassifier(num_layers=3, width=8).double()  # P = 7, random weights
    image = torch.rand(3, *size, dtype=torch.float64)
    slow = sliding_window_segment(model, image, batch_size=50, padding_mode=padding_mode)
    fast = fcn_segment(model, image, padding_mode=padding_mode)
    assert slow.shape == fast.shape == (8, *size)
    assert (slow - fast).abs().max() <= 1e-5
    # and the centre pixel's score is literally the classifier on the patch around it
    y, x = size[0] // 2, size[1] // 2
    padded = F.pad(image[None], (3, 3, 3, 3), mode="reflect" if padding_mode == "reflect" else "constant")
    with torch.no_grad():
        direct = model(padded[:, :, y : y + 7, x : x + 7])[0, :, 0, 0]
    torch.testing.assert_close(slow[:, y, x], direct)


def test_batch_of_images_float32():
    model = PatchClassifier(num_layers=4)
    images = torch.rand(2, 3, 20, 20)
    slow = sliding_window_segment(model, images, batch_size=333)
    fast = fcn_segment(model, images)
    assert slow.shape == (2, 8, 20, 20)
    assert (slow - fast).abs().max() <= 1e-5


def test_device(device):
    model = PatchClassifier(num_layers=2).to(device)
    image = torch.rand(3, 10, 10, device=device)
    out = sliding_window_segment(model, image)
    assert out.device.type == device.type
    assert (out - fcn_segment(model, image)).abs().max() <= 1e-5


def test_timing_rows():
    rows = time_sliding_vs_fcn(sizes=(12,), model=PatchClassifier(num_layers=2, width=4), repeat=1, threads=1)
    assert len(rows) == 1 and rows[0]["size"] == 12
    assert rows[0]["sliding_s"] > 0 and rows[0]["fcn_s"] > 0
    assert rows[0]["speedup"] == pytest.approx(rows[0]["sliding_s"] / rows[0]["fcn_s"])
    assert rows[0]["max_abs_diff"] <= 1e-5


def test_bad_input():
    model = PatchClassifier(num_layers=2)
    with pytest.raises(ValueError, match=r"image must be a float Tensor\[C, H, W\] or Tensor\[N, C, H, W\], got Tensor\[8, 8\]"):
        sliding_window_segment(model, torch.rand(8, 8))
    with pytest.raises(ValueError, match="padding_mode must be"):
        fcn_segment(model, torch.rand(3, 8, 8), padding_mode="circular")
    with pytest.raises(ValueError, match=r"reflect padding needs H, W > 2"):
        fcn_segment(model, torch.rand(3, 2, 8))
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        sliding_window_segment(model, torch.rand(3, 8, 8), batch_size=0)
    with pytest.raises(ValueError, match="model.patch_size must be an odd int"):
        fcn_segment(torch.nn.Conv2d(3, 8, 3), torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="num_layers must be a positive int, got 0"):
        PatchClassifier(num_layers=0)
