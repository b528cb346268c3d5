"""keypoint_heatmaps: the head's raw maps for given boxes, as the model's inference path."""

import pytest
import torch
from torch.testing import assert_close

from coursekit.data import render_scene
from coursekit.pose import heatmaps_to_keypoints
from coursekit.pose.keypoint_rcnn import build_keypoint_rcnn, keypoint_heatmaps

SMALL = {"representation": 64, "keypoint_dim": 16, "keypoint_convs": 2}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_keypoint_rcnn(**SMALL).eval()


def test_maps_decode_to_the_inference_keypoints(model):
    scene = render_scene(5, size=96)
    boxes = scene.boxes.float()  # (N, 4)
    maps = keypoint_heatmaps(model, scene.image, boxes)
    assert maps.shape == (len(boxes), 17, 56, 56)
    head = model.roi_heads.extra_heads["keypoints"]
    person = torch.full((len(boxes),), head.labels[0])
    with torch.no_grad():
        features = model.backbone(model.transform(scene.image[None]))
        inference = model.roi_heads._head_outputs("keypoints", head, features, [boxes], [person])
    keypoints, scores = heatmaps_to_keypoints(maps, boxes)
    assert_close(keypoints, inference["keypoints"])
    assert_close(scores, inference["keypoints_scores"])


def test_keeps_the_training_mode(model):
    model.train()
    keypoint_heatmaps(model, torch.rand(3, 96, 96), torch.tensor([[10.0, 10, 50, 60]]))
    assert model.training
    model.eval()


def test_bad_inputs(model):
    with pytest.raises(TypeError, match="MaskRCNN with a keypoint head"):
        keypoint_heatmaps(torch.nn.Linear(2, 2), torch.rand(3, 8, 8), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="image must be Tensor"):
        keypoint_heatmaps(model, torch.rand(1, 3, 96, 96), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="image must be Tensor"):
        keypoint_heatmaps(model, torch.rand(1, 96, 96), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="boxes must be Tensor"):
        keypoint_heatmaps(model, torch.rand(3, 96, 96), torch.zeros(4))
    with pytest.raises(TypeError, match="boxes must be a floating-point"):
        keypoint_heatmaps(model, torch.rand(3, 96, 96), torch.zeros(1, 4, dtype=torch.long))


def test_on_device(device):
    torch.manual_seed(0)
    net = build_keypoint_rcnn(**SMALL).eval()
    image, boxes = torch.rand(3, 96, 96), torch.tensor([[10.0, 12, 50, 70], [40, 5, 90, 95]])
    expected = keypoint_heatmaps(net, image, boxes)
    maps = keypoint_heatmaps(net.to(device), image.to(device), boxes.to(device))
    assert maps.device.type == torch.device(device).type
    assert_close(maps.cpu(), expected, atol=1e-4, rtol=1e-4)
