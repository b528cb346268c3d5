"""Panoptic segmentation: every pixel gets a category, and thing pixels an instance too.

* ``panoptic_quality`` — PQ = SQ × RQ, vectorised (quality.py), same as panopticapi's
  ``pq_compute``; ``panoptic_quality_loop`` — panopticapi's loops written out
  (quality_loop.py); ``PQStat`` — the counts per category, accumulated and averaged (pq_stat.py)
* ``panoptic_fusion`` — instances + semantic map -> one panoptic map (fusion.py), same as
  Detectron2's ``combine_semantic_and_instance_outputs``
* ``PanopticFPN``, ``SemanticFPNHead`` — one FPN backbone, an instance and a semantic branch
  (panoptic_fpn.py); ``load_panoptic_fpn`` — the shipped one: the shipped Mask R-CNN (frozen)
  plus the semantic branch ``coursekit train panopticfpn`` trained on it (train.py, imported
  lazily)
* ``SHAPESWORLD_CATEGORIES`` — ShapesWorld's categories as ``{id: {"isthing": 0/1}}``; the
  ground truth of a scene is ``coursekit.data.coco.panoptic_ids(scene)`` -> (ids, segments)

Tested in tests/panoptic/.
"""

from coursekit.data.shapesworld import CATEGORIES as _CATEGORIES
from coursekit.panoptic.fusion import panoptic_fusion
from coursekit.panoptic.panoptic_fpn import PanopticFPN, SemanticFPNHead
from coursekit.panoptic.pq_stat import PQStat
from coursekit.panoptic.quality import panoptic_quality
from coursekit.panoptic.quality_loop import panoptic_quality_loop

SHAPESWORLD_CATEGORIES = {c["id"]: {"isthing": c["isthing"], "name": c["name"]}
                          for c in _CATEGORIES}

__all__ = [
    "PQStat", "PanopticFPN", "SHAPESWORLD_CATEGORIES", "SemanticFPNHead", "panoptic_fusion",
    "load_panoptic_fpn", "panoptic_quality", "panoptic_quality_loop",
]


def __getattr__(name: str):
    if name == "load_panoptic_fpn":  # keeps `import coursekit.panoptic` light
        from coursekit.panoptic.train import load_panoptic_fpn

        return load_panoptic_fpn
    raise AttributeError(f"module 'coursekit.panoptic' has no attribute {name!r}")
