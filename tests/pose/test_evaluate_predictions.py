"""evaluate_keypointrcnn(..., predictions=...) scores given outputs as if it had run the model."""

import pytest
import torch

from coursekit.checkpoints import checkpoint_dir, read_manifest
from coursekit.data import render_batch
from coursekit.pose import evaluate_keypointrcnn, load_keypointrcnn
from coursekit.pose.train import HELD_OUT_START

SEEDS = list(range(HELD_OUT_START, HELD_OUT_START + 4))


@pytest.fixture(scope="module")
def model():
    if "keypointrcnn" not in read_manifest(checkpoint_dir()):
        pytest.skip("needs the shipped keypointrcnn")
    return load_keypointrcnn()


def test_given_predictions_give_the_same_metrics(model):
    outputs = model.predict(render_batch(SEEDS, size=96).image, score_threshold=0.0)
    ran = evaluate_keypointrcnn(model, SEEDS, pycocotools=False)
    given = evaluate_keypointrcnn(model, SEEDS, pycocotools=False, predictions=outputs)
    assert given == ran
    assert ran["kp_ap"] > 0.5  # a real model on real scenes, not two empty evaluations
    worse = [{**out, "keypoints": out["keypoints"] + 5.0} for out in outputs]
    moved = evaluate_keypointrcnn(model, SEEDS, pycocotools=False, predictions=worse)
    assert moved["kp_ap"] < ran["kp_ap"]  # the given outputs are the ones scored
    assert moved["mask_ap"] == ran["mask_ap"]


def test_predictions_must_match_the_seeds(model):
    with pytest.raises(ValueError, match=r"predictions must hold one dict per seed \(4\)"):
        evaluate_keypointrcnn(model, SEEDS, predictions=[{}])
    assert torch.is_tensor(model.predict(torch.rand(3, 96, 96))["keypoints"])
