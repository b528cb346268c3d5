"""``build_video_classifier(kind, ...)``: the four video model families (and I3D) by name.

Tested in tests/video/test_models.py.
"""

from __future__ import annotations

from torch import nn

from coursekit.validators import positive_int
from coursekit.video.conv3d import CNN3D
from coursekit.video.fusion import EarlyFusion, LateFusion
from coursekit.video.i3d import build_i3d
from coursekit.video.single_frame import SingleFrameCNN

__all__ = ["VIDEO_MODELS", "build_video_classifier"]

VIDEO_MODELS = ("single_frame", "late_fusion", "early_fusion", "cnn3d", "i3d")


def build_video_classifier(kind: str, *, num_classes: int, num_frames: int,
                           in_channels: int = 3, width: int = 16) -> nn.Module:
    """One of ``VIDEO_MODELS``, for clips ``Tensor[N, num_frames, in_channels, H, W]``.

    ``num_frames`` fixes the input of the two fusion models; the others accept any T.
    """
    if kind not in VIDEO_MODELS:
        raise ValueError(f"kind must be one of {', '.join(VIDEO_MODELS)}, got {kind!r}")
    positive_int(num_frames, "num_frames")
    common = {"num_classes": num_classes, "in_channels": in_channels, "width": width}
    if kind == "single_frame":
        return SingleFrameCNN(**common)
    if kind == "late_fusion":
        return LateFusion(num_frames=num_frames, **common)
    if kind == "early_fusion":
        return EarlyFusion(num_frames=num_frames, **common)
    if kind == "cnn3d":
        return CNN3D(**common)
    return build_i3d(**common)
