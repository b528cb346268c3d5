"""Argument checks shared by the video models (on top of coursekit.validators)."""

from __future__ import annotations

from torch import Tensor

from coursekit.validators import describe, require_dim, require_floating

CLIPS = "Tensor[N, T, C, H, W] (a batch of clips, frames second)"


def check_clips(clips: object, name: str = "clips", in_channels: int | None = None,
                num_frames: int | None = None) -> Tensor:
    """A floating ``Tensor[N, T, C, H, W]`` with ``C == in_channels`` and ``T == num_frames``."""
    require_dim(clips, name, 5, CLIPS)
    require_floating(clips, name, CLIPS)
    if in_channels is not None and clips.shape[2] != in_channels:
        raise ValueError(f"{name} must be {CLIPS} with C = {in_channels} channels, got "
                         f"{describe(clips)} (a channels-first Tensor[N, C, T, H, W]? "
                         "use clips.transpose(1, 2))")
    if num_frames is not None and clips.shape[1] != num_frames:
        raise ValueError(f"{name} must be {CLIPS} with T = {num_frames} frames (this model "
                         f"was built for num_frames={num_frames}), got {describe(clips)}")
    return clips
