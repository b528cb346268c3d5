"""The tiny Mask R-CNN: each stage against torchvision's, then the whole model.

(shapes, one output vocabulary, overfit, checkpoint, trainer)
"""

from collections import OrderedDict

import pytest
import torch
from torch.testing import assert_close
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection import roi_heads as tv_roi_heads
from torchvision.models.detection import rpn as tv_rpn
from torchvision.ops import FeaturePyramidNetwork as TVFeaturePyramidNetwork
from torchvision.ops import MultiScaleRoIAlign as TVMultiScaleRoIAlign
from torchvision.ops.poolers import LevelMapper

from coursekit.instance import build_mask_rcnn, count_parameters, describe_stages
from coursekit.instance.backbone import FeaturePyramidNetwork
from coursekit.instance.box_head import fastrcnn_loss, postprocess_detections
from coursekit.instance.matching import match_boxes, sample_balanced
from coursekit.instance.pooler import MultiScaleRoIAlign, map_levels
from coursekit.instance.rpn import (
    AnchorGenerator,
    RegionProposalNetwork,
    RPNHead,
    flatten_predictions,
    rpn_loss,
)


def random_boxes(n, size=64.0, dtype=torch.float64):
    xy = torch.rand(n, 2, dtype=dtype) * size * 0.8
    return torch.cat([xy, xy + torch.rand(n, 2, dtype=dtype) * size * 0.4 + 1], 1)


# ---- matching and sampling ----------------------------------------------------------------

def test_match_boxes_hand_computed():
    iou = torch.tensor([[0.9, 0.5, 0.1, 0.2], [0.2, 0.6, 0.25, 0.2]])
    # box 0 -> gt 0 (0.9); box 1: best 0.6 in [0.3, 0.7) -> ignore; box 2: 0.25 < 0.3 -> background
    assert match_boxes(iou, 0.7, 0.3).tolist() == [0, -2, -1, -1]
    # low-quality matches: gt 1's best box (box 1, 0.6) is kept as its match
    assert match_boxes(iou, 0.7, 0.3, allow_low_quality_matches=True).tolist() == [0, 1, -1, -1]


@pytest.mark.parametrize("high, low, low_quality", [(0.7, 0.3, True), (0.5, 0.5, False),
                                                    (0.6, 0.4, False)])
def test_match_boxes_matches_torchvision(high, low, low_quality):
    for G, N in [(1, 10), (4, 50), (7, 200)]:
        iou = (torch.rand(G, N) * 10).round() / 10  # ties included
        ref = det_utils.Matcher(high, low, allow_low_quality_matches=low_quality)(iou)
        assert torch.equal(match_boxes(iou, high, low, low_quality), ref)


def test_sample_balanced_matches_torchvision_under_the_same_seed():
    labels = [torch.randint(-1, 3, (300,)), torch.randint(-1, 2, (40,)),
              torch.zeros(20, dtype=torch.long)]
    torch.manual_seed(5)
    pos, neg = sample_balanced(labels, 64, 0.25)
    torch.manual_seed(5)
    ref_pos, ref_neg = det_utils.BalancedPositiveNegativeSampler(64, 0.25)(labels)
    for a, b in zip(pos + neg, ref_pos + ref_neg, strict=True):
        assert torch.equal(a, b)
    assert int(pos[0].sum()) == 16 and int(neg[0].sum()) == 48  # 25 % of 64 foreground at most


def test_matching_bad_input():
    with pytest.raises(ValueError, match="at least one ground-truth box"):
        match_boxes(torch.zeros(0, 5), 0.7, 0.3)
    with pytest.raises(ValueError, match=r"iou must be Tensor\[G, N\]"):
        match_boxes(torch.zeros(5), 0.7, 0.3)
    with pytest.raises(ValueError, match="batch_size_per_image must be positive, got 0"):
        sample_balanced([torch.zeros(3)], 0, 0.5)
    with pytest.raises(TypeError, match="batch_size_per_image must be an int, got 2.0"):
        sample_balanced([torch.zeros(3)], 2.0, 0.5)
    with pytest.raises(ValueError, match=r"labels\[1\] must be Tensor\[N_i\], got Tensor\[2, 2\]"):
        sample_balanced([torch.zeros(3), torch.zeros(2, 2)], 4, 0.5)
    with pytest.raises(TypeError, match=r"iou must be Tensor\[G, N\].*got list"):
        match_boxes([[0.5]], 0.7, 0.3)


# ---- RPN -----------------------------------------------------------------------------------

def test_flatten_predictions_and_rpn_loss_match_torchvision():
    shapes = [(8, 8), (4, 4)]
    objectness = [torch.randn(2, 3, h, w, dtype=torch.float64) for h, w in shapes]
    deltas = [torch.randn(2, 12, h, w, dtype=torch.float64) for h, w in shapes]
    obj, dlt = flatten_predictions(objectness, deltas)
    ref_obj, ref_dlt = tv_rpn.concat_box_prediction_layers(objectness, deltas)
    assert_close(obj.reshape(-1, 1), ref_obj)
    assert_close(dlt.reshape(-1, 4), ref_dlt)
    N = obj.shape[1]
    labels = [torch.randint(-1, 2, (N,)).double() for _ in range(2)]
    targets = [torch.randn(N, 4, dtype=torch.float64) for _ in range(2)]
    ten = {"training": 10, "testing": 10}
    reference = tv_rpn.RegionProposalNetwork(None, None, 0.7, 0.3, 32, 0.5, ten, ten, 0.7)
    torch.manual_seed(3)
    ours = rpn_loss(obj.reshape(-1), dlt.reshape(-1, 4), labels, targets, 32, 0.5)
    torch.manual_seed(3)
    ref = reference.compute_loss(ref_obj, ref_dlt, labels, targets)
    assert_close(ours, ref)


def test_rpn_proposals_match_torchvision():
    features = [torch.randn(2, 8, 16, 16), torch.randn(2, 8, 8, 8)]
    anchors = AnchorGenerator([[8, 12], [16, 24]], [[0.5, 1.0, 2.0]] * 2)
    pre, post = {"training": 50, "testing": 40}, {"training": 30, "testing": 20}
    ours = RegionProposalNetwork(anchors, RPNHead(8, 6), pre_nms_top_n=pre,
                                 post_nms_top_n=post).eval()
    objectness, deltas = ours.head(features)
    obj, dlt = flatten_predictions(objectness, deltas)
    from coursekit.detection import decode_boxes

    all_anchors = anchors((32, 32), features)
    proposals = decode_boxes(dlt.reshape(-1, 4), all_anchors.repeat(2, 1)).view(2, -1, 4)
    level_sizes = [o[0].numel() for o in objectness]
    reference = tv_rpn.RegionProposalNetwork(None, None, 0.7, 0.3, 32, 0.5, pre, post,
                                             0.7).eval()
    ref_boxes, _ = reference.filter_proposals(proposals, obj, [(32, 32)] * 2, level_sizes)
    boxes = ours.filter_proposals(proposals, obj, (32, 32), level_sizes)
    for a, b in zip(boxes, ref_boxes, strict=True):
        assert_close(a, b)
    # and through forward: the same proposals
    for a, b in zip(ours((32, 32), features)[0], ref_boxes, strict=True):
        assert_close(a, b)


# ---- FPN, pooler, box head -----------------------------------------------------------------

def test_fpn_matches_torchvision():
    ours = FeaturePyramidNetwork([4, 6, 8], 5).double()
    ref = TVFeaturePyramidNetwork([4, 6, 8], 5).double()
    with torch.no_grad():
        for ref_block, block in zip(list(ref.inner_blocks) + list(ref.layer_blocks),
                                    list(ours.inner_blocks) + list(ours.layer_blocks), strict=True):
            ref_block[0].weight.copy_(block.weight)
            ref_block[0].bias.copy_(block.bias)
    x = OrderedDict([("0", torch.randn(2, 4, 16, 16, dtype=torch.float64)),
                     ("1", torch.randn(2, 6, 8, 8, dtype=torch.float64)),
                     ("2", torch.randn(2, 8, 4, 4, dtype=torch.float64))])
    for a, b in zip(ours(x).values(), ref(x).values(), strict=True):
        assert_close(a, b)


def test_map_levels_hand_computed_and_torchvision():
    boxes = torch.tensor([[0.0, 0, 8, 8], [0, 0, 16, 16], [0, 0, 32, 32], [0, 0, 64, 64],
                          [0, 0, 200, 200]])
    # floor(2 + log2(s / 32)) clamped to [1, 3], minus 1: s = 8 -> 0 (clamped), 16 -> 0,
    # 32 -> 1, 64 -> 2, 200 -> 2
    assert map_levels(boxes, 1, 3, 32.0, 2).tolist() == [0, 0, 1, 2, 2]
    boxes = random_boxes(50, 128.0)
    assert torch.equal(map_levels(boxes, 1, 3, 32.0, 2), LevelMapper(1, 3, 32, 2)([boxes]))


@pytest.mark.parametrize("output_size, sampling_ratio", [(7, 2), (14, 1)])
def test_multiscale_roi_align_matches_torchvision(output_size, sampling_ratio):
    feats = OrderedDict([(str(i), torch.randn(2, 3, 64 // 2 ** (i + 1), 64 // 2 ** (i + 1),
                                              dtype=torch.float64)) for i in range(3)])
    boxes = [random_boxes(9), random_boxes(5)]
    ours = MultiScaleRoIAlign((2, 4, 8), output_size, sampling_ratio, canonical_scale=32.0,
                              canonical_level=2)
    ref = TVMultiScaleRoIAlign(["0", "1", "2"], output_size, sampling_ratio, canonical_scale=32,
                               canonical_level=2)
    assert_close(ours(feats, boxes), ref(feats, boxes, [(64, 64)] * 2))


def test_fastrcnn_loss_and_postprocess_match_torchvision():
    R, C = 30, 4
    logits = torch.randn(R, C, dtype=torch.float64)
    regression = torch.randn(R, 4 * C, dtype=torch.float64) * 0.3
    labels = [torch.randint(0, C, (20,)), torch.randint(0, C, (10,))]
    targets = [torch.randn(20, 4, dtype=torch.float64), torch.randn(10, 4, dtype=torch.float64)]
    assert_close(fastrcnn_loss(logits, regression, labels, targets),
                 tv_roi_heads.fastrcnn_loss(logits, regression, labels, targets))
    proposals = [random_boxes(20), random_boxes(10)]
    reference = tv_roi_heads.RoIHeads(None, None, None, 0.5, 0.5, 64, 0.25, None, 0.05, 0.5, 7)
    ref = reference.postprocess_detections(logits * 3, regression, proposals, [(64, 64)] * 2)
    ours = postprocess_detections(logits * 3, regression, proposals, (64, 64), 0.05, 0.5, 7)
    for a, b in zip(ours, ref, strict=True):
        for x, y in zip(a, b, strict=True):
            assert_close(x, y)


# ---- the whole model -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scenes():
    from coursekit.data.shapesworld import render_batch

    return render_batch([11, 12], size=64, p_crowd=0.0)


@pytest.fixture(scope="module")
def targets(scenes):
    from coursekit.instance.train import targets_from_scenes

    return targets_from_scenes(scenes, [4, 5, 6, 7])


def test_count_parameters_is_the_shared_one():
    import coursekit.validators

    assert count_parameters is coursekit.validators.count_parameters
    assert count_parameters(torch.nn.Linear(3, 2)) == 8  # 3 x 2 weights + 2 biases, by hand


def test_parameter_count_and_stages_parallel_to_torchvision():
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    model = build_mask_rcnn()
    assert count_parameters(model) <= 2_000_000
    ours = describe_stages(model)
    theirs = describe_stages(maskrcnn_resnet50_fpn(weights=None, weights_backbone=None))
    assert len(ours) == len(theirs) == 11
    assert not any("missing" in line for line in ours + theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a.split(":")[0] == b.split(":")[0]  # the same stage, in the same order
    assert "MaskHead" not in " ".join(theirs) and "MaskRCNNPredictor" in " ".join(theirs)
    assert "roi_heads.mask_head.predictor Sequential" in " ".join(ours)


def assert_detections(det, image_size, thing_ids):
    """The one output vocabulary of ``model(images)`` (eval) and ``model.predict``."""
    D = len(det["boxes"])
    assert set(det) == {"boxes", "labels", "scores", "masks"}
    assert det["boxes"].shape == (D, 4) and det["scores"].shape == (D,)
    assert det["labels"].shape == (D,) and det["labels"].dtype == torch.int64
    assert set(det["labels"].tolist()) <= set(thing_ids)  # ShapesWorld category ids
    assert det["masks"].dtype == torch.bool and det["masks"].shape == (D, *image_size)
    assert bool((det["scores"][:-1] >= det["scores"][1:]).all())  # best first


def test_shapes_train_and_eval(scenes, targets):
    model = build_mask_rcnn()
    losses = model(scenes.image, targets)
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier",
                           "loss_box_reg", "loss_mask"}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    model.eval()
    detections = model(scenes.image)
    assert len(detections) == 2
    for det in detections:
        assert_detections(det, (64, 64), model.thing_ids)
        assert len(det["boxes"]) <= model.roi_heads.detections_per_img
    pred = model.predict(scenes.image[0], score_threshold=0.0)
    assert_detections(pred, (64, 64), model.thing_ids)


def test_forward_and_predict_speak_the_same_vocabulary(scenes):
    torch.manual_seed(1)
    model = build_mask_rcnn().eval()
    with torch.no_grad():  # score_thresh 0 keeps every box, so the two are compared in full
        model.roi_heads.box_predictor.cls_score.bias.copy_(torch.tensor([-4.0, 1, 1, 1, 1]))
    detections = model(scenes.image)
    assert sum(len(d["labels"]) for d in detections) > 0
    predictions = model.predict(scenes.image, score_threshold=0.0)  # the same batch
    high = model.predict(scenes.image, score_threshold=0.3)
    for det, pred, top in zip(detections, predictions, high, strict=True):
        for key in ("boxes", "labels", "scores", "masks"):
            assert torch.equal(pred[key], det[key]), key
        assert_detections(pred, (64, 64), model.thing_ids)
        keep = det["scores"] >= 0.3
        assert torch.equal(top["labels"], det["labels"][keep])
        assert torch.equal(top["masks"], det["masks"][keep])
    one = model.predict(scenes.image[0], score_threshold=0.0)  # one image: one dict
    assert_detections(one, (64, 64), model.thing_ids)


def test_postprocess_hand_computed(scenes):
    # class 2 is thing_ids[1] = 5 (square); a 28 x 28 mask of ones on the box (8, 4, 24, 20)
    # pastes (aligned=True) to exactly rows 4..19, columns 8..23
    model = build_mask_rcnn()
    det = {"boxes": torch.tensor([[8.0, 4.0, 24.0, 20.0], [0.0, 0.0, 4.0, 4.0]]),
           "labels": torch.tensor([2, 4]), "scores": torch.tensor([0.9, 0.2]),
           "masks": torch.ones(2, 1, 28, 28)}
    out = model.postprocess([det], (32, 40), score_threshold=0.5)[0]
    assert out["labels"].tolist() == [5] and out["scores"].tolist() == [pytest.approx(0.9)]
    expected = torch.zeros(1, 32, 40, dtype=torch.bool)
    expected[0, 4:20, 8:24] = True
    assert torch.equal(out["masks"], expected)
    everything = model.postprocess([det], (32, 40))[0]
    assert everything["labels"].tolist() == [5, 7]


def test_roi_heads_default_to_aligned_masks():
    import inspect

    from coursekit.instance.roi_heads import RoIHeads

    default = inspect.signature(RoIHeads).parameters["mask_aligned"].default
    assert default is True and build_mask_rcnn().roi_heads.mask_aligned is True


def test_bad_input():
    model = build_mask_rcnn()
    expected = r"images must be Tensor\[B, 3, H, W\], got "
    with pytest.raises(ValueError, match=expected + r"Tensor\[3, 64, 64\]"):
        model(torch.rand(3, 64, 64))
    with pytest.raises(ValueError, match=expected + r"Tensor\[1, 1, 8, 8\]"):
        model(torch.rand(1, 1, 8, 8))
    with pytest.raises(TypeError, match=r"images must be Tensor\[B, 3, H, W\], got list"):
        model([torch.rand(3, 64, 64)])
    with pytest.raises(ValueError, match="targets must have one dict per image"):
        model(torch.rand(2, 3, 64, 64), [])
    with pytest.raises(ValueError, match=r"image must be Tensor\[3, H, W\] or Tensor\[B, 3"):
        model.predict(torch.rand(64, 64))
    with pytest.raises(ValueError, match="unknown config keys"):
        build_mask_rcnn(widht=3)


def test_overfits_one_batch(scenes, targets):
    torch.manual_seed(0)
    model = build_mask_rcnn(representation=64, box_batch_size_per_image=32,
                            rpn_pre_nms_top_n=[60, 60], rpn_post_nms_top_n=[30, 30])
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    first = None
    for _ in range(40):
        losses = model(scenes.image[:1], targets[:1])
        loss = sum(losses.values())
        first = losses if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    # loss_box_reg may grow at first: it is averaged over the sampled RoIs, and the RPN only
    # starts proposing positive boxes (the ones that carry a box loss) once it has learnt.
    learnt = ("loss_objectness", "loss_classifier", "loss_mask")
    assert losses["loss_mask"] < 0.6 * first["loss_mask"]
    assert sum(losses[k] for k in learnt) < 0.5 * sum(first[k] for k in learnt)


def test_checkpoint_round_trip(tmp_path, scenes):
    from coursekit.checkpoints import load_pretrained, save_pretrained

    model = build_mask_rcnn(mask_dim=16).eval()
    save_pretrained("maskrcnn", {"model": model.state_dict(), "config": model.config},
                    command="test", seed=0, directory=tmp_path)
    checkpoint = load_pretrained("maskrcnn", directory=tmp_path)
    loaded = build_mask_rcnn(**checkpoint["config"])
    loaded.load_state_dict(checkpoint["model"])
    loaded.eval()
    a, b = model(scenes.image), loaded(scenes.image)
    for x, y in zip(a, b, strict=True):
        for key in x:
            assert_close(x[key], y[key])


def test_quick_trainer_run(tmp_path):
    pytest.importorskip("pycocotools")
    from coursekit.checkpoints import read_manifest
    from coursekit.instance.train import load_maskrcnn, train_maskrcnn

    metrics = train_maskrcnn(tmp_path, seed=0, quick=True)
    assert {"mask_ap50", "mask_ap", "box_ap50", "coco_mask_ap50"} <= set(metrics)
    entry = read_manifest(tmp_path)["maskrcnn"]
    assert entry["command"] == "coursekit train maskrcnn" and entry["size"] <= 10 * 2**20
    model = load_maskrcnn(directory=tmp_path)
    assert not model.training


def test_device(device, scenes, targets):
    model = build_mask_rcnn().to(device)
    moved = [{k: v.to(device) for k, v in t.items()} for t in targets]
    losses = model(scenes.image.to(device), moved)
    assert all(v.device.type == device.type for v in losses.values())
    pred = model.predict(scenes.image[0].to(device), score_threshold=0.0)
    assert pred["masks"].device.type == device.type
    assert_detections({k: v.cpu() for k, v in pred.items()}, (64, 64), model.thing_ids)


def test_checkpoint_without_mask_aligned_loads_with_torchvisions_convention(tmp_path):
    from coursekit.checkpoints import save_pretrained
    from coursekit.instance.train import load_maskrcnn

    model = build_mask_rcnn(mask_dim=16)
    # saved before the key existed
    old_config = {k: v for k, v in model.config.items() if k != "mask_aligned"}
    save_pretrained("maskrcnn", {"model": model.state_dict(), "config": old_config},
                    command="test", seed=0, directory=tmp_path)
    assert load_maskrcnn(directory=tmp_path).roi_heads.mask_aligned is False
    assert build_mask_rcnn().roi_heads.mask_aligned is True  # new models: Detectron2's
