"""The ShapesWorld scene contract: shape and dtype of every tensor field of a ``Scene``
(shared by tests/data/test_shapesworld.py and tests/properties/test_props_data_panoptic.py)."""

import torch


def expected_fields(H, W, N, P):
    """``{field: (shape, dtype)}`` for an H × W scene with N things, P of them persons."""
    return {
        "image": ((3, H, W), torch.float32), "semantic": ((H, W), torch.int64),
        "instance_ids": ((H, W), torch.int64), "boxes": ((N, 4), torch.float32),
        "labels": ((N,), torch.int64), "masks": ((N, H, W), torch.bool),
        "iscrowd": ((N,), torch.bool), "keypoints": ((P, 17, 3), torch.float32),
        "person_index": ((P,), torch.int64), "parts": ((H, W), torch.int64),
        "uv": ((2, H, W), torch.float32), "depth": ((H, W), torch.float32),
        "next_image": ((3, H, W), torch.float32), "flow": ((2, H, W), torch.float32),
        "flow_valid": ((H, W), torch.bool),
    }
