"""pixel_cross_entropy equals F.cross_entropy; median-frequency weights by hand."""

import math

import numpy as np
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
    torch.testing.assert_close(pixel_cross_entropy(logits, target),
                               torch.tensor((math.log(2.0) + math.log(4 / 3)) / 2))
    # weights (1, 3): weighted mean = (3 log 2 + 1 log 4/3) / (3 + 1)
    weighted = pixel_cross_entropy(logits, target, weight=torch.tensor([1.0, 3.0]))
    torch.testing.assert_close(weighted, torch.tensor((3 * math.log(2.0) + math.log(4 / 3)) / 4))
    # ignoring pixel 1 leaves log 2
    torch.testing.assert_close(pixel_cross_entropy(logits, torch.tensor([[[1, 255]]])),
                               torch.tensor(math.log(2.0)))


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
    ref = F.cross_entropy(logits, target, weight, ignore_index=255)
    grad_ref = torch.autograd.grad(ref, logits)[0]
    torch.testing.assert_close(grad_ours, grad_ref)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_device(device, reduction):
    # the reference is torch on the same device, and float64 on the CPU
    logits = torch.randn(2, 4, 6, 6, dtype=torch.float64)
    target = torch.randint(0, 4, (2, 6, 6))
    target[0, 0] = 255
    weight = torch.rand(4, dtype=torch.float64) + 0.1
    ref = F.cross_entropy(logits, target, weight, ignore_index=255, reduction=reduction)
    x, t, w = logits.float().to(device), target.to(device), weight.float().to(device)
    ours = pixel_cross_entropy(x, t, w, reduction=reduction)
    assert ours.device.type == device.type and ours.dtype == torch.float32
    same_device = F.cross_entropy(x, t, w, ignore_index=255, reduction=reduction)
    torch.testing.assert_close(ours, same_device)
    torch.testing.assert_close(ours.cpu().double(), ref, rtol=1e-5, atol=1e-5)


def test_weight_on_another_device_follows_logits():
    logits = torch.randn(1, 3, 2, 2, dtype=torch.float64)
    target = torch.randint(0, 3, (1, 2, 2))
    weight = torch.tensor([1.0, 2.0, 3.0])  # float32: cast to the logits' dtype
    torch.testing.assert_close(pixel_cross_entropy(logits, target, weight),
                               F.cross_entropy(logits, target, weight.double()))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_reduced_precision_is_computed_in_float32(dtype):
    # large logits: a float16 logsumexp over 8 classes loses digits; we compute in float32
    logits = (torch.randn(2, 8, 5, 5, dtype=torch.float64) * 20).to(dtype)
    target = torch.randint(0, 8, (2, 5, 5))
    for reduction in ("mean", "sum", "none"):
        ours = pixel_cross_entropy(logits, target, reduction=reduction)
        assert ours.dtype == dtype
        ref = F.cross_entropy(logits.double(), target, reduction=reduction)  # float64 reference
        # within one rounding of the output dtype (relative), not the float16 logsumexp's error
        eps = torch.finfo(dtype).eps
        torch.testing.assert_close(ours.double(), ref, rtol=eps, atol=1e-5)


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


def _weights_with_loops(target, num_classes, ignore_index=255):
    """Independent float64 reference: per-class pixel counts with Python loops."""
    images = target.reshape(-1, target.shape[-2] * target.shape[-1]).tolist()
    class_pixels = [0] * num_classes
    where_present = [0] * num_classes
    for image in images:
        valid = [v for v in image if v != ignore_index]
        for c in range(num_classes):
            n = valid.count(c)
            class_pixels[c] += n
            where_present[c] += len(valid) if n else 0
    freq = {c: class_pixels[c] / where_present[c] for c in range(num_classes) if class_pixels[c]}
    median = float(np.median(list(freq.values())))
    return torch.tensor([median / freq[c] if c in freq else 0.0 for c in range(num_classes)],
                        dtype=torch.float64)


@pytest.mark.parametrize("shape,num_classes", [((3, 7, 5), 4), ((6, 6), 3), ((4, 9, 9), 7)])
def test_class_weights_random_against_loops(shape, num_classes):
    target = torch.randint(0, num_classes, shape)
    target[torch.rand(shape) < 0.1] = 255
    weights = class_weights_from_frequency(target, num_classes)
    assert weights.dtype == torch.float32
    torch.testing.assert_close(weights.double(), _weights_with_loops(target, num_classes))
    # any integer dtype holds class ids
    torch.testing.assert_close(class_weights_from_frequency(target.to(torch.uint8), num_classes),
                               weights)


def test_class_weights_device(device):
    target = torch.randint(0, 3, (2, 4, 4))
    target[0, :2] = 0  # class 0 is frequent, so the weights differ
    weights = class_weights_from_frequency(target.to(device), 3)
    assert weights.device.type == device.type and weights.dtype == torch.float32
    torch.testing.assert_close(weights.cpu().double(), _weights_with_loops(target, 3))


LOGITS = torch.randn(2, 3, 4, 4)
ZEROS = torch.zeros(2, 4, 4, dtype=torch.long)


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((LOGITS[..., 0], ZEROS[..., 0]), {}, ValueError,
     r"logits must be a float Tensor\[N, C, H, W\], got Tensor\[2, 3, 4\] float32"),
    ((LOGITS.long(), ZEROS), {}, TypeError,
     r"logits must be a float Tensor\[N, C, H, W\] \(float16, bfloat16, float32 or float64\), "
     r"got Tensor\[2, 3, 4, 4\] int64"),
    ((LOGITS.tolist(), ZEROS), {}, TypeError, "logits must be a float Tensor.*got list"),
    ((LOGITS, ZEROS[..., 0]), {}, ValueError,
     r"target must be Tensor\[N, H, W\] = Tensor\[2, 4, 4\] to match logits, got Tensor\[2, 4\]"),
    ((LOGITS, ZEROS.float()), {}, TypeError,
     "target must be an int64 Tensor of class ids, got Tensor.* float32"),
    ((LOGITS, ZEROS.int()), {}, TypeError,
     "target must be an int64 Tensor of class ids, got Tensor.* int32"),
    ((LOGITS, ZEROS.tolist()), {}, TypeError, "target must be an int64 Tensor.*got list"),
    ((LOGITS, ZEROS + 7), {}, ValueError,
     r"target values must be in \[0, 3\) or ignore_index=255, got 7"),
    ((LOGITS, ZEROS - 1), {}, ValueError, "target values must be .*got -1"),
    ((LOGITS, ZEROS, torch.ones(4)), {}, ValueError,
     r"weight must be None or Tensor\[C\] = Tensor\[3\], got Tensor\[4\] float32"),
    ((LOGITS, ZEROS, torch.ones(3, dtype=torch.long)), {}, TypeError,
     r"weight must be a float Tensor\[3\] .*got Tensor\[3\] int64"),
    ((LOGITS, ZEROS, [1.0, 1.0, 1.0]), {}, TypeError, "weight must be None or a float .*got list"),
    ((LOGITS, ZEROS), {"reduction": "avg"}, ValueError,
     "reduction must be 'mean', 'sum' or 'none', got 'avg'"),
    ((LOGITS, ZEROS), {"reduction": None}, TypeError, "reduction must be a str"),
    ((LOGITS, ZEROS), {"ignore_index": 2.5}, TypeError, "ignore_index must be an int, got 2.5"),
])
def test_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        pixel_cross_entropy(*args, **kwargs)


@pytest.mark.parametrize("target, num_classes, error, match", [
    (ZEROS, 0, ValueError, "num_classes must be positive, got 0"),
    (ZEROS, 2.0, TypeError, "num_classes must be an int, got 2.0"),
    (ZEROS.float(), 3, TypeError,
     r"target must be an integer Tensor\[N, H, W\] or Tensor\[H, W\] of class ids "
     r"\(int64, int32, uint8, \.\.\.\), got Tensor\[2, 4, 4\] float32"),
    (ZEROS[0, 0], 3, ValueError, r"target must be .*got Tensor\[4\] int64"),
    ([[0, 1]], 3, TypeError, "target must be an integer Tensor.*got list"),
    (ZEROS + 5, 3, ValueError, r"target values must be in \[0, 3\) or ignore_index=255, got 5"),
])
def test_class_weights_bad_input(target, num_classes, error, match):
    with pytest.raises(error, match=match):
        class_weights_from_frequency(target, num_classes)
