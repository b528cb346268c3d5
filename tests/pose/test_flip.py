"""flip_keypoints, flip_boxes, hflip, mirror_index: by hand, vs torchvision, twice = identity,
on a scene."""

import pytest
import torch
import torchvision.transforms.v2.functional as TF
from torch.autograd import gradcheck
from torch.testing import assert_close
from torchvision import tv_tensors

from coursekit.pose import (
    COCO_FLIP_INDEX,
    COCO_KEYPOINT_NAMES,
    flip_boxes,
    flip_keypoints,
    hflip,
    mirror_index,
)

F64 = torch.float64


def tv_flip_coco_person_keypoints(kps, width):
    """torchvision's references/detection/transforms.py (not shipped in the wheel), verbatim."""
    flip_inds = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
    flipped_data = kps[:, flip_inds]
    flipped_data[..., 0] = width - flipped_data[..., 0]
    # Maintain COCO convention that if visibility == 0, then x, y = 0
    inds = flipped_data[..., 2] == 0
    flipped_data[inds] = 0
    return flipped_data


def random_keypoints(n, width, height, dtype=F64, device="cpu"):
    xy = torch.rand(n, 17, 2, dtype=dtype, device=device) * torch.tensor(
        [width, height], dtype=dtype, device=device)
    v = torch.randint(0, 3, (n, 17, 1), device=device).to(dtype)
    return torch.cat([xy * (v > 0), v], dim=2)  # COCO: v = 0 -> (0, 0, 0)


def test_flip_keypoints_by_hand():
    kps = torch.zeros(1, 17, 3, dtype=F64)
    kps[0, :, 0] = torch.arange(17) + 0.5  # keypoint k at x = k + 0.5 (centre of column k)
    kps[0, :, 1] = 100 + torch.arange(17)
    kps[0, :, 2] = 2
    kps[0, 4] = 0  # right_ear unlabelled
    out = flip_keypoints(kps, 20)
    name = COCO_KEYPOINT_NAMES.index
    # the flipped left_wrist is the old right_wrist (10) mirrored: x = 20 - 10.5, y kept
    assert out[0, name("left_wrist")].tolist() == [9.5, 110.0, 2.0]
    assert out[0, name("right_wrist")].tolist() == [10.5, 109.0, 2.0]
    assert out[0, name("nose")].tolist() == [19.5, 100.0, 2.0]
    assert out[0, name("left_ear")].tolist() == [0.0, 0.0, 0.0]  # was the unlabelled right ear
    assert out[0, name("right_ear")].tolist() == [16.5, 103.0, 2.0]  # was left_ear (3)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_flip_keypoints_matches_torchvision_reference(dtype, device):
    kps = random_keypoints(6, 64, 48, dtype, device)
    out = flip_keypoints(kps, 64)
    assert out.dtype == dtype
    assert torch.equal(out, tv_flip_coco_person_keypoints(kps.clone(), 64))


def test_flip_keypoints_convention_vs_tv_tensors_keypoints():
    # torchvision's tv_tensors.KeyPoints are pixel indices (mirror W - 1 - x); ours are
    # continuous (mirror W - x): the same flip once the half-pixel is added
    W, H = 37, 20
    kps = random_keypoints(4, W - 1, H - 1)
    kps[..., 2] = 2
    ref = TF.horizontal_flip(tv_tensors.KeyPoints(kps[..., :2], canvas_size=(H, W)))
    ours = flip_keypoints(kps + torch.tensor([0.5, 0.5, 0.0], dtype=F64), W)
    ours_pixels = ours[..., :2] - 0.5
    mirrored = ours_pixels[:, list(tv_flip_index())]  # undo the left/right swap
    assert_close(mirrored, ref.as_subclass(torch.Tensor), rtol=0, atol=1e-12)


def tv_flip_index():
    return [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]


def test_mirror_index_by_hand_and_against_torchvision(device):
    # nose stays, the eyes swap: (0, 2, 1) is its own inverse; (1, 2, 0) is a 3-cycle
    assert mirror_index([0, 2, 1], 3, device).tolist() == [0, 2, 1]
    out = mirror_index(torch.tensor([0, 2, 1], dtype=torch.int32), 3, device)
    assert out.dtype == torch.int64 and out.device.type == torch.device(device).type
    assert torch.equal(mirror_index(COCO_FLIP_INDEX, 17).cpu(), torch.tensor(tv_flip_index()))
    g = torch.Generator().manual_seed(0)
    for K in (1, 2, 7, 24):
        order = torch.randperm(K, generator=g)  # random pairs: each a swap, one left alone if odd
        swap = torch.arange(K)
        pairs = order[: K // 2 * 2].view(-1, 2)
        swap[pairs[:, 0]], swap[pairs[:, 1]] = pairs[:, 1], pairs[:, 0]
        assert torch.equal(mirror_index(swap.tolist(), K), swap)
        assert torch.equal(swap[mirror_index(swap, K)], torch.arange(K))  # twice: the identity
        if K >= 3:  # a cycle of three is a permutation but no mirror's
            cycle = torch.arange(K)
            cycle[order[:3]] = order[[1, 2, 0]]
            with pytest.raises(ValueError, match="its own inverse"):
                mirror_index(cycle, K)


def test_mirror_index_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match=r"parts must hold K = 4 indices \(one per part\), got 3"):
        mirror_index([0, 1, 2], 4, name="parts", what="part")
    with pytest.raises(ValueError, match=r"table must be a permutation of 0..2 .*got \[0, 3, 1\]"):
        mirror_index([0, 3, 1], 3, name="table")
    with pytest.raises(TypeError, match="table must be a sequence of K ints, got 3"):
        mirror_index(3, 3, name="table")
    with pytest.raises(TypeError, match="table must be a sequence of ints"):
        mirror_index([0, True, 2], 3, name="table")
    with pytest.raises(ValueError, match=r"table must hold K = 3 indices .*got Tensor\[3, 1\]"):
        mirror_index(torch.zeros(3, 1, dtype=torch.long), 3, name="table")


def test_flip_twice_is_the_identity(device):
    kps = random_keypoints(5, 64, 64, device=device)
    assert_close(flip_keypoints(flip_keypoints(kps, 64), 64), kps, rtol=0, atol=1e-12)
    dyadic = (kps * 8).round() / 8  # exact in binary: exactly the identity
    assert torch.equal(flip_keypoints(flip_keypoints(dyadic, 64), 64), dyadic)
    image = torch.rand(3, 16, 24, device=device)
    boxes = torch.tensor([[1.0, 2.0, 5.5, 9.0], [0.0, 0.0, 24.0, 16.0]], device=device)
    masks = torch.rand(2, 16, 24, device=device) > 0.5
    once = hflip(image, keypoints=dyadic, boxes=boxes, masks=masks)
    twice = hflip(*once)
    for a, b in zip(twice, (image, dyadic, boxes, masks), strict=True):
        assert torch.equal(a, b)


def test_flip_boxes_by_hand_and_vs_torchvision():
    boxes = torch.tensor([[1.0, 2.0, 5.5, 9.0], [0.0, 0.0, 10.0, 4.0]])
    out = flip_boxes(boxes, 10)
    assert out.tolist() == [[4.5, 2.0, 9.0, 9.0], [0.0, 0.0, 10.0, 4.0]]
    ref = TF.horizontal_flip(tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(12, 10)))
    assert torch.equal(out, ref.as_subclass(torch.Tensor))


def test_hflip_matches_torchvision(device):
    image = torch.rand(3, 10, 13, device=device)
    masks = torch.rand(4, 10, 13, device=device) > 0.5
    xs = (torch.rand(4, 2, dtype=F64, device=device) * 13).sort(dim=1).values  # x1 <= x2
    ys = (torch.rand(4, 2, dtype=F64, device=device) * 10).sort(dim=1).values
    boxes = torch.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], dim=1)  # (4, 4)
    kps = random_keypoints(4, 13, 10, device=device)
    out = hflip(image, keypoints=kps, boxes=boxes, masks=masks)
    assert torch.equal(out.image, TF.horizontal_flip(image))
    assert torch.equal(out.masks, TF.horizontal_flip(tv_tensors.Mask(masks)))
    ref_boxes = TF.horizontal_flip(tv_tensors.BoundingBoxes(boxes, format="XYXY",
                                                            canvas_size=(10, 13)))
    assert torch.equal(out.boxes, ref_boxes.as_subclass(torch.Tensor))
    assert torch.equal(out.keypoints, tv_flip_coco_person_keypoints(kps.clone(), 13))
    assert hflip(image).keypoints is None and hflip(image).boxes is None


def test_hflip_keeps_keypoints_on_their_pixels():
    # ShapesWorld (continuous coordinates): a keypoint in pixel (floor(y), floor(x)) of its
    # person's mask is, after the flip, in the flipped mask's pixel under the flipped keypoint
    from coursekit.data import render_scene

    checked = 0
    for seed in range(6):
        s = render_scene(seed, size=64)
        masks = s.masks[s.person_index]  # (P, H, W)
        out = hflip(s.image, keypoints=s.keypoints, masks=masks)
        p, k = (s.keypoints[..., 2] > 0).nonzero(as_tuple=True)
        x, y = s.keypoints[p, k, 0].floor().long(), s.keypoints[p, k, 1].floor().long()
        on = masks[p, y, x]  # keypoints drawn on their person
        k2 = torch.tensor(COCO_FLIP_INDEX)[k]  # where keypoint k went
        fx, fy = out.keypoints[p, k2, 0].floor().long(), out.keypoints[p, k2, 1].floor().long()
        assert torch.equal(fx, 63 - x) and torch.equal(fy, y)  # column j <-> column W - 1 - j
        assert out.masks[p, fy, fx][on].all()
        assert torch.equal(out.image[:, fy, fx], s.image[:, y, x])
        checked += int(on.sum())
    assert checked > 10


def test_flip_keypoints_gradcheck():
    kps = random_keypoints(2, 30, 30)
    xy = kps[..., :2].clone().requires_grad_(True)
    assert gradcheck(lambda t: flip_keypoints(torch.cat([t, kps[..., 2:]], 2), 30), (xy,))


def test_flip_keypoints_other_k():
    kps = torch.tensor([[[1.0, 1.0, 2.0], [3.0, 1.0, 2.0], [2.0, 5.0, 1.0]]])
    out = flip_keypoints(kps, 4, flip_index=[1, 0, 2])  # two hands and a head
    assert out.tolist() == [[[1.0, 1.0, 2.0], [3.0, 1.0, 2.0], [2.0, 5.0, 1.0]]]


def test_flip_bad_inputs():
    kps = torch.zeros(2, 17, 3)
    with pytest.raises(ValueError, match=r"keypoints must be Tensor\[N, K, 3\].*\[2, 17\]"):
        flip_keypoints(kps[..., 0], 10)
    with pytest.raises(TypeError, match="width must be a number"):
        flip_keypoints(kps, "10")
    with pytest.raises(ValueError, match="width must be > 0, got 0"):
        flip_keypoints(kps, 0)
    with pytest.raises(ValueError, match="flip_index must hold K = 17 indices.*got 3"):
        flip_keypoints(kps, 10, flip_index=[0, 2, 1])
    with pytest.raises(ValueError, match="flip_index must be a permutation of 0..2 that is its"):
        flip_keypoints(torch.zeros(1, 3, 3), 10, flip_index=[1, 2, 0])
    with pytest.raises(TypeError, match="flip_index must be a sequence of ints"):
        flip_keypoints(torch.zeros(1, 3, 3), 10, flip_index=[0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match=r"boxes must be Tensor\[N, 4\].*Tensor\[2, 5\]"):
        flip_boxes(torch.zeros(2, 5), 10)
    # integer boxes with a fractional width were silently truncated (regression)
    with pytest.raises(ValueError, match=r"width must be a whole number for integer boxes "
                                         r"\(torch.int64\), got 10.5"):
        flip_boxes(torch.tensor([[1, 2, 3, 4]]), 10.5)
    with pytest.raises(ValueError, match=r"width must be a whole number for integer boxes "
                                         r"\(torch.int64\), got inf"):
        flip_boxes(torch.tensor([[1, 2, 3, 4]]), float("inf"))  # was an OverflowError
    whole = flip_boxes(torch.tensor([[1, 2, 3, 4]]), 10.0)
    assert whole.dtype == torch.int64 and whole.tolist() == [[7, 2, 9, 4]]
    with pytest.raises(ValueError, match=r"image must be Tensor\[..., H, W\].*Tensor\[5\]"):
        hflip(torch.zeros(5))
    with pytest.raises(TypeError, match="image must be a Tensor"):
        hflip([[0.0]])
    with pytest.raises(ValueError, match=r"masks must be Tensor\[M, 4, 6\].*Tensor\[2, 4, 5\]"):
        hflip(torch.zeros(3, 4, 6), masks=torch.zeros(2, 4, 5))
