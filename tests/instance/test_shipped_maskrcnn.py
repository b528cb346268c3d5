"""The shipped tiny Mask R-CNN: loads (sha256-checked), keeps the quality it shipped with on
held-out scenes (pycocotools' COCOeval), and our COCO-style AP gives pycocotools' numbers on
its detections."""

import pytest
import torch

from coursekit.checkpoints import checkpoint_dir, read_manifest

MANIFEST = read_manifest(checkpoint_dir())
NAME = "maskrcnn"
# never used for training (training seeds are 0, 1, 2, ...); 100 scenes keep this under ~30 s
# on a CPU. The manifest's numbers are on 200 scenes: mask AP 0.7567, AP50 0.9240, box AP
# 0.7459, AP50 0.9441; on these 100 the same weights measure mask AP 0.7607, AP50 0.9307, box
# AP 0.7489, AP50 0.9523 (pycocotools and ours alike).
HELD_OUT_SCENES = 100
BARS = {"coco_mask_ap": 0.74, "coco_mask_ap50": 0.91, "coco_box_ap": 0.73,
        "coco_box_ap50": 0.93}  # 0.02 under the measured numbers

pytestmark = pytest.mark.skipif(
    NAME not in MANIFEST,
    reason=f"{NAME!r} is not in data/checkpoints/manifest.json yet; "
           f"train it with `coursekit train {NAME}`",
)


@pytest.fixture(scope="module")
def model():
    from coursekit.instance import load_maskrcnn

    return load_maskrcnn()


@pytest.fixture(scope="module")
def metrics(model):
    pytest.importorskip("pycocotools")
    from coursekit.instance.train import HELD_OUT_START, evaluate_maskrcnn

    return evaluate_maskrcnn(model, range(HELD_OUT_START, HELD_OUT_START + HELD_OUT_SCENES))


def test_checkpoint_is_small_and_documented(model):
    from coursekit.instance import count_parameters

    entry = MANIFEST[NAME]
    assert entry["size"] <= 10 * 2**20
    assert entry["command"] == f"coursekit train {NAME}"
    assert {"mask_ap", "mask_ap50", "box_ap", "box_ap50"} <= set(entry["metrics"])
    checkpoint = torch.load(checkpoint_dir() / entry["file"], map_location="cpu",
                            weights_only=True)
    assert {"model", "config", "history", "metrics"} <= set(checkpoint)
    assert all(t.dtype != torch.float64 for t in checkpoint["model"].values())
    assert count_parameters(model) <= 2_000_000
    assert not model.training
    assert model.roi_heads.mask_aligned is True  # trained with Detectron2's convention


@pytest.mark.parametrize("key", sorted(BARS))
def test_quality_stays_at_the_shipped_level(metrics, key):
    # trained with aligned=True (Detectron2's half-pixel convention); the same model read with
    # torchvision's aligned=False reached only mask AP 0.49 (lesson 05, section 10)
    assert metrics[key] >= BARS[key], (
        f"{key} {metrics[key]:.4f} on {HELD_OUT_SCENES} held-out scenes (pycocotools), "
        f"under the bar {BARS[key]}")


@pytest.mark.parametrize("key", ["mask_ap", "box_ap"])
def test_close_to_the_manifest(metrics, key):
    shipped = MANIFEST[NAME]["metrics"][key]  # on 200 scenes
    assert abs(metrics[f"coco_{key}"] - shipped) <= 0.02, (metrics[f"coco_{key}"], shipped)


@pytest.mark.parametrize("key", ["mask_ap", "mask_ap50", "mask_ap75", "box_ap", "box_ap50",
                                 "box_ap75"])
def test_our_ap_equals_pycocotools(metrics, key):
    assert metrics[key] == pytest.approx(metrics[f"coco_{key}"], abs=1e-12), (
        key, metrics[key], metrics[f"coco_{key}"])


def test_predict_on_one_held_out_scene(model):
    from coursekit.data import render_scene
    from coursekit.instance.train import HELD_OUT_START

    scene = render_scene(HELD_OUT_START)
    pred = model.predict(scene.image)
    assert pred["masks"].dtype == torch.bool and pred["masks"].shape[1:] == (64, 64)
    assert set(pred["labels"].tolist()) <= set(model.thing_ids)
    assert bool((pred["scores"] >= 0.5).all())
    assert len(pred["labels"]) >= 1
    detections = model(scene.image[None])[0]  # the same vocabulary, all scores
    keep = detections["scores"] >= 0.5
    assert torch.equal(detections["labels"][keep], pred["labels"])
    assert torch.equal(detections["masks"][keep], pred["masks"])
