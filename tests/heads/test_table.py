"""The trunk-and-heads table: one row per part, parameters counted from the modules."""

from coursekit.heads.table import format_table, heads_table
from coursekit.heads.train import build_caption_head, build_mesh_head
from coursekit.instance.mask_rcnn import build_mask_rcnn
from coursekit.validators import count_parameters


def test_rows_and_counts():
    trunk = build_mask_rcnn()
    cap, mesh = build_caption_head(trunk), build_mesh_head(trunk)
    rows = heads_table(trunk, cap, mesh)
    parts = [r["part"] for r in rows]
    assert parts[0].startswith("trunk") and "mask head" in parts and "keypoint head" in parts
    assert any("DensePose" in p for p in parts)
    by = {r["part"]: r for r in rows}
    assert by["mask head"]["parameters"] == f"{count_parameters(trunk.roi_heads.mask_head):,}"
    assert by["caption head"]["parameters"] == f"{count_parameters(cap):,}"
    assert by["caption head"]["trained"] == "here, trunk frozen"
    # DensePose's four losses (uv_head.densepose_losses) and its frozen trunk (lesson 08)
    dense = by["DensePose head"]
    assert dense["loss"] == "fg/bg CE + part CE (map, points) + smooth-L1 U,V + CSE CE"
    assert dense["target"] == "masks, parts, (I,U,V) points (persons)"
    assert dense["trained"] == "lesson 08, trunk frozen"
    total = sum(int(r["parameters"].replace(",", "")) for r in rows[:2])
    assert total == count_parameters(trunk)  # trunk + mask head = the whole Mask R-CNN
    text = format_table(rows)
    assert text.splitlines()[0].split() == ["part", "parameters", "loss", "target", "trained"]
    assert len(text.splitlines()) == len(rows) + 1
    assert heads_table(trunk)[4]["parameters"] == "-"  # no caption head given
