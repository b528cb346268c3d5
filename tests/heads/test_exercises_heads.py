"""Lesson 09's graders accept right answers and explain wrong ones (one verdict line)."""

import torch

from coursekit.exercises import (
    CUBIFY_PUZZLES,
    check_chamfer,
    check_cubify_bug,
    check_cubify_counts,
    cubify_buggy,
)
from coursekit.heads import chamfer_distance, cubify


def verdict(capsys):
    return capsys.readouterr().out.strip()


def stub(*args):
    raise NotImplementedError("exercise: write your solution here")


def test_cubify_counts(capsys):
    right = {"bar": (16, 28), "L": (16, 28), "block minus a corner": (26, 48)}  # by hand
    assert set(right) == set(CUBIFY_PUZZLES)
    assert check_cubify_counts(right)
    assert verdict(capsys).startswith("✅")
    assert not check_cubify_counts({**right, "block minus a corner": (27, 42)})
    out = verdict(capsys)
    assert out.startswith("❌") and "vertices, triangles" in out and "(27, 42)" in out
    assert not check_cubify_counts({"bar": (16, 28)})
    assert "no prediction for" in verdict(capsys)
    assert not check_cubify_counts({k: "16, 28" for k in right})
    assert "must be two ints" in verdict(capsys)
    assert not check_cubify_counts([16, 28])
    assert "must be a dict" in verdict(capsys)
    assert check_cubify_counts(lambda: right)  # a function returning the dict
    assert verdict(capsys).startswith("✅")
    assert not check_cubify_counts(stub)
    assert "not implemented yet" in verdict(capsys)


def test_cubify_bug(capsys):
    along_y = torch.zeros(1, 1, 2, 1)
    along_y[0, 0, :, 0] = 1  # two cells stacked along y
    assert check_cubify_bug(along_y, "y")
    assert verdict(capsys).startswith("✅")
    assert not check_cubify_bug(along_y, "x")
    assert "not along 'x'" in verdict(capsys)
    assert not check_cubify_bug(torch.ones(1, 1, 1, 2), "x")  # along x the bug does not show
    assert "same mesh as cubify" in verdict(capsys)
    assert check_cubify_bug(lambda: (along_y, "y"))
    assert verdict(capsys).startswith("✅")
    assert not check_cubify_bug(stub)
    assert "not implemented yet" in verdict(capsys)
    assert not check_cubify_bug(lambda: along_y)
    assert "must return (grid, axis)" in verdict(capsys)
    assert not check_cubify_bug(torch.ones(2, 2, 2), "y")
    assert "Tensor[1, D, H, W]" in verdict(capsys)
    # what the student finds: a face inside, a face missing
    good, bad = cubify(along_y), cubify_buggy(along_y)
    assert len(good[1][0]) == len(bad[1][0]) == 20


def test_chamfer(capsys):
    assert check_chamfer(chamfer_distance)
    assert verdict(capsys).startswith("✅")

    def one_way(x, y):
        return ((x[:, :, None] - y[:, None]) ** 2).sum(-1).min(2).values.mean()

    def not_squared(x, y):
        d = ((x[:, :, None] - y[:, None]) ** 2).sum(-1).sqrt()
        return (d.min(2).values.mean(1) + d.min(1).values.mean(1)).mean()

    assert not check_chamfer(one_way)
    assert "add the second term" in verdict(capsys)
    assert not check_chamfer(not_squared)
    assert "squared distances" in verdict(capsys)
    assert not check_chamfer(stub)
    assert "not implemented yet" in verdict(capsys)
