"""Interactive SAM: embed the image once, then answer each prompt in milliseconds.

Lecture: *Segment Anything: real-time interactive inference*. ``set_image`` runs the
heavy image encoder once and caches the embedding; every ``predict`` (a click, a box,
a previous mask) runs only the prompt encoder and the mask decoder on that cache::

    predictor = SamPredictor(build_sam_tiny())
    predictor.set_image(scene.image)                       # encoder: once
    masks, ious, logits = predictor.predict(point_coords=[[40, 30]], point_labels=[1])
    masks, ious, _ = predictor.predict(point_coords=[[40, 30], [10, 10]],
                                       point_labels=[1, 0], mask_input=logits[ious.argmax()][None],
                                       multimask_output=False)   # refine: decoder only

Same contract as segment-anything's ``SamPredictor`` (tensors instead of numpy arrays;
the image is the course's Tensor[3, H, W] in [0, 1] or uint8); tested against it in
tests/sam/test_predictor.py.
"""

from __future__ import annotations

import numbers

import torch
from torch import Tensor

from coursekit.sam.sam import Sam
from coursekit.sam.transforms import apply_boxes, apply_coords, resize_longest_side
from coursekit.validators import (
    describe,
    require_dim,
    require_floating,
    require_tensor,
    shape_str,
)


class SamPredictor:
    """``set_image(image)`` once, then ``predict(...)`` per prompt, on a ``Sam`` model."""

    def __init__(self, sam_model: Sam) -> None:
        if not isinstance(sam_model, Sam):
            raise TypeError(f"sam_model must be a coursekit.sam.Sam, got {describe(sam_model)}")
        self.model = sam_model
        self.reset_image()

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.pixel_mean.dtype

    def reset_image(self) -> None:
        """Forget the cached image embedding."""
        self.is_image_set = False
        self.features: Tensor | None = None
        self.pixel_features: Tensor | None = None  # with a PixelSkip only
        self.dense_pe: Tensor | None = None
        self.original_size: tuple[int, int] | None = None
        self.input_size: tuple[int, int] | None = None

    @torch.no_grad()
    def set_image(self, image: Tensor) -> None:
        """Run the image encoder once and cache its embedding Tensor[1, C, h, w].

        Args:
            image: Tensor[3, H, W], floating point in [0, 1] or uint8 in [0, 255] (RGB).
                Resized so that its longest side is the encoder's size S, normalised and
                padded to S × S (``Sam.preprocess``).
        """
        expected = "Tensor[3, H, W] (RGB, floating point in [0, 1] or uint8)"
        if not isinstance(image, Tensor):
            raise TypeError(f"image must be a {expected}, got {describe(image)}")
        if image.dtype == torch.uint8:
            image = image.to(self.dtype) / 255
        elif not image.is_floating_point():
            raise TypeError(f"image must be a {expected}, got {describe(image)}")
        if image.dim() != 3 or image.shape[0] != 3 or min(image.shape[1:]) == 0:
            raise ValueError(f"image must be {expected}, got {shape_str(image)}")
        self.reset_image()
        x = image[None].to(device=self.device, dtype=self.dtype)  # (1, 3, H, W)
        x = resize_longest_side(x, self.model.img_size)  # (1, 3, h, w), max(h, w) = S
        self.original_size = (int(image.shape[1]), int(image.shape[2]))
        self.input_size = (int(x.shape[2]), int(x.shape[3]))
        with torch.inference_mode():  # no autograd bookkeeping at all; clones come out
            features, pixels = self.model.encode(self.model.preprocess(x))  # (1, C, S/P, S/P)
            dense_pe = self.model.prompt_encoder.get_dense_pe()  # (1, C, S/P, S/P), fixed
        self.features, self.dense_pe = features.clone(), dense_pe.clone()
        self.pixel_features = None if pixels is None else pixels.clone()  # (1, D/8, 4h, 4w)
        self.is_image_set = True

    def get_image_embedding(self) -> Tensor:
        """A copy of the cached embedding Tensor[1, C, h, w] (editing it leaves the cache)."""
        self._require_image("get_image_embedding")
        return self.features.clone()

    @torch.no_grad()
    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None,
                multimask_output: bool = True, *,
                return_logits: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """Masks for one prompt on the cached image (prompt encoder + mask decoder only).

        Args:
            point_coords: Tensor[N, 2] or a list of (x, y) pixel coordinates in the original
                image, inside it (0 <= x <= W, 0 <= y <= H); or None.
            point_labels: N labels, 1 foreground / 0 background; required with points.
            box: 4 numbers (x1, y1, x2, y2) in pixels, or None.
            mask_input: low-resolution logits Tensor[1, 4h, 4w] (a previous
                ``low_res_logits[i][None]``), or None.
            multimask_output: True: 3 masks for an ambiguous prompt (one click); False: 1.
            return_logits: return mask logits instead of bool masks.

        Returns:
            masks Tensor[C, H, W] bool (C = 3 or 1; logits if ``return_logits``),
            iou_predictions Tensor[C], low_res_logits Tensor[C, 4h, 4w].
        """
        self._require_image("predict")
        coords = labels = boxes = masks = None
        if point_coords is not None:
            coords, labels = self._check_points(point_coords, point_labels)
            coords, labels = coords[None], labels[None]  # (1, N, 2), (1, N)
        elif point_labels is not None:
            raise ValueError("point_labels was given without point_coords")
        if box is not None:
            boxes = self._check_box(box)[None]  # (1, 4)
        if mask_input is not None:
            masks = self._check_mask_input(mask_input)[None]  # (1, 1, 4h, 4w)
        out = self.predict_batch(coords, labels, boxes, masks, multimask_output,
                                 return_logits=return_logits)
        return tuple(t[0] for t in out)

    @torch.no_grad()
    def predict_batch(self, point_coords: Tensor | None, point_labels: Tensor | None,
                      boxes: Tensor | None = None, mask_input: Tensor | None = None,
                      multimask_output: bool = True, *,
                      return_logits: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """B prompts at once (the automatic mask generator's batches), original pixels.

        Args:
            point_coords: Tensor[B, N, 2] floating (x, y) in the original image, or None.
            point_labels: Tensor[B, N] in {0, 1} (or -1: padding), or None.
            boxes: Tensor[B, 4] floating, or None. mask_input: Tensor[B, 1, 4h, 4w] or None.

        Returns:
            masks Tensor[B, C, H, W] (bool, or logits if ``return_logits``), iou
            Tensor[B, C], low_res_logits Tensor[B, C, 4h, 4w].
        """
        self._require_image("predict_batch")
        S = self.model.img_size
        points = None
        if (point_coords is None) != (point_labels is None):
            raise ValueError("give point_coords and point_labels together (or neither)")
        if point_coords is not None:
            require_floating(point_coords, "point_coords", "a floating-point Tensor[B, N, 2]")
            require_tensor(point_labels, "point_labels", "a Tensor[B, N]")
            coords = apply_coords(point_coords.to(self.device), self.original_size, S)
            points = (coords.to(self.dtype), point_labels.to(self.device))
        if boxes is not None:
            require_floating(boxes, "boxes", "a floating-point Tensor[B, 4]")
            boxes = apply_boxes(boxes.to(self.device), self.original_size, S).to(self.dtype)
        if mask_input is not None:
            mask_input = mask_input.to(device=self.device, dtype=self.dtype)
        model = self.model
        # inference mode skips the autograd bookkeeping of each of the decoder's ~300 small
        # operations (about a tenth of a click's time); what leaves it is cloned, and the
        # resizing below runs outside it, so the outputs are ordinary tensors (edit them in
        # place, feed them back)
        with torch.inference_mode():
            sparse, dense = model.prompt_encoder(points, boxes, mask_input)  # (B, N', D), ...
            skip = () if self.pixel_features is None else (self.pixel_features,)
            low_res, iou = model.mask_decoder(self.features, self.dense_pe, sparse, dense,
                                              multimask_output, *skip)  # (B, C, 4h, 4w)
        masks = model.postprocess_masks(low_res, self.input_size, self.original_size)
        if not return_logits:
            masks = masks > model.mask_threshold  # (B, C, H, W) bool
        return masks, iou.clone(), low_res.clone()

    def _require_image(self, method: str) -> None:
        if not self.is_image_set:
            raise RuntimeError(f"{method}() needs an image: call set_image(image) first")

    def _check_points(self, point_coords, point_labels) -> tuple[Tensor, Tensor]:
        coords = _as_tensor(point_coords, "point_coords", "Tensor[N, 2] of (x, y) pixels")
        if coords.dim() != 2 or coords.shape[1] != 2 or coords.shape[0] == 0:
            raise ValueError(f"point_coords must be Tensor[N, 2] of (x, y) pixels with N >= 1, "
                             f"got {shape_str(coords)}")
        if point_labels is None:
            raise ValueError("point_labels must be given with point_coords (1 foreground, "
                             "0 background, one per point)")
        labels = _as_tensor(point_labels, "point_labels", "N labels in {0, 1}")
        if labels.is_floating_point() and not (labels == labels.round()).all():
            raise TypeError(f"point_labels must be integers 0 or 1, got {describe(labels)}")
        if tuple(labels.shape) != (coords.shape[0],):
            raise ValueError(f"point_labels must have one label per point: "
                             f"Tensor[{coords.shape[0]}], got {shape_str(labels)}")
        if not ((labels == 0) | (labels == 1)).all():
            raise ValueError(f"point_labels must be 1 (foreground) or 0 (background), "
                             f"got {labels.tolist()}")
        coords = coords.to(torch.promote_types(coords.dtype, torch.float32))
        H, W = self.original_size
        x, y = coords[:, 0], coords[:, 1]
        outside = ~((x >= 0) & (x <= W) & (y >= 0) & (y <= H))
        if outside.any():
            raise ValueError(f"point_coords must lie inside the image (0 <= x <= {W}, "
                             f"0 <= y <= {H}), got {coords[outside].tolist()}")
        return coords, labels.long()

    def _check_box(self, box) -> Tensor:
        t = _as_tensor(box, "box", "4 numbers (x1, y1, x2, y2)")
        if t.numel() != 4 or t.dim() > 2 or (t.dim() == 2 and t.shape[0] != 1):
            raise ValueError(f"box must be 4 numbers (x1, y1, x2, y2), got {shape_str(t)}")
        t = t.reshape(4).to(torch.promote_types(t.dtype, torch.float32))
        if not (t[2] >= t[0] and t[3] >= t[1]):
            raise ValueError(f"box must have x2 >= x1 and y2 >= y1, got {t.tolist()}")
        return t

    def _check_mask_input(self, mask_input) -> Tensor:
        h, w = self.model.prompt_encoder.mask_input_size
        expected = f"Tensor[1, {h}, {w}] (low_res_logits[i][None] of a previous predict)"
        if not isinstance(mask_input, Tensor) or not mask_input.is_floating_point():
            raise TypeError(f"mask_input must be a floating-point {expected}, "
                            f"got {describe(mask_input)}")
        require_dim(mask_input, "mask_input", 3, expected)
        if tuple(mask_input.shape) != (1, h, w):
            raise ValueError(f"mask_input must be {expected}, got {shape_str(mask_input)}")
        return mask_input


def _as_tensor(value, name: str, expected: str) -> Tensor:
    """A Tensor of real numbers from a Tensor, or a (nested) list / tuple of numbers."""
    if isinstance(value, Tensor):
        t = value
    elif isinstance(value, (list, tuple)):
        try:
            t = torch.tensor(value)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"{name} must be {expected}, got {value!r}") from err
    elif hasattr(value, "__array__") and not isinstance(value, numbers.Number):
        t = torch.as_tensor(value)
    else:
        raise TypeError(f"{name} must be {expected}, got {describe(value)}")
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"{name} must be {expected} (real numbers), got {describe(t)}")
    return t
