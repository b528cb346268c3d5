"""Property tests (hypothesis) for coursekit.video and coursekit.tracking: clip sampling and
video sizes, I3D inflation, the Kalman filter, box <-> measurement, the Hungarian matching,
the SORT tracker and the MOT metrics.

Drawn: video lengths, clip lengths, strides and counts (1 included, a clip as long as the
video), random small 2D networks and their inflation settings, batches of filters (0
included), state and measurement sizes, IoU matrices with empty rows or columns and ties at 0,
sequences with empty frames, id switches and false positives; dtypes. References: the
formulas written out (``floor(i (T - span) / (k - 1))``, the constant-video identity of I3D,
the textbook Kalman equations in numpy float64), a brute-force search over all matchings for
the Hungarian one and py-motmetrics 1.4.0 for the metrics. Checked on every device this
machine has; seeded (``derandomize=True``).
"""

import itertools
import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from props import F64, PROPS, floats, gen, on_devices, seeds
from torch import nn
from torch.testing import assert_close

from coursekit.tracking import (
    BoxKalmanFilter,
    Tracker,
    box_to_measurement,
    kalman_predict,
    kalman_update,
    match_boxes,
    measurement_to_box,
    mot_metrics,
)
from coursekit.video import (
    clip_starts,
    cthw_to_tchw,
    format_bytes,
    inflate_network,
    predict_video,
    sample_clips,
    tchw_to_cthw,
    video_size_bytes,
)

mm = pytest.importorskip("motmetrics")
from mot_reference import NAMES, motmetrics_reference  # noqa: E402


# ============================================================================== video
@st.composite
def clip_settings(draw):
    """(num_frames, clip_len, stride) with the clip's span at most the video."""
    stride = draw(st.integers(1, 4))
    clip_len = draw(st.integers(1, 8))
    span = (clip_len - 1) * stride + 1
    num_frames = draw(st.integers(span, span + 20))
    return num_frames, clip_len, stride


@PROPS
@given(setting=clip_settings(), num_clips=st.integers(1, 6), seed=seeds)
def test_clip_starts(setting, num_clips, seed):
    T, L, stride = setting
    last = T - ((L - 1) * stride + 1)  # the last possible start
    uniform = clip_starts(T, L, num_clips, stride)
    assert uniform.shape == (num_clips,) and uniform.dtype == torch.int64
    if num_clips == 1:
        assert uniform.tolist() == [last // 2]  # centred
    else:
        assert uniform.tolist() == [math.floor(i * last / (num_clips - 1))
                                    for i in range(num_clips)]
        assert uniform[0] == 0 and uniform[-1] == last
    assert bool((uniform[1:] >= uniform[:-1]).all())
    drawn = clip_starts(T, L, num_clips, stride, mode="random", generator=gen(seed))
    assert drawn.shape == (num_clips,) and drawn.dtype == torch.int64
    assert bool(((drawn >= 0) & (drawn <= last)).all())
    again = clip_starts(T, L, num_clips, stride, mode="random", generator=gen(seed))
    assert torch.equal(drawn, again)  # seeded
    with pytest.raises(ValueError, match="spans"):
        clip_starts((L - 1) * stride, L, num_clips, stride) if L > 1 else \
            clip_starts(1, 2, num_clips, stride)


@on_devices
@PROPS
@given(setting=clip_settings(), num_clips=st.integers(1, 4), seed=seeds,
       mode=st.sampled_from(["uniform", "random"]),
       dtype=st.sampled_from([torch.float32, F64, torch.uint8]))
def test_sample_clips_takes_every_stride_th_frame(device, setting, num_clips, seed, mode, dtype):
    T, L, stride = setting
    video = (torch.arange(T, dtype=F64)[:, None, None, None] * 10
             + torch.arange(3, dtype=F64)[None, :, None, None]).expand(T, 3, 2, 3)
    video = video.to(device, dtype)
    clips = sample_clips(video, L, num_clips, stride, mode, generator=gen(seed))
    assert clips.shape == (num_clips, L, 3, 2, 3) and clips.dtype == dtype
    assert clips.device == video.device
    starts = clip_starts(T, L, num_clips, stride, mode, generator=gen(seed))
    for k, s in enumerate(starts.tolist()):
        assert torch.equal(clips[k], video[s:s + (L - 1) * stride + 1:stride])


@on_devices
@PROPS
@given(setting=clip_settings(), num_clips=st.integers(1, 4), classes=st.integers(1, 5),
       seed=seeds, dtype=floats)
def test_predict_video_averages_clip_probabilities(device, setting, num_clips, classes, seed,
                                                    dtype):
    T, L, stride = setting
    video = torch.randn(T, 2, 3, 3, generator=gen(seed), dtype=F64).to(device, dtype)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(L * 2 * 3 * 3, classes)).to(device, dtype)
    probs = predict_video(model, video, L, num_clips, stride)
    assert probs.shape == (classes,) and probs.dtype == dtype and probs.device == video.device
    clips = sample_clips(video.double(), L, num_clips, stride)
    ref = model.double()(clips).softmax(1).mean(0)
    tol = 1e-12 if dtype == F64 else 1e-5
    assert_close(probs.double(), ref, rtol=tol, atol=tol)
    assert_close(probs.double().sum(), torch.ones((), dtype=F64, device=device), rtol=tol,
                 atol=tol)


UNITS = {"B": 0, "KB": 1, "MB": 2, "GB": 3, "TB": 4, "PB": 5}


@PROPS
@given(dims=st.lists(st.integers(1, 4000), min_size=5, max_size=5), digits=st.integers(0, 3))
def test_video_size_and_format_bytes(dims, digits):
    T, H, W, C, b = dims
    n = video_size_bytes(T, H, W, C, b)
    assert n == T * H * W * C * b and isinstance(n, int)
    text = format_bytes(n, digits)
    number, unit = re.fullmatch(r"([0-9.]+) ([KMGTP]?B)", text).groups()
    k = UNITS[unit]
    if k == 0:
        assert n < 1024 and number == str(n)
    else:  # the value in binary units, rounded to `digits` places, below 1024 (but for PB)
        value = n / 1024**k
        assert abs(float(number) - value) <= 0.5 * 10**-digits + 1e-9
        assert 1 <= value and (value < 1024 or unit == "PB")
        assert len(number.partition(".")[2]) == digits


@on_devices
@PROPS
@given(shape=st.tuples(st.integers(0, 3), st.integers(1, 4), st.integers(1, 3),
                       st.integers(1, 3), st.integers(1, 3)), batched=st.booleans())
def test_layouts_are_transposes(device, shape, batched):
    video = torch.randn(*shape, dtype=F64).to(device)
    if not batched:
        video = video[0] if shape[0] else video.flatten(0, 1)
    out = tchw_to_cthw(video)
    assert out.shape == (*video.shape[:-4], video.shape[-3], video.shape[-4], *video.shape[-2:])
    assert out.data_ptr() == video.data_ptr()  # a view
    assert torch.equal(out, video.transpose(-4, -3)) and torch.equal(cthw_to_tchw(out), video)


# --------------------------------------------------------------------------- inflation
@st.composite
def small_networks(draw):
    """A random 2D CNN: conv, batch norm, ReLU, a pool, conv, ReLU (then optionally a head)."""
    C, c1, c2 = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    k1, k2 = draw(st.sampled_from([1, 3])), draw(st.sampled_from([1, 2, 3]))
    stride = draw(st.integers(1, 2))
    pool = draw(st.sampled_from(["max", "avg", "none"]))
    head = draw(st.booleans())
    seed = draw(seeds)
    torch.manual_seed(seed)
    layers = [nn.Conv2d(C, c1, k1, stride=stride, padding=k1 // 2), nn.BatchNorm2d(c1),
              nn.ReLU()]
    if pool == "max":
        layers.append(nn.MaxPool2d(2, stride=1, padding=1))
    elif pool == "avg":
        layers.append(nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False))
    layers += [nn.Conv2d(c1, c2, k2, padding=k2 // 2, bias=draw(st.booleans())), nn.ReLU()]
    if head:
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c2, 3)]
    net = nn.Sequential(*layers).double()
    with torch.no_grad():  # batch norm with random statistics (eval mode)
        bn = layers[1]
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    return net.eval(), C, head, seed


@on_devices
@PROPS
@given(network=small_networks(), time_size=st.integers(1, 3), pool_time=st.integers(1, 3),
       padding=st.sampled_from(["valid", "same"]), extra=st.integers(0, 3),
       hw=st.tuples(st.integers(3, 7), st.integers(3, 7)), dtype=floats)
def test_inflated_network_is_the_2d_network_on_a_constant_video(
        device, network, time_size, pool_time, padding, extra, hw, dtype):
    net2d, C, head, seed = network
    net2d = net2d.to(device, dtype)
    # "same" keeps the identity on every frame with the end frames repeated
    mode = "replicate" if padding == "same" else "zeros"
    net3d = inflate_network(net2d, time_size, pool_time_size=pool_time, time_padding=padding,
                            time_padding_mode=mode).eval()
    convs = 2
    pools = sum(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) for m in net2d.modules())
    lost = convs * (time_size - 1) + pools * (pool_time - 1)  # frames lost without padding
    T = 1 + lost + extra
    image = torch.randn(2, C, *hw, generator=gen(seed), dtype=F64).to(device, dtype)
    video = image.unsqueeze(2).expand(-1, -1, T, -1, -1).contiguous()  # (N, C, T, H, W)
    with torch.no_grad():
        out2d, out3d = net2d(image), net3d(video)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == F64 else dict(rtol=1e-4, atol=1e-5)
    if dtype == torch.float32 and device == "cuda":  # cuDNN may convolve in TF32
        tol = dict(rtol=5e-3, atol=5e-3)
    if head:  # pooled over all of time: the 2D logits
        assert out3d.shape == out2d.shape and out3d.dtype == dtype
        assert_close(out3d, out2d, **tol)
        return
    if padding == "valid":
        frames = T - lost
    else:  # K // 2 frames each side: odd kernels keep the length, even ones add one
        frames = T + convs * (1 - time_size % 2) + pools * (1 - pool_time % 2)
    assert out3d.shape == (2, out2d.shape[1], frames, *out2d.shape[2:])
    for t in range(frames):
        assert_close(out3d[:, :, t], out2d, **tol)


# =========================================================================== tracking
def random_boxes(g, n, scale=100.0, min_size=1.0):
    xy = torch.rand(n, 2, generator=g, dtype=F64) * scale
    wh = min_size + torch.rand(n, 2, generator=g, dtype=F64) * 30
    return torch.cat([xy, xy + wh], 1)


@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 6), dtype=st.sampled_from([torch.float16, torch.float32,
                                                               F64]))
def test_box_measurement_round_trip(device, seed, n, dtype):
    boxes = random_boxes(gen(seed), n).to(device, dtype)
    z = box_to_measurement(boxes)
    wide = torch.promote_types(dtype, torch.float32)
    assert z.shape == (n, 4) and z.dtype == wide and z.device == boxes.device
    b = boxes.double()
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    ref = torch.stack([b[:, 0] + w / 2, b[:, 1] + h / 2, w * h, w / h], 1)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == F64 else dict(rtol=1e-5, atol=1e-4)
    assert_close(z.double(), ref, **tol)
    back = measurement_to_box(z)
    assert back.shape == (n, 4) and back.dtype == wide
    assert_close(back.double(), b, **tol)
    state = torch.cat([z, torch.randn(n, 3, generator=gen(seed), dtype=F64).to(device, wide)], 1)
    assert torch.equal(measurement_to_box(state), back)  # a state's velocities are ignored


def random_spd(g, n, d, scale=1.0):
    a = torch.randn(n, d, d, generator=g, dtype=F64)
    return (a @ a.transpose(1, 2) + d * torch.eye(d, dtype=F64)) * scale


def numpy_predict(x, P, F, Q):
    return F @ x, F @ P @ F.T + Q


def numpy_update(x, P, z, H, R):
    S = H @ P @ H.T + R
    K = P @ H.T @ np.linalg.inv(S)
    x = x + K @ (z - H @ x)
    I_KH = np.eye(len(x)) - K @ H
    return x, I_KH @ P @ I_KH.T + K @ R @ K.T


@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 4), d=st.integers(1, 6), data=st.data(), dtype=floats)
def test_general_kalman_step_is_the_textbook(device, seed, n, d, data, dtype):
    m = data.draw(st.integers(1, d), "m")
    g = gen(seed)
    mean = torch.randn(n, d, generator=g, dtype=F64)
    cov = random_spd(g, n, d)
    F = torch.eye(d, dtype=F64) + 0.3 * torch.randn(d, d, generator=g, dtype=F64)
    Q = random_spd(g, 1, d, 0.1)[0]
    H = torch.randn(m, d, generator=g, dtype=F64)
    R = random_spd(g, 1, m, 0.5)[0]
    z = torch.randn(n, m, generator=g, dtype=F64)
    on = [t.to(device, dtype) for t in (mean, cov, F, Q, H, R, z)]
    pm, pc = kalman_predict(on[0], on[1], on[2], on[3])
    um, uc = kalman_update(pm, pc, on[6], on[4], on[5])
    for t, shape in ((pm, (n, d)), (pc, (n, d, d)), (um, (n, d)), (uc, (n, d, d))):
        assert t.shape == shape and t.dtype == dtype and t.device.type == device
    tol = dict(rtol=1e-9, atol=1e-9) if dtype == F64 else dict(rtol=2e-3, atol=2e-3)
    for i in range(n):
        x, P = numpy_predict(mean[i].numpy(), cov[i].numpy(), F.numpy(), Q.numpy())
        assert_close(pm[i].cpu().double(), torch.from_numpy(x), **tol)
        assert_close(pc[i].cpu().double(), torch.from_numpy(P), **tol)
        x, P = numpy_update(x, P, z[i].numpy(), H.numpy(), R.numpy())
        assert_close(um[i].cpu().double(), torch.from_numpy(x), **tol)
        assert_close(uc[i].cpu().double(), torch.from_numpy(P), **tol)
    if n and dtype == F64:  # still a covariance: symmetric, positive definite
        assert_close(uc, uc.transpose(1, 2), rtol=1e-9, atol=1e-9)
        assert bool((torch.linalg.eigvalsh(uc) > 0).all())


def sort_model():
    """SORT's constant-velocity model in numpy: F, H, Q, R, P0 (kalman.py's docstring)."""
    F = np.eye(7)
    F[0, 4] = F[1, 5] = F[2, 6] = 1.0
    H = np.eye(4, 7)
    R = np.diag([1.0, 1.0, 10.0, 10.0])
    P0 = np.diag([10.0] * 4 + [1e4] * 3)
    Q = np.diag([1.0] * 4 + [0.01, 0.01, 1e-4])
    return F, H, Q, R, P0


def numpy_measurement(box):
    w, h = box[2] - box[0], box[3] - box[1]
    return np.array([box[0] + w / 2, box[1] + h / 2, w * h, w / h])


@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 4), steps=st.lists(st.booleans(), min_size=1, max_size=6),
       shrink=st.booleans(), dtype=floats)
def test_box_kalman_filter_is_the_constant_velocity_model(device, seed, n, steps, shrink, dtype):
    # steps: True = predict then update with a detection, False = predict only (missed)
    g = gen(seed)
    start = random_boxes(g, n)
    velocity = torch.randn(n, 4, generator=g, dtype=F64) * 3
    if shrink:  # boxes shrinking fast: the area velocity is zeroed before it goes negative
        velocity[:, 2:] = -velocity[:, 2:].abs() * 4
    kf = BoxKalmanFilter()
    mean, cov = kf.initiate(start.to(device, dtype))
    assert mean.shape == (n, 7) and cov.shape == (n, 7, 7) and mean.dtype == dtype
    F, H, Q, R, P0 = sort_model()
    ref = [(np.concatenate([numpy_measurement(b), np.zeros(3)]), P0.copy())
           for b in start.numpy()]
    box = start.clone()
    for update in steps:
        box = box + velocity
        box[:, 2:] = torch.maximum(box[:, 2:], box[:, :2] + 0.5)  # a box never inverts
        mean, cov = kf.predict(mean, cov)
        if update:
            mean, cov = kf.update(mean, cov, box.to(device, dtype))
        for i, (x, P) in enumerate(ref):
            x = x.copy()
            if x[2] + x[6] <= 0:
                x[6] = 0.0
            x, P = numpy_predict(x, P, F, Q)
            if update:
                x, P = numpy_update(x, P, numpy_measurement(box[i].numpy()), H, R)
            ref[i] = (x, P)
    assert mean.shape == (n, 7) and mean.dtype == dtype and mean.device.type == device
    for i, (x, P) in enumerate(ref):
        if dtype == F64:
            assert_close(mean[i].cpu(), torch.from_numpy(x), rtol=1e-9, atol=1e-7)
            assert_close(cov[i].cpu(), torch.from_numpy(P), rtol=1e-9, atol=1e-6)
        else:  # float32: the means to a relative 1e-4 of their scale (areas of ~1000)
            scale = float(np.abs(x).max()) + 1
            assert_close(mean[i].cpu().double(), torch.from_numpy(x), rtol=0,
                         atol=1e-4 * scale)


# ----------------------------------------------------------------------------- matching
def best_matching(iou, threshold):
    """The largest total IoU over one-to-one matchings of pairs with IoU >= threshold, by
    trying every matching (each row: a column or none)."""
    D, M = iou.shape
    best = 0.0
    for choice in itertools.product(*[[None, *range(M)] for _ in range(D)]):
        cols = [c for c in choice if c is not None]
        if len(set(cols)) != len(cols):
            continue
        pairs = [(r, c) for r, c in enumerate(choice) if c is not None]
        if all(iou[r, c] >= threshold for r, c in pairs):
            best = max(best, sum(float(iou[r, c]) for r, c in pairs))
    return best


@on_devices
@PROPS
@given(seed=seeds, D=st.integers(0, 4), M=st.integers(0, 4),
       threshold=st.sampled_from([0.0, 0.3, 0.5, 0.9]), dtype=floats)
def test_match_boxes_is_the_best_matching(device, seed, D, M, threshold, dtype):
    g = gen(seed)
    iou = torch.rand(D, M, generator=g, dtype=F64)
    iou[torch.rand(D, M, generator=g) < 0.3] = 0.0  # no overlap at all
    iou[torch.rand(D, M, generator=g) < 0.05] = float("nan")  # counts as no overlap
    iou = iou.to(dtype)
    rows, cols = match_boxes(iou.to(device), threshold)
    assert rows.dtype == cols.dtype == torch.int64 and rows.shape == cols.shape
    assert rows.device.type == device
    r, c = rows.cpu().tolist(), cols.cpu().tolist()
    assert r == sorted(r) and len(set(r)) == len(r) and len(set(c)) == len(c)
    ious = iou.double()
    assert all(bool(ious[i, j] >= threshold) for i, j in zip(r, c, strict=True))
    total = sum(float(ious[i, j]) for i, j in zip(r, c, strict=True))
    assert total == pytest.approx(best_matching(ious.nan_to_num(-1.0), threshold), abs=1e-9)


@PROPS
@given(seed=seeds, n=st.integers(1, 5), T=st.integers(1, 10), speed=st.floats(0.0, 1.0))
def test_tracker_keeps_ids_of_separated_objects(seed, n, T, speed):
    # objects far apart, moving slowly, detected exactly in every frame: each keeps its first
    # id for the whole sequence, every frame reports all of them, and MOTA is 1
    g = gen(seed)
    origin = torch.arange(n, dtype=F64)[:, None] * 100 + torch.tensor([10.0, 20.0])
    size = 20 + torch.rand(n, 2, generator=g, dtype=F64) * 20
    velocity = torch.randn(n, 2, generator=g, dtype=F64) * speed
    tracker = Tracker()
    gt, pred = [], []
    for t in range(T):
        boxes = torch.cat([origin + t * velocity, origin + t * velocity + size], 1)
        order = torch.randperm(n, generator=g)  # the detector's order changes every frame
        ids, out = tracker.update(boxes[order])
        assert ids.tolist() == sorted(ids.tolist()) and out.shape == (len(ids), 4)
        assert ids.tolist() == list(range(1, n + 1))
        gt.append((torch.arange(n), boxes))
        pred.append((ids, out))
    m = mot_metrics(gt, pred)
    assert m["mota"] == 1.0 and m["id_switches"] == 0 and m["idf1"] == 1.0


# ------------------------------------------------------------------------------ metrics
def random_sequence(seed, n, T, seen, dtype):
    """Objects moving in lines, each frame seen with probability ``seen`` (0: empty frames);
    predictions: noisy copies, sometimes lost, sometimes with a new id, plus false positives."""
    g = gen(seed)
    pos = torch.rand(n, 2, generator=g, dtype=F64) * 40
    vel = torch.randn(n, 2, generator=g, dtype=F64) * 2
    size = 6 + torch.rand(n, 2, generator=g, dtype=F64) * 8
    hyp = torch.arange(n) + 100
    gt, pred = [], []
    for t in range(T):
        boxes = torch.cat([pos + vel * t, pos + vel * t + size], 1)
        visible = torch.rand(n, generator=g) < seen
        gt.append((torch.arange(n)[visible], boxes[visible].to(dtype)))
        if n and torch.rand(1, generator=g) < 0.2:
            hyp[int(torch.randint(0, n, (1,), generator=g))] = 200 + t  # an identity change
        kept = visible & (torch.rand(n, generator=g) < 0.8)
        k = int(kept.sum())
        noisy = boxes[kept] + torch.randn(k, 4, generator=g, dtype=F64) * 2
        noisy[:, 2:] = torch.maximum(noisy[:, 2:], noisy[:, :2] + 1)
        nf = int(torch.randint(0, 3, (1,), generator=g))
        corner = torch.rand(nf, 2, generator=g, dtype=F64) * 40
        ids = torch.cat([hyp[kept], torch.arange(nf) + 1000 + 10 * t])
        order = torch.randperm(k + nf, generator=g)
        both = torch.cat([noisy, torch.cat([corner, corner + 8], 1)])[order]
        pred.append((ids[order], both.to(dtype)))
    return gt, pred


@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 4), T=st.integers(1, 8),
       seen=st.sampled_from([0.0, 0.5, 0.9, 1.0]), threshold=st.sampled_from([0.3, 0.5, 0.7]),
       dtype=floats)
def test_mot_metrics_is_motmetrics(device, seed, n, T, seen, threshold, dtype):
    gt, pred = random_sequence(seed, n, T, seen, dtype)
    on = [[(i.to(device), b.to(device)) for i, b in s] for s in (gt, pred)]
    ours = mot_metrics(*on, iou_threshold=threshold)
    ref = motmetrics_reference(gt, pred, threshold)
    for key in NAMES:
        a, b = float(ours[key]), ref[key]
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-12), \
            f"{key}: ours {a}, py-motmetrics {b}"
    assert ours["tp"] + ours["fn"] == ours["num_objects"]
    assert ours["tp"] + ours["fp"] == ours["num_predictions"]
    assert ours["idtp"] <= min(ours["num_objects"], ours["num_predictions"])
    # against itself: perfect
    self_m = mot_metrics(on[0], on[0], iou_threshold=threshold)
    if self_m["num_objects"]:
        assert self_m["mota"] == 1.0 and self_m["idf1"] == 1.0 and self_m["motp"] == 0.0
