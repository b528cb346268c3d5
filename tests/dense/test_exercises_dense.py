import torch

from coursekit.dense import end_point_error, scale_invariant_loss
from coursekit.exercises.dense import check_end_point_error, check_scale_invariant_loss


def test_correct_solutions_pass(capsys):
    assert check_scale_invariant_loss(lambda p, t, lam: scale_invariant_loss(p, t, lam=lam))
    assert check_end_point_error(end_point_error)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert all(line.startswith("✅ correct") for line in out)


def test_missing_second_term(capsys):
    def first_term_only(p, t, lam):
        return ((p - t) ** 2).flatten(1).mean(1).mean()

    assert not check_scale_invariant_loss(first_term_only)
    assert "second term" in capsys.readouterr().out


def test_whole_batch_as_one_image(capsys):
    def wrong(p, t, lam):
        d = (p - t).flatten()
        return (d**2).mean() - lam * d.mean() ** 2
    assert not check_scale_invariant_loss(wrong)
    assert "per image" in capsys.readouterr().out


def test_squared_epe_and_l1(capsys):
    assert not check_end_point_error(lambda p, t: ((p - t) ** 2).sum(1).mean())
    assert "square root" in capsys.readouterr().out
    assert not check_end_point_error(lambda p, t: (p - t).abs().mean())
    assert "Euclidean" in capsys.readouterr().out


def test_stub_and_exception_are_reported(capsys):
    def stub(p, t):
        raise NotImplementedError("exercise")
    assert not check_end_point_error(stub)
    assert "not implemented yet" in capsys.readouterr().out
    assert not check_scale_invariant_loss(lambda p, t, lam: torch.zeros(3).sum() + p.view(7))
    out = capsys.readouterr().out
    assert out.startswith("❌") and "RuntimeError" in out


def test_checks_leave_the_global_rng_alone(capsys):
    # a check runs inside the student's seeded notebook: it must not shift the random stream
    torch.manual_seed(0)
    before = torch.get_rng_state()
    check_scale_invariant_loss(lambda p, t, lam: scale_invariant_loss(p, t, lam=lam))
    check_end_point_error(end_point_error)
    assert torch.equal(torch.get_rng_state(), before)
