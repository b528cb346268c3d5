"""The shipped FCN and U-Net checkpoints load (sha256-checked) and reach their mIoU on held-out scenes."""

import pytest
import torch

from coursekit.checkpoints import checkpoint_dir, read_manifest
from coursekit.segmentation.fcn import count_parameters

MANIFEST = read_manifest(checkpoint_dir())
HELD_OUT = range(1_000_000, 1_000_064)  # never used for training (training seeds are 0, 1, 2, ...)


def _require(name):
    if name not in MANIFEST:
        pytest.skip(f"{name!r} is not in data/checkpoints/manifest.json yet; train it with `coursekit train {name}`")


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


def test_unet_miou_at_least_090(results):
    _require("unet")
    model, result = results["unet"]
    assert count_parameters(model) <= 2_000_000
    assert result["miou"] >= 0.90, f"U-Net mIoU {result['miou']:.4f} on 64 held-out scenes"
    assert result["pixel_acc"] >= 0.95


def test_fcn_without_skips_is_worse_than_unet(results):
    _require("fcn")
    _require("unet")
    model, fcn = results["fcn"]
    assert count_parameters(model) <= 2_000_000
    assert fcn["miou"] >= 0.5, f"FCN mIoU {fcn['miou']:.4f}: it should still segment the stuff"
    assert fcn["miou"] < results["unet"][1]["miou"]  # the lesson: skips bring back the detail


def test_manifest_metric_is_reproduced(results):
    _require("unet")
    # the manifest's mIoU is over 256 held-out scenes; 64 of them must land close to it
    assert results["unet"][1]["miou"] == pytest.approx(MANIFEST["unet"]["metrics"]["miou"], abs=0.03)
