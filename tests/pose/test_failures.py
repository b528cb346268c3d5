"""pose_failures / crossing_limbs: hand-made crossings, perfect and missing predictions."""

import pytest
import torch

from coursekit.data import render_scene
from coursekit.pose import COCO_KEYPOINT_NAMES, crossing_limbs, pose_failures
from coursekit.pose.failures import LIMBS, PoseFailure
from coursekit.pose.keypoint_rcnn import PERSON_ID

K = {name: k for k, name in enumerate(COCO_KEYPOINT_NAMES)}


def standing(x0: float = 20.0) -> torch.Tensor:
    """A person facing the camera, arms and legs hanging apart: nothing crosses."""
    kp = torch.zeros(17, 3)
    xy = {"nose": (0, 0), "left_eye": (1, -1), "right_eye": (-1, -1), "left_ear": (2, 0),
          "right_ear": (-2, 0), "left_shoulder": (4, 5), "right_shoulder": (-4, 5),
          "left_elbow": (6, 12), "right_elbow": (-6, 12), "left_wrist": (7, 18),
          "right_wrist": (-7, 18), "left_hip": (2, 20), "right_hip": (-2, 20),
          "left_knee": (3, 30), "right_knee": (-3, 30), "left_ankle": (3, 40),
          "right_ankle": (-3, 40)}
    for name, (x, y) in xy.items():
        kp[K[name]] = torch.tensor([x0 + x, 10.0 + y, 2.0])
    return kp


def test_limbs_are_the_arms_and_legs():
    assert len(LIMBS) == 8
    names = {COCO_KEYPOINT_NAMES[a].split("_")[1] + "-" + COCO_KEYPOINT_NAMES[b].split("_")[1]
             for a, b in LIMBS}
    assert names == {"shoulder-elbow", "elbow-wrist", "hip-knee", "knee-ankle"}


def test_crossing_limbs_by_hand():
    person = standing()
    assert crossing_limbs(person[None]).tolist() == [False]
    crossed = person.clone()  # the left wrist swings across to the right forearm
    crossed[K["left_wrist"], :2] = torch.tensor([20.0 - 9, 10.0 + 13])
    assert crossing_limbs(crossed[None]).tolist() == [True]
    hidden = crossed.clone()  # a limb with an unlabelled end does not count
    hidden[K["left_wrist"], 2] = 0
    assert crossing_limbs(hidden[None]).tolist() == [False]


def test_crossing_limbs_between_persons():
    a, b = standing(20.0), standing(60.0)
    assert crossing_limbs(torch.stack([a, b])).tolist() == [False, False]
    b[K["right_wrist"], :2] = torch.tensor([14.0, 16.0])  # left of a's left upper arm
    b[K["right_elbow"], :2] = torch.tensor([40.0, 25.0])  # b's right forearm crosses a's arm
    assert crossing_limbs(torch.stack([a, b])).tolist() == [True, True]
    assert crossing_limbs(torch.zeros(0, 17, 3)).shape == (0,)


def test_touching_is_not_crossing():
    person = standing()
    # the left wrist ends exactly on the middle of the right thigh (18, 30)-(17, 40)
    person[K["left_wrist"], :2] = (person[K["right_hip"], :2] + person[K["right_knee"], :2]) / 2
    assert crossing_limbs(person[None]).tolist() == [False]


def _predictions(scene, keypoints, keep=None):
    rows = scene.person_index
    keep = torch.ones(len(rows), dtype=torch.bool) if keep is None else keep
    return {"boxes": scene.boxes[rows][keep].float(),
            "labels": torch.full((int(keep.sum()),), PERSON_ID),
            "scores": torch.ones(int(keep.sum())), "keypoints": keypoints[keep]}


@pytest.fixture(scope="module")
def scene():
    for seed in range(3_000_000, 3_000_200):
        s = render_scene(seed, size=96)
        if len(s.person_index) >= 2:
            return s
    raise AssertionError("no scene with two persons")


def test_perfect_predictions_have_no_failure(scene):
    assert pose_failures([scene], [_predictions(scene, scene.keypoints)]) == []


def test_missing_and_shifted_persons_are_failures(scene):
    keep = torch.ones(len(scene.person_index), dtype=torch.bool)
    keep[0] = False  # person 0 not detected
    kp = scene.keypoints.clone()
    kp[1, :, 0] += 6.0  # person 1 six pixels to the right
    failures = pose_failures([scene, scene], [_predictions(scene, scene.keypoints, keep),
                                              _predictions(scene, kp)])
    by_key = {(f.image, f.person): f for f in failures}
    missed = by_key[(0, 0)]
    assert isinstance(missed, PoseFailure)
    assert "not detected" in missed.reasons
    shifted = by_key[(1, 1)]
    assert shifted.detection == 1 and shifted.oks < 0.5
    assert "not detected" not in shifted.reasons  # its box is still right
    assert [f.oks for f in failures] == sorted(f.oks for f in failures)
    assert (0, 1) not in by_key  # perfectly predicted


def test_low_scores_are_ignored(scene):
    pred = _predictions(scene, scene.keypoints)
    pred["scores"] = torch.full_like(pred["scores"], 0.2)
    failures = pose_failures([scene], [pred], score_threshold=0.5)
    assert len(failures) == len(scene.person_index)
    assert all(f.oks == 0.0 and f.detection == -1 for f in failures)


def test_reasons_from_the_ground_truth(scene):
    pred = _predictions(scene, torch.zeros_like(scene.keypoints))  # every pose wrong
    failures = pose_failures([scene], [pred], min_hidden=0)
    assert all("occluded" in f.reasons for f in failures)  # min_hidden=0: always
    hidden = (scene.keypoints[..., 2] == 1).sum(1)
    strict = pose_failures([scene], [pred], min_hidden=100)
    assert all("occluded" not in f.reasons for f in strict)
    cut = (scene.keypoints[..., 2] == 0).any(1)
    for f in failures:
        assert ("cut off" in f.reasons) == bool(cut[f.person])
    assert len(hidden) == len(failures)


def test_bad_inputs(scene):
    with pytest.raises(TypeError, match="scenes and predictions must be lists"):
        pose_failures(scene, [{}])
    with pytest.raises(ValueError, match="one dict per scene"):
        pose_failures([scene], [])
    with pytest.raises(ValueError, match=r"predictions\[0\] must be a dict"):
        pose_failures([scene], [{"boxes": scene.boxes}])
    with pytest.raises(ValueError, match="keypoints must be Tensor"):
        crossing_limbs(torch.zeros(2, 16, 3))


def test_crossing_limbs_on_device(device):
    a, b = standing(20.0), standing(60.0)
    b[K["right_wrist"], :2] = torch.tensor([14.0, 16.0])
    b[K["right_elbow"], :2] = torch.tensor([40.0, 25.0])
    out = crossing_limbs(torch.stack([a, b, standing(90.0)]).to(device))
    assert out.device.type == torch.device(device).type
    assert out.tolist() == [True, True, False]
