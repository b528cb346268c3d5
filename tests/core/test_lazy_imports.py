"""``coursekit`` and ``coursekit.exercises`` name their public functions lazily (PEP 562):
every name resolves to the real object, an unknown name is a clear AttributeError, and the
package, the CLI and the student/grading modules import without torch."""

import importlib
import subprocess
import sys

import pytest

import coursekit
import coursekit.exercises as exercises


@pytest.mark.parametrize("package", [coursekit, exercises])
def test_every_lazy_name_is_the_real_object(package):
    assert sorted(package.__all__) == sorted({*package._LAZY, *(
        ["__version__"] if package is coursekit else [])})
    for name, module in package._LAZY.items():
        real = getattr(importlib.import_module(f"{package.__name__}.{module}"), name)
        assert getattr(package, name) is real, name


def test_the_hand_case():
    from coursekit import pick_device, seed_everything
    from coursekit.device import pick_device as device_pick
    from coursekit.exercises import check_oks
    from coursekit.exercises.pose import check_oks as pose_check_oks
    from coursekit.seed import seed_everything as seed_seed

    assert (pick_device, seed_everything, check_oks) == (device_pick, seed_seed, pose_check_oks)


@pytest.mark.parametrize("package", [coursekit, exercises])
def test_unknown_name_is_a_clear_error(package):
    with pytest.raises(AttributeError, match=f"module '{package.__name__}' has no attribute "
                                             "'no_such_name'"):
        package.no_such_name  # noqa: B018


def test_package_cli_and_grading_import_without_torch():
    code = ("import sys, coursekit, coursekit.cli, coursekit.exercises,"
            " coursekit.exercises.student, coursekit.exercises.grade;"
            " print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"
