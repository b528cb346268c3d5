"""The detection graders accept right answers and explain wrong ones."""

import torch
import torchvision.ops as tv

from coursekit.detection import box_iou, nms, nms_loop, roi_align, roi_align_loop
from coursekit.exercises.detection import check_box_iou, check_nms, check_roi_align


def verdict(capsys):
    return capsys.readouterr().out.strip()


# ---- box_iou ------------------------------------------------------------------------

def test_box_iou_accepts_correct_solutions(capsys):
    assert check_box_iou(box_iou) is True
    assert check_box_iou(tv.box_iou) is True
    assert verdict(capsys).startswith("✅ correct: box_iou")


def iou_without_subtracting_overlap(b1, b2):
    lt = torch.max(b1[:, None, :2], b2[None, :, :2])
    rb = torch.min(b1[:, None, 2:], b2[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # noqa: E731
    return inter / (area(b1)[:, None] + area(b2))


def iou_without_clamp(b1, b2):
    lt = torch.max(b1[:, None, :2], b2[None, :, :2])
    rb = torch.min(b1[:, None, 2:], b2[None, :, 2:])
    inter = (rb - lt).prod(-1)  # two negative sides multiply to a positive "overlap"
    area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # noqa: E731
    return inter / (area(b1)[:, None] + area(b2) - inter)


def test_box_iou_explains_wrong_solutions(capsys):
    assert check_box_iou(iou_without_subtracting_overlap) is False
    assert "area1 + area2 - intersection" in verdict(capsys)
    assert check_box_iou(iou_without_clamp) is False
    assert "clamp its width and height at 0" in verdict(capsys)
    assert check_box_iou(lambda b1, b2: box_iou(b1, b2).T) is False
    assert "box_iou should return Tensor[1, 3] (N, M), got Tensor[3, 1]" in verdict(capsys)
    assert check_box_iou(box_iou(torch.zeros(1, 4), torch.zeros(2, 4))) is False  # not a function
    assert "expected your function, got Tensor[1, 2] float32" in verdict(capsys)


def test_box_iou_reports_exceptions_and_stubs(capsys):
    assert check_box_iou(lambda b1, b2: b1 @ b2) is False
    assert "your function raised RuntimeError" in verdict(capsys)

    def stub(b1, b2):
        raise NotImplementedError("exercise: write your solution here")

    assert check_box_iou(stub) is False
    assert "not implemented yet" in verdict(capsys)


# ---- nms ----------------------------------------------------------------------------

def test_nms_accepts_correct_solutions(capsys):
    assert check_nms(nms) is True
    assert check_nms(nms_loop) is True
    assert check_nms(tv.nms) is True
    assert check_nms(lambda b, s, t: nms(b, s, t).tolist()) is True  # a list of ints is fine
    assert verdict(capsys).startswith("✅ correct: nms")


def nms_with_greater_or_equal(boxes, scores, threshold):
    return nms(boxes, scores, threshold - 1e-9)


def nms_returning_sorted_positions(boxes, scores, threshold):
    order = scores.argsort(descending=True)
    kept = nms(boxes, scores, threshold)
    return torch.tensor([int((order == k).nonzero()) for k in kept])


def test_nms_explains_wrong_solutions(capsys):
    assert check_nms(lambda b, s, t: nms(b, s, t).flip(0)) is False
    assert "decreasing score order" in verdict(capsys)
    assert check_nms(nms_with_greater_or_equal) is False
    assert "strictly greater" in verdict(capsys)
    assert check_nms(nms_returning_sorted_positions) is False
    assert "indices into the original boxes" in verdict(capsys)
    assert check_nms(lambda b, s, t: torch.arange(len(b))) is False
    assert verdict(capsys).startswith("❌ nms kept")
    assert check_nms(lambda b, s, t: None) is False
    assert "should return a Tensor of box indices" in verdict(capsys)


# ---- roi_align ----------------------------------------------------------------------

def test_roi_align_accepts_correct_solutions(capsys):
    assert check_roi_align(roi_align) is True
    assert check_roi_align(roi_align_loop) is True
    assert check_roi_align(tv.roi_align) is True
    assert verdict(capsys).startswith("✅ correct: roi_align")


def test_roi_align_explains_wrong_solutions(capsys):
    assert check_roi_align(lambda x, b, s, sc, r, a: roi_align(x, b, s, sc, r, not a)) is False
    assert "shifts the scaled box by -0.5" in verdict(capsys)
    assert check_roi_align(lambda x, b, s, sc, r, a: roi_align(x, b, s, sc, 2, a)) is False
    assert "sampling_ratio <= 0" in verdict(capsys)
    assert check_roi_align(lambda x, b, s, sc, r, a: roi_align(x, b, s, 1.0, r, a)) is False
    assert "multiply the box by spatial_scale" in verdict(capsys)
    assert check_roi_align(lambda x, b, s, sc, r, a: roi_align(x, b, s, sc, r, a)[:, 0]) is False
    assert "Tensor[K, C, ph, pw]" in verdict(capsys)
    assert check_roi_align(lambda *args: 1 / 0) is False
    assert "ZeroDivisionError" in verdict(capsys)
