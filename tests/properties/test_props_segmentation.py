"""Property tests (hypothesis) for coursekit.segmentation: the per-pixel cross-entropy, median
frequency weights, receptive fields and the sliding-window / fully convolutional classifier.

Drawn: batches (0 included), image sides (1 included), class counts, ignored pixels (all of
them included), weights, reductions, layer chains of kernels, strides and paddings, small
random patch classifiers; dtypes. References: ``F.cross_entropy``, the median-frequency
formula written out in float64, the closed form ``1 + (k - 1)(1 + s + ... + s^(L-1))`` and
the gradient measurement, and the two ways to segment against each other. Checked on every
device this machine has; seeded (``derandomize=True``).
"""

import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from props import F64, PROPS, floats, gen, on_devices, seeds
from torch import nn
from torch.testing import assert_close

from coursekit.segmentation import (
    class_weights_from_frequency,
    fcn_segment,
    measure_receptive_field,
    pixel_cross_entropy,
    receptive_field,
    receptive_field_map,
    receptive_field_of,
    sliding_window_segment,
)
from coursekit.segmentation.sliding_window import PatchClassifier

sides = st.integers(1, 6)


def random_targets(seed, n, c, h, w, p_ignore, device):
    """int64 Tensor[n, h, w] of ids in [0, c), a fraction ``p_ignore`` set to 255."""
    g = gen(seed)
    target = torch.randint(0, c, (n, h, w), generator=g)
    target[torch.rand(n, h, w, generator=g) < p_ignore] = 255
    return target.to(device)


# ------------------------------------------------------------------------- cross-entropy
@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 3), c=st.integers(1, 5), h=sides, w=sides,
       p_ignore=st.sampled_from([0.0, 0.3, 1.0]), weighted=st.booleans(),
       reduction=st.sampled_from(["none", "sum", "mean"]), dtype=floats)
def test_pixel_cross_entropy_is_torch(device, seed, n, c, h, w, p_ignore, weighted, reduction,
                                      dtype):
    logits = (torch.randn(n, c, h, w, generator=gen(seed), dtype=F64) * 3).to(device, dtype)
    target = random_targets(seed, n, c, h, w, p_ignore, device)
    weight = (torch.rand(c, generator=gen(seed + 1), dtype=F64) + 0.1).to(device, dtype) \
        if weighted else None
    ours = pixel_cross_entropy(logits, target, weight, reduction=reduction)
    assert ours.dtype == dtype and ours.device == logits.device
    assert ours.shape == ((n, h, w) if reduction == "none" else ())
    ref = F.cross_entropy(logits, target, weight, ignore_index=255, reduction=reduction)
    assert_close(ours, ref, equal_nan=True)
    assert bool((ours[~ours.isnan()] >= 0).all())
    if reduction == "none":
        assert bool((ours[target == 255] == 0).all())  # ignored pixels cost nothing


@PROPS
@given(seed=seeds, n=st.integers(1, 3), c=st.integers(1, 5), h=sides, w=sides, dtype=floats)
def test_pixel_cross_entropy_is_zero_at_a_perfect_prediction(seed, n, c, h, w, dtype):
    target = random_targets(seed, n, c, h, w, 0.2, "cpu")
    safe = target.clamp(max=c - 1)
    logits = F.one_hot(safe, c).permute(0, 3, 1, 2).to(dtype) * 100  # (n, c, h, w): certain
    assert_close(pixel_cross_entropy(logits, target, reduction="sum"), torch.zeros((), dtype=dtype))
    worse = logits.roll(1, dims=1)  # each pixel certain of another class (c > 1)
    if c > 1 and bool((target != 255).any()):
        assert float(pixel_cross_entropy(worse, target)) > 1.0


# ------------------------------------------------------------------ median-frequency weights
@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 4), c=st.integers(1, 6), h=sides, w=sides,
       p_ignore=st.sampled_from([0.0, 0.3, 1.0]),
       dtype=st.sampled_from([torch.int64, torch.int32, torch.uint8]))
def test_class_weights_from_frequency_is_the_formula(device, seed, n, c, h, w, p_ignore, dtype):
    target = random_targets(seed, n, c, h, w, p_ignore, device).to(dtype)
    weights = class_weights_from_frequency(target, c)
    assert weights.shape == (c,) and weights.dtype == torch.float32
    assert weights.device == target.device
    t = target.cpu().long().reshape(n, h * w)
    valid = t != 255
    counts = torch.stack([(t == k).sum(1) for k in range(c)], 1).to(F64)  # (n, c)
    where = (counts > 0).to(F64) * valid.sum(1, keepdim=True)  # pixels of images with class k
    seen = counts.sum(0) > 0
    assert torch.equal(weights.cpu() > 0, seen)  # absent classes (only those) get 0
    if bool(seen.any()):
        freq = counts.sum(0)[seen] / where.sum(0)[seen]
        assert_close(weights.cpu()[seen].to(F64), freq.quantile(0.5) / freq, rtol=1e-6, atol=0)
        # the same images twice: the same frequencies, the same weights
        assert_close(class_weights_from_frequency(torch.cat([target, target]), c), weights)


# ----------------------------------------------------------------------- receptive field
layer_chains = st.lists(st.tuples(st.sampled_from([1, 2, 3, 5]), st.integers(1, 3),
                                  st.integers(0, 2)), max_size=4)


@PROPS
@given(num_layers=st.integers(0, 6), k=st.sampled_from([1, 2, 3, 5, 7]), s=st.integers(1, 3))
def test_receptive_field_closed_form_is_the_chain(num_layers, k, s):
    rf = receptive_field(num_layers, k, s)
    assert rf == 1 + (k - 1) * sum(s**i for i in range(num_layers))
    chain = receptive_field_of([(k, s)] * num_layers)
    assert chain["size"] == rf and chain["jump"] == s**num_layers
    assert receptive_field(num_layers + 1, k, s) >= rf  # a layer more never sees less


@PROPS
@given(layers=layer_chains)
def test_receptive_field_of_a_module_is_its_tuples(layers):
    modules = [nn.Conv2d(1, 1, k, s, p) if i % 2 == 0 else nn.MaxPool2d(k, s, min(p, k // 2))
               for i, (k, s, p) in enumerate(layers)]
    tuples = [(k, s, p if i % 2 == 0 else min(p, k // 2)) for i, (k, s, p) in enumerate(layers)]
    assert receptive_field_of(nn.Sequential(*modules)) == receptive_field_of(tuples)
    start = 0.5
    size, jump = 1, 1
    for k, s, p in tuples:  # the recurrence by hand
        size, start, jump = size + (k - 1) * jump, start + ((k - 1) / 2 - p) * jump, jump * s
    assert receptive_field_of(tuples) == {"size": size, "jump": jump, "start": start}


@PROPS
@given(convs=st.lists(st.sampled_from([1, 3, 5]), min_size=1, max_size=3),
       side=st.integers(1, 12))
def test_measured_receptive_field_is_the_theory(convs, side):
    # stride-1 'same' convolutions: the measured square is the theoretical one, cut by the image
    model = nn.Sequential(*[nn.Conv2d(1, 1, k, padding=k // 2) for k in convs])
    seen = measure_receptive_field(model, side)
    amount = receptive_field_map(model, side)
    assert seen.shape == amount.shape == (side, side) and seen.dtype == torch.bool
    assert torch.equal(seen, amount > 0) and bool((amount >= 0).all())
    half = (receptive_field_of(model)["size"] - 1) // 2
    c = side // 2  # the default output pixel: the centre
    rows = (torch.arange(side) - c).abs() <= half
    assert torch.equal(seen, rows[:, None] & rows[None, :])


# ------------------------------------------------------------------ sliding window vs FCN
@on_devices
@PROPS
@given(seed=seeds, n=st.sampled_from([None, 0, 1, 2]), h=sides, w=sides,
       layers=st.integers(1, 2), padding_mode=st.sampled_from(["reflect", "zeros"]),
       dtype=floats)
def test_sliding_window_is_fcn(device, seed, n, h, w, layers, padding_mode, dtype):
    torch.manual_seed(seed)
    model = PatchClassifier(num_classes=3, in_channels=2, width=3, num_layers=layers)
    model = model.to(device, dtype)
    shape = (2, h, w) if n is None else (n, 2, h, w)
    image = torch.rand(shape, generator=gen(seed), dtype=F64).to(device, dtype)
    if padding_mode == "reflect" and min(h, w) <= model.patch_size // 2:
        padding_mode = "zeros"  # reflect padding needs a side larger than the pad
    slow = sliding_window_segment(model, image, batch_size=7, padding_mode=padding_mode)
    fast = fcn_segment(model, image, padding_mode=padding_mode)
    expected = (3, h, w) if n is None else (n, 3, h, w)
    assert slow.shape == fast.shape == expected
    assert slow.dtype == fast.dtype == dtype and fast.device == image.device
    assert_close(slow, fast, rtol=1e-4, atol=1e-5)
