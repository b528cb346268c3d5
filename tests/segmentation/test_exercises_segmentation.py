"""The segmentation graders accept correct answers and explain wrong ones without the solution."""

import torch
import torch.nn.functional as F

from coursekit.exercises.segmentation import (
    check_boundary_band,
    check_mean_iou,
    check_pixel_cross_entropy,
    check_receptive_field,
)
from coursekit.segmentation.losses import pixel_cross_entropy
from coursekit.segmentation.metrics import boundary_band, mean_iou


def _logits_and_target():
    return torch.randn(2, 3, 4, 4), torch.randint(0, 3, (2, 4, 4))


def _line(capsys):
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    return out[0]


# --- receptive field -------------------------------------------------------------------------


def test_receptive_field_correct(capsys):
    assert check_receptive_field(lambda num_layers: 1 + 2 * num_layers)
    assert _line(capsys).startswith("✅ correct: receptive field matches for 3x3 convolutions")

    def general(num_layers, kernel_size=3, stride=1):
        size, jump = 1, 1
        for _ in range(num_layers):
            size, jump = size + (kernel_size - 1) * jump, jump * stride
        return size

    assert check_receptive_field(general)
    assert "strided layers" in _line(capsys)


def test_receptive_field_wrong(capsys):
    assert not check_receptive_field(lambda num_layers: 2 * num_layers)
    line = _line(capsys)
    assert line.startswith("❌ receptive field for 3x3 convolutions: fn(1) returned 2")
    assert "hint:" in line

    def ignores_stride(num_layers, kernel_size=3, stride=1):
        return 1 + (kernel_size - 1) * num_layers

    assert not check_receptive_field(ignores_stride)
    assert "strided layers" in _line(capsys)


def test_receptive_field_raises_or_stub(capsys):
    def stub(num_layers):
        raise NotImplementedError("exercise: write your solution here")

    assert not check_receptive_field(stub)
    assert "not implemented yet" in _line(capsys)
    assert not check_receptive_field(lambda num_layers: [][num_layers])
    assert "your function raised IndexError" in _line(capsys)


# --- pixel cross-entropy ---------------------------------------------------------------------


def test_cross_entropy_correct(capsys):
    assert check_pixel_cross_entropy(lambda logits, target: pixel_cross_entropy(logits, target))
    assert _line(capsys).startswith("✅ correct:")


def test_cross_entropy_wrong(capsys):
    def naive(logits, target):  # exp overflows, no ignore
        probs = logits.exp() / logits.exp().sum(1, keepdim=True)
        return -probs.gather(1, target.clamp(max=logits.shape[1] - 1).unsqueeze(1)).log().mean()

    assert not check_pixel_cross_entropy(naive)
    line = _line(capsys)
    assert line.startswith("❌ large logits") and "logsumexp" in line

    def no_ignore(logits, target):
        t = target.clamp(max=logits.shape[1] - 1)
        return (torch.logsumexp(logits, 1) - logits.gather(1, t.unsqueeze(1)).squeeze(1)).mean()

    assert not check_pixel_cross_entropy(no_ignore)
    assert _line(capsys).startswith("❌ ignored pixels (target 255)")

    def summed(logits, target):
        return pixel_cross_entropy(logits, target, reduction="sum")

    assert not check_pixel_cross_entropy(summed)
    assert _line(capsys).startswith("❌ per-pixel cross-entropy: got")

    def detached(logits, target):
        return pixel_cross_entropy(logits.detach(), target)

    assert not check_pixel_cross_entropy(detached)
    assert "no gradient flows" in _line(capsys)

    def per_pixel(logits, target):
        return pixel_cross_entropy(logits, target, reduction="none")

    assert not check_pixel_cross_entropy(per_pixel)
    assert "expected a scalar tensor, got Tensor[2, 6, 7]" in _line(capsys)
    assert not check_pixel_cross_entropy(per_pixel(*_logits_and_target()))  # a result, not a fn
    line = _line(capsys)
    assert "expected your function, got Tensor[2, 4, 4] float32" in line
    assert "pass the function itself" in line


# --- mean IoU --------------------------------------------------------------------------------


def test_mean_iou_correct(capsys):
    assert check_mean_iou(mean_iou)
    assert _line(capsys).startswith("✅ correct:")

    def with_masks(pred, target, num_classes):
        valid = target != 255
        ious = []
        for c in range(num_classes):
            p, t = (pred == c) & valid, (target == c) & valid
            union = (p | t).sum()
            if union:
                ious.append(((p & t).sum() / union).item())
        return sum(ious) / len(ious)

    assert check_mean_iou(with_masks)
    _line(capsys)


def test_mean_iou_wrong(capsys):
    def absent_as_zero(pred, target, num_classes):
        ious = []
        for c in range(num_classes):
            p, t = pred == c, target == c
            union = (p | t).sum()
            ious.append(((p & t).sum() / union).item() if union else 0.0)
        return sum(ious) / len(ious)

    assert not check_mean_iou(absent_as_zero)
    line = _line(capsys)
    assert line.startswith("❌ a class absent from pred and target") and "hint:" in line

    def pixel_accuracy(pred, target, num_classes):
        return (pred == target).float().mean().item()

    assert not check_mean_iou(pixel_accuracy)
    assert _line(capsys).startswith("❌ every class present")

    def no_ignore(pred, target, num_classes):
        return mean_iou(pred, target.clamp(max=num_classes - 1), num_classes)

    assert not check_mean_iou(no_ignore)
    assert _line(capsys).startswith("❌ ignored pixels")

    assert not check_mean_iou(lambda pred, target, num_classes: "high")
    assert "expected a number, got str" in _line(capsys)


# --- boundary band ---------------------------------------------------------------------------


def _band_by_shifts(target, width, diagonals=True, pad_value=255, exact_distance=False):
    n, h, w = target.shape
    padded = F.pad(target, (width,) * 4, value=pad_value)
    band = torch.zeros_like(target, dtype=torch.bool)
    for dy in range(-width, width + 1):
        for dx in range(-width, width + 1):
            if (not diagonals and dy and dx) or (exact_distance and max(abs(dy), abs(dx)) != width):
                continue
            q = padded[:, width + dy:width + dy + h, width + dx:width + dx + w]
            band |= (q != 255) & (q != target)
    return band & (target != 255)


def test_boundary_band_correct(capsys):
    assert check_boundary_band(boundary_band)
    assert _line(capsys).startswith("✅ correct: boundary band matches")
    # 0/1 ints are fine
    assert check_boundary_band(lambda target, width: _band_by_shifts(target, width).long())
    _line(capsys)


def test_boundary_band_wrong(capsys):
    assert not check_boundary_band(
        lambda target, width: _band_by_shifts(target, width, diagonals=False))
    line = _line(capsys)
    assert line.startswith("❌ width 1: width 1:") and "diagonals" in line

    assert not check_boundary_band(
        lambda target, width: _band_by_shifts(target, width, exact_distance=True))
    assert _line(capsys).startswith("❌ wider bands (width 2 and 3): width 2:")

    def border_is_edge(target, width):  # pads with a label, and treats 255 as one
        n, h, w = target.shape
        padded = F.pad(target, (width,) * 4, value=-1)
        band = torch.zeros_like(target, dtype=torch.bool)
        for dy in range(2 * width + 1):
            for dx in range(2 * width + 1):
                band |= padded[:, dy:dy + h, dx:dx + w] != target
        return band

    assert not check_boundary_band(border_is_edge)
    assert _line(capsys).startswith("❌ width 1:")

    def ignore_is_a_label(target, width):
        return boundary_band(target.clamp(max=9), width)  # 255 -> 9: a label like any other

    assert not check_boundary_band(ignore_is_a_label)
    line = _line(capsys)
    assert line.startswith("❌ ignored pixels (target 255): width 1:") and "255" in line

    assert not check_boundary_band(lambda target, width: boundary_band(target, width)[0])
    assert "expected a Tensor[2, 10, 12] like target, got Tensor[10, 12]" in _line(capsys)
    assert not check_boundary_band(lambda target, width: target.float() / 3)
    assert "expected True/False per pixel" in _line(capsys)


def test_boundary_band_raises_or_stub(capsys):
    def stub(target, width):
        raise NotImplementedError("exercise: write your solution here")

    assert not check_boundary_band(stub)
    assert "not implemented yet" in _line(capsys)
