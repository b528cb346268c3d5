"""The lesson-00 grader: a correct answer passes, wrong ones get a hint without the answer."""

from coursekit.exercises.tour import PANOPTIC_DERIVABLE, check_derivable_from_panoptic


def test_correct_answer(capsys):
    assert check_derivable_from_panoptic(lambda: {"semantic", "instances", "boxes"})
    assert capsys.readouterr().out.startswith("✅")
    assert PANOPTIC_DERIVABLE == {"semantic", "instances", "boxes"}


def test_extra_output_gets_its_reason(capsys):
    assert not check_derivable_from_panoptic(lambda: {"semantic", "instances", "boxes", "depth"})
    out = capsys.readouterr().out
    assert out.startswith("❌ 'depth' cannot be derived") and "no distance" in out


def test_missing_output_hint_does_not_give_the_set(capsys):
    assert not check_derivable_from_panoptic(lambda: ["semantic"])
    out = capsys.readouterr().out
    assert "2 derivable output(s) missing" in out and "'boxes'" in out
    assert "instances" not in out  # one hint at a time, never the whole answer


def test_bad_answers(capsys):
    assert not check_derivable_from_panoptic(lambda: {"colour"})
    assert "unknown output names ['colour']" in capsys.readouterr().out
    assert not check_derivable_from_panoptic(lambda: 3)
    assert "expected a set of names, got int" in capsys.readouterr().out

    def stub():
        raise NotImplementedError("exercise")

    assert not check_derivable_from_panoptic(stub)
    assert "not implemented yet" in capsys.readouterr().out
