"""A pixel skip for the mask decoder: the image's own pixels at the masks' resolution (ours).

Not in segment-anything. SAM draws every mask from the embedding grid (one token per
P × P pixels) through two transposed convolutions, so structures thinner than a patch
(a person's limbs, one or two pixels wide in a 64-pixel ShapesWorld scene) must be
reconstructed from a token. HQ-SAM (Ke et al., *Segment Anything in High Quality*,
NeurIPS 2023) adds earlier, finer features to the mask features for the same reason; the
U-Net's skip connections (lesson 03) are the idea's simplest form. Ours::

    image [B, 3, S, S] (normalised)  --3×3 conv, stride P/4--> GELU --3×3 conv-->
        pixel features [B, D/8, 4·S/P, 4·S/P]          (once per image, like the encoder)
    up = output_upscaling(src) + pixel features      (in the decoder, per prompt)
    mask_i = MLP_i(mask token i) · up

so each prompt's hypernetwork weights also weigh local colour and edge features at the
mask's full resolution. The last convolution starts at zero: a fresh model with a pixel
skip computes exactly what one without computes. Tested in tests/sam/test_pixel_skip.py.
"""

from __future__ import annotations

from torch import Tensor, nn

from coursekit.validators import positive_int, require_dim, require_floating, shape_str


class PixelSkip(nn.Module):
    """Normalised image Tensor[B, 3, S, S] -> pixel features Tensor[B, out_chans, S/s, S/s].

    ``stride`` s = P / 4 puts the features on the mask decoder's output grid (4× the
    embedding's); ``hidden`` channels between the two 3 × 3 convolutions.
    """

    def __init__(self, *, out_chans: int, stride: int = 1, hidden: int = 16,
                 in_chans: int = 3) -> None:
        super().__init__()
        self.in_chans = positive_int(in_chans, "in_chans")
        self.stride = positive_int(stride, "stride")
        self.out_chans = positive_int(out_chans, "out_chans")
        hidden = positive_int(hidden, "hidden")
        self.conv1 = nn.Conv2d(in_chans, hidden, 3, stride=stride, padding=1)
        self.act = nn.GELU()
        self.conv2 = nn.Conv2d(hidden, out_chans, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # starts as "no skip"
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: Tensor) -> Tensor:
        expected = f"a floating-point Tensor[B, {self.in_chans}, S, S]"
        require_floating(x, "x", expected)
        require_dim(x, "x", 4, expected)
        if x.shape[1] != self.in_chans or x.shape[2] % self.stride or x.shape[3] % self.stride:
            raise ValueError(f"x must be Tensor[B, {self.in_chans}, H, W] with H and W "
                             f"multiples of stride={self.stride}, got {shape_str(x)}")
        return self.conv2(self.act(self.conv1(x)))  # (B, out_chans, H/s, W/s)
