"""Where a tracker's boxes come from: a detector run on every frame, or noisy ground truth.

Lecture: *Spatio-temporal detection and tracking* — detect objects of interest in each
frame, then link them over time. Tracking-by-detection keeps the two apart:

* ``detect_frames(model, images)`` runs an image detector (the course's Mask R-CNN,
  ``coursekit.instance.load_maskrcnn``) frame by frame: per frame
  ``{"boxes", "scores", "labels"}`` (and ``"masks"``).
* ``noisy_detections(gt)`` makes a detector whose mistakes we control, from the ground
  truth: each corner moves by Gaussian noise of ``sigma`` times the box's width or
  height, a box is dropped with
  probability ``p_drop`` (a miss), and ``false_rate`` boxes per frame on average appear
  anywhere (false positives). It tests the tracker apart from the detector.
* ``run_tracker(tracker, detections)`` feeds a tracker one frame after the other and
  returns its ``[(ids, boxes), ...]``, which ``mot_metrics`` scores.

Tested in tests/tracking/test_detections.py.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
from torch import Tensor

from coursekit.validators import check_boxes, check_frames, describe, positive_int, require_dim

__all__ = ["detect_frames", "noisy_detections", "run_tracker"]


def _probability(p: object, name: str) -> float:
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"{name} must be a float in [0, 1], got {p!r}")
    if not 0 <= p <= 1:
        raise ValueError(f"{name} must be in [0, 1], got {p!r}")
    return float(p)


def _non_negative(x: object, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a float >= 0, got {x!r}")
    if not x >= 0:
        raise ValueError(f"{name} must be >= 0, got {x!r}")
    return float(x)


def noisy_detections(gt: Sequence, *, sigma: float = 0.05, p_drop: float = 0.1,
                     false_rate: float = 0.0, image_size: int | None = None,
                     seed: int = 0) -> list[Tensor]:
    """Per frame the detections of a simulated detector: ground truth, jittered and thinned.

    Args:
        gt: one ``(ids, boxes)`` per frame (e.g. ``TrackSequence.frames()``).
        sigma: standard deviation of the noise added to each corner, as a fraction of the
            box's width (x) or height (y): a detector's errors grow with the object.
        p_drop: probability that a true box is not detected.
        false_rate: mean number of false boxes per frame (Poisson); they need ``image_size``
            (a square image of that side): centres uniform in it, sides 4-16 pixels at 64.
        seed: of the CPU generator that draws all of it (the same seed, the same output).

    Returns:
        list of Tensor[K_t, 4] (x1, y1, x2, y2) in the boxes' dtype and device, no ids;
        true boxes first (in ``gt``'s order), then false ones. A jittered box keeps
        ``x2 >= x1 + 1`` and ``y2 >= y1 + 1``.
    """
    frames = check_frames(gt, "gt")
    sigma = _non_negative(sigma, "sigma")
    p_drop = _probability(p_drop, "p_drop")
    false_rate = _non_negative(false_rate, "false_rate")
    if false_rate > 0 and image_size is None:
        raise ValueError("image_size must be given (an int) when false_rate > 0")
    if image_size is not None:
        image_size = positive_int(image_size, "image_size")
    seed = positive_int(seed, "seed", minimum=0)
    g = torch.Generator().manual_seed(seed)
    out = []
    for _, boxes in frames:
        wide = boxes.detach().cpu().double()  # (K, 4)
        wh = (wide[:, 2:] - wide[:, :2]).repeat(1, 2)  # (K, 4): w, h, w, h
        noise = torch.randn(wide.shape, generator=g, dtype=torch.float64) * sigma * wh
        keep = torch.rand(wide.shape[0], generator=g, dtype=torch.float64) >= p_drop
        jittered = wide + noise
        jittered[:, 2:] = torch.maximum(jittered[:, 2:], jittered[:, :2] + 1)  # not empty
        dets = jittered[keep]
        n_false = int(torch.poisson(torch.tensor([false_rate], dtype=torch.float64),
                                    generator=g)) if false_rate > 0 else 0
        if n_false:
            s = image_size / 64
            centre = torch.rand(n_false, 2, generator=g, dtype=torch.float64) * image_size
            half = s * (2 + 6 * torch.rand(n_false, 2, generator=g, dtype=torch.float64))
            dets = torch.cat([dets, torch.cat([centre - half, centre + half], 1)])
        dtype = boxes.dtype if boxes.is_floating_point() else torch.float32
        out.append(dets.to(dtype=dtype, device=boxes.device))
    return out


@torch.no_grad()
def detect_frames(model: torch.nn.Module, images: Tensor, score_threshold: float = 0.5,
                  batch_size: int = 16) -> list[dict[str, Tensor]]:
    """Run an image detector on every frame of a video.

    Args:
        model: a detector with ``predict(images: Tensor[B, 3, H, W], score_threshold)``
            returning one dict per image (the course's ``MaskRCNN``), in eval mode.
        images: Tensor[T, 3, H, W] float, the frames.
        score_threshold: detections scoring below it are dropped.
        batch_size: frames per forward pass.

    Returns:
        list of T dicts ``{"boxes": Tensor[K, 4], "scores": Tensor[K], "labels": Tensor[K],
        ...}`` (whatever the model returns per image).
    """
    require_dim(images, "images", 4, "a float Tensor[T, 3, H, W] (the frames)")
    if images.shape[1] != 3 or not images.is_floating_point():
        raise ValueError(f"images must be a float Tensor[T, 3, H, W], got {describe(images)}")
    if not callable(getattr(model, "predict", None)):
        raise TypeError(f"model must have a predict(images, score_threshold) method (the "
                        f"course's MaskRCNN), got {describe(model)}")
    batch_size = positive_int(batch_size, "batch_size")
    out: list[dict[str, Tensor]] = []
    for i in range(0, images.shape[0], batch_size):
        out += list(model.predict(images[i:i + batch_size], score_threshold=score_threshold))
    return out


def run_tracker(tracker, detections: Sequence) -> list[tuple[Tensor, Tensor]]:
    """Feed ``tracker.update`` one frame after the other; return its ``(ids, boxes)``.

    Args:
        tracker: e.g. ``Tracker()``; it is ``reset()`` first.
        detections: per frame a Tensor[K, 4] of boxes, or a dict with ``"boxes"`` (and
            ``"scores"``, passed on) as ``detect_frames`` returns.

    Returns:
        list of ``(ids: int64 Tensor[J], boxes: Tensor[J, 4])``, one per frame.
    """
    if isinstance(detections, (str, bytes, Tensor)) or not isinstance(detections, Sequence):
        raise TypeError(f"detections must be a list with one Tensor[K, 4] (or detector dict) "
                        f"per frame, got {describe(detections)}")
    tracker.reset()
    out = []
    for f, det in enumerate(detections):
        if isinstance(det, dict):
            if "boxes" not in det:
                raise ValueError(f"detections[{f}] must have a 'boxes' entry, got keys "
                                 f"{sorted(det)}")
            boxes, scores = det["boxes"], det.get("scores")
        else:
            boxes, scores = det, None
        check_boxes(boxes, f"detections[{f}]", floating=True)
        out.append(tracker.update(boxes, scores))
    return out
