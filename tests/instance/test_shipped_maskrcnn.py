"""The shipped tiny Mask R-CNN: loads (sha256-checked), reaches mask AP50 >= 0.8 and mask AP >= 0.7
on held-out scenes (pycocotools' COCOeval), and our COCO-style AP gives pycocotools' numbers on its
detections."""

import pytest
import torch

from coursekit.checkpoints import checkpoint_dir, read_manifest

MANIFEST = read_manifest(checkpoint_dir())
NAME = "maskrcnn"
# never used for training (training seeds are 0, 1, 2, ...); 100 scenes keep this under ~30 s on a CPU
HELD_OUT_SCENES = 100

pytestmark = pytest.mark.skipif(
    NAME not in MANIFEST,
    reason=f"{NAME!r} is not in data/checkpoints/manifest.json yet; train it with `coursekit train {NAME}`",
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
    checkpoint = torch.load(checkpoint_dir() / entry["file"], map_location="cpu", weights_only=True)
    assert {"model", "config", "history", "metrics"} <= set(checkpoint)
    assert all(t.dtype != torch.float64 for t in checkpoint["model"].values())
    assert count_parameters(model) <= 2_000_000
    assert not model.training


def test_mask_ap50_at_least_080_by_pycocotools(metrics):
    assert "coco_mask_ap50" in metrics, "pycocotools did not score the model"
    assert metrics["coco_mask_ap50"] >= 0.8, (
        f"mask AP50 {metrics['coco_mask_ap50']:.4f} (AP {metrics['coco_mask_ap']:.4f}) on "
        f"{HELD_OUT_SCENES} held-out scenes, by pycocotools"
    )
    assert metrics["coco_box_ap50"] >= 0.8, f"box AP50 {metrics['coco_box_ap50']:.4f}"


def test_mask_ap_at_least_070_by_pycocotools(metrics):
    # trained with aligned=True (Detectron2's half-pixel convention): 0.76 on these 100 scenes;
    # the same model with torchvision's aligned=False reached only 0.49 (lesson 05, section 10)
    assert metrics["coco_mask_ap"] >= 0.7, (
        f"mask AP {metrics['coco_mask_ap']:.4f} (AP75 {metrics['coco_mask_ap75']:.4f}) on "
        f"{HELD_OUT_SCENES} held-out scenes, by pycocotools"
    )


@pytest.mark.parametrize("key", ["mask_ap", "mask_ap50", "mask_ap75", "box_ap", "box_ap50", "box_ap75"])
def test_our_ap_equals_pycocotools(metrics, key):
    assert metrics[key] == pytest.approx(metrics[f"coco_{key}"], abs=1e-3), (key, metrics[key], metrics[f"coco_{key}"])


def test_predict_on_one_held_out_scene(model):
    from coursekit.data import render_scene
    from coursekit.instance.train import HELD_OUT_START

    scene = render_scene(HELD_OUT_START)
    pred = model.predict(scene.image)
    assert pred["masks"].dtype == torch.bool and pred["masks"].shape[1:] == (64, 64)
    assert set(pred["labels"].tolist()) <= set(model.thing_ids)
    assert bool((pred["scores"] >= 0.5).all())
    assert len(pred["labels"]) >= 1
