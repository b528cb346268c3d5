"""Prompts from other systems: a detector's boxes, a gaze trace's fixation."""

import pytest
import torch

from coursekit.sam.external_prompts import (
    detector_box_prompts,
    find_fixations,
    gaze_point_prompt,
    simulate_gaze,
)


def test_find_fixations_hand_computed():
    still = torch.tensor([[10.0, 10.0]] * 5 + [[50.0, 50.0]] * 2 + [[30.0, 31.0]] * 4)
    fix = find_fixations(still, max_dispersion=2.0, min_samples=3)
    assert [(f["start"], f["end"]) for f in fix] == [(0, 5), (7, 11)]
    assert fix[1]["center"].tolist() == [30.0, 31.0]
    jumping = torch.arange(20.0)[:, None].repeat(1, 2) * 5
    assert find_fixations(jumping, max_dispersion=4.0, min_samples=3) == []
    with pytest.raises(ValueError, match="trace has no fixation"):
        gaze_point_prompt(jumping)


def test_gaze_prompt_lands_on_the_target():
    for seed in range(5):
        trace = simulate_gaze((40.0, 70.0), image_size=128, seed=seed)
        assert torch.equal(trace, simulate_gaze((40.0, 70.0), image_size=128, seed=seed))
        point = gaze_point_prompt(trace)
        assert (point - torch.tensor([40.0, 70.0])).abs().max() < 1.5
        for fixation in find_fixations(trace):  # the glances are too short to count
            assert (fixation["center"] - torch.tensor([40.0, 70.0])).abs().max() < 1.5


def test_detector_boxes_are_scaled_to_the_image():
    class Fake:
        def predict(self, image, score_threshold=0.5):
            assert image.shape == (3, 64, 64)
            return {"boxes": torch.tensor([[8.0, 4.0, 16.0, 32.0]]), "labels": torch.tensor([1]),
                    "scores": torch.tensor([0.9])}

    out = detector_box_prompts(Fake(), torch.rand(3, 128, 96))
    assert out["boxes"].tolist() == [[12.0, 8.0, 24.0, 64.0]]
    with pytest.raises(TypeError, match="detector must have a predict"):
        detector_box_prompts(object(), torch.rand(3, 64, 64))
    with pytest.raises(ValueError, match=r"image must be Tensor\[3, H, W\]"):
        detector_box_prompts(Fake(), torch.rand(64, 64))


def test_shipped_mask_rcnn_boxes_match_the_scene():
    from coursekit.data.shapesworld import render_scene
    from coursekit.detection import box_iou
    from coursekit.instance.train import load_maskrcnn

    scene = render_scene(3_000_001, size=128)
    out = detector_box_prompts(load_maskrcnn(), scene.image)
    assert len(out["boxes"]) >= 1
    best = box_iou(out["boxes"], scene.boxes.float()).amax(dim=1)
    assert (best > 0.5).float().mean() >= 0.5  # most boxes are on a real thing


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"target must be \(x, y\)"):
        simulate_gaze((1.0, 2.0, 3.0), image_size=64)
    with pytest.raises(ValueError, match=r"trace must be Tensor\[T, 2\]"):
        find_fixations(torch.zeros(5, 3))
    with pytest.raises(TypeError, match="trace must be a floating-point"):
        find_fixations(torch.zeros(5, 2, dtype=torch.long))
