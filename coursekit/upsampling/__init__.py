"""In-network upsampling (lecture: semantic segmentation, lesson 02), each equal to torch.

* ``nearest_upsample`` (``scale_factor`` or ``size``), ``bed_of_nails_upsample`` — copy values
* ``bilinear_sample`` (the primitive RoI Align reuses), ``bilinear_upsample`` (bilinear.py)
* ``max_pool2d_with_indices``, ``max_unpool2d`` — remember the max positions (unpool.py)
* ``conv_transpose2d`` — learnable upsampling, a.k.a. deconvolution (transposed.py)
"""

from coursekit.upsampling.bilinear import bilinear_sample, bilinear_upsample, bilinear_upsample_loop
from coursekit.upsampling.nearest import bed_of_nails_upsample, nearest_upsample
from coursekit.upsampling.transposed import (
    conv_transpose2d,
    conv_transpose2d_loop,
    conv_transpose2d_steps,
)
from coursekit.upsampling.unpool import max_pool2d_with_indices, max_unpool2d

__all__ = [
    "nearest_upsample",
    "bed_of_nails_upsample",
    "bilinear_sample",
    "bilinear_upsample",
    "bilinear_upsample_loop",
    "max_pool2d_with_indices",
    "max_unpool2d",
    "conv_transpose2d",
    "conv_transpose2d_loop",
    "conv_transpose2d_steps",
]
