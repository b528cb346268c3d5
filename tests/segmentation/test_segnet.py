"""SegNet: max pooling indices reused by max unpooling in the decoder."""

import pytest
import torch
import torch.nn.functional as F

from coursekit.segmentation.segnet import SegNet


def test_shapes():
    model = SegNet(width=4, depth=3).eval()
    assert model(torch.rand(2, 3, 32, 40)).shape == (2, 8, 32, 40)


def test_same_as_torch_pooling_and_unpooling():
    # the forward pass equals one written with torch's own max_pool2d / max_unpool2d
    torch.manual_seed(0)
    model = SegNet(width=4, depth=2).double().eval()
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)

    def reference(x):
        remembered = []
        for block in model.encoder:
            x, idx = F.max_pool2d(block(x), 2, return_indices=True)
            remembered.append(idx)
        for block in model.decoder:
            x = block(F.max_unpool2d(x, remembered.pop(), 2))
        return model.head(x)

    torch.testing.assert_close(model(x), reference(x))


def test_bad_input():
    with pytest.raises(ValueError, match="divisible by 8"):
        SegNet(width=4)(torch.rand(1, 3, 20, 16))
    with pytest.raises(TypeError, match="x must be"):
        SegNet(width=4)(torch.zeros(1, 3, 16, 16, dtype=torch.int64))


def test_overfit_one_batch():
    torch.manual_seed(0)
    model = SegNet(width=8, depth=2)
    x = torch.rand(2, 3, 16, 16)
    target = (x[:, 1] > 0.5).long()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss = F.cross_entropy(model(x), target)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
