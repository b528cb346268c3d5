"""COCO export: our RLE against pycocotools, COCOeval of ground truth as detections, panoptic."""

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
    mask = torch.tensor([[0, 1], [1, 1]], dtype=torch.bool)
    assert encode_rle(mask) == {"counts": [1, 3], "size": [2, 2]}
    # starts with an empty run of 0s
    assert encode_rle(torch.ones(2, 3, dtype=torch.bool))["counts"] == [0, 6]
    assert encode_rle(torch.zeros(2, 3, dtype=torch.bool))["counts"] == [6]
    # Compressed: 1 -> '1' (49), 3 -> '3'; 40 = 8 + 1 * 32 -> (8 | 0x20) + 48 = 'X',
    # then 1 + 48 = '1'.
    assert rle_to_string([1, 3]) == "13" and rle_to_string([40]) == "X1"
    # From the fourth count on, the difference with the count two places back is stored:
    # 7 - 3 = 4.
    assert rle_to_string([1, 3, 5, 7]) == "1354"
    assert rle_from_string("X1") == [40] and rle_from_string("1354") == [1, 3, 5, 7]
    # A negative difference: 1 - 5 = -4 = ...11100 -> low 5 bits 11100 = 28, sign bit set,
    # stop: 28 + 48 = 'L'.
    assert rle_to_string([2, 5, 5, 1]) == "255L" and rle_from_string("255L") == [2, 5, 5, 1]


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (64, 64), (33, 20)])
def test_rle_matches_pycocotools(shape):
    g = torch.Generator().manual_seed(0)
    for p in (0.0, 0.1, 0.5, 1.0):
        mask = torch.rand(shape, generator=g) < p
        ref = mask_utils.encode(np.asfortranarray(mask.numpy().astype(np.uint8)))
        ours = encode_rle(mask, compressed=True)
        assert ours["counts"] == ref["counts"].decode() and ours["size"] == list(ref["size"])
        decoded = mask_utils.decode(mask_utils.frPyObjects(encode_rle(mask), *shape))
        assert np.array_equal(decoded, mask.numpy())
        assert torch.equal(decode_rle(ours), mask)
        assert torch.equal(decode_rle(encode_rle(mask)), mask)
        # uint8 masks (pycocotools' own input type) encode the same
        assert encode_rle(mask.to(torch.uint8), compressed=True) == ours


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
    bbox = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
             "score": 1.0} for a in real]
    segm = [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0,
             "segmentation": {"counts": rle_to_string(a["segmentation"]["counts"]),
                              "size": a["segmentation"]["size"]}}
            for a in real]
    kps = [{"image_id": a["image_id"], "category_id": a["category_id"],
            "keypoints": a["keypoints"], "score": 1.0}
           for a in real if a.get("num_keypoints", 0) > 0]
    assert _evaluate(gt, bbox, "bbox") == 1.0
    assert _evaluate(gt, segm, "segm") == 1.0
    assert _evaluate(gt, kps, "keypoints", cat_ids=[8]) == 1.0


def test_instances_json_content(scenes):
    data = to_coco(scenes, image_id_start=10)
    assert [im["id"] for im in data["images"]] == list(range(10, 10 + len(scenes)))
    assert [c["id"] for c in data["categories"]] == [5, 6, 7, 8]  # things only, train id + 1
    person = data["categories"][-1]
    assert person["name"] == "person" and len(person["keypoints"]) == 17
    assert [16, 14] in person["skeleton"]
    assert [a["id"] for a in data["annotations"]] == list(range(1, len(data["annotations"]) + 1))
    i = 0
    for s in scenes:
        for k in range(len(s.labels)):
            a = data["annotations"][i]
            i += 1
            rle = mask_utils.frPyObjects(a["segmentation"], s.size, s.size)
            m = mask_utils.decode(rle)
            # pycocotools decodes our RLE exactly
            assert np.array_equal(m.astype(bool), s.masks[k].numpy())
            assert a["area"] == int(s.masks[k].sum()) and a["category_id"] == int(s.labels[k]) + 1
            assert a["bbox"] == [float(v) for v in mask_utils.toBbox(rle)]
            if "keypoints" in a:
                assert a["num_keypoints"] == sum(v > 0 for v in a["keypoints"][2::3])
    assert i == len(data["annotations"])
    json.dumps(data)  # plain JSON types only


def test_panoptic_png_roundtrip(scenes, tmp_path):
    data = to_coco_panoptic(scenes[:6], tmp_path)
    isthing = {c["id"]: c["isthing"] for c in data["categories"]}
    assert isthing == {1: 0, 2: 0, 3: 0, 4: 0, 5: 1, 6: 1, 7: 1, 8: 1}
    assert json.loads((tmp_path / "panoptic.json").read_text()) == data
    for s, ann in zip(scenes[:6], data["annotations"], strict=True):
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
            x0, y0 = xs.min().item(), ys.min().item()
            assert seg["bbox"] == [x0, y0, xs.max().item() + 1 - x0, ys.max().item() + 1 - y0]


def test_device(device):
    # the reference is pycocotools, run on the CPU copy of each mask
    scene = render_scene(4, p_person=1.0, p_crowd=1.0, device=device)
    for mask in scene.masks:
        ours = encode_rle(mask, compressed=True)
        ref = mask_utils.encode(np.asfortranarray(mask.cpu().numpy().astype(np.uint8)))
        assert ours["counts"] == ref["counts"].decode()
    cpu = to_coco([render_scene(4, p_person=1.0, p_crowd=1.0)])
    assert json.dumps(to_coco([scene])) == json.dumps(cpu)
    ids, segments = panoptic_ids(scene)
    assert ids.device.type == "cpu" and torch.equal(ids, panoptic_ids(scene.to("cpu"))[0])


SCENE = render_scene(0)


@pytest.mark.parametrize("fn, args, kwargs, error, match", [
    (encode_rle, (torch.zeros(2, 3, 4, dtype=torch.bool),), {}, ValueError,
     r"mask must be Tensor\[H, W\], got Tensor\[2, 3, 4\] bool"),
    (encode_rle, (torch.rand(3, 4),), {}, TypeError,
     r"mask must be a bool \(or integer 0/1\) Tensor\[H, W\]; threshold soft masks first, "
     r"e.g. probs > 0.5; got Tensor\[3, 4\] float32"),
    (encode_rle, ([[0, 1]],), {}, TypeError, r"mask must be a bool Tensor\[H, W\], got list"),
    (encode_rle, (torch.zeros(2, 2, dtype=torch.bool), 1), {}, TypeError,
     "compressed must be a bool, got 1"),
    (rle_to_string, ("13",), {}, TypeError, "counts must be a list of ints .*got str"),
    (rle_to_string, ([1.5, 2],), {}, TypeError, "counts must be a list of ints"),
    (rle_from_string, ([1, 3],), {}, TypeError, "s must be a str .*got list"),
    (decode_rle, ([1, 3],), {}, TypeError, "rle must be a dict with 'counts' and 'size', got list"),
    (decode_rle, ({"counts": [1, 3], "size": [3, 3]},), {}, ValueError,
     r"rle counts must add up to H \* W = 9 pixels, got 4"),
    (to_coco, ([],), {}, ValueError,
     r"scenes must be a non-empty sequence of Scene \(or a SceneBatch\), got an empty list"),
    (to_coco, ([1, 2],), {}, TypeError,
     "scenes must be a non-empty sequence of Scene .*got list of int"),
    (to_coco, ("scene",), {}, TypeError, "scenes must be a non-empty sequence of Scene"),
    (to_coco, ([SCENE],), {"image_id_start": -1}, ValueError,
     "image_id_start must be >= 0, got -1"),
    (to_coco, ([SCENE],), {"image_id_start": 1.0}, TypeError,
     "image_id_start must be an int, got 1.0"),
    (panoptic_ids, ([SCENE],), {}, TypeError,
     r"scene must be a Scene \(render_scene\(seed\)\), got list"),
])
def test_bad_input(fn, args, kwargs, error, match):
    with pytest.raises(error, match=match):
        fn(*args, **kwargs)


def test_bad_input_writers(tmp_path):
    with pytest.raises(TypeError, match="scenes must be a non-empty sequence of Scene"):
        save_coco([1, 2], tmp_path)
    with pytest.raises(ValueError, match="scenes must be a non-empty sequence of Scene"):
        to_coco_panoptic([], tmp_path)
    assert not any(tmp_path.iterdir())  # nothing written before the check
