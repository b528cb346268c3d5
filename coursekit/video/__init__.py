"""Video classification (lecture: *Video understanding*, *Video classification*).

* ``video_size_bytes``, ``format_bytes``, ``tchw_to_cthw`` / ``cthw_to_tchw``,
  ``clip_starts``, ``sample_clips``, ``predict_video`` — video tensors, their size,
  clips at a low frame rate and test-time clip averaging (tensors.py)
* ``SingleFrameCNN`` — a 2D CNN per frame, probabilities averaged (single_frame.py)
* ``LateFusion``, ``EarlyFusion`` — fuse frames after the CNN or in its first conv
  (fusion.py)
* ``CNN3D`` — 3D convolutions and pooling fuse time slowly (conv3d.py)
* ``inflate_weight``, ``inflate_conv``, ``inflate_pool``, ``inflate_batchnorm``,
  ``inflate_network`` — I3D inflation of 2D networks (inflate.py)
* ``InceptionBlock``, ``TinyInception``, ``I3D``, ``build_i3d`` — an inflated Inception
  network (i3d.py)

Training and evaluation on ShapesWorld action videos (``coursekit.data.video``), the shipped
checkpoints and ``load_video_model`` are in ``coursekit.video.train``; ``coursekit bench
video`` times the data and the models (bench.py).

Clips are ``Tensor[N, T, C, H, W]`` everywhere; the models return ``Tensor[N, L]`` scores
whose softmax is their class probabilities. ``build_video_classifier(kind, ...)`` builds
any of them by name.
"""

from coursekit.video.build import VIDEO_MODELS, build_video_classifier
from coursekit.video.conv3d import CNN3D
from coursekit.video.fusion import EarlyFusion, LateFusion
from coursekit.video.i3d import I3D, InceptionBlock, TinyInception, build_i3d
from coursekit.video.inflate import (
    inflate_batchnorm,
    inflate_conv,
    inflate_network,
    inflate_pool,
    inflate_weight,
)
from coursekit.video.single_frame import SingleFrameCNN, average_log_probs
from coursekit.video.tensors import (
    clip_starts,
    cthw_to_tchw,
    format_bytes,
    predict_video,
    sample_clips,
    tchw_to_cthw,
    video_size_bytes,
)

__all__ = [
    "CNN3D",
    "I3D",
    "VIDEO_MODELS",
    "EarlyFusion",
    "InceptionBlock",
    "LateFusion",
    "SingleFrameCNN",
    "TinyInception",
    "average_log_probs",
    "build_i3d",
    "build_video_classifier",
    "clip_starts",
    "cthw_to_tchw",
    "format_bytes",
    "inflate_batchnorm",
    "inflate_conv",
    "inflate_network",
    "inflate_pool",
    "inflate_weight",
    "predict_video",
    "sample_clips",
    "tchw_to_cthw",
    "video_size_bytes",
]
