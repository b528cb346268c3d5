"""Add more heads (lesson 09): dense captioning and Mesh R-CNN on the Mask R-CNN trunk.

One shared detector (lesson 05's ``maskrcnn``, frozen) and new per-RoI heads that plug
into it through ``coursekit.instance.heads.RoIHead``:

* ``captions.py``        ShapesWorld captions from each thing's attributes, the vocabulary
* ``dense_captioning.py`` ``CaptionHead``: RoI features -> GRU -> a sentence per box
* ``shapes3d.py``         things extruded to 3D: voxel targets, true surfaces
* ``cubify.py``           ``cubify(voxels, threshold=0.5)`` -> (verts, faces)
* ``chamfer.py``          ``chamfer_distance``, ``sample_points_from_meshes``
* ``mesh.py``             ``MeshHead``: voxel branch, cubify, one refinement stage
* ``train.py``            ``coursekit train captioner`` / ``meshrcnn``, loaders, evaluation
* ``plots.py``, ``table.py``  captions beside boxes, 3D plots; the trunk-and-heads table

``coursekit.instance`` never imports this package.
"""

from coursekit.heads.captions import VOCAB, caption_things, decode, encode
from coursekit.heads.chamfer import (
    chamfer_distance,
    chamfer_distance_loop,
    sample_points_from_meshes,
)
from coursekit.heads.cubify import cubify, exposed_faces
from coursekit.heads.dense_captioning import (
    CaptionHead,
    ContextRoIAlign,
    caption_accuracy,
    caption_loss,
    majority_caption,
    position_accuracy,
)
from coursekit.heads.mesh import (
    GraphConv,
    MeshHead,
    MeshRefinementStage,
    mesh_edges,
    pack_meshes,
    vert_align,
    voxel_loss,
)
from coursekit.heads.shapes3d import extrude, surface_points, voxel_targets, whole_shapes

__all__ = [
    "VOCAB", "CaptionHead", "ContextRoIAlign", "GraphConv", "MeshHead", "MeshRefinementStage",
    "caption_accuracy", "caption_loss", "caption_things", "chamfer_distance",
    "chamfer_distance_loop", "cubify", "decode", "encode", "exposed_faces", "extrude",
    "majority_caption", "mesh_edges", "pack_meshes", "position_accuracy",
    "sample_points_from_meshes",
    "surface_points", "vert_align", "voxel_loss", "voxel_targets", "whole_shapes",
]
