"""Prompts that come from other systems: a detector's boxes, a headset's gaze (lesson 10).

Lecture: *Segment Anything: extendable to other tasks* — SAM "can take input prompts
from other systems, such as taking a user's gaze from an AR/VR headset to select an
object". Two such systems, simulated:

* **a detector**: lesson 05's Mask R-CNN finds the things and their boxes; each box is a
  box prompt (``detector_box_prompts``), so SAM turns a detector into an instance
  segmenter without training on its classes;
* **an eye tracker**: ``simulate_gaze`` draws a gaze trace sampled at ``rate_hz`` (a few
  short glances, saccades between them, one long look at the object, with tremor);
  ``find_fixations`` finds the fixations with the dispersion-threshold algorithm (I-DT,
  Salvucci & Goldberg, 2000) and ``gaze_point_prompt`` makes the longest one's centroid a
  foreground point.

Tested in tests/sam/test_external_prompts.py.
"""

from __future__ import annotations

import numbers

import torch
from torch import Tensor

from coursekit.upsampling import bilinear_upsample
from coursekit.validators import describe, positive_int, require_dim, require_floating, shape_str

__all__ = ["detector_box_prompts", "find_fixations", "gaze_point_prompt", "simulate_gaze"]


@torch.no_grad()
def detector_box_prompts(detector, image: Tensor, *, detector_size: int = 64,
                         score_threshold: float = 0.5) -> dict[str, Tensor]:
    """The boxes a detector finds in ``image``, in the image's pixels: box prompts.

    ``detector``: a model with ``predict(image Tensor[3, s, s], score_threshold)`` returning
    ``{"boxes", "labels", "scores"}`` (lesson 05's ``MaskRCNN``), trained at ``detector_size``
    pixels; ``image``: Tensor[3, H, W] in [0, 1], resized (bilinear) to that size for the
    detector. Returns ``{"boxes": Tensor[K, 4] xyxy in image pixels, "labels", "scores"}``.
    """
    if not hasattr(detector, "predict"):
        raise TypeError(f"detector must have a predict(image) method (a MaskRCNN), "
                        f"got {describe(detector)}")
    require_floating(image, "image", "a floating-point Tensor[3, H, W] in [0, 1]")
    require_dim(image, "image", 3, "Tensor[3, H, W]")
    s = positive_int(detector_size, "detector_size")
    H, W = image.shape[-2:]
    small = image if (H, W) == (s, s) else bilinear_upsample(image[None], size=(s, s))[0]
    out = detector.predict(small, score_threshold=score_threshold)
    scale = out["boxes"].new_tensor([W / s, H / s, W / s, H / s])
    return {"boxes": out["boxes"] * scale, "labels": out["labels"], "scores": out["scores"]}


def simulate_gaze(target: tuple[float, float] | Tensor, *, image_size: int, seed: int = 0,
                  glances: int = 3, glance_samples: int = 6, fixation_samples: int = 30,
                  tremor: float = 0.8, rate_hz: float = 60.0) -> Tensor:
    """A gaze trace Tensor[T, 2] of (x, y) pixels: short glances, then a long look at ``target``.

    ``glances`` random places are looked at for ``glance_samples`` samples each (too short
    to be a fixation of ``find_fixations``' default), joined by saccades (2 samples in
    flight), then ``fixation_samples`` samples on ``target``; every sample has Gaussian
    tremor of ``tremor`` pixels. At ``rate_hz`` samples per second (60: a 0.5 s look).
    Seeded and deterministic.
    """
    t = torch.as_tensor(target, dtype=torch.float32)
    if t.shape != (2,):
        raise ValueError(f"target must be (x, y), got {shape_str(t)}")
    size = positive_int(image_size, "image_size")
    g = torch.Generator().manual_seed(int(seed))
    places = torch.rand(glances, 2, generator=g) * size  # (glances, 2)
    stops = list(places) + [t]
    trace, prev = [], None
    for k, place in enumerate(stops):
        if prev is not None:  # a saccade: two samples on the way
            trace += [prev + (place - prev) * f for f in (1 / 3, 2 / 3)]
        n = fixation_samples if k == len(stops) - 1 else glance_samples
        trace += [place.clone() for _ in range(n)]
        prev = place
    xy = torch.stack(trace)  # (T, 2)
    xy = xy + tremor * torch.randn(xy.shape, generator=g)
    _ = rate_hz  # the sampling rate only names the time axis (samples / rate_hz seconds)
    return xy.clamp(0, size - 1)


def find_fixations(trace: Tensor, *, max_dispersion: float = 8.0,
                   min_samples: int = 12) -> list[dict]:
    """Fixations of a gaze trace Tensor[T, 2], by dispersion threshold (I-DT).

    A window of ``min_samples`` samples is a fixation when its dispersion
    ``(max x − min x) + (max y − min y)`` is at most ``max_dispersion`` pixels; it grows
    while it stays so; then the search starts after it (else one sample later). Returns
    ``[{"center": Tensor[2] (mean x, y), "start": i, "end": j (exclusive)}, ...]`` in time order.
    """
    require_floating(trace, "trace", "a floating-point Tensor[T, 2] of (x, y)")
    if trace.dim() != 2 or trace.shape[1] != 2:
        raise ValueError(f"trace must be Tensor[T, 2] of (x, y), got {shape_str(trace)}")
    n = positive_int(min_samples, "min_samples")
    if isinstance(max_dispersion, bool) or not isinstance(max_dispersion, numbers.Real):
        raise TypeError(f"max_dispersion must be a number of pixels, got "
                        f"{describe(max_dispersion)}")

    def dispersion(a: int, b: int) -> float:
        w = trace[a:b]
        return float((w.amax(0) - w.amin(0)).sum())

    fixations, i, T = [], 0, len(trace)
    while i + n <= T:
        if dispersion(i, i + n) <= max_dispersion:
            j = i + n
            while j < T and dispersion(i, j + 1) <= max_dispersion:
                j += 1
            fixations.append({"center": trace[i:j].mean(0), "start": i, "end": j})
            i = j
        else:
            i += 1
    return fixations


def gaze_point_prompt(trace: Tensor, **kwargs) -> Tensor:
    """The centroid of the longest fixation: a foreground point prompt Tensor[2] (x, y).

    ``kwargs`` go to ``find_fixations``. Raises ``ValueError`` if the trace has no fixation.
    """
    fixations = find_fixations(trace, **kwargs)
    if not fixations:
        raise ValueError("trace has no fixation (the eye never rested): no point to prompt")
    longest = max(fixations, key=lambda f: f["end"] - f["start"])
    return longest["center"]
