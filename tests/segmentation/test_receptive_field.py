"""receptive_field: formula, walking a network, and the gradient measurement agree."""

import pytest
import torch
from torch import nn

from coursekit.segmentation.receptive_field import (
    measure_receptive_field,
    receptive_field,
    receptive_field_map,
    receptive_field_of,
)


def _convs(num_layers, kernel=3, stride=1, padding=0):
    layers = []
    for i in range(num_layers):
        conv = nn.Conv2d(3 if i == 0 else 4, 4, kernel, stride=stride, padding=padding)
        layers += [conv, nn.ReLU()]
    return nn.Sequential(*layers)


def _bbox(mask):
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())


def test_lecture_formula_by_hand():
    # 1 + 2L for L 3x3 convolutions: 3, 5, 7, 21
    assert [receptive_field(L) for L in (1, 2, 3, 10)] == [3, 5, 7, 21]
    assert receptive_field(0) == 1
    assert receptive_field(3, kernel_size=5) == 13  # 1 + 3 * 4
    # stride 2, 3x3: 1 + 2 * (1 + 2 + 4) = 15
    assert receptive_field(3, kernel_size=3, stride=2) == 15


def test_layers_by_hand():
    # conv3 s1, pool2 s2, conv3 s1: size 1 + 2 + 1 + 2*2 = 8, jump 2
    info = receptive_field_of([(3, 1), (2, 2), (3, 1)])
    assert info["size"] == 8 and info["jump"] == 2
    # start: 0.5 + 1 (conv) + 0.5 (pool) + 1 * 2 (conv after jump 2) = 4.0
    assert info["start"] == 4.0
    assert receptive_field_of([(3, 1, 1)])["start"] == 0.5  # "same" padding keeps the centre


def test_empty_module_is_the_identity():
    # an empty nn.Sequential used to raise "TypeError ... got Sequential"; it sees one pixel,
    # like the empty list of layers
    identity = {"size": 1, "jump": 1, "start": 0.5}
    assert receptive_field_of([]) == identity
    assert receptive_field_of(nn.Sequential()) == identity
    assert receptive_field_of(nn.Sequential(nn.ReLU(), nn.Sequential())) == identity


@pytest.mark.parametrize("num_layers,kernel,stride",
                         [(1, 3, 1), (4, 3, 1), (3, 5, 1), (3, 3, 2), (2, 4, 3)])
def test_formula_matches_walk(num_layers, kernel, stride):
    expected = receptive_field(num_layers, kernel, stride)
    assert receptive_field_of([(kernel, stride)] * num_layers)["size"] == expected
    assert receptive_field_of(_convs(num_layers, kernel, stride))["size"] == expected


NETWORKS = {
    "3 convs": lambda: _convs(3),
    "6 convs padded": lambda: _convs(6, padding=1),
    "strided": lambda: _convs(3, stride=2),
    "conv-pool-conv-pool-conv": lambda: nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(4, 2, 3), nn.Conv2d(2, 2, 1),
    ),
    "dilated": lambda: nn.Sequential(nn.Conv2d(3, 4, 3, dilation=2),
                                     nn.Conv2d(4, 4, 3, dilation=4)),
    "nested": lambda: nn.Sequential(_convs(2),
                                    nn.Sequential(nn.MaxPool2d(3, 2), nn.Conv2d(4, 4, 5))),
}


@pytest.mark.parametrize("name", list(NETWORKS))
def test_measured_equals_formula(name):
    torch.manual_seed(0)
    net = NETWORKS[name]()
    info = receptive_field_of(net)
    size = 48
    mask = measure_receptive_field(net, size)
    out = net(torch.zeros(1, 3, size, size))
    oy, ox = out.shape[-2] // 2, out.shape[-1] // 2
    y0, y1, x0, x1 = _bbox(mask)
    assert (y1 - y0 + 1, x1 - x0 + 1) == (info["size"], info["size"])
    # the square is centred where receptive_field_of says: start + jump * index
    assert (y0 + y1 + 1) / 2 == info["start"] + info["jump"] * oy
    assert (x0 + x1 + 1) / 2 == info["start"] + info["jump"] * ox
    if name == "dilated":  # dilation 2 then 4: only every other pixel is seen (gridding)
        assert mask[y0 : y1 + 1 : 2, x0 : x1 + 1 : 2].all() and not mask[y0 + 1, x0 : x1 + 1].any()
    else:
        assert mask[y0 : y1 + 1, x0 : x1 + 1].all()  # a full square, no holes


def test_map_is_a_bump_and_pixel_choice():
    net = _convs(4)
    heat = receptive_field_map(net, 20, 3, 5)  # output is 12x12
    mask = heat > 0
    assert _bbox(mask) == (3, 11, 5, 13)  # 9x9 square at the top-left of output (3, 5)
    assert heat[7, 9] == heat.max() and heat[7, 9] > heat[3, 5] > 0  # the centre has most paths
    assert torch.equal(measure_receptive_field(net, 20, (3, 5)), mask)


def test_effective_field_with_own_weights():
    torch.manual_seed(0)
    net = _convs(2)
    heat = receptive_field_map(net, 12, positive=False)
    assert heat.shape == (12, 12) and heat.dtype == torch.float32
    assert not (heat[:2].any() or heat[-2:].any())  # never outside the theoretical field


def test_model_is_not_modified():
    net = _convs(2)
    before = [p.clone() for p in net.parameters()]
    measure_receptive_field(net, 10)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


def _two_conv_map():
    """Hand-computed map of ``_convs(2)`` (3 -> 4 -> 4 channels, 3x3, no padding) on a 9x9
    input at output (2, 2): with weights 1 / fan-in (1/27, then 1/36) and 4 output channels,
    d sum(y) / d x = 3 channels * 4 * 4 / (27 * 36) * (number of 3x3-then-3x3 paths), and the
    paths to input (2 + i, 2 + j) number b[i] * b[j] with b = (1, 2, 3, 2, 1)."""
    b = torch.tensor([1.0, 2, 3, 2, 1], dtype=torch.float64)
    expected = torch.zeros(9, 9, dtype=torch.float64)
    expected[2:7, 2:7] = 3 * 4 * 4 / (27 * 36) * torch.outer(b, b)
    return expected


def test_map_hand_computed():
    torch.manual_seed(0)
    heat = receptive_field_map(_convs(2), 9)
    assert heat.dtype == torch.float64
    torch.testing.assert_close(heat, _two_conv_map())


def test_device(device):
    # the reference is the hand-computed map (float64), on every device
    net = _convs(2).to(device)
    heat = receptive_field_map(net, 9)
    assert heat.device.type == device.type
    torch.testing.assert_close(heat.cpu(), _two_conv_map())
    mask = measure_receptive_field(net, 9)
    assert mask.device.type == device.type and int(mask.sum()) == 25
    assert torch.equal(mask.cpu(), _two_conv_map() > 0)


@pytest.mark.parametrize("fn, args, error, match", [
    (receptive_field, (-1,), ValueError, "num_layers must be >= 0, got -1"),
    (receptive_field, (2, 3.0), TypeError, "kernel_size must be an int, got 3.0"),
    (receptive_field, (2, 3, 0), ValueError, "stride must be positive, got 0"),
    (receptive_field, ("2",), TypeError, "num_layers must be an int, got '2'"),
    (receptive_field_of, ([(3, 1), 3],), TypeError, r"layers\[1\] must be a \(kernel, stride\)"),
    (receptive_field_of, ([(3.0, 1)],), TypeError, r"layers\[0\] must be .*tuple of ints"),
    (receptive_field_of, ([(3, 0)],), ValueError, r"layers\[0\] needs kernel >= 1, stride >= 1"),
    (receptive_field_of, ("3x3",), TypeError, "layers must be a list of .*got str"),
    (receptive_field_of, (nn.Sequential(nn.Conv2d(1, 1, 3), nn.Upsample(scale_factor=2)),),
     TypeError, "got Upsample"),
    (receptive_field_of, (nn.Conv2d(1, 1, (3, 5)),), ValueError, "must be square"),
    (receptive_field_of, (nn.Conv2d(1, 1, 3, padding="same"),), ValueError,
     "padding='same' in Conv2d is not supported"),
    (receptive_field_map, (_convs(2), 10, 6, 0), ValueError,
     r"\(out_y, out_x\) must lie in the 6x6 output, got \(6, 0\)"),
    (receptive_field_map, (_convs(2), 10, 2.0), TypeError, "out_y must be an int or None, got 2.0"),
    (receptive_field_map, (_convs(2), 0), ValueError, "input_size must be positive, got 0"),
    (receptive_field_map, (_convs(2), (10, 10, 3)), TypeError,
     "input_size must be an int or a pair of ints"),
    (receptive_field_map, ("net", 10), TypeError, "model must be an nn.Module, got str"),
    (measure_receptive_field, (_convs(2), 10, 3), TypeError,
     r"pixel must be None or an \(out_y, out_x\) pair of ints, got 3"),
])
def test_bad_input(fn, args, error, match):
    with pytest.raises(error, match=match):
        fn(*args)
