"""Panoptic FPN's semantic branch trained on the frozen shipped Mask R-CNN: a quick run into a
temporary folder, and the shipped ``panopticfpn`` checkpoint's PQ on 50 held-out scenes."""

import json

import pytest
import torch

from coursekit.checkpoints import CheckpointError, checkpoint_dir, read_manifest
from coursekit.instance.train import load_maskrcnn
from coursekit.panoptic import PanopticFPN
from coursekit.panoptic.train import (
    HELD_OUT_START,
    evaluate_panoptic_fpn,
    load_panoptic_fpn,
    train_panoptic_fpn,
)

MANIFEST = read_manifest(checkpoint_dir())
# the shipped head (200 steps x 16 scenes) measures PQ 0.8059 (Things 0.8435, Stuff 0.7683) and
# semantic mIoU 0.8415 on the lesson's 50 held-out scenes; the bars sit just below
PQ_BAR, STUFF_PQ_BAR, MIOU_BAR = 0.79, 0.75, 0.82


def _require(*names):
    for name in names:
        if name not in MANIFEST:
            pytest.skip(f"{name!r} is not in data/checkpoints/manifest.json yet; "
                        f"train it with `coursekit train {name}`")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    _require("maskrcnn")
    run = tmp_path_factory.mktemp("panopticfpn")
    trunk = {k: v.clone() for k, v in load_maskrcnn().state_dict().items()}
    metrics = train_panoptic_fpn(run, seed=0, quick=True)
    return run, metrics, trunk


def test_quick_run_writes_only_the_head(quick_run):
    run, metrics, _ = quick_run
    assert set(metrics) == {"pq", "pq_things", "pq_stuff", "miou"}
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    entry = read_manifest(run)["panopticfpn"]
    assert entry["quick"] is True and entry["command"] == "coursekit train panopticfpn"
    checkpoint = torch.load(run / "panopticfpn.pt", map_location="cpu", weights_only=True)
    config = checkpoint["config"]
    assert config["trunk"] == "maskrcnn"
    assert config["trunk_sha256"] == MANIFEST["maskrcnn"]["sha256"]
    # only the semantic head's weights: no backbone, RPN or RoI-head tensors
    assert all(k.startswith(("scale_heads.", "predictor.")) for k in checkpoint["model"])
    head_params = sum(v.numel() for k, v in checkpoint["model"].items())
    assert 10_000 < head_params < 200_000
    assert checkpoint["history"]["steps"] == 3 and len(checkpoint["history"]["loss"]) == 1


def test_quick_run_leaves_the_trunk_frozen_and_reloads(quick_run):
    run, _, trunk_before = quick_run
    model = load_panoptic_fpn(directory=run)
    assert isinstance(model, PanopticFPN) and not model.training
    for k, v in model.mask_rcnn.state_dict().items():
        assert torch.equal(v, trunk_before[k]), k
    checkpoint = torch.load(run / "panopticfpn.pt", map_location="cpu", weights_only=True)
    for k, v in model.semantic_head.state_dict().items():
        assert torch.equal(v, checkpoint["model"][k]), k
    # the recorded metrics are what evaluating the reloaded model gives
    result = evaluate_panoptic_fpn(model, range(HELD_OUT_START, HELD_OUT_START + 4))
    assert result["All"]["pq"] == pytest.approx(read_manifest(run)["panopticfpn"]["metrics"]["pq"])


def test_a_changed_trunk_is_refused(quick_run, tmp_path):
    run, _, _ = quick_run
    checkpoint = torch.load(run / "panopticfpn.pt", map_location="cpu", weights_only=True)
    checkpoint["config"]["trunk_sha256"] = "0" * 64
    from coursekit.checkpoints import save_pretrained

    save_pretrained("panopticfpn", checkpoint, command="test", seed=0, directory=tmp_path)
    with pytest.raises(CheckpointError, match="retrain it with `coursekit train panopticfpn`"):
        load_panoptic_fpn(directory=tmp_path)


def test_install_refuses_the_quick_run(quick_run, tmp_path):
    from coursekit.checkpoints import install_checkpoint

    run, _, _ = quick_run
    with pytest.raises(CheckpointError, match="--quick"):
        install_checkpoint(run, directory=tmp_path)


def test_registered_as_a_trainer():
    from coursekit.registry import TRAINERS

    assert TRAINERS["panopticfpn"] == "coursekit.panoptic.train:train_panoptic_fpn"


def test_shipped_checkpoint_is_small_and_names_its_trunk():
    _require("maskrcnn", "panopticfpn")
    entry = MANIFEST["panopticfpn"]
    assert entry["size"] <= 1 * 2**20 and entry["quick"] is False
    checkpoint = torch.load(checkpoint_dir() / entry["file"], map_location="cpu",
                            weights_only=True)
    assert checkpoint["config"]["trunk_sha256"] == MANIFEST["maskrcnn"]["sha256"]
    assert json.dumps(checkpoint["config"])  # plain values only


def test_shipped_panoptic_fpn_pq():
    """The shipped head + the shipped Mask R-CNN, fused, on the lesson's 50 held-out scenes."""
    _require("maskrcnn", "panopticfpn")
    result = evaluate_panoptic_fpn(load_panoptic_fpn(),
                                   range(HELD_OUT_START, HELD_OUT_START + 50))
    assert result["All"]["pq"] >= PQ_BAR, f"PQ {result['All']['pq']:.4f}"
    assert result["Stuff"]["pq"] >= STUFF_PQ_BAR, f"Stuff PQ {result['Stuff']['pq']:.4f}"
    assert result["miou"] >= MIOU_BAR, f"mIoU {result['miou']:.4f}"
    # things come from the same Mask R-CNN as the lesson's fusion: Things PQ 0.8435 there
    assert result["Things"]["pq"] >= 0.80
