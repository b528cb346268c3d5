"""The keypoint head: its transposed conv and predictor vs torch / torchvision, its loss vs
torchvision's keypointrcnn_loss (by hand, random, gradcheck), decoding, bad input."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close
from torchvision.models.detection import roi_heads as tv_roi_heads
from torchvision.models.detection.keypoint_rcnn import KeypointRCNNPredictor

from coursekit.instance.pooler import MultiScaleRoIAlign
from coursekit.pose import heatmaps_to_keypoints
from coursekit.pose.keypoint_head import (
    ConvTranspose2d,
    KeypointHead,
    KeypointPredictor,
    keypointrcnn_loss,
)

F64 = torch.float64


def random_rois(n, dtype=F64):
    xy = torch.rand(n, 2, dtype=dtype) * 60
    return torch.cat([xy, xy + 2 + torch.rand(n, 2, dtype=dtype) * 40], 1)  # (n, 4)


def random_keypoints(rois, K=17):
    """Keypoints in and around each box (some outside, some unlabelled)."""
    lo, hi = rois[:, None, :2], rois[:, None, 2:]
    xy = lo + (torch.rand(len(rois), K, 2, dtype=rois.dtype) * 1.3 - 0.15) * (hi - lo)
    v = torch.randint(0, 3, (len(rois), K, 1)).to(rois.dtype)
    return torch.cat([xy, v], 2)  # (n, K, 3)


def head(dim=8, num_convs=2, **kwargs):
    return KeypointHead(MultiScaleRoIAlign((2, 4, 8), 14), 6, dim=dim, num_convs=num_convs,
                        **kwargs)


# ---- the transposed conv module and the predictor ------------------------------------------

@pytest.mark.parametrize("k, s, p", [(4, 2, 1), (3, 2, 0), (2, 2, 0), (3, 1, 1)])
def test_conv_transpose_module_equals_nn_conv_transpose(k, s, p):
    reference = torch.nn.ConvTranspose2d(5, 3, k, stride=s, padding=p).double()
    ours = ConvTranspose2d(5, 3, k, stride=s, padding=p).double()
    assert ours.weight.shape == reference.weight.shape  # same parameters, same keys
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(2, 5, 6, 7, dtype=F64, requires_grad=True)
    y, y_ref = ours(x), reference(x)
    assert_close(y, y_ref)
    g = torch.randn_like(y)
    grads = torch.autograd.grad(y, [x, ours.weight, ours.bias], g)
    grads_ref = torch.autograd.grad(y_ref, [x, reference.weight, reference.bias], g)
    for a, b in zip(grads, grads_ref, strict=True):
        assert_close(a, b)


def test_conv_transpose_module_hand_computed_and_init():
    # 1 x 1 input, 2 x 2 filter, stride 2: the output is the filter times the input value
    layer = ConvTranspose2d(1, 1, 2, stride=2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]))
        layer.bias.fill_(0.5)
    out = layer(torch.full((1, 1, 1, 1), 2.0))
    assert out.tolist() == [[[[2.5, 4.5], [6.5, 8.5]]]]
    # default init: nn.ConvTranspose2d's bounds (kaiming_uniform a = sqrt 5 on fan_in = 3 * 16)
    big = ConvTranspose2d(64, 3, 4)
    bound = 1 / math.sqrt(3 * 16)
    with torch.no_grad():
        assert float(big.weight.abs().max()) <= bound and float(big.bias.abs().max()) <= bound


def test_predictor_equals_torchvisions():
    ours = KeypointPredictor(6, 17).double()
    reference = KeypointRCNNPredictor(6, 17).double()
    with torch.no_grad():
        reference.kps_score_lowres.weight.copy_(ours.deconv.weight)
        reference.kps_score_lowres.bias.copy_(torch.randn(17, dtype=F64))
        ours.deconv.bias.copy_(reference.kps_score_lowres.bias)
    x = torch.randn(3, 6, 14, 14, dtype=F64)
    assert_close(ours(x), reference(x))
    assert ours(x).shape == (3, 17, 56, 56)


def test_head_shapes_and_empty_input():
    h = head()
    assert h(torch.randn(5, 6, 14, 14)).shape == (5, 17, 56, 56)
    assert h(torch.randn(0, 6, 14, 14)).shape == (0, 17, 56, 56)
    assert h(torch.randn(2, 6, 7, 7)).shape == (2, 17, 28, 28)
    no_convs = KeypointHead(MultiScaleRoIAlign((2, 4, 8), 14), 6, num_keypoints=3, num_convs=0)
    assert no_convs(torch.randn(1, 6, 14, 14)).shape == (1, 3, 56, 56)
    assert h.target_keys == ("keypoints",)


def test_head_predict_is_heatmaps_to_keypoints():
    h = head()
    logits = torch.randn(4, 17, 56, 56)
    boxes = [random_rois(3, torch.float32), random_rois(1, torch.float32)]
    labels = [torch.ones(3, dtype=torch.long), torch.ones(1, dtype=torch.long)]
    out = h.predict(logits, boxes, labels)
    keypoints, scores = heatmaps_to_keypoints(logits, torch.cat(boxes))
    assert torch.equal(out["keypoints"], keypoints) and torch.equal(out["keypoints_scores"], scores)
    empty = h.predict(logits[:0], [torch.zeros(0, 4)], [torch.zeros(0, dtype=torch.long)])
    assert empty["keypoints"].shape == (0, 17, 3) and empty["keypoints_scores"].shape == (0, 17)


# ---- the loss -------------------------------------------------------------------------------

def test_loss_hand_computed():
    # one RoI (0, 0, 2, 2), 2 x 2 heatmaps, K = 2: keypoint 0 at (1.5, 0.5) is cell (row 0,
    # col 1) = index 1; keypoint 1 is unlabelled (v = 0) and does not count
    logits = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]], [[5.0, 5.0], [5.0, 5.0]]]])
    rois = [torch.tensor([[0.0, 0.0, 2.0, 2.0]])]
    kps = [torch.tensor([[[1.5, 0.5, 2.0], [0.5, 0.5, 0.0]]])]
    loss = keypointrcnn_loss(logits, rois, kps, [torch.tensor([0])])
    expected = -1.0 + math.log(1 + math.e + math.e**2 + math.e**3)  # -log softmax(...)[1]
    assert loss.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("trial", range(4))
def test_loss_matches_torchvision(trial):
    torch.manual_seed(trial)
    counts, gts = [3, 0, 5], [4, 1, 2]
    proposals = [random_rois(n) for n in counts]
    gt_keypoints = [random_keypoints(random_rois(g)) for g in gts]
    matched = [torch.randint(0, g, (n,)) for n, g in zip(counts, gts, strict=True)]
    for p, m, g in zip(proposals, matched, gt_keypoints, strict=True):  # make many valid
        if len(p):
            g[m[0], :, :2] = (p[0, :2] + p[0, 2:]) / 2
    logits = torch.randn(sum(counts), 17, 56, 56, dtype=F64)
    ours = keypointrcnn_loss(logits, proposals, gt_keypoints, matched)
    reference = tv_roi_heads.keypointrcnn_loss(logits, proposals, gt_keypoints, matched)
    assert_close(ours, reference)


def test_loss_without_valid_keypoints_is_zero_and_connected():
    logits = torch.randn(2, 17, 56, 56, requires_grad=True)
    rois = [random_rois(2, torch.float32)]
    kps = [torch.zeros(2, 17, 3)]  # nothing labelled
    loss = keypointrcnn_loss(logits, rois, kps, [torch.tensor([0, 1])])
    reference = tv_roi_heads.keypointrcnn_loss(logits, rois, kps, [torch.tensor([0, 1])])
    assert loss.item() == 0.0 == reference.item()
    loss.backward()
    assert logits.grad is not None and float(logits.grad.abs().sum()) == 0.0


def test_loss_gradcheck():
    rois = [random_rois(2)]
    kps = [random_keypoints(rois[0], K=3)]
    kps[0][:, :, 2] = 2
    kps[0][:, :, :2] = (rois[0][:, None, :2] + rois[0][:, None, 2:]) / 2  # all valid
    logits = torch.randn(2, 3, 4, 4, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x: keypointrcnn_loss(x, rois, kps, [torch.tensor([1, 0])]), (logits,))


def test_loss_reduced_precision_follows_the_input():
    logits = torch.randn(3, 17, 56, 56)
    rois = [random_rois(3, torch.float32)]
    kps = [random_keypoints(rois[0])]
    idx = [torch.arange(3)]
    half = keypointrcnn_loss(logits.bfloat16(), rois, kps, idx)
    assert half.dtype == torch.bfloat16
    assert_close(half.float(), keypointrcnn_loss(logits, rois, kps, idx), atol=0.05, rtol=0.01)


def test_head_loss_is_keypointrcnn_loss_times_its_weight():
    h = head(loss_weight=0.5)
    logits = torch.randn(3, 17, 56, 56)
    rois = [random_rois(2, torch.float32), random_rois(1, torch.float32)]
    kps = [random_keypoints(r) for r in rois]
    out = h.loss(logits, rois, [{"keypoints": k} for k in kps])
    expected = keypointrcnn_loss(logits, rois, kps, [torch.arange(2), torch.arange(1)])
    assert set(out) == {"loss_keypoint"}
    assert_close(out["loss_keypoint"], 0.5 * expected)


def test_bad_input():
    logits = torch.randn(2, 17, 56, 56)
    rois = [random_rois(2, torch.float32)]
    kps = [random_keypoints(rois[0])]
    idx = [torch.tensor([0, 1])]
    expected = r"gt_keypoints\[0\] must be Tensor\[N, 17, 3\] \(x, y, visibility\), got "
    with pytest.raises(ValueError, match=expected + r"Tensor\[2, 5, 3\]"):
        keypointrcnn_loss(logits, rois, [kps[0][:, :5]], idx)
    with pytest.raises(ValueError, match=expected + r"Tensor\[2, 17, 2\]"):
        keypointrcnn_loss(logits, rois, [kps[0][..., :2]], idx)
    with pytest.raises(ValueError, match=r"proposals\[0\] must be Tensor\[N, 4\] \(x1, y1, "
                                         r"x2, y2\), got Tensor\[2, 3\]"):
        keypointrcnn_loss(logits, [rois[0][:, :3]], kps, idx)
    with pytest.raises(ValueError, match="proposals must hold N = 2 boxes in all"):
        keypointrcnn_loss(logits, [rois[0][:1]], kps, idx)
    with pytest.raises(ValueError, match="need one entry per image, got 1, 2 and 1"):
        keypointrcnn_loss(logits, rois, kps * 2, idx)
    with pytest.raises(ValueError, match=r"keypoint_matched_idxs\[0\] must have one index per"):
        keypointrcnn_loss(logits, rois, kps, [torch.tensor([0])])
    with pytest.raises(ValueError, match=r"keypoint_logits must be Tensor\[N, K, H, H\] \(square"):
        keypointrcnn_loss(logits[..., :50], rois, kps, idx)
    with pytest.raises(TypeError, match="keypoint_logits must be a floating-point"):
        keypointrcnn_loss(logits.long(), rois, kps, idx)
    with pytest.raises(TypeError, match="proposals must be a list with one Tensor per image"):
        keypointrcnn_loss(logits, rois[0], kps, idx)
    with pytest.raises(ValueError, match=r"x must be Tensor\[R, 6, S, S\] \(RoI features\)"):
        head()(torch.randn(2, 5, 14, 14))
    with pytest.raises(ValueError, match="loss_weight must be > 0"):
        head(loss_weight=0.0)
    with pytest.raises(ValueError, match="num_keypoints must be"):
        KeypointHead(MultiScaleRoIAlign((2, 4, 8), 14), 6, num_keypoints=0)


def test_loss_device(device):
    logits = torch.randn(3, 17, 56, 56, device=device)
    rois = [random_rois(3, torch.float32).to(device)]
    kps = [random_keypoints(rois[0]).to(device)]
    idx = [torch.arange(3, device=device)]
    assert_close(keypointrcnn_loss(logits, rois, kps, idx),
                 tv_roi_heads.keypointrcnn_loss(logits, rois, kps, idx))


def test_cross_entropy_over_cells_is_the_definition():
    """The loss is -log softmax over the H W cells at the target, averaged over valid ones."""
    torch.manual_seed(3)
    rois = [random_rois(2)]
    kps = [random_keypoints(rois[0])]
    logits = torch.randn(2, 17, 56, 56, dtype=F64)
    from coursekit.pose import keypoints_to_heatmap

    targets, valid = keypoints_to_heatmap(kps[0], rois[0], 56)
    logp = F.log_softmax(logits.flatten(2), dim=2)  # (2, 17, 3136)
    picked = logp.gather(2, targets[..., None])[..., 0]  # (2, 17)
    expected = -(picked * valid).sum() / valid.sum()
    assert_close(keypointrcnn_loss(logits, rois, kps, [torch.arange(2)]), expected)
