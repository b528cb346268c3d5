"""keypoints_to_heatmap / heatmaps_to_keypoints: by hand and vs torchvision's Keypoint R-CNN."""

import pytest
import torch
from torch.testing import assert_close
from torchvision.models.detection import roi_heads as tv

from coursekit.pose import heatmaps_to_keypoints, keypoints_to_heatmap

F64 = torch.float64


def random_rois(n, device, dtype=F64, min_size=0.5, max_size=60.0):
    x1 = torch.rand(n, dtype=dtype, device=device) * 100
    y1 = torch.rand(n, dtype=dtype, device=device) * 100
    w = min_size + torch.rand(n, dtype=dtype, device=device) * (max_size - min_size)
    h = min_size + torch.rand(n, dtype=dtype, device=device) * (max_size - min_size)
    return torch.stack([x1, y1, x1 + w, y1 + h], dim=1)  # (n, 4)


def random_keypoints(rois, K=17):
    """Keypoints in and around each box, some exactly on its edges, some unlabelled."""
    n = rois.shape[0]
    x1, y1, x2, y2 = (rois[:, i, None] for i in range(4))
    u = torch.rand(n, K, dtype=rois.dtype, device=rois.device) * 1.4 - 0.2  # 20% outside
    v = torch.rand(n, K, dtype=rois.dtype, device=rois.device) * 1.4 - 0.2
    x = x1 + u * (x2 - x1)
    y = y1 + v * (y2 - y1)
    x[:, 0], y[:, 1] = x2[:, 0], y2[:, 0]  # on the right edge, on the bottom edge
    x[:, 2], y[:, 2] = x1[:, 0], y1[:, 0]  # top-left corner
    x[:, 3], y[:, 3] = x2[:, 0], y2[:, 0]  # bottom-right corner
    vis = torch.randint(0, 3, (n, K), device=rois.device).to(rois.dtype)  # 0, 1, 2
    return torch.stack([x, y, vis], dim=2)  # (n, K, 3)


# ------------------------------------------------------------------------ keypoints_to_heatmap
def test_keypoints_to_heatmap_by_hand():
    rois = torch.tensor([[0.0, 0.0, 4.0, 4.0], [10.0, 20.0, 18.0, 22.0]])
    kps = torch.tensor([
        # box 0 with 4 x 4 cells of 1 x 1 pixel
        [[1.5, 2.5, 2], [4.0, 4.0, 2], [4.1, 1.0, 2], [1.0, 1.0, 0], [-0.1, 1.0, 2],
         [0.0, 0.0, 1], [3.99, 0.5, 1]],
        # box 1: cells of 2 x 0.5 pixels
        [[10.0, 20.0, 2], [13.0, 21.2, 2], [18.0, 21.9, 2], [17.9, 22.0, 2], [9.9, 21.0, 2],
         [12.0, 22.5, 2], [11.0, 20.4, 0]],
    ])  # fmt: skip
    targets, valid = keypoints_to_heatmap(kps, rois, 4)
    # (1.5, 2.5) -> col 1, row 2 -> 9; (4, 4) on the right/bottom edge -> last cell 15;
    # x = 4.1 outside; v = 0 not valid; x = -0.1 -> col -1 outside; (0, 0) v = 1 -> 0;
    # (3.99, 0.5) -> col 3, row 0 -> 3
    # box 1: (10, 20) -> 0; (13, 21.2): col floor(1.5) = 1, row floor(2.4) = 2 -> 9;
    # (18, 21.9) right edge: col 3, row floor(3.8) = 3 -> 15; (17.9, 22) bottom edge: col 3,
    # row 3 -> 15; x = 9.9 outside; y = 22.5 outside (not on the edge); v = 0
    assert targets.tolist() == [[9, 15, 0, 0, 0, 0, 3], [0, 9, 15, 15, 0, 0, 0]]
    assert valid.tolist() == [[1, 1, 0, 0, 0, 1, 1], [1, 1, 1, 1, 0, 0, 0]]
    assert targets.dtype == valid.dtype == torch.int64


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("heatmap_size", [1, 7, 56])
def test_keypoints_to_heatmap_matches_torchvision(dtype, heatmap_size, device):
    rois = random_rois(40, device, dtype, min_size=0.3)
    kps = random_keypoints(rois)
    ours = keypoints_to_heatmap(kps, rois, heatmap_size)
    ref = tv.keypoints_to_heatmap(kps, rois, heatmap_size)
    assert ours[1].sum() > 0 and (ours[1] == 0).any()  # both kinds present
    assert torch.equal(ours[0], ref[0]) and torch.equal(ours[1], ref[1])


def test_keypoints_to_heatmap_mixed_dtypes_match_torchvision(device):
    rois = random_rois(20, device, torch.float32)
    kps = random_keypoints(rois.double())
    for k, r in [(kps, rois), (kps.float(), rois.double())]:
        ours, ref = keypoints_to_heatmap(k, r, 56), tv.keypoints_to_heatmap(k, r, 56)
        assert torch.equal(ours[0], ref[0]) and torch.equal(ours[1], ref[1])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_keypoints_to_heatmap_reduced_precision(dtype, device):
    # computed in float32: the same as torchvision on the values cast to float32
    rois = random_rois(30, device, torch.float32).to(dtype)
    kps = random_keypoints(rois.float()).to(dtype)
    ours = keypoints_to_heatmap(kps, rois, 56)
    ref = tv.keypoints_to_heatmap(kps.float(), rois.float(), 56)
    assert torch.equal(ours[0], ref[0]) and torch.equal(ours[1], ref[1])


def test_keypoints_to_heatmap_empty():
    targets, valid = keypoints_to_heatmap(torch.zeros(0, 17, 3), torch.zeros(0, 4), 56)
    assert targets.shape == valid.shape == (0, 17)


def test_keypoints_to_heatmap_bad_inputs():
    kps, rois = torch.zeros(2, 17, 3), torch.tensor([[0.0, 0, 4, 4], [1, 1, 5, 5]])
    with pytest.raises(ValueError, match=r"keypoints must be Tensor\[N, K, 3\] .*Tensor\[2, 17\]"):
        keypoints_to_heatmap(kps[..., 0], rois, 56)
    with pytest.raises(ValueError, match=r"keypoints must be .*got Tensor\[2, 17, 2\]"):
        keypoints_to_heatmap(kps[..., :2], rois, 56)
    with pytest.raises(TypeError, match="keypoints must be a Tensor"):
        keypoints_to_heatmap(kps.tolist(), rois, 56)
    with pytest.raises(TypeError, match="keypoints must be a real .*bool"):
        keypoints_to_heatmap(kps.bool(), rois, 56)
    with pytest.raises(ValueError, match=r"rois must be Tensor\[N, 4\].*got Tensor\[2, 5\]"):
        keypoints_to_heatmap(kps, torch.zeros(2, 5), 56)
    with pytest.raises(ValueError, match=r"rois must have one row per person .*N = 2.*\[3, 4\]"):
        keypoints_to_heatmap(kps, torch.tensor([[0.0, 0, 1, 1]] * 3), 56)
    with pytest.raises(TypeError, match="rois must be a floating-point"):
        keypoints_to_heatmap(kps, rois.long(), 56)
    with pytest.raises(ValueError, match=r"x2 > x1 and y2 > y1.*row 1: \[1.0, 1.0, 1.0, 5.0\]"):
        keypoints_to_heatmap(kps, torch.tensor([[0.0, 0, 4, 4], [1, 1, 1, 5]]), 56)
    with pytest.raises(ValueError, match="heatmap_size must be positive, got 0"):
        keypoints_to_heatmap(kps, rois, 0)
    with pytest.raises(TypeError, match="heatmap_size must be an int"):
        keypoints_to_heatmap(kps, rois, 5.0)


# ----------------------------------------------------------------------- heatmaps_to_keypoints
def test_heatmaps_to_keypoints_by_hand():
    maps = torch.zeros(2, 2, 4, 4, dtype=F64)
    maps[0, 0, 1, 2] = 3.0  # box 0 is 4 x 4 pixels: the resize is the identity
    maps[0, 1, 3, 0] = -1.0  # all other cells 0: the first cell (0, 0) wins the tie
    maps[1, 0, 1, 2] = 1.0  # box 1 is 8 x 8: the map doubles
    maps[1, 1, 0, 0] = 1.0
    rois = torch.tensor([[10.0, 20.0, 14.0, 24.0], [0.0, 0.0, 8.0, 8.0]], dtype=F64)
    kps, scores = heatmaps_to_keypoints(maps, rois)
    # box 0: cell (row 1, col 2) -> centre (2.5, 1.5) + (10, 20); keypoint 1 -> cell (0, 0)
    # box 1, keypoint 0: input column 2 lies between output columns 4 and 5 (sources 1.75
    # and 2.25) which tie exactly with W(0.25); the first wins: column 4, and row 2 likewise
    # (sources 0.75, 1.25): (4.5, 2.5), value W(0.25)^2.
    # keypoint 1: one-hot at the corner; output (0, 0) reads source (-0.25, -0.25): taps
    # clamp to the corner pixel with weight W(1.75) + W(.75) + W(.25) each way, the maximum.
    a = -0.75
    w025 = ((a + 2) * 0.25 - (a + 3)) * 0.25 * 0.25 + 1
    w075 = ((a + 2) * 0.75 - (a + 3)) * 0.75 * 0.75 + 1
    w175 = ((a * 1.75 - 5 * a) * 1.75 + 8 * a) * 1.75 - 4 * a
    expected = torch.tensor([[[12.5, 21.5, 1], [10.5, 20.5, 1]],
                             [[4.5, 2.5, 1], [0.5, 0.5, 1]]], dtype=F64)
    assert_close(kps, expected)
    corner = (w175 + w075 + w025) ** 2
    assert_close(scores, torch.tensor([[3.0, 0.0], [w025**2, corner]], dtype=F64))


def test_heatmaps_to_keypoints_fractional_box_by_hand():
    # box 5.5 x 3 at (1, 2): maps resized to ceil -> 6 x 3 cells of 5.5/6 x 1 pixel
    maps = torch.zeros(1, 1, 3, 6, dtype=F64)
    maps[0, 0, 2, 4] = 1.0
    kps, _ = heatmaps_to_keypoints(maps, torch.tensor([[1.0, 2.0, 6.5, 5.0]], dtype=F64))
    assert_close(kps[0, 0], torch.tensor([1 + 4.5 * 5.5 / 6, 2 + 2.5, 1.0], dtype=F64))


def _argmax_agrees(ours_xy, ref_xy, rois, maps, tol):
    """Where the positions differ, the reference map must hold a near-tie at ours."""
    same = (ours_xy - ref_xy).abs().amax(-1) < 1e-3  # (R, K)
    for r, k in (~same).nonzero().tolist():
        x1, y1, x2, y2 = rois[r].tolist()
        w, h = max(x2 - x1, 1), max(y2 - y1, 1)
        Wc, Hc = int(torch.tensor(w).ceil()), int(torch.tensor(h).ceil())
        m = torch.nn.functional.interpolate(maps[r, k][None, None].double(), size=(Hc, Wc),
                                            mode="bicubic")[0, 0]
        j = int(round((ours_xy[r, k, 0].item() - x1) * Wc / w - 0.5))
        i = int(round((ours_xy[r, k, 1].item() - y1) * Hc / h - 0.5))
        assert m.max() - m[i, j] <= tol, (r, k, m.max().item(), m[i, j].item())
    return same.float().mean().item()


@pytest.mark.parametrize("hw", [(14, 14), (56, 56), (5, 9)])
def test_heatmaps_to_keypoints_matches_torchvision_float64(hw, device):
    R, K = 12, 17
    maps = torch.randn(R, K, *hw, dtype=F64, device=device)
    rois = random_rois(R, device, F64, min_size=0.3, max_size=80)
    ours_xy, ours_s = heatmaps_to_keypoints(maps, rois)
    ref_xy, ref_s = tv.heatmaps_to_keypoints(maps, rois)  # float32 outputs
    assert ours_xy.dtype == ours_s.dtype == F64 and ours_xy.shape == (R, K, 3)
    # the same cell everywhere: positions equal up to torchvision's float32 rounding
    assert_close(ours_xy, ref_xy.double(), rtol=0, atol=1e-4)
    assert_close(ours_s, ref_s.double(), rtol=1e-6, atol=1e-6)


def test_heatmaps_to_keypoints_matches_torchvision_float32(device):
    R, K = 16, 17
    maps = torch.randn(R, K, 56, 56, device=device)
    rois = random_rois(R, device, torch.float32, min_size=0.3, max_size=120)
    ours_xy, ours_s = heatmaps_to_keypoints(maps, rois)
    ref_xy, ref_s = tv.heatmaps_to_keypoints(maps, rois)
    assert ours_xy.dtype == ours_s.dtype == torch.float32
    assert _argmax_agrees(ours_xy, ref_xy, rois, maps, tol=1e-5) > 0.99
    assert_close(ours_s, ref_s, rtol=0, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_heatmaps_to_keypoints_reduced_precision(dtype, device):
    # resize and arg max in float32: as torchvision on the maps cast to float32; the scores
    # are rounded to the dtype, the keypoints stay float32 (a float16 x of 1000 px would not)
    R, K = 8, 17
    maps = torch.randn(R, K, 14, 14, device=device).to(dtype)
    rois = random_rois(R, device, torch.float32).to(dtype)
    ours_xy, ours_s = heatmaps_to_keypoints(maps, rois)
    ref_xy, ref_s = tv.heatmaps_to_keypoints(maps.float(), rois.float())
    assert ours_xy.dtype == torch.float32 and ours_s.dtype == dtype
    assert _argmax_agrees(ours_xy, ref_xy, rois.float(), maps.float(), tol=1e-5) > 0.99
    eps = torch.finfo(dtype).eps
    assert_close(ours_s.float(), ref_s, rtol=eps, atol=eps)


def test_heatmaps_to_keypoints_empty():
    kps, scores = heatmaps_to_keypoints(torch.zeros(0, 17, 56, 56), torch.zeros(0, 4))
    assert kps.shape == (0, 17, 3) and scores.shape == (0, 17)


def test_heatmaps_round_trip_within_a_cell():
    # encode keypoints to their cell, put a peak there, decode: back within one cell, for
    # boxes at least as large as the heatmap (the decoder then upsamples; a box smaller than
    # 56 px downsamples without smoothing and may step over a one-cell peak)
    S = 56
    rois = random_rois(10, "cpu", F64, min_size=S, max_size=200)
    kps = random_keypoints(rois)
    kps[..., 2] = 2
    targets, valid = keypoints_to_heatmap(kps, rois, S)
    maps = torch.zeros(10, 17, S * S, dtype=F64)
    maps.scatter_(2, targets[..., None], 10.0)  # one-hot logits at the target cell
    out, _ = heatmaps_to_keypoints(maps.view(10, 17, S, S), rois)
    cell = torch.stack([(rois[:, 2] - rois[:, 0]) / S, (rois[:, 3] - rois[:, 1]) / S], 1)
    err = (out[..., :2] - kps[..., :2]).abs() / cell[:, None, :]  # in cells
    assert err[valid.bool()].max() <= 1.0
    assert valid.float().mean() > 0.4


def test_heatmaps_to_keypoints_bad_inputs():
    maps, rois = torch.zeros(2, 17, 8, 8), torch.tensor([[0.0, 0, 4, 4], [1, 1, 5, 5]])
    with pytest.raises(ValueError, match=r"maps must be Tensor\[R, K, H, W\].*Tensor\[17, 8, 8\]"):
        heatmaps_to_keypoints(maps[0], rois)
    with pytest.raises(TypeError, match="maps must be a floating-point .*int64"):
        heatmaps_to_keypoints(maps.long(), rois)
    with pytest.raises(ValueError, match=r"maps must have K, H, W >= 1, got Tensor\[2, 17, 0, 8\]"):
        heatmaps_to_keypoints(torch.zeros(2, 17, 0, 8), rois)
    with pytest.raises(ValueError, match=r"rois must be Tensor\[N, 4\].*got Tensor\[2\]"):
        heatmaps_to_keypoints(maps, rois[0, :2])
    with pytest.raises(ValueError, match=r"rois must have one row per .*\(2\), got Tensor\[1, 4\]"):
        heatmaps_to_keypoints(maps, rois[:1])
    with pytest.raises(TypeError, match="rois must be a floating-point"):
        heatmaps_to_keypoints(maps, rois.int())
