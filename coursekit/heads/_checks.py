"""The scene check that the caption and 3D-shape targets share (clear errors, no torch crash)."""

from __future__ import annotations

from coursekit.validators import (
    check_boxes,
    describe,
    require_bool,
    require_dim,
    require_tensor,
    shape_str,
)


def check_scene(scene: object, *, masks: bool = False, parts: bool = False) -> int:
    """A ShapesWorld ``Scene`` (or look-alike): ``boxes`` Tensor[N, 4], ``labels`` and
    ``iscrowd`` Tensor[N], ``image`` Tensor[3, H, W]; with ``masks`` a bool Tensor[N, H, W],
    with ``parts`` a Tensor[H, W]. Returns N."""
    fields = ("boxes", "labels", "iscrowd", "image") + ("masks",) * masks + ("parts",) * parts
    missing = [k for k in fields if not hasattr(scene, k)]
    if missing:
        raise TypeError(f"scene must be a ShapesWorld Scene with {', '.join(fields)}, "
                        f"got {describe(scene)} without {', '.join(missing)}")
    check_boxes(scene.boxes, "scene.boxes")
    N = len(scene.boxes)
    require_dim(scene.image, "scene.image", 3, "Tensor[3, H, W]")
    H, W = scene.image.shape[-2:]
    shapes = {"labels": (N,), "iscrowd": (N,)}
    if masks:
        shapes["masks"] = (N, H, W)
    if parts:
        shapes["parts"] = (H, W)
    for name, shape in shapes.items():
        t = getattr(scene, name)
        expected = "Tensor[" + ", ".join(str(n) for n in shape) + "]"
        require_tensor(t, f"scene.{name}", expected)
        if t.shape != shape:
            raise ValueError(f"scene.{name} must be {expected} (scene.boxes has {N} rows, "
                             f"scene.image is {H} x {W}), got {shape_str(t)}")
    if masks:
        require_bool(scene.masks, "scene.masks", f"a bool Tensor[{N}, {H}, {W}]")
    return N
