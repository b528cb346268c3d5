"""The Mask R-CNN mask head: RoI features -> one 28 × 28 mask per class.

Lecture: *Mask R-CNN* — "predict a mask for each of C classes: ``C × 28 × 28``".
For every detected (at training time: every positive) box, RoI Align crops a
``14 × 14`` feature; a few 3 × 3 convolutions keep that resolution, a stride-2
**transposed convolution** (lesson 02) doubles it to ``28 × 28``, and a 1 × 1
convolution gives one mask logit map per class::

    Tensor[R, D, 14, 14] --convs--> [R, dim, 14, 14] --deconv 2×--> [R, dim, 28, 28]
                         --1×1--> [R, C, 28, 28]

Only the channel of the box's class is used (trained by ``targets.mask_rcnn_loss``,
read at test time). Same layout as torchvision's ``MaskRCNNHeads`` +
``MaskRCNNPredictor`` (there: 4 convs of 256 channels); tested in
tests/instance/test_mask_head.py.
"""

from __future__ import annotations

from torch import Tensor, nn

from coursekit.validators import positive_int, require_dim, shape_str


class MaskHead(nn.Module):
    """C × 28 × 28: one mask per class.

    ``MaskHead(in_channels, num_classes, dim=32, num_convs=3)`` maps
    Tensor[R, in_channels, S, S] (RoI Align features, ``S = 14``) to mask logits
    Tensor[R, num_classes, 2S, 2S]. ``num_classes`` counts the background (channel 0,
    never trained), as in torchvision.

    Submodules (torchvision's names): ``convs`` (the ``num_convs`` 3 × 3 convs + ReLU,
    torchvision's ``mask_head``) and ``predictor`` (ConvTranspose2d 2 × 2 stride 2 + ReLU +
    1 × 1 conv, torchvision's ``mask_predictor``).
    """

    def __init__(self, in_channels: int, num_classes: int, dim: int = 32,
                 num_convs: int = 3) -> None:
        super().__init__()
        positive_int(in_channels, "in_channels")
        positive_int(num_classes, "num_classes", minimum=2)  # background + at least one class
        positive_int(dim, "dim")
        positive_int(num_convs, "num_convs", minimum=0)
        self.in_channels, self.num_classes = in_channels, num_classes
        layers: list[nn.Module] = []
        for i in range(num_convs):
            conv = nn.Conv2d(in_channels if i == 0 else dim, dim, 3, padding=1)
            layers += [conv, nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*layers)
        width = dim if num_convs else in_channels
        self.predictor = nn.Sequential(
            nn.ConvTranspose2d(width, dim, 2, stride=2),  # 2x: 14 x 14 -> 28 x 28
            nn.ReLU(inplace=True),
            nn.Conv2d(dim, num_classes, 1),  # one logit map per class
        )
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Tensor[R, in_channels, S, S] -> mask logits Tensor[R, num_classes, 2S, 2S]."""
        expected = f"Tensor[R, {self.in_channels}, S, S] (RoI features)"
        require_dim(x, "x", 4, expected)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x must be {expected}, got {shape_str(x)}")
        x = self.convs(x)  # (R, dim, S, S)
        return self.predictor(x)  # (R, C, 2S, 2S)
