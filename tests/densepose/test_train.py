"""Training, loading and the shipped DensePose head's quality (coursekit/densepose/train.py)."""

import json

import torch

from coursekit.checkpoints import read_manifest
from coursekit.data import render_scene
from coursekit.densepose import load_densepose, load_densepose_head, train_densepose
from coursekit.densepose.evaluate import evaluate_densepose, match_detections, person_results
from coursekit.densepose.train import HELD_OUT_START, PERSON_ID, build_densepose_head
from coursekit.instance.train import load_maskrcnn
from coursekit.registry import TRAINERS


def test_registered():
    assert TRAINERS["densepose"] == "coursekit.densepose.train:train_densepose"


def test_quick_run_writes_a_head_checkpoint(tmp_path):
    metrics = train_densepose(tmp_path, seed=0, quick=True)
    entry = json.loads((tmp_path / "manifest.json").read_text())["densepose"]
    assert entry["quick"] is True and entry["command"] == "coursekit train densepose"
    assert {"miou", "u_error", "cse_accuracy", "chance", "det_miou"} <= set(metrics)
    head = load_densepose_head(directory=tmp_path)
    assert not any(k.startswith("backbone") for k in head.state_dict())  # the head only
    assert 0 < metrics["chance"] < 0.1


def test_shipped_checkpoint_round_trip_and_size():
    entry = read_manifest()["densepose"]
    assert entry["size"] < 4_000_000
    head = load_densepose_head()
    trunk = load_maskrcnn()
    fresh = build_densepose_head(trunk.config, **head.config)
    fresh.load_state_dict(head.state_dict())
    fresh.eval()
    x = torch.randn(2, 64, 14, 14)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(head(x).values(), fresh(x).values(),
                                                     strict=True))


def test_shipped_model_on_held_out_persons():
    head = load_densepose_head()
    trunk = load_maskrcnn()
    seeds = list(range(HELD_OUT_START + 200, HELD_OUT_START + 208))
    m = evaluate_densepose(head, trunk, seeds, detected=False)
    assert m["persons"] >= 10
    assert m["miou"] >= 0.5  # 8 scenes; the manifest records the 100-scene value
    assert m["u_error"] < 0.15 and m["v_error"] < 0.15  # a constant 0.5 is off by 0.25
    assert m["cse_accuracy"] >= 5 * m["chance"]


def test_full_model_predicts_densepose_maps():
    model = load_densepose()
    scene = render_scene(HELD_OUT_START + 19, size=96, p_person=0.6, p_crowd=0.0)
    det = model.predict(scene.image, score_threshold=0.5)
    res = person_results(det, (96, 96))
    n = int((det["labels"] == PERSON_ID).sum())
    assert n >= 1 and res["parts"].shape == (n, 96, 96) and res["embedding"].shape[1] == 16
    assert (res["image_parts"] > 0).sum() > 100


def test_match_detections_hand_case():
    gt = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]])
    det = torch.tensor([[21.0, 21, 30, 30], [0, 0, 4, 4], [1, 0, 10, 10]])
    assert match_detections(det, gt).tolist() == [2, 0]
