"""panoptic_fusion against a literal port of Detectron2's combine_semantic_and_instance_outputs."""

from types import SimpleNamespace

import pytest
import torch

from coursekit.data import THING_IDS, render_scene
from coursekit.data.coco import panoptic_ids
from coursekit.panoptic import SHAPESWORLD_CATEGORIES, panoptic_fusion, panoptic_quality

# ---- the reference: detectron2/modeling/meta_arch/panoptic_fpn.py, ported literally.
# Its semantic map holds contiguous ids where 0 means "some thing"; we convert ours to that.


def combine_semantic_and_instance_outputs(instance_results, semantic_results, overlap_threshold,
                                          stuff_area_thresh, instances_score_thresh):
    panoptic_seg = torch.zeros_like(semantic_results, dtype=torch.int32)

    # sort instance outputs by scores
    sorted_inds = torch.argsort(-instance_results.scores)

    current_segment_id = 0
    segments_info = []

    instance_masks = instance_results.pred_masks.to(dtype=torch.bool, device=panoptic_seg.device)

    # Add instances one-by-one, check for overlaps with existing ones
    for inst_id in sorted_inds:
        score = instance_results.scores[inst_id].item()
        if score < instances_score_thresh:
            break
        mask = instance_masks[inst_id]  # H,W
        mask_area = mask.sum().item()

        if mask_area == 0:
            continue

        intersect = (mask > 0) & (panoptic_seg > 0)
        intersect_area = intersect.sum().item()

        if intersect_area * 1.0 / mask_area > overlap_threshold:
            continue

        if intersect_area > 0:
            mask = mask & (panoptic_seg == 0)

        current_segment_id += 1
        panoptic_seg[mask] = current_segment_id
        segments_info.append(
            {
                "id": current_segment_id,
                "isthing": True,
                "score": score,
                "category_id": instance_results.pred_classes[inst_id].item(),
                "instance_id": inst_id.item(),
            }
        )

    # Add semantic results to remaining empty areas
    semantic_labels = torch.unique(semantic_results).cpu().tolist()
    for semantic_label in semantic_labels:
        if semantic_label == 0:  # 0 is a special "thing" class
            continue
        mask = (semantic_results == semantic_label) & (panoptic_seg == 0)
        mask_area = mask.sum().item()
        if mask_area < stuff_area_thresh:
            continue

        current_segment_id += 1
        panoptic_seg[mask] = current_segment_id
        segments_info.append(
            {
                "id": current_segment_id,
                "isthing": False,
                "category_id": semantic_label,
                "area": mask_area,
            }
        )

    return panoptic_seg, segments_info


def reference(instances, labels, overlap=0.5, stuff_area=16, score=0.5):
    """Our inputs -> Detectron2's (thing classes -> 0, stuff c -> c + 1) -> our category ids."""
    is_thing = torch.isin(labels, torch.tensor(THING_IDS, device=labels.device))
    d2_semantic = torch.where(is_thing, 0, labels + 1)
    results = SimpleNamespace(scores=instances["scores"], pred_masks=instances["masks"],
                              pred_classes=instances["labels"])
    ids, segments = combine_semantic_and_instance_outputs(results, d2_semantic, overlap,
                                                          stuff_area, score)
    for s in segments:
        if not s["isthing"]:
            s["category_id"] -= 1
    return ids, segments


# ---- helpers ---------------------------------------------------------------------------------

def random_case(g, D=6, H=20, W=24):
    """Overlapping rectangular and blobby masks with distinct random scores, a blocky
    semantic map."""
    masks = torch.zeros(D, H, W, dtype=torch.bool)
    for k in range(D):
        y = torch.randint(0, H - 4, (1,), generator=g).item()
        x = torch.randint(0, W - 4, (1,), generator=g).item()
        h = torch.randint(2, 12, (1,), generator=g).item()
        w = torch.randint(2, 12, (1,), generator=g).item()
        masks[k, y:y + h, x:x + w] = True
        masks[k] &= torch.rand(H, W, generator=g) < 0.9
    if D:
        masks[-1] = False  # an empty mask is skipped
    instances = {"scores": torch.rand(D, generator=g),
                 "labels": torch.randint(4, 8, (D,), generator=g), "masks": masks}
    coarse = torch.randint(0, 8, (H // 4 + 1, W // 4 + 1), generator=g)
    # (H, W) blocks of 4 x 4
    labels = coarse.repeat_interleave(4, 0).repeat_interleave(4, 1)[:H, :W]
    labels[torch.rand(H, W, generator=g) < 0.05] = 2  # a few scattered (small) water regions
    return instances, labels


def assert_same(ours, ref):
    (ids, segments), (ref_ids, ref_segments) = ours, ref
    assert ids.dtype == torch.int64
    assert torch.equal(ids, ref_ids.to(torch.int64))
    assert segments == ref_segments


# ---- hand-computed case -----------------------------------------------------------------------

def test_hand_computed():
    # 1 x 10 image. semantic: sky sky sky grass grass grass grass circle water grass
    # instance A (circle, score 0.9): pixels 0-2 -> segment 1; B (square, 0.8): pixels 2-4,
    # 1 of 3 taken (<= 0.5) -> segment 2 on pixels 3-4; C (circle, 0.7): pixels 0-1, all
    # taken -> dropped; D (circle, 0.3): below the score threshold. Stuff in the free pixels
    # 5-9: grass (5, 6, 9: 3 px) -> segment 3; pixel 7 says circle, a thing class (things
    # come from instances) -> void; water (1 px) < stuff_area_threshold = 2 -> void
    semantic = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 4, 2, 1]])
    masks = torch.zeros(4, 1, 10, dtype=torch.bool)
    masks[0, 0, 0:3] = masks[1, 0, 2:5] = masks[2, 0, 0:2] = masks[3, 0, 7:10] = True
    instances = {"scores": torch.tensor([0.9, 0.8, 0.7, 0.3]),
                 "labels": torch.tensor([4, 5, 4, 4]), "masks": masks}
    ids, segments = panoptic_fusion(instances, semantic, stuff_area_threshold=2)
    assert ids.tolist() == [[1, 1, 1, 2, 2, 3, 3, 0, 0, 3]]
    assert [(s["id"], s["category_id"], s["isthing"]) for s in segments] == [
        (1, 4, True), (2, 5, True), (3, 1, False)]
    assert segments[0]["instance_id"] == 0 and segments[1]["instance_id"] == 1
    assert segments[2]["area"] == 3
    assert_same((ids, segments), reference(instances, semantic, stuff_area=2))


def test_logits_are_argmaxed():
    g = torch.Generator().manual_seed(1)
    instances, labels = random_case(g)
    one_hot = torch.nn.functional.one_hot(labels, 8).permute(2, 0, 1)  # (8, H, W)
    logits = torch.randn(8, *labels.shape, generator=g) + 10 * one_hot
    assert_same(panoptic_fusion(instances, logits), panoptic_fusion(instances, labels))


# ---- against the reference ---------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("overlap, stuff_area, score",
                         [(0.5, 16, 0.5), (0.2, 4, 0.0), (0.8, 40, 0.3)])
def test_random_cases_match_detectron2(seed, overlap, stuff_area, score):
    g = torch.Generator().manual_seed(seed)
    instances, labels = random_case(g, D=int(torch.randint(0, 9, (1,), generator=g)))
    ours = panoptic_fusion(instances, labels, overlap_threshold=overlap,
                           stuff_area_threshold=stuff_area, score_threshold=score)
    assert_same(ours, reference(instances, labels, overlap, stuff_area, score))


def test_perfect_inputs_give_the_ground_truth_panoptic_quality():
    # ground-truth instances (crowds left out) + ground-truth semantic map -> PQ 1 on things
    # and stuff
    for seed in (2, 9):
        scene = render_scene(seed, p_crowd=0.0)
        instances = {"scores": torch.linspace(1.0, 0.6, len(scene.labels)),
                     "labels": scene.labels, "masks": scene.masks}
        ids, segments = panoptic_fusion(instances, scene.semantic, stuff_area_threshold=0)
        gt_ids, gt_segments = panoptic_ids(scene)
        r = panoptic_quality(ids, segments, gt_ids, gt_segments, SHAPESWORLD_CATEGORIES)
        assert r["All"]["pq"] == pytest.approx(1.0)


def test_device(device):
    g = torch.Generator().manual_seed(4)
    instances, labels = random_case(g)
    ours = panoptic_fusion({k: v.to(device) for k, v in instances.items()}, labels.to(device))
    assert ours[0].device.type == device.type
    assert_same((ours[0].cpu(), ours[1]), reference(instances, labels))


# ---- bad input -------------------------------------------------------------------------------

def _case():
    return random_case(torch.Generator().manual_seed(0), D=3, H=8, W=8)


@pytest.mark.parametrize("change, error, match", [
    (lambda i, s: ({"scores": i["scores"]}, s), TypeError,
     r"instances must be a dict with 'scores', 'labels' and 'masks', "
     r"got dict with keys \['scores'\]"),
    (lambda i, s: (list(i.values()), s), TypeError, r"instances must be a dict .*, got list"),
    (lambda i, s: (i, s.float()), TypeError,
     r"semantic must be integer labels Tensor\[H, W\] \(or float logits Tensor\[C, H, W\]\) "
     r"\(int64, int32, uint8, \.\.\.\), got Tensor\[8, 8\] float32"),
    (lambda i, s: (i, s[None]), ValueError,
     r"semantic must be float logits Tensor\[C, H, W\] or integer labels Tensor\[H, W\], "
     r"got Tensor\[1, 8, 8\] int64"),
    (lambda i, s: (i, s[None, None].float()), ValueError,
     r"semantic must be .*got Tensor\[1, 1, 8, 8\]"),
    (lambda i, s: (i, s.tolist()), TypeError, r"semantic must be .*, got list"),
    (lambda i, s: (dict(i, masks=i["masks"][:, :4]), s), ValueError,
     r"instances\['masks'\] must be Tensor\[D, 8, 8\] \(the semantic map's size\), "
     r"got Tensor\[3, 4, 8\]"),
    (lambda i, s: (dict(i, masks=i["masks"].tolist()), s), TypeError,
     r"instances\['masks'\] must be a bool Tensor\[D, 8, 8\].*, got list"),
    (lambda i, s: (dict(i, masks=i["masks"].float()), s), TypeError,
     r"instances\['masks'\] must be a bool Tensor\[D, 8, 8\] "
     r"\(threshold soft masks first, .* or pass mask_threshold=0\.5\), "
     r"got Tensor\[3, 8, 8\] float32"),
    (lambda i, s: (dict(i, masks=i["masks"].to(torch.uint8)), s), TypeError,
     r"instances\['masks'\] must be a bool Tensor.*got Tensor\[3, 8, 8\] uint8"),
    (lambda i, s: (dict(i, scores=i["scores"][:2]), s), ValueError,
     r"instances\['scores'\] must be Tensor\[3\] \(one per mask\), got Tensor\[2\]"),
    (lambda i, s: (dict(i, scores=0.5), s), TypeError,
     r"instances\['scores'\] must be a Tensor\[3\]"),
    (lambda i, s: (dict(i, labels=i["labels"][None]), s), ValueError,
     r"instances\['labels'\] must be Tensor\[3\]"),
    (lambda i, s: (dict(i, labels=i["labels"] + 0.7), s), TypeError,
     r"instances\['labels'\] must be an integer Tensor of category ids .*got Tensor\[3\] float32"),
])
def test_bad_input(change, error, match):
    instances, labels = _case()
    with pytest.raises(error, match=match):
        panoptic_fusion(*change(instances, labels))


def test_bad_threshold():
    instances, labels = _case()
    with pytest.raises(TypeError, match="overlap_threshold must be a number, got '0.5'"):
        panoptic_fusion(instances, labels, overlap_threshold="0.5")
    with pytest.raises(TypeError, match="score_threshold must be a number, got None"):
        panoptic_fusion(instances, labels, score_threshold=None)
    with pytest.raises(TypeError, match="stuff_area_threshold must be a number, got True"):
        panoptic_fusion(instances, labels, stuff_area_threshold=True)
    with pytest.raises(TypeError, match="mask_threshold must be a number, got '0.5'"):
        panoptic_fusion(instances, labels, mask_threshold="0.5")


@pytest.mark.parametrize("thing_ids", [None, 4, ["a"], "4567", [4.0, 5.0]])
def test_bad_thing_ids(thing_ids):
    instances, labels = _case()
    with pytest.raises(TypeError, match="thing_ids must be a collection of int category ids"):
        panoptic_fusion(instances, labels, thing_ids=thing_ids)
    with pytest.raises(TypeError, match="ignore_index must be an int"):
        panoptic_fusion(instances, labels, ignore_index=None)


def test_near_tied_float64_scores_keep_their_order():
    # 0.7 and 0.7 + 1e-9 are equal in float32; in float64 the second is better and is pasted first
    masks = torch.zeros(2, 1, 4, dtype=torch.bool)
    masks[:, 0, :3] = True
    instances = {"scores": torch.tensor([0.7, 0.7 + 1e-9], dtype=torch.float64),
                 "labels": torch.tensor([4, 5]), "masks": masks}
    ids, segments = panoptic_fusion(instances, torch.ones(1, 4, dtype=torch.int64),
                                    stuff_area_threshold=0)
    assert [(s["instance_id"], s["category_id"]) for s in segments if s["isthing"]] == [(1, 5)]
    ref = reference(instances, torch.ones(1, 4, dtype=torch.int64), stuff_area=0)
    assert_same((ids, segments), ref)


def test_ignored_semantic_pixels_are_void_and_other_thing_ids():
    # a uint8 map with the ignore label
    semantic = torch.tensor([[0, 0, 255, 255, 1, 1, 3, 3]], dtype=torch.uint8)
    none = {"scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64),
            "masks": torch.zeros(0, 1, 8, dtype=torch.bool)}
    ids, segments = panoptic_fusion(none, semantic, stuff_area_threshold=1)
    assert ids.tolist() == [[1, 1, 0, 0, 2, 2, 3, 3]]
    assert [s["category_id"] for s in segments] == [0, 1, 3]
    # class 3 is a thing here
    ids, segments = panoptic_fusion(none, semantic, stuff_area_threshold=1, thing_ids=[3])
    assert ids.tolist() == [[1, 1, 0, 0, 2, 2, 0, 0]]
    assert [s["category_id"] for s in segments] == [0, 1]


# ---- soft masks ---------------------------------------------------------------------------------

def soft_case():
    """An 8 × 8 image; one instance whose mask is 0.9 on 4 pixels and 0.01 everywhere else."""
    probs = torch.full((1, 8, 8), 0.01)
    probs[0, 2:4, 2:4] = 0.9
    instances = {"scores": torch.tensor([0.95]), "labels": torch.tensor([4]), "masks": probs}
    return instances, torch.zeros(8, 8, dtype=torch.int64)  # all sky


def test_float_masks_are_refused_not_cast():
    # a float mask cast to bool makes every probability > 0 a thing pixel: 64 pixels, not 4
    instances, semantic = soft_case()
    with pytest.raises(TypeError, match=r"instances\['masks'\] must be a bool Tensor\[D, 8, 8\]"):
        panoptic_fusion(instances, semantic)


@pytest.mark.parametrize("mask_threshold, area", [(0.5, 4), (0.9, 4), (0.01, 64), (0.95, 0)])
def test_mask_threshold_binarises_soft_masks(mask_threshold, area):
    instances, semantic = soft_case()
    ids, segments = panoptic_fusion(instances, semantic, mask_threshold=mask_threshold,
                                    stuff_area_threshold=1)
    things = [s["id"] for s in segments if s["isthing"]]
    assert int(torch.isin(ids, torch.tensor(things, dtype=torch.int64)).sum()) == area
    assert int((ids > 0).sum()) == 64  # the rest is sky
    # the same as thresholding first, by hand, then passing bool masks (Detectron2's input)
    hard = dict(instances, masks=instances["masks"] >= mask_threshold)
    assert_same((ids, segments), reference(hard, semantic, stuff_area=1))
    assert_same((ids, segments), panoptic_fusion(hard, semantic, stuff_area_threshold=1))


def test_mask_threshold_keeps_bool_masks():
    g = torch.Generator().manual_seed(3)
    instances, labels = random_case(g)
    assert_same(panoptic_fusion(instances, labels, mask_threshold=0.5),
                reference(instances, labels))
