"""The segmentation graders accept correct answers and explain wrong ones without the solution."""

import pytest
import torch
import torch.nn.functional as F

from coursekit.exercises.segmentation import (
    CLASS_NAMES,
    check_boundary_band,
    check_class_weight_prediction,
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


# --- class weights: predict before you run ----------------------------------------------------

# IoU per class (sky ... person) after the same short training, plain and weighted: triangle
# and person go up, water down, sky the same (changes under 0.02 are "same")
PLAIN = [0.96, 0.79, 0.50, 0.00, 0.00, 0.00, 0.38, 0.23]
WEIGHTED = [0.97, 0.92, 0.30, 0.57, 0.87, 0.85, 0.54, 0.56]


def test_class_weight_prediction_correct(capsys):
    def prediction():
        return {"triangle": "up", "person": "up"}

    assert check_class_weight_prediction(prediction, PLAIN, WEIGHTED)
    line = _line(capsys)
    assert line == ("✅ correct: your prediction matches the measurement: "
                    "triangle IoU 0.38 -> 0.54 (up); person IoU 0.23 -> 0.56 (up)")
    # a dict instead of a function, other spellings, tensors for the measurement
    assert check_class_weight_prediction({"triangle": " Up", "person": "UP", "sky": "?"},
                                         torch.tensor(PLAIN), torch.tensor(WEIGHTED))
    _line(capsys)
    # "same" and "down", hand-made: person 0.50 -> 0.51 is the same, triangle 0.6 -> 0.3 down
    plain, weighted = list(PLAIN), list(WEIGHTED)
    plain[6:], weighted[6:] = [0.6, 0.50], [0.3, 0.51]
    assert check_class_weight_prediction({"triangle": "down", "person": "same"}, plain, weighted)
    assert "triangle IoU 0.60 -> 0.30 (down); person IoU 0.50 -> 0.51 (same)" in _line(capsys)


def test_class_weight_prediction_wrong(capsys):
    # the common mistake: person's weight is below 1, so "it must get worse"
    assert not check_class_weight_prediction(lambda: {"triangle": "up", "person": "down"},
                                             PLAIN, WEIGHTED)
    line = _line(capsys)
    assert line.startswith("❌ you predicted person down, measured person IoU 0.23 -> 0.56 (up)")
    assert "hint:" in line and "relative" in line
    assert not check_class_weight_prediction(lambda: {"triangle": "same", "person": "up"},
                                             PLAIN, WEIGHTED)
    line = _line(capsys)
    assert line.startswith("❌ you predicted triangle same, measured triangle IoU 0.38 -> 0.54")
    assert "rare class" in line
    plain, weighted = list(PLAIN), list(WEIGHTED)
    plain[6], weighted[6] = 0.6, 0.3
    assert not check_class_weight_prediction({"triangle": "up", "person": "up"}, plain, weighted)
    assert "false positives" in _line(capsys)
    # incomplete or malformed predictions are explained
    assert not check_class_weight_prediction({"triangle": "up"}, PLAIN, WEIGHTED)
    line = _line(capsys)
    assert line.startswith("❌ the prediction has no entry for 'person' — hint: fill in")
    assert not check_class_weight_prediction({"triangle": "higher", "person": "up"},
                                             PLAIN, WEIGHTED)
    assert "triangle: expected 'up', 'down' or 'same', got 'higher'" in _line(capsys)
    assert not check_class_weight_prediction(lambda: ("up", "up"), PLAIN, WEIGHTED)
    assert "the prediction should be" in _line(capsys)


def test_class_weight_prediction_stub_and_raises(capsys):
    def stub():
        raise NotImplementedError("exercise: write your solution here")

    assert not check_class_weight_prediction(stub, PLAIN, WEIGHTED)
    assert "not implemented yet" in _line(capsys)
    assert not check_class_weight_prediction(lambda: {}["triangle"], PLAIN, WEIGHTED)
    assert "your function raised KeyError" in _line(capsys)


@pytest.mark.parametrize("plain, error, match", [
    ([0.5] * 7, ValueError, "plain must be the IoU per class, a Tensor.8. or 8 numbers, got 7"),
    (torch.zeros(2, 4), ValueError, r"plain must be .* got Tensor\[2, 4\] float32"),
    ("0.5", TypeError, "plain must be the IoU per class"),
    ([0.5] * 7 + [True], TypeError, "got an element bool"),
])
def test_class_weight_prediction_bad_measurement(plain, error, match):
    with pytest.raises(error, match=match):
        check_class_weight_prediction({"triangle": "up", "person": "up"}, plain, WEIGHTED)


def test_class_names_are_shapesworld_categories():
    from coursekit.data import CATEGORIES

    assert tuple(c["name"] for c in CATEGORIES) == CLASS_NAMES
