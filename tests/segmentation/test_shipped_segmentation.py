"""The shipped FCN and U-Net checkpoints load (sha256-checked) and reach their held-out mIoU.

The bars sit just below what the shipped checkpoints measure on these 64 held-out scenes
(FCN mIoU 0.9503, pixel accuracy 0.9905; U-Net 0.9961, 0.9994; the README quotes 0.952 and
0.996 on 256 scenes), so a regression in the models, the renderer or the metric fails here.
"""

import pytest
import torch

from coursekit.checkpoints import checkpoint_dir, read_manifest
from coursekit.validators import count_parameters

MANIFEST = read_manifest(checkpoint_dir())
HELD_OUT = range(1_000_000, 1_000_064)  # never used for training (training seeds are 0, 1, 2, ...)


def _require(name):
    if name not in MANIFEST:
        pytest.skip(f"{name!r} is not in data/checkpoints/manifest.json yet; "
                    f"train it with `coursekit train {name}`")


@pytest.fixture(scope="module")
def results():
    from coursekit.segmentation.train import evaluate_segmentation, load_segmentation_model

    out = {}
    for name in ("fcn", "unet"):
        if name in MANIFEST:
            model = load_segmentation_model(name)
            out[name] = (model, evaluate_segmentation(model, HELD_OUT))
    return out


@pytest.mark.parametrize("name", ["fcn", "unet"])
def test_checkpoint_is_small_and_documented(name):
    _require(name)
    entry = MANIFEST[name]
    assert entry["size"] <= 10 * 2**20
    assert entry["command"] == f"coursekit train {name}"
    assert {"miou", "pixel_acc"} <= set(entry["metrics"])
    checkpoint = torch.load(checkpoint_dir() / entry["file"], map_location="cpu", weights_only=True)
    assert {"model", "config", "history", "metrics"} <= set(checkpoint)
    assert all(t.dtype != torch.float64 for t in checkpoint["model"].values())


def test_unet_miou_at_least_099(results):
    _require("unet")
    model, result = results["unet"]
    assert count_parameters(model) <= 2_000_000
    # measured: mIoU 0.9961, pixel accuracy 0.9994, every class IoU >= 0.991
    assert result["miou"] >= 0.99, f"U-Net mIoU {result['miou']:.4f} on 64 held-out scenes"
    assert result["pixel_acc"] >= 0.998
    assert min(result["iou"]) >= 0.98, f"U-Net IoU per class {result['iou']}"


def test_fcn_miou_at_least_094_and_worse_than_unet(results):
    _require("fcn")
    _require("unet")
    model, fcn = results["fcn"]
    assert count_parameters(model) <= 2_000_000
    # measured: mIoU 0.9503, pixel accuracy 0.9905, every class IoU >= 0.896 (person lowest)
    assert fcn["miou"] >= 0.94, f"FCN mIoU {fcn['miou']:.4f} on 64 held-out scenes"
    assert fcn["pixel_acc"] >= 0.985
    assert min(fcn["iou"]) >= 0.88, f"FCN IoU per class {fcn['iou']}"
    # the lesson: skips bring back the detail (0.9961 vs 0.9503: a gap of 0.046)
    assert results["unet"][1]["miou"] - fcn["miou"] >= 0.03


@pytest.mark.parametrize("name", ["fcn", "unet"])
def test_manifest_metric_is_reproduced(results, name):
    _require(name)
    # the manifest's mIoU is over 256 held-out scenes; these 64 land within 0.003 of it
    # (measured: FCN 0.9503 vs 0.9524, U-Net 0.9961 vs 0.9957)
    manifest = MANIFEST[name]["metrics"]
    assert results[name][1]["miou"] == pytest.approx(manifest["miou"], abs=0.005)
    assert results[name][1]["pixel_acc"] == pytest.approx(manifest["pixel_acc"], abs=0.002)
