"""The COCO keypoint schema: by hand from the names, vs pycocotools, vs ShapesWorld's copy."""

import numpy as np
import pytest
import torch
from pycocotools.cocoeval import Params

from coursekit.pose import (
    COCO_FLIP_INDEX,
    COCO_KEYPOINT_NAMES,
    COCO_SIGMAS,
    COCO_SKELETON,
    COCO_SKELETON_0BASED,
    NUM_KEYPOINTS,
    check_keypoints,
)


def test_names_are_the_lectures_17_in_coco_order():
    assert NUM_KEYPOINTS == len(COCO_KEYPOINT_NAMES) == 17
    assert COCO_KEYPOINT_NAMES[0] == "nose"
    parts = ["eye", "ear", "shoulder", "elbow", "wrist", "hip", "knee", "ankle"]
    expected = ["nose"] + [f"{side}_{p}" for p in parts for side in ("left", "right")]
    assert list(COCO_KEYPOINT_NAMES) == expected


def test_flip_index_swaps_left_and_right_by_name():
    swapped = [n.replace("left", "@").replace("right", "left").replace("@", "right")
               for n in COCO_KEYPOINT_NAMES]
    assert list(COCO_FLIP_INDEX) == [COCO_KEYPOINT_NAMES.index(n) for n in swapped]
    assert [COCO_FLIP_INDEX[i] for i in COCO_FLIP_INDEX] == list(range(17))  # an involution
    # torchvision's references/detection/transforms.py flip_inds
    assert list(COCO_FLIP_INDEX) == [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]


def test_skeleton_is_cocos_and_maps_onto_itself_when_flipped():
    coco_json = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7],
                 [6, 8], [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5],
                 [4, 6], [5, 7]]  # COCO's person_keypoints_*.json "skeleton"
    assert [list(p) for p in COCO_SKELETON] == coco_json
    assert [list(p) for p in COCO_SKELETON_0BASED] == [[a - 1, b - 1] for a, b in coco_json]
    limbs = {frozenset(p) for p in COCO_SKELETON_0BASED}
    flipped = {frozenset(COCO_FLIP_INDEX[k] for k in p) for p in COCO_SKELETON_0BASED}
    assert flipped == limbs
    named = {frozenset(COCO_KEYPOINT_NAMES[k] for k in p) for p in COCO_SKELETON_0BASED}
    assert frozenset({"left_knee", "left_ankle"}) in named
    assert frozenset({"left_shoulder", "right_shoulder"}) in named


def test_sigmas_are_pycocotools():
    ref = Params(iouType="keypoints").kpt_oks_sigmas
    assert np.array_equal(np.array(COCO_SIGMAS), ref)  # bit for bit
    assert COCO_SIGMAS[COCO_KEYPOINT_NAMES.index("left_eye")] == pytest.approx(0.025)
    assert COCO_SIGMAS[COCO_KEYPOINT_NAMES.index("left_hip")] == pytest.approx(0.107)
    assert all(COCO_SIGMAS[i] == COCO_SIGMAS[j] for i, j in enumerate(COCO_FLIP_INDEX))


def test_shapesworld_uses_the_same_objects():
    # one COCO schema: ShapesWorld's persons and the COCO export use these very objects
    from coursekit.data import coco, persons

    assert persons.KEYPOINT_NAMES is COCO_KEYPOINT_NAMES
    assert persons.SKELETON is COCO_SKELETON
    assert len(COCO_KEYPOINT_NAMES) == 17 and COCO_KEYPOINT_NAMES[0] == "nose"
    assert coco.COCO_KEYPOINT_NAMES is COCO_KEYPOINT_NAMES and coco.COCO_SKELETON is COCO_SKELETON


def test_check_keypoints():
    kps = torch.zeros(2, 17, 3)
    assert check_keypoints(kps) is kps
    assert check_keypoints(torch.zeros(0, 5, 3, dtype=torch.int64)).shape == (0, 5, 3)
    with pytest.raises(ValueError, match=r"kp must be Tensor\[N, 17, 3\] .*got Tensor\[2, 5, 3\]"):
        check_keypoints(torch.zeros(2, 5, 3), "kp", num_keypoints=17)
    with pytest.raises(ValueError, match=r"keypoints must be Tensor\[N, K, 3\].*Tensor\[17, 3\]"):
        check_keypoints(kps[0])
    with pytest.raises(ValueError, match=r"got Tensor\[2, 0, 3\]"):
        check_keypoints(torch.zeros(2, 0, 3))
    with pytest.raises(TypeError, match=r"keypoints must be a Tensor\[N, K, 3\].*got list"):
        check_keypoints([[0.0, 0.0, 2.0]])
    with pytest.raises(TypeError, match="keypoints must be a real .*complex64"):
        check_keypoints(kps.to(torch.complex64))
