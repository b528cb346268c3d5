"""3D targets: extrusion by hand (sphere, cube, prism), whole-shape selection, targets of
rendered scenes, surface points, bad input."""

from types import SimpleNamespace

import pytest
import torch

from coursekit.data.shapesworld import render_batch
from coursekit.heads.shapes3d import (
    PRISM_HALF_DEPTH,
    extrude,
    surface_points,
    voxel_targets,
    whole_shapes,
)


def test_extrude_by_hand():
    G = 8
    full = torch.ones(3, G, G, dtype=torch.bool)
    vox = extrude(full, torch.tensor([4, 5, 6]), cube_depth=torch.tensor([0.0, 1.0, 0.0]))
    assert vox.shape == (3, G, G, G)
    c = (torch.arange(G) * 2 + 1) / G - 1  # cell centres
    sphere = (c.view(G, 1, 1) ** 2 + c.view(1, G, 1) ** 2 + c.view(1, 1, G) ** 2) <= 1
    assert torch.equal(vox[0], sphere)  # a full silhouette -> the ball x² + y² + z² <= 1
    assert bool(vox[1].all())  # a cube of half depth 1 fills the grid
    prism = (c.abs() <= PRISM_HALF_DEPTH).view(G, 1, 1).expand(G, G, G)
    assert torch.equal(vox[2], prism)  # the middle half of the depth slices



def test_extrude_sphere_odd_grid_regression():
    # G odd: the middle depth slice z = 0 held the silhouette's corner cells outside the
    # unit disk (sqrt(1 - x² - y²) clamped to 0, and |0| <= 0); the sphere holds none of them
    G = 5
    vox = extrude(torch.ones(1, G, G, dtype=torch.bool), torch.tensor([4]))
    c = (torch.arange(G) * 2 + 1) / G - 1
    ball = (c.view(G, 1, 1) ** 2 + c.view(1, G, 1) ** 2 + c.view(1, 1, G) ** 2) <= 1
    assert torch.equal(vox[0], ball)
    assert not bool(vox[0, :, 0, 0].any())  # the corner column (x² + y² = 1.28) is empty

def test_extrude_keeps_the_silhouette():
    sil = torch.zeros(1, 6, 6, dtype=torch.bool)
    sil[0, 1:3, 2:5] = True
    vox = extrude(sil, torch.tensor([5]), torch.tensor([0.5]))
    assert torch.equal(vox[0].any(0), sil[0])  # seen from the camera: the silhouette
    assert vox[0, :, 1, 2].tolist() == [False, True, True, True, True, False]  # |z| <= 0.5


def test_whole_shapes_rules():
    boxes = torch.tensor([[5.0, 5, 15, 15], [14, 10, 20, 20], [30, 30, 40, 40],
                          [0, 40, 8, 50], [45, 45, 55, 55], [50, 5, 60, 15]])
    scene = SimpleNamespace(boxes=boxes, labels=torch.tensor([4, 5, 6, 4, 7, 5]),
                            iscrowd=torch.zeros(6, dtype=torch.bool),
                            image=torch.zeros(3, 64, 64))
    # rows 0 and 1 overlap, row 3 touches the border, row 4 is a person
    assert whole_shapes(scene).tolist() == [2, 5]



def test_whole_shapes_non_square_image_regression():
    # the border test read the image width for y as well
    scene = SimpleNamespace(boxes=torch.tensor([[2.0, 20, 6, 32], [2, 40, 6, 44]]),
                            labels=torch.tensor([4, 5]), iscrowd=torch.zeros(2, dtype=torch.bool),
                            image=torch.zeros(3, 32, 64))
    assert whole_shapes(scene).tolist() == []  # row 0 touches the bottom; row 1 is below it
    tall = SimpleNamespace(**{**vars(scene), "image": torch.zeros(3, 64, 32)})
    assert whole_shapes(tall).tolist() == [0, 1]  # both inside a 64 x 32 image

def test_targets_of_rendered_scenes():
    scenes = render_batch(range(6), 64, p_person=0.0, p_crowd=0.0)
    found = 0
    for j in range(len(scenes)):
        scene = scenes.scene(j)
        rows = whole_shapes(scene)
        if len(rows) == 0:
            continue
        vox = voxel_targets(scene, rows, 12)
        assert vox.shape == (len(rows), 12, 12, 12) and vox.dtype == torch.bool
        assert bool(vox.flatten(1).any(1).all())
        # symmetric in depth: the front half mirrors the back half
        assert torch.equal(vox, vox.flip(1))
        found += len(rows)
    assert found >= 3


def test_surface_points_on_the_fine_target():
    vox = torch.ones(1, 4, 4, 4, dtype=torch.bool)
    pts = surface_points(vox, 200, torch.Generator().manual_seed(0))
    assert pts.shape == (1, 200, 3)
    assert bool(((pts.abs().max(-1).values - 1).abs() < 1e-6).all())



def test_surface_points_no_grid_and_float64_regression():
    # no grid: Tensor[0, P, 3] (torch.stack of nothing raised); float64 occupancies keep their
    # dtype, and one just above 1/2 is occupied as cubify has it (a float32 copy rounded it off)
    assert surface_points(torch.zeros(0, 2, 2, 2, dtype=torch.bool), 5).shape == (0, 5, 3)
    occ = torch.full((1, 1, 1, 1), 0.5 + 1e-12, dtype=torch.float64)
    pts = surface_points(occ, 50, torch.Generator().manual_seed(0))
    assert pts.dtype == torch.float64
    assert bool(((pts.abs().max(-1).values - 1).abs() < 1e-12).all())  # on the cell's faces

def test_bad_input():
    with pytest.raises(ValueError, match="silhouettes must be square grids"):
        extrude(torch.zeros(1, 3, 4, dtype=torch.bool), torch.tensor([4]))
    with pytest.raises(TypeError, match="silhouettes must be a bool"):
        extrude(torch.zeros(1, 3, 3), torch.tensor([4]))
    with pytest.raises(ValueError, match="labels must be Tensor\\[1\\] of shape category ids"):
        extrude(torch.zeros(1, 3, 3, dtype=torch.bool), torch.tensor([7]))


def _scene(n=2, size=16):
    boxes = torch.tensor([[2.0, 2, 6, 6], [8, 8, 13, 14]])[:n]
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    for k, (x1, y1, x2, y2) in enumerate(boxes.long().tolist()):
        masks[k, y1:y2, x1:x2] = True
    return SimpleNamespace(boxes=boxes, labels=torch.tensor([5, 7])[:n], masks=masks,
                           iscrowd=torch.zeros(n, dtype=torch.bool),
                           image=torch.zeros(3, size, size))


def test_voxel_targets_hand_case():
    vox = voxel_targets(_scene(), torch.tensor([0]), 4)
    # a 4 x 4 square filling its box: the cube of half depth side / width = 1, every cell
    assert vox.shape == (1, 4, 4, 4) and bool(vox.all())


def test_whole_shapes_voxel_targets_surface_points_bad_input():
    scene = _scene()
    with pytest.raises(ValueError, match=r"scene.labels must be Tensor\[2\] \(scene.boxes has 2 "
                                         r"rows, scene.image is \d+ x \d+\), got Tensor\[3\]"):
        whole_shapes(SimpleNamespace(**{**vars(scene), "labels": torch.tensor([4, 5, 6])}))
    with pytest.raises(ValueError, match=r"scene.boxes must be Tensor\[N, 4\]"):
        whole_shapes(SimpleNamespace(**{**vars(scene), "boxes": torch.zeros(2, 5)}))
    with pytest.raises(TypeError, match=r"scene must be a ShapesWorld Scene with .* without "
                                        r"iscrowd"):
        whole_shapes(SimpleNamespace(boxes=scene.boxes, labels=scene.labels, image=scene.image))
    with pytest.raises(ValueError, match=r"rows must index the 2 boxes of the scene \(0\.\.1\), "
                                         r"got values from 0 to 2"):
        voxel_targets(scene, torch.tensor([0, 2]), 4)
    with pytest.raises(ValueError, match=r"rows must be shapes \(categories \(4, 5, 6\)\), got "
                                         r"row 1 of category 7"):
        voxel_targets(scene, torch.tensor([1]), 4)
    with pytest.raises(TypeError, match=r"rows must be an int64 Tensor\[K\]"):
        voxel_targets(scene, torch.tensor([0.0]), 4)
    with pytest.raises(ValueError, match="grid must be positive"):
        voxel_targets(scene, torch.tensor([0]), 0)
    with pytest.raises(ValueError, match=r"scene.masks must be Tensor\[2, 16, 16\]"):
        voxel_targets(SimpleNamespace(**{**vars(scene), "masks": scene.masks[:1]}),
                      torch.tensor([0]), 4)
    with pytest.raises(ValueError, match=r"targets_fine must be a bool Tensor\[K, D, H, W\]"):
        surface_points(torch.ones(4, 4, 4, dtype=torch.bool), 10)
    with pytest.raises(TypeError, match=r"targets_fine must be a bool Tensor\[K, D, H, W\]"):
        surface_points(torch.ones(1, 4, 4, 4, dtype=torch.long), 10)
    with pytest.raises(ValueError, match="num_points must be positive"):
        surface_points(torch.ones(1, 4, 4, 4, dtype=torch.bool), 0)
    assert surface_points(torch.zeros(1, 2, 2, 2, dtype=torch.bool), 5).abs().sum() == 0
