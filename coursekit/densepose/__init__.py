"""Dense correspondence: DensePose (body parts + U, V charts) and continuous surface embeddings.

* ``sample_points``, ``annotate_scene``, ``iuv_image``, ``part_confusion``, ``part_iou``,
  ``uv_error`` — the two annotation tasks simulated on ShapesWorld persons, the IUV
  picture and the part metrics (parts.py)
* ``DensePoseHead``, ``densepose_losses``, ``decode_iuv``, ``paste_in_image``,
  ``hflip_maps`` (flip test-time augmentation, with ``PART_SYMMETRIES``),
  ``compare_with_detectron2`` — the head on Mask R-CNN's RoI features (uv_head.py)
* ``cse_loss``, ``body_template``, ``SurfaceEmbedding``, ``nearest_vertices``,
  ``correspondence_accuracy``, ``chance_accuracy``, ``transfer_texture`` — continuous
  surface embeddings (cse.py)
* ``train_densepose`` / ``load_densepose`` / ``load_densepose_head`` (train.py, imported
  lazily), ``evaluate_densepose`` (evaluate.py)

``coursekit.instance`` never imports this package: the head is plugged in from here with
``build_mask_rcnn(extra_heads={"densepose": head})``.
"""

from coursekit.densepose.cse import (
    BodyTemplate,
    SurfaceEmbedding,
    body_template,
    chance_accuracy,
    correspondence_accuracy,
    cse_loss,
    nearest_vertices,
    transfer_texture,
)
from coursekit.densepose.parts import (
    NUM_PARTS,
    PART_NAMES,
    PART_SYMMETRIES,
    annotate_scene,
    iuv_image,
    part_confusion,
    part_iou,
    person_parts,
    sample_points,
    uv_error,
)
from coursekit.densepose.uv_head import (
    DensePoseHead,
    compare_with_detectron2,
    decode_iuv,
    densepose_losses,
    hflip_maps,
    paste_in_image,
    sample_at_points,
)

__all__ = [
    "NUM_PARTS", "PART_NAMES", "PART_SYMMETRIES", "BodyTemplate", "DensePoseHead",
    "SurfaceEmbedding",
    "annotate_scene", "body_template", "chance_accuracy", "compare_with_detectron2",
    "correspondence_accuracy", "cse_loss", "decode_iuv", "densepose_losses",
    "evaluate_densepose", "hflip_maps", "iuv_image", "load_densepose", "load_densepose_head",
    "nearest_vertices", "part_confusion", "part_iou", "paste_in_image", "person_parts",
    "sample_at_points", "sample_points", "train_densepose", "transfer_texture", "uv_error",
]

_LAZY = {"train_densepose": "train", "load_densepose": "train",
         "load_densepose_head": "train", "evaluate_densepose": "evaluate"}


def __getattr__(name: str):
    if name in _LAZY:  # keeps `import coursekit.densepose` light
        import importlib

        return getattr(importlib.import_module(f"coursekit.densepose.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'coursekit.densepose' has no attribute {name!r}")
