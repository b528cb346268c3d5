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
    mode = "reflect" if padding_mode == "reflect" else "constant"
    padded = F.pad(image[None], (3, 3, 3, 3), mode=mode)
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


def _patch_by_patch(model, image, patch, mode="reflect"):
    """Reference: cut each patch by slicing and classify it alone (float64, CPU, plain loops)."""
    half = patch // 2
    padded = F.pad(image[None], (half, half, half, half), mode=mode)[0]
    _, h, w = image.shape
    out = torch.zeros(model.num_classes, h, w, dtype=image.dtype)
    with torch.no_grad():
        for y in range(h):
            for x in range(w):
                out[:, y, x] = model(padded[None, :, y : y + patch, x : x + patch])[0, :, 0, 0]
    return out


@pytest.mark.parametrize("batch_size", [1024, 7])
def test_device(device, batch_size):
    torch.manual_seed(0)
    model = PatchClassifier(num_layers=2, width=4).double()
    image = torch.rand(3, 10, 11, dtype=torch.float64)
    ref = _patch_by_patch(model, image, model.patch_size)
    model, x = model.float().to(device), image.float().to(device)
    slow = sliding_window_segment(model, x, batch_size=batch_size)
    fast = fcn_segment(model, x)
    for out in (slow, fast):
        assert out.device.type == device.type and out.dtype == torch.float32
        torch.testing.assert_close(out.cpu().double(), ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("batch_size", [1, 5, 13, 40, 1000])
def test_patches_are_cut_a_strip_at_a_time(batch_size, monkeypatch):
    # memory is bounded by max(batch_size, W) patches, not by all N * H * W of them
    model = PatchClassifier(num_layers=2, width=4).double()  # P = 5
    images = torch.rand(2, 3, 9, 13, dtype=torch.float64)
    largest = []
    unfold = F.unfold

    def recording_unfold(x, *args, **kwargs):
        out = unfold(x, *args, **kwargs)
        largest.append(out.numel())
        return out

    monkeypatch.setattr(F, "unfold", recording_unfold)
    slow = sliding_window_segment(model, images, batch_size=batch_size)
    monkeypatch.undo()
    assert max(largest) <= max(batch_size, 13) * 3 * 5 * 5
    torch.testing.assert_close(slow, fcn_segment(model, images))
    torch.testing.assert_close(slow[1], _patch_by_patch(model, images[1], 5))


def test_timing_rows():
    model = PatchClassifier(num_layers=2, width=4)
    rows = time_sliding_vs_fcn(sizes=(12,), model=model, repeat=1, threads=1)
    assert len(rows) == 1 and rows[0]["size"] == 12
    assert rows[0]["sliding_s"] > 0 and rows[0]["fcn_s"] > 0
    assert rows[0]["speedup"] == pytest.approx(rows[0]["sliding_s"] / rows[0]["fcn_s"])
    assert rows[0]["max_abs_diff"] <= 1e-5


MODEL = PatchClassifier(num_layers=2)
IMAGE = torch.rand(3, 8, 8)


class _EvenPatch(torch.nn.Conv2d):
    patch_size = 4


@pytest.mark.parametrize("fn, args, kwargs, error, match", [
    (sliding_window_segment, (MODEL, torch.rand(8, 8)), {}, ValueError,
     r"image must be a float Tensor\[C, H, W\] or Tensor\[N, C, H, W\], "
     r"got Tensor\[8, 8\] float32"),
    (fcn_segment, (MODEL, IMAGE.long()), {}, TypeError,
     r"image must be a float .*\(float16, bfloat16, float32 or float64\), "
     r"got Tensor\[3, 8, 8\] int64"),
    (fcn_segment, (MODEL, IMAGE.tolist()), {}, TypeError, "image must be a float Tensor.*got list"),
    (fcn_segment, (MODEL, IMAGE), {"padding_mode": "circular"}, ValueError,
     "padding_mode must be 'reflect', 'zeros' or 'replicate', got 'circular'"),
    (fcn_segment, (MODEL, IMAGE), {"padding_mode": 0}, TypeError, "padding_mode must be a str"),
    (fcn_segment, (MODEL, torch.rand(3, 2, 8)), {}, ValueError,
     r"reflect padding needs H, W > 2 \(half the patch\), got \(2, 8\)"),
    (sliding_window_segment, (MODEL, torch.rand(3, 0, 8)), {"padding_mode": "zeros"}, ValueError,
     r"image must have H, W >= 1 \(one score per pixel\), got Tensor\[3, 0, 8\]"),
    (fcn_segment, (MODEL, torch.rand(1, 3, 8, 0)), {"padding_mode": "zeros"}, ValueError,
     r"image must have H, W >= 1 .*got Tensor\[1, 3, 8, 0\]"),
    (sliding_window_segment, (MODEL, IMAGE), {"batch_size": 0}, ValueError,
     "batch_size must be positive, got 0"),
    (sliding_window_segment, (MODEL, IMAGE), {"batch_size": 2.0}, TypeError,
     "batch_size must be an int, got 2.0"),
    (fcn_segment, (torch.nn.Conv2d(3, 8, 3), IMAGE), {}, TypeError,
     "model.patch_size must be an odd int .*got None"),
    (fcn_segment, (_EvenPatch(3, 8, 3), IMAGE), {}, ValueError,
     "model.patch_size must be an odd int .*got 4"),
    (fcn_segment, ("model", IMAGE), {}, TypeError, "model must be an nn.Module .*got str"),
    (PatchClassifier, (), {"num_layers": 0}, ValueError, "num_layers must be positive, got 0"),
    (PatchClassifier, (), {"width": 4.0}, TypeError, "width must be an int, got 4.0"),
    (time_sliding_vs_fcn, ((8,),), {}, ValueError,
     "sizes must be a non-empty sequence of ints > 8"),
    (time_sliding_vs_fcn, ((),), {}, ValueError, "sizes must be a non-empty sequence"),
    (time_sliding_vs_fcn, ((12.0,),), {}, TypeError, "sizes must be a non-empty sequence of ints"),
    (time_sliding_vs_fcn, ((12,),), {"repeat": 0}, ValueError, "repeat must be positive, got 0"),
    (time_sliding_vs_fcn, ((12,),), {"threads": "2"}, TypeError, "threads must be an int, got '2'"),
])
def test_bad_input(fn, args, kwargs, error, match):
    with pytest.raises(error, match=match):
        fn(*args, **kwargs)


@pytest.mark.parametrize("fn", [sliding_window_segment, fcn_segment])
def test_empty_batch_gives_empty_scores(fn):
    # N = 0 used to end in torch.cat([]) ("expected a non-empty list of Tensors")
    model = PatchClassifier(num_classes=3, in_channels=2, width=3, num_layers=1)
    assert fn(model, torch.rand(0, 2, 4, 5)).shape == (0, 3, 4, 5)
