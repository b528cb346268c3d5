"""pixel_cross_entropy equals F.cross_entropy; median-frequency weights by hand."""

import math

import pytest
import torch
import torch.nn.functional as F

from coursekit.segmentation.losses import class_weights_from_frequency, pixel_cross_entropy


def test_hand_computed():
    # 1 image, 2 classes, 1x2 pixels. Pixel 0: logits (0, 0), class 1 -> log 2.
    # Pixel 1: logits (log 3, 0), class 0 -> -log(3/4) = log 4 - log 3.
    logits = torch.tensor([[[[0.0, math.log(3.0)]], [[0.0, 0.0]]]])  # (1, 2, 1, 2)
    target = torch.tensor([[[1, 0]]])
    per_pixel = pixel_cross_entropy(logits, target, reduction="none")
    torch.testing.assert_close(per_pixel, torch.tensor([[[math.log(2.0), math.log(4.0 / 3.0)]]]))
    torch.testing.assert_close(pixel_cross_entropy(logits, target), torch.tensor((math.log(2.0) + math.log(4 / 3)) / 2))
    # weights (1, 3): weighted mean = (3 log 2 + 1 log 4/3) / (3 + 1)
    weighted = pixel_cross_entropy(logits, target, weight=torch.tensor([1.0, 3.0]))
    torch.testing.assert_close(weighted, torch.tensor((3 * math.log(2.0) + math.log(4 / 3)) / 4))
    # ignoring pixel 1 leaves log 2
    torch.testing.assert_close(pixel_cross_entropy(logits, torch.tensor([[[1, 255]]])), torch.tensor(math.log(2.0)))


@pytest.mark.parametrize("shape", [(1, 2, 1, 1), (2, 5, 7, 3), (3, 8, 16, 16)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_torch(shape, reduction, weighted):
    n, c, h, w = shape
    logits = torch.randn(shape, dtype=torch.float64) * 3
    target = torch.randint(0, c, (n, h, w))
    target[torch.rand(n, h, w) < 0.2] = 255
    target.view(-1)[0] = 0  # at least one counted pixel
    weight = torch.rand(c, dtype=torch.float64) + 0.1 if weighted else None
    ours = pixel_cross_entropy(logits, target, weight, reduction=reduction)
    ref = F.cross_entropy(logits, target, weight, ignore_index=255, reduction=reduction)
    torch.testing.assert_close(ours, ref)


def test_other_ignore_index_and_large_logits():
    logits = torch.randn(2, 4, 5, 5, dtype=torch.float64) * 1000  # naive exp would overflow
    target = torch.randint(0, 4, (2, 5, 5))
    target[0, 0] = -1
    ours = pixel_cross_entropy(logits, target, ignore_index=-1)
    torch.testing.assert_close(ours, F.cross_entropy(logits, target, ignore_index=-1))
    assert torch.isfinite(ours)


def test_all_ignored_mean_is_nan_like_torch():
    logits = torch.randn(1, 3, 2, 2)
    target = torch.full((1, 2, 2), 255)
    assert torch.isnan(pixel_cross_entropy(logits, target))
    assert torch.isnan(F.cross_entropy(logits, target, ignore_index=255))


def test_gradcheck():
    logits = torch.randn(2, 3, 4, 3, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 3, (2, 4, 3))
    target[0, 1, 1] = 255
    weight = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: pixel_cross_entropy(x, target, weight), (logits,))
    grad_ours = torch.autograd.grad(pixel_cross_entropy(logits, target, weight), logits)[0]
    grad_ref = torch.autograd.grad(F.cross_entropy(logits, target, weight, ignore_index=255), logits)[0]
    torch.testing.assert_close(grad_ours, grad_ref)


def test_device(device):
    logits = torch.randn(2, 4, 6, 6, device=device)
    target = torch.randint(0, 4, (2, 6, 6), device=device)
    weight = torch.rand(4, device=device)
    ours = pixel_cross_entropy(logits, target, weight)
    assert ours.device.type == device.type
    torch.testing.assert_close(ours, F.cross_entropy(logits, target, weight, ignore_index=255))


def test_class_weights_by_hand():
    # image A (4 valid px): classes 0,0,0,1 ; image B (3 valid px + 1 ignored): 0,2,2
    # freq_0 = 4 / (4 + 3) ; freq_1 = 1 / 4 ; freq_2 = 2 / 3 ; class 3 absent
    # median of (4/7, 1/4, 2/3) = 4/7 -> weights (1, 16/7, 6/7, 0)
    target = torch.tensor([[[0, 0], [0, 1]], [[0, 2], [2, 255]]])
    weights = class_weights_from_frequency(target, 4)
    torch.testing.assert_close(weights, torch.tensor([1.0, 16 / 7, 6 / 7, 0.0]))
    # a single image, even number of classes: median = mean of the middle two
    # freqs (3/4, 1/4) -> median 1/2 -> weights (2/3, 2)
    single = torch.tensor([[0, 0], [0, 1]])
    torch.testing.assert_close(class_weights_from_frequency(single, 2), torch.tensor([2 / 3, 2.0]))


def test_class_weights_device(device):
    target = torch.randint(0, 3, (2, 4, 4), device=device)
    weights = class_weights_from_frequency(target, 3)
    assert weights.device.type == device.type and weights.shape == (3,)


def test_bad_input():
    logits = torch.randn(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"logits must be a float Tensor\[N, C, H, W\], got Tensor\[2, 3, 4\]"):
        pixel_cross_entropy(logits[..., 0], torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"target must be Tensor\[N, H, W\] = Tensor\[2, 4, 4\] to match logits, got Tensor\[2, 4\]"):
        pixel_cross_entropy(logits, torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="target must be an int64 Tensor of class ids, got Tensor.* float32"):
        pixel_cross_entropy(logits, torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match=r"target values must be in \[0, 3\) or ignore_index=255, got 7"):
        pixel_cross_entropy(logits, torch.full((2, 4, 4), 7))
    with pytest.raises(ValueError, match=r"weight must be None or Tensor\[C\] = Tensor\[3\], got Tensor\[4\]"):
        pixel_cross_entropy(logits, torch.zeros(2, 4, 4, dtype=torch.long), torch.ones(4))
    with pytest.raises(ValueError, match="reduction must be"):
        pixel_cross_entropy(logits, torch.zeros(2, 4, 4, dtype=torch.long), reduction="avg")
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        class_weights_from_frequency(torch.zeros(2, 2, dtype=torch.long), 0)
