"""The joint Mask R-CNN with a keypoint head: shapes, overfit, checkpoint, flip targets, the
structure beside torchvision's keypointrcnn_resnet50_fpn, the quick trainer."""

import pytest
import torch
from torch.testing import assert_close

from coursekit.pose import hflip
from coursekit.pose.keypoint_rcnn import (
    KEYPOINT_STAGES,
    PERSON_ID,
    build_keypoint_rcnn,
    compare_with_torchvision,
    describe_keypoint_stages,
)
from coursekit.pose.train import keypoint_targets_from_scenes

SMALL = {"representation": 64, "box_batch_size_per_image": 32, "keypoint_dim": 16,
         "keypoint_convs": 2, "rpn_pre_nms_top_n": [60, 60], "rpn_post_nms_top_n": [30, 30]}


@pytest.fixture(scope="module")
def scenes():
    from coursekit.data.shapesworld import render_batch

    return render_batch([21, 22], size=96, p_crowd=0.0, p_person=0.8)


@pytest.fixture(scope="module")
def batch(scenes):
    return keypoint_targets_from_scenes(scenes, [4, 5, 6, 7])


def test_targets_have_one_keypoint_row_per_instance(scenes, batch):
    images, targets = batch
    assert torch.equal(images, scenes.image)
    for j, t in enumerate(targets):
        G = len(scenes.labels[j])
        assert t["keypoints"].shape == (G, 17, 3)
        persons = scenes.person_index[j]
        assert torch.equal(t["keypoints"][persons], scenes.keypoints[j])
        others = torch.ones(G, dtype=torch.bool)
        others[persons] = False
        assert bool((t["keypoints"][others] == 0).all())  # v = 0: never trained
        assert torch.equal(t["labels"], scenes.labels[j] - 3)  # ids 4..7 -> classes 1..4
    assert sum(len(p) for p in scenes.person_index) >= 1


def test_flipped_targets_are_hflip_of_the_targets(scenes, batch):
    flip = torch.tensor([True, False])
    images, targets = keypoint_targets_from_scenes(scenes, [4, 5, 6, 7], flip=flip)
    plain_images, plain = batch
    mirrored = hflip(plain_images[0], plain[0]["keypoints"], plain[0]["boxes"], plain[0]["masks"])
    assert torch.equal(images[0], mirrored.image)
    assert torch.equal(targets[0]["keypoints"], mirrored.keypoints)
    assert torch.equal(targets[0]["boxes"], mirrored.boxes)
    assert torch.equal(targets[0]["masks"], mirrored.masks)
    assert torch.equal(images[1], plain_images[1])  # not flipped
    # a person's left wrist (9) in the flipped image is its right wrist (10) mirrored
    p = scenes.person_index[0][0]
    left, right = targets[0]["keypoints"][p, 9], plain[0]["keypoints"][p, 10]
    if right[2] > 0:
        assert left[0].item() == pytest.approx(96 - right[0].item())


def test_shapes_train_and_eval(scenes, batch):
    torch.manual_seed(0)
    model = build_keypoint_rcnn(**SMALL)
    losses = model(*batch)
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier",
                           "loss_box_reg", "loss_mask", "loss_keypoint"}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():  # keep boxes of every class
        model.roi_heads.box_predictor.cls_score.bias.copy_(torch.tensor([-4.0, 1, 1, 1, 1]))
    detections = model(scenes.image)
    for det in detections:
        D = len(det["labels"])
        assert D > 0 and det["keypoints"].shape == (D, 17, 3)
        assert det["keypoints_scores"].shape == (D, 17) and det["masks"].shape == (D, 96, 96)
        person = det["labels"] == PERSON_ID
        assert bool((det["keypoints"][~person] == 0).all())  # only persons get keypoints
        kp = det["keypoints"][person]
        boxes = det["boxes"][person][:, None]
        assert bool((kp[..., 2] == 1).all())
        assert bool(((kp[..., 0] >= boxes[..., 0]) & (kp[..., 0] <= boxes[..., 2])).all())
    same = model.predict(scenes.image, score_threshold=0.0)  # the same vocabulary
    for det, pred in zip(detections, same, strict=True):
        assert torch.equal(pred["keypoints"], det["keypoints"])
        assert torch.equal(pred["keypoints_scores"], det["keypoints_scores"])


def test_every_roi_align_is_aligned():
    model = build_keypoint_rcnn(**SMALL)
    pools = [model.roi_heads.box_roi_pool, model.roi_heads.mask_roi_pool,
             model.roi_heads.extra_heads["keypoints"].roi_pool]
    assert all(p.aligned for p in pools)  # Detectron2's ROIAlignV2
    assert pools[2].output_size == 14 and model.roi_heads.mask_aligned
    assert model.roi_heads.extra_heads["keypoints"].labels == (4,)  # the person class


def test_overfits_one_batch():
    from coursekit.data.shapesworld import render_batch

    torch.manual_seed(0)
    model = build_keypoint_rcnn(**SMALL)
    scene = render_batch([5], size=64, p_crowd=0.0, p_person=1.0)  # small: a fast test
    images, targets = keypoint_targets_from_scenes(scene, model.thing_ids)
    assert len(scene.person_index[0]) >= 1
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        losses = model(images, targets)
        first = {k: v.item() for k, v in losses.items()} if first is None else first
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    assert losses["loss_keypoint"].item() < 0.7 * first["loss_keypoint"]  # 8.4 -> about 5
    assert losses["loss_mask"].item() < 0.5 * first["loss_mask"]  # 1.6 -> about 0.4


def test_checkpoint_round_trip(tmp_path, scenes):
    from coursekit.checkpoints import load_pretrained, save_pretrained

    torch.manual_seed(0)
    model = build_keypoint_rcnn(**SMALL).eval()
    with torch.no_grad():
        model.roi_heads.box_predictor.cls_score.bias.copy_(torch.tensor([-4.0, 1, 1, 1, 1]))
    save_pretrained("keypointrcnn", {"model": model.state_dict(), "config": model.config},
                    command="test", seed=0, directory=tmp_path)
    checkpoint = load_pretrained("keypointrcnn", directory=tmp_path)
    loaded = build_keypoint_rcnn(**checkpoint["config"])
    loaded.load_state_dict(checkpoint["model"])
    loaded.eval()
    a, b = model(scenes.image), loaded(scenes.image)
    assert any(len(x["labels"]) for x in a)
    for x, y in zip(a, b, strict=True):
        assert set(x) == set(y)
        for key in x:
            assert_close(x[key], y[key])


def test_structure_beside_torchvision():
    ours = describe_keypoint_stages(build_keypoint_rcnn())
    assert len(ours) == len(KEYPOINT_STAGES) == 14
    assert not any("missing" in line for line in ours)
    table = compare_with_torchvision()
    lines = table.splitlines()
    assert len(lines) == 1 + 14 + 1  # header, stages, total
    keypoint_rows = [line for line in lines if line.startswith("keypoint")]
    assert len(keypoint_rows) == 3 and "KeypointRCNNHeads" in keypoint_rows[1]
    assert "KeypointPredictor" in keypoint_rows[2]  # ours
    mask_rows = [line for line in lines if line.startswith("mask")]
    assert all(line.endswith("missing") for line in mask_rows)  # torchvision: no mask head
    assert lines[-1].startswith("total") and "59,1" in lines[-1]


def test_bad_config():
    with pytest.raises(ValueError, match="unknown config keys"):
        build_keypoint_rcnn(keypoint_dims=3)
    with pytest.raises(ValueError, match="thing_ids must include the person category 7"):
        build_keypoint_rcnn(thing_ids=[4, 5, 6])
    with pytest.raises(ValueError, match="loss_weight must be > 0"):
        build_keypoint_rcnn(keypoint_loss_weight=-1.0)


def test_quick_trainer_run(tmp_path):
    pytest.importorskip("pycocotools")
    from coursekit.checkpoints import checkpoint_dir, read_manifest
    from coursekit.pose.train import load_keypointrcnn, train_keypointrcnn

    if "maskrcnn" not in read_manifest(checkpoint_dir()):
        pytest.skip("the recipe starts from the shipped maskrcnn")
    metrics = train_keypointrcnn(tmp_path, seed=0, quick=True)
    assert {"kp_ap", "kp_ap50", "coco_kp_ap", "mask_ap50", "coco_mask_ap50"} <= set(metrics)
    assert metrics["kp_ap"] == pytest.approx(metrics["coco_kp_ap"], abs=1e-9)
    entry = read_manifest(tmp_path)["keypointrcnn"]
    assert entry["command"] == "coursekit train keypointrcnn" and entry["quick"] is True
    assert entry["size"] <= 10 * 2**20
    model = load_keypointrcnn(directory=tmp_path)
    assert not model.training and "keypoints" in model.roi_heads.extra_heads


def test_device(device, scenes, batch):
    model = build_keypoint_rcnn(**SMALL).to(device)
    images, targets = batch
    moved = [{k: v.to(device) for k, v in t.items()} for t in targets]
    losses = model(images.to(device), moved)
    assert all(v.device.type == device.type for v in losses.values())
    pred = model.predict(images[0].to(device), score_threshold=0.0)
    assert pred["keypoints"].device.type == device.type
