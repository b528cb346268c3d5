"""COCO export: our RLE against pycocotools, COCOeval of the ground truth as detections, panoptic PNGs."""

import contextlib
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from coursekit.data import render_batch, render_scene
from coursekit.data.coco import (
    STUFF_SEGMENT_OFFSET,
    decode_rle,
    encode_rle,
    panoptic_ids,
    rle_from_string,
    rle_to_string,
    save_coco,
    to_coco,
    to_coco_panoptic,
)

# pycocotools' decode trips a numpy 2 deprecation inside its own code.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(scope="module")
def scenes():
    b = render_batch(range(16), 64, num_things=(3, 6), p_person=0.6, p_crowd=0.5)
    return [b.scene(i) for i in range(len(b))]


def test_rle_by_hand():
    # Column-major: column 0 = (0, 1), column 1 = (1, 1) -> 0 1 1 1 -> one 0, three 1s.
    assert encode_rle(torch.tensor([[0, 1], [1, 1]], dtype=torch.bool)) == {"counts": [1, 3], "size": [2, 2]}
    assert encode_rle(torch.ones(2, 3, dtype=torch.bool))["counts"] == [0, 6]  # starts with an empty run of 0s
    assert encode_rle(torch.zeros(2, 3, dtype=torch.bool))["counts"] == [6]
    # Compressed: 1 -> '1' (49), 3 -> '3'; 40 = 8 + 1 * 32 -> (8 | 0x20) + 48 = 'X', then 1 + 48 = '1'.
    assert rle_to_string([1, 3]) == "13" and rle_to_string([40]) == "X1"
    # From the fourth count on, the difference with the count two places back is stored: 7 - 3 = 4.
    assert rle_to_string([1, 3, 5, 7]) == "1354"
    assert rle_from_string("X1") == [40] and rle_from_string("1354") == [1, 3, 5, 7]
    # A negative difference: 1 - 5 = -4 = ...11100 -> low 5 bits 11100 = 28, sign bit set, stop: 28 + 48 = 'L'.
    assert rle_to_string([2, 5, 5, 1]) == "255L" and rle_from_string("255L") == [2, 5, 5, 1]


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (64, 64), (33, 20)])
def test_rle_matches_pycocotools(shape):
    g = torch.Generator().manual_seed(0)
    for p in (0.0, 0.1, 0.5, 1.0):
        mask = torch.rand(shape, generator=g) < p
        ref = mask_utils.encode(np.asfortranarray(mask.numpy().astype(np.uint8)))
        ours = encode_rle(mask, compressed=True)
        assert ours["counts"] == ref["counts"].decode() and ours["size"] == list(ref["size"])
        assert np.array_equal(mask_utils.decode(mask_utils.frPyObjects(encode_rle(mask), *shape)), mask.numpy())
        assert torch.equal(decode_rle(ours), mask) and torch.equal(decode_rle(encode_rle(mask)), mask)


def _evaluate(gt: COCO, dets: list, iou_type: str, cat_ids=None) -> float:
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(dets)
        E = COCOeval(gt, dt, iou_type)
        if cat_ids is not None:
            E.params.catIds = cat_ids
        E.evaluate()
        E.accumulate()
        E.summarize()
    return float(E.stats[0])


def test_cocoeval_ground_truth_as_detections(scenes, tmp_path):
    paths = save_coco(scenes, tmp_path)
    assert len(list(paths["images"].glob("*.png"))) == len(scenes)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(paths["instances"]))
    anns = gt.loadAnns(gt.getAnnIds())
    assert any(a["iscrowd"] for a in anns) and any("keypoints" in a for a in anns)
    # Crowd regions are not detections (COCO ignores what matches them), so they are left out.
    real = [a for a in anns if not a["iscrowd"]]
    bbox = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0} for a in real]
    segm = [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0,
             "segmentation": {"counts": rle_to_string(a["segmentation"]["counts"]), "size": a["segmentation"]["size"]}}
            for a in real]
    kps = [{"image_id": a["image_id"], "category_id": a["category_id"], "keypoints": a["keypoints"], "score": 1.0}
           for a in real if a.get("num_keypoints", 0) > 0]
    assert _evaluate(gt, bbox, "bbox") == 1.0
    assert _evaluate(gt, segm, "segm") == 1.0
    assert _evaluate(gt, kps, "keypoints", cat_ids=[8]) == 1.0


def test_instances_json_content(scenes):
    data = to_coco(scenes, image_id_start=10)
    assert [im["id"] for im in data["images"]] == list(range(10, 10 + len(scenes)))
    assert [c["id"] for c in data["categories"]] == [5, 6, 7, 8]  # things only, train id + 1
    person = data["categories"][-1]
    assert person["name"] == "person" and len(person["keypoints"]) == 17 and [16, 14] in person["skeleton"]
    assert [a["id"] for a in data["annotations"]] == list(range(1, len(data["annotations"]) + 1))
    i = 0
    for s in scenes:
        for k in range(len(s.labels)):
            a = data["annotations"][i]
            i += 1
            m = mask_utils.decode(mask_utils.frPyObjects(a["segmentation"], s.size, s.size))
            assert np.array_equal(m.astype(bool), s.masks[k].numpy())  # pycocotools decodes our RLE exactly
            assert a["area"] == int(s.masks[k].sum()) and a["category_id"] == int(s.labels[k]) + 1
            assert a["bbox"] == [float(v) for v in mask_utils.toBbox(mask_utils.frPyObjects(a["segmentation"], s.size, s.size))]
            if "keypoints" in a:
                assert a["num_keypoints"] == sum(v > 0 for v in a["keypoints"][2::3])
    assert i == len(data["annotations"])
    json.dumps(data)  # plain JSON types only


def test_panoptic_png_roundtrip(scenes, tmp_path):
    data = to_coco_panoptic(scenes[:6], tmp_path)
    assert {c["id"]: c["isthing"] for c in data["categories"]} == {1: 0, 2: 0, 3: 0, 4: 0, 5: 1, 6: 1, 7: 1, 8: 1}
    assert json.loads((tmp_path / "panoptic.json").read_text()) == data
    for s, ann in zip(scenes, data["annotations"]):
        rgb = np.asarray(Image.open(tmp_path / "panoptic" / ann["file_name"])).astype(np.int64)
        ids = torch.from_numpy(rgb[..., 0] + 256 * rgb[..., 1] + 256**2 * rgb[..., 2])
        ours, segments = panoptic_ids(s)
        assert torch.equal(ids, ours)
        # By hand: things carry their instance number, stuff 1000 + its train id.
        thing = s.instance_ids > 0
        assert torch.equal(ids[thing], s.instance_ids[thing])
        assert torch.equal(ids[~thing], s.semantic[~thing] + STUFF_SEGMENT_OFFSET)
        info = {seg["id"]: seg for seg in ann["segments_info"]}
        assert set(info) == set(ids.unique().tolist())
        for seg_id, seg in info.items():
            m = ids == seg_id
            assert seg["area"] == int(m.sum())
            cat = seg["category_id"] - 1
            assert (s.semantic[m] == cat).all()
            ys, xs = torch.nonzero(m, as_tuple=True)
            assert seg["bbox"] == [xs.min().item(), ys.min().item(), xs.max().item() + 1 - xs.min().item(), ys.max().item() + 1 - ys.min().item()]


def test_device(device):
    cpu = to_coco([render_scene(4)])
    dev = to_coco([render_scene(4, device=device)])
    assert json.dumps(cpu) == json.dumps(dev)


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="mask must be Tensor\\[H, W\\], got Tensor\\[2, 3, 4\\]"):
        encode_rle(torch.zeros(2, 3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="scenes must be a non-empty sequence of Scene"):
        to_coco([])
    with pytest.raises(ValueError, match="scenes must be a non-empty sequence of Scene"):
        save_coco([1, 2], tmp_path)
    with pytest.raises(ValueError, match="image_id_start must be an int >= 0, got -1"):
        to_coco([render_scene(0)], image_id_start=-1)
