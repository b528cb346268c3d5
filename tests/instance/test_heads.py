"""The extra-head interface of the tiny Mask R-CNN (coursekit.instance.heads).

A dummy head records what the trunk gives it: the RoI features of the right proposals
(positives of its classes in training, detections of its classes in inference), the
matched ground-truth rows, and its outputs come back one row per detection. The shipped
checkpoint loads and gives the same detections with or without an extra head.
"""

from collections import OrderedDict

import pytest
import torch
from torch.testing import assert_close
from torchvision.ops import roi_align as tv_roi_align
from torchvision.ops.poolers import LevelMapper

from coursekit.detection import box_iou
from coursekit.instance import build_mask_rcnn
from coursekit.instance.heads import RoIHead
from coursekit.instance.pooler import MultiScaleRoIAlign
from coursekit.instance.roi_heads import RoIHeads


class RecordingHead(RoIHead):
    """Returns a learnable scalar per RoI; remembers every call's inputs."""

    target_keys = ("ids",)

    def __init__(self, roi_pool, labels=None, out_key="dummy"):
        super().__init__(roi_pool, labels)
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.calls = []
        self.out_key = out_key

    def forward(self, x):
        self.calls.append(("forward", x.detach().clone()))
        return x.mean((1, 2, 3)) * self.scale  # (R,)

    def loss(self, outputs, proposals, targets):
        self.calls.append(("loss", [p.clone() for p in proposals],
                           [{k: v.clone() for k, v in t.items()} for t in targets]))
        return {"loss_dummy": outputs.pow(2).sum() * 0 + self.scale}

    def predict(self, outputs, boxes, labels):
        self.calls.append(("predict", [b.clone() for b in boxes], [c.clone() for c in labels]))
        return {self.out_key: outputs[:, None] + 1.0}  # (D, 1), never 0


def recording_model(labels=(4,), **kwargs):
    strides = (2, 4, 8)
    head = RecordingHead(MultiScaleRoIAlign(strides, 5, 2, canonical_scale=32.0,
                                            canonical_level=2), labels=labels, **kwargs)
    return build_mask_rcnn(extra_heads={"rec": head}), head


@pytest.fixture(scope="module")
def scenes():
    from coursekit.data.shapesworld import render_batch

    return render_batch([11, 12, 13], size=64, p_crowd=0.0, p_person=0.7)


@pytest.fixture(scope="module")
def targets(scenes):
    from coursekit.instance.train import targets_from_scenes

    out = targets_from_scenes(scenes, [4, 5, 6, 7])
    for t in out:  # a per-instance key: the row index of each ground truth
        t["ids"] = torch.arange(len(t["boxes"]), dtype=torch.float32)
    return out


def test_roi_head_applies_to_by_hand():
    pool = MultiScaleRoIAlign((2, 4, 8), 5)
    labels = torch.tensor([0, 1, 2, 3, 4, -1, 4])
    assert RecordingHead(pool).applies_to(labels).tolist() == [0, 1, 1, 1, 1, 0, 1]
    assert RecordingHead(pool, labels=[4]).applies_to(labels).tolist() == [0, 0, 0, 0, 1, 0, 1]
    assert RecordingHead(pool, labels=(1, 3)).applies_to(labels).tolist() == [0, 1, 0, 1, 0, 0, 0]


def test_training_head_gets_matched_positives_and_their_features(scenes, targets):
    torch.manual_seed(0)
    model, head = recording_model(labels=(4,))  # class 4 = thing_ids[3] = person
    losses = model(scenes.image, targets)
    assert {"loss_classifier", "loss_mask", "loss_dummy"} <= set(losses)
    assert [c[0] for c in head.calls] == ["forward", "loss"]
    features, (_, proposals, matched) = head.calls[0][1], head.calls[1]
    assert sum(len(p) for p in proposals) == len(features) > 0
    for p, m, t in zip(proposals, matched, targets, strict=True):
        assert set(m) == {"ids"}
        rows = m["ids"].long()
        assert bool((t["labels"][rows] == 4).all())  # only the head's class
        iou = box_iou(t["boxes"], p)  # (G, P)
        # each is a positive (IoU >= 0.5) and matched to its best ground truth
        assert bool((iou[rows, torch.arange(len(p))] >= 0.5).all())
        assert torch.equal(iou.argmax(0), rows)
    # the features are the head's own RoI Align of the FPN on those proposals
    with torch.no_grad():
        pyramid = model.backbone(model.transform(scenes.image))
    assert_close(features, head.roi_pool(pyramid, proposals))
    losses["loss_dummy"].backward()
    assert head.scale.grad is not None


def test_inference_head_gets_its_detections_and_rows_come_back(scenes):
    torch.manual_seed(0)
    model, head = recording_model(labels=(2, 4))  # classes 2, 4: squares (5) and persons (7)
    model.eval()
    with torch.no_grad():  # keep many boxes of every class
        model.roi_heads.box_predictor.cls_score.bias.copy_(torch.tensor([-4.0, 1, 1, 1, 1]))
        outputs = model(scenes.image)
        pyramid = model.backbone(model.transform(scenes.image))
    assert [c[0] for c in head.calls] == ["forward", "predict"]
    features, (_, boxes, labels) = head.calls[0][1], head.calls[1]
    assert_close(features, head.roi_pool(pyramid, boxes))  # its RoI Align on its detections
    for out, b, c in zip(outputs, boxes, labels, strict=True):
        chosen = (out["labels"] == 5) | (out["labels"] == 7)
        assert 0 < int(chosen.sum()) < len(chosen)
        assert torch.equal(out["boxes"][chosen], b)
        assert torch.equal(torch.tensor(model.thing_ids)[c - 1], out["labels"][chosen])
        assert out["dummy"].shape == (len(out["boxes"]), 1)  # one row per detection
        assert bool((out["dummy"][chosen] != 0).all()) and bool((out["dummy"][~chosen] == 0).all())
    high = model.predict(scenes.image, score_threshold=0.3)  # survives the score threshold
    for out, top in zip(outputs, high, strict=True):
        keep = out["scores"] >= 0.3
        assert torch.equal(top["dummy"], out["dummy"][keep])


def test_shipped_maskrcnn_loads_and_an_extra_head_changes_none_of_its_outputs():
    from coursekit.checkpoints import checkpoint_dir, read_manifest
    from coursekit.data.shapesworld import render_batch
    from coursekit.instance.train import load_maskrcnn

    if "maskrcnn" not in read_manifest(checkpoint_dir()):
        pytest.skip("no shipped maskrcnn")
    model = load_maskrcnn()  # strict load: the empty extra_heads adds no state-dict keys
    assert len(model.roi_heads.extra_heads) == 0
    assert model.config.get("pooler_aligned", False) is False
    assert model.roi_heads.box_roi_pool.aligned is False  # trained with torchvision's RoI Align
    images = render_batch([3_000_000, 3_000_001], size=64).image
    with torch.no_grad():
        before = model(images)
        head = RecordingHead(MultiScaleRoIAlign((2, 4, 8), 5), labels=(4,))
        model.roi_heads.add_head("rec", head)
        after = model(images)
    for a, b in zip(before, after, strict=True):
        assert set(b) == set(a) | {"dummy"}
        for key in a:
            assert torch.equal(a[key], b[key]), key
    assert sum(len(a["labels"]) for a in before) > 0


def test_multiscale_roi_align_aligned_matches_torchvision():
    feats = OrderedDict([(str(i), torch.randn(2, 3, 32 // 2 ** i, 32 // 2 ** i,
                                              dtype=torch.float64)) for i in range(3)])
    xy = torch.rand(7, 2, dtype=torch.float64) * 40
    boxes = [torch.cat([xy, xy + torch.rand(7, 2, dtype=torch.float64) * 30 + 1], 1)] * 2
    ours = MultiScaleRoIAlign((2, 4, 8), 7, 2, canonical_scale=32.0, canonical_level=2,
                              aligned=True)(feats, boxes)
    level = LevelMapper(1, 3, 32, 2)(boxes)
    rois = torch.cat([torch.cat([torch.full((7, 1), float(i), dtype=torch.float64), b], 1)
                      for i, b in enumerate(boxes)])
    expected = torch.zeros_like(ours)
    for k, (feat, stride) in enumerate(zip(feats.values(), (2, 4, 8), strict=True)):
        idx = torch.where(level == k)[0]
        expected[idx] = tv_roi_align(feat, rois[idx], 7, 1 / stride, 2, aligned=True)
    assert_close(ours, expected)
    unaligned = MultiScaleRoIAlign((2, 4, 8), 7, 2, canonical_scale=32.0, canonical_level=2)
    assert not torch.allclose(unaligned(feats, boxes), ours)  # the half pixel matters


def test_build_mask_rcnn_pooler_aligned():
    model = build_mask_rcnn(pooler_aligned=True)
    assert model.roi_heads.box_roi_pool.aligned and model.roi_heads.mask_roi_pool.aligned
    assert not build_mask_rcnn().roi_heads.box_roi_pool.aligned


def test_bad_heads():
    pool = MultiScaleRoIAlign((2, 4, 8), 5)
    with pytest.raises(TypeError, match="extra head 'x' must be a coursekit.instance.heads.RoI"):
        build_mask_rcnn(extra_heads={"x": torch.nn.Linear(2, 2)})
    with pytest.raises(ValueError, match="extra head name must be an identifier"):
        build_mask_rcnn(extra_heads={"two words": RecordingHead(pool)})
    model = build_mask_rcnn(extra_heads={"rec": RecordingHead(pool)})
    with pytest.raises(ValueError, match="extra head 'rec' is already plugged in"):
        model.roi_heads.add_head("rec", RecordingHead(pool))
    with pytest.raises(TypeError, match="roi_pool must be a MultiScaleRoIAlign"):
        RecordingHead("pool")
    with pytest.raises(ValueError, match="labels must be foreground class indices >= 1"):
        RecordingHead(pool, labels=[0, 1])
    with pytest.raises(TypeError, match="labels must be a sequence of class indices"):
        RecordingHead(pool, labels=[1.0])
    with pytest.raises(TypeError, match="labels must be an int64 Tensor"):
        RecordingHead(pool).applies_to(torch.ones(3))
    assert isinstance(model.roi_heads, RoIHeads)


def test_bad_head_targets_and_outputs(scenes, targets):
    torch.manual_seed(0)
    model, _ = recording_model(labels=None)
    no_ids = [{k: v for k, v in t.items() if k != "ids"} for t in targets]
    with pytest.raises(ValueError, match=r"targets\[0\] has no 'ids', which the extra head "
                                         r"'rec' trains on"):
        model(scenes.image, no_ids)
    short = [{**t, "ids": t["ids"][:1]} for t in targets]
    with pytest.raises(ValueError, match=r"targets\[0\]\['ids'\] must have one row per box"):
        model(scenes.image, short)
    model, _ = recording_model(labels=None, out_key="masks")
    model.eval()
    with torch.no_grad():
        model.roi_heads.box_predictor.cls_score.bias.copy_(torch.tensor([-4.0, 1, 1, 1, 1]))
        with pytest.raises(ValueError, match="returned the output 'masks', one of the trunk's"):
            model(scenes.image)


def test_loss_name_collision(scenes, targets):
    class Clash(RecordingHead):
        def loss(self, outputs, proposals, targets):
            return {"loss_mask": outputs.sum() * 0}

    model = build_mask_rcnn(extra_heads={"clash": Clash(MultiScaleRoIAlign((2, 4, 8), 5))})
    with pytest.raises(ValueError, match="an extra head returned the loss 'loss_mask', which is"):
        model(scenes.image, targets)


def test_head_convs_by_hand():
    from coursekit.instance.heads import head_convs

    convs = head_convs(8, 16, 2)
    assert [type(m).__name__ for m in convs] == ["Conv2d", "ReLU", "Conv2d", "ReLU"]
    assert sum(p.numel() for p in convs.parameters()) == (8 * 9 + 1) * 16 + (16 * 9 + 1) * 16
    assert all(float(m.bias.detach().abs().max()) == 0.0
               for m in convs if isinstance(m, torch.nn.Conv2d))
    assert convs(torch.zeros(3, 8, 14, 14)).shape == (3, 16, 14, 14)
    assert len(head_convs(8, 16, 0)) == 0  # no body: the predictor reads the RoI features


@pytest.mark.parametrize("args, match", [((0, 16, 2), "in_channels"), ((8, 16, -1), "num_convs"),
                                         ((8, 2.0, 1), "dim")])
def test_head_convs_bad_input(args, match):
    from coursekit.instance.heads import head_convs

    with pytest.raises(ValueError, match=match):
        head_convs(*args)
