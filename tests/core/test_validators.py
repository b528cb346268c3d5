"""The shared argument checks: messages name the argument, TypeError vs ValueError."""

import pytest
import torch
from torch import nn

from coursekit.validators import (
    boxes_to_rois,
    check_boxes,
    count_parameters,
    describe,
    int_pair,
    number_pair,
    positive_int,
    require_bool,
    require_dim,
    require_floating,
    require_integer,
    shape_str,
)


def test_describe_and_shape_str():
    assert describe(torch.zeros(2, 3)) == "Tensor[2, 3] float32"
    assert describe(torch.zeros((), dtype=torch.int64)) == "Tensor[] int64"
    assert describe([1, 2]) == "list"
    assert shape_str(torch.zeros(4, 0, 1)) == "Tensor[4, 0, 1]"
    assert shape_str(3.0) == "float"


def test_type_errors_name_the_argument():
    with pytest.raises(TypeError, match=r"x must be .*got list"):
        require_floating([1.0], "x")
    with pytest.raises(TypeError, match=r"x must be .*got Tensor\[2\] int64"):
        require_floating(torch.zeros(2, dtype=torch.int64), "x")
    with pytest.raises(TypeError, match=r"ids must be .*got Tensor\[2\] float32"):
        require_integer(torch.zeros(2), "ids")
    with pytest.raises(TypeError, match=r"ids must be .*got Tensor\[2\] bool"):
        require_integer(torch.zeros(2, dtype=torch.bool), "ids")
    with pytest.raises(TypeError, match=r"masks must be a bool Tensor \(threshold"):
        require_bool(torch.rand(2, 3), "masks")
    assert require_bool(torch.zeros(2, dtype=torch.bool), "masks").dtype == torch.bool


def test_require_dim():
    x = torch.zeros(2, 3)
    assert require_dim(x, "x", (2, 3), "Tensor[H, W]") is x
    with pytest.raises(ValueError, match=r"x must be Tensor\[N, C, H, W\], got Tensor\[2, 3\]"):
        require_dim(x, "x", 4, "Tensor[N, C, H, W]")


def test_numbers_and_pairs():
    assert positive_int(3, "n") == 3
    assert positive_int(0, "n", minimum=0) == 0
    with pytest.raises(TypeError, match="n must be an int, got True"):
        positive_int(True, "n")
    with pytest.raises(ValueError, match="n must be positive, got 0"):
        positive_int(0, "n")
    assert int_pair(2, "k") == (2, 2)
    assert int_pair([2, 3], "k") == (2, 3)
    with pytest.raises(TypeError, match="k must be an int or a pair of ints"):
        int_pair(2.0, "k")
    with pytest.raises(ValueError, match=r"k must be >= 0, got \(-1, 2\)"):
        int_pair((-1, 2), "k", minimum=0)
    assert number_pair(1.5, "s") == (1.5, 1.5)
    with pytest.raises(ValueError, match="s must be positive"):
        number_pair((1, -2), "s")
    with pytest.raises(TypeError, match="s must be a number or a pair"):
        number_pair("2", "s")


def test_boxes_and_rois():
    b = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    assert check_boxes(b) is b
    with pytest.raises(ValueError, match=r"boxes must be Tensor\[N, 4\].*got Tensor\[1, 5\]"):
        check_boxes(torch.zeros(1, 5))
    with pytest.raises(TypeError, match="floating-point"):
        check_boxes(torch.zeros(1, 4, dtype=torch.int64), floating=True)
    rois = boxes_to_rois([b, torch.zeros(0, 4), 2 * b])
    expected = torch.tensor([[0.0, 0.0, 1.0, 2.0, 3.0], [2.0, 0.0, 2.0, 4.0, 6.0]])
    torch.testing.assert_close(rois, expected)
    assert boxes_to_rois([], like=torch.zeros(1, dtype=torch.float64)).shape == (0, 5)
    assert boxes_to_rois([], like=torch.zeros(1, dtype=torch.float64)).dtype == torch.float64
    with pytest.raises(ValueError, match=r"boxes\[1\] must be Tensor\[N, 4\]"):
        boxes_to_rois([b, torch.zeros(2, 3)])
    with pytest.raises(
        ValueError, match=r"Tensor\[K, 5\] or list of Tensor\[L, 4\], got Tensor\[3, 4, 2\]"
    ):
        boxes_to_rois(torch.zeros(3, 4, 2))
    with pytest.raises(TypeError, match="got dict"):
        boxes_to_rois({})


def test_count_parameters():
    layer = nn.Linear(3, 2)  # 3*2 weights + 2 biases
    assert count_parameters(layer) == 8
    layer.bias.requires_grad_(False)
    assert count_parameters(layer, trainable_only=True) == 6
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        count_parameters("net")
