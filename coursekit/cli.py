"""The ``coursekit`` command: doctor, lab, test, train, install-checkpoint, bench, student, grade,
render, nbgrader.

``coursekit train NAME`` writes a run folder (``runs/NAME/``, or ``--out DIR``), never the
shipped ``data/checkpoints/``; ``coursekit install-checkpoint runs/NAME`` is the one command
that replaces a shipped checkpoint (a full run only, with a backup of the old one).
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from coursekit.registry import TRAINERS

REPO = Path(__file__).resolve().parent.parent


def _resolve(target: str):
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)


def lessons_dir() -> Path:
    return REPO / "lessons"


def cmd_doctor(args: argparse.Namespace) -> int:
    import torch

    from coursekit import __version__
    from coursekit.checkpoints import CheckpointError, checkpoint_dir, read_manifest, verify
    from coursekit.device import describe_device, pick_device

    ok = True
    print(f"coursekit   {__version__}")
    print(f"python      {platform.python_version()} ({sys.executable})")
    required = ["torch", "torchvision", "numpy", "matplotlib"]
    for name in [*required, "jupyterlab", "ipywidgets", "nbval"]:
        try:
            version = importlib.import_module(name).__version__
        except ImportError:
            extra = name in {"jupyterlab", "nbval"}
            version = "not installed" + (" (needed: pip install -e .[lab,test])" if extra else "")
            ok = ok and name not in required
        print(f"{name:<11} {version}")
    try:
        device = pick_device()
        print(f"device      {describe_device(device)}  (override with COURSEKIT_DEVICE)")
        torch.ones(2, device=device).sum().item()
    except ValueError as err:
        print(f"device      ERROR: {err}")
        ok = False
    manifest = read_manifest()
    print(f"checkpoints {checkpoint_dir()}  ({len(manifest)} in manifest)")
    for name in sorted(manifest):
        try:
            path = verify(name)
            size = f"{path.stat().st_size / 1e6:6.2f} MB"
            print(f"  ok        {name:<14} {size}  sha256 {manifest[name]['sha256'][:12]}")
        except CheckpointError as err:
            print(f"  FAILED    {name:<14} {err}")
            ok = False
    for name in sorted(set(TRAINERS) - set(manifest)):  # a lesson that needs it will say so too
        print(f"  missing   {name:<14} not trained yet: coursekit train {name}, "
              f"then coursekit install-checkpoint runs/{name}")
    notebooks = sorted(lessons_dir().glob("[0-9][0-9]_*.ipynb")) if lessons_dir().is_dir() else []
    print(f"lessons     {len(notebooks)} found in {lessons_dir()}")
    for nb in notebooks:
        print(f"  {nb.name}")
    print("status      " + ("all good" if ok else "problems found (see above)"))
    return 0 if ok else 1


def _shown(path: Path) -> str:
    """``path`` relative to the current directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def cmd_train(args: argparse.Namespace) -> int:
    from coursekit.seed import seed_everything
    from coursekit.train import distributed_rank, finish_distributed, process_rank, run_dir_for

    if args.name not in TRAINERS:
        known = ", ".join(sorted(TRAINERS)) or "none yet"
        if process_rank() == 0:
            print(f"error: unknown model {args.name!r}; known: {known}", file=sys.stderr)
        return 2
    rank, _ = distributed_rank()  # under torchrun: join the group; only rank 0 reports
    try:
        run = run_dir_for(args.name, args.out, args.quick)
    except ValueError as err:
        if rank == 0:
            print(f"error: {err}", file=sys.stderr)
        finish_distributed()
        return 2
    seed_everything(args.seed)
    metrics = _resolve(TRAINERS[args.name])(run, args.seed, args.quick)
    if rank == 0:
        shown = _shown(run)
        print(f"trained {args.name}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
        print(f"wrote {shown}/{args.name}.pt and its entry in {shown}/manifest.json "
              f"(the shipped checkpoint is unchanged)")
        if args.quick:
            print("a --quick run is a smoke test: install-checkpoint refuses it")
        else:
            print(f"to replace the shipped checkpoint: coursekit install-checkpoint {shown}")
    finish_distributed()
    return 0


def cmd_install_checkpoint(args: argparse.Namespace) -> int:
    from coursekit.checkpoints import CheckpointError, install_checkpoint, read_manifest

    try:
        done = install_checkpoint(args.run, args.name)
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    name = done.path.stem
    entry = read_manifest(done.path.parent)[name]
    print(f"installed {name}: {done.path}  sha256 {entry['sha256'][:12]}  "
          + ", ".join(f"{k}={v:.4f}" for k, v in entry["metrics"].items()))
    if done.backup is not None:
        print(f"previous checkpoint kept in {done.backup}")
    if done.backup_entry is not None:
        print(f"previous manifest entry kept in {done.backup_entry}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from coursekit.bench import run_benchmarks

    return run_benchmarks(names=args.only, quick=args.quick, markdown=args.markdown,
                          lessons=args.lessons)


def _script(name: str, extra: list[str]) -> int:
    script = REPO / "scripts" / name
    if not script.exists():
        print(f"error: {script} not found (coursekit {name} needs a checkout of the repository)",
              file=sys.stderr)
        return 2
    return subprocess.call(["bash", str(script), *extra])


def cmd_lab(args: argparse.Namespace) -> int:
    if shutil.which("jupyter") is None and not (Path(sys.executable).parent / "jupyter").exists():
        print("error: JupyterLab is not installed: pip install -e '.[lab]' or run scripts/lab",
              file=sys.stderr)
        return 2
    jupyter = str(Path(sys.executable).parent / "jupyter")
    cmd = [jupyter, "lab", f"--notebook-dir={lessons_dir()}", "--ServerApp.ip=127.0.0.1",
           *args.extra]
    print("starting JupyterLab on 127.0.0.1 with token authentication:", " ".join(cmd))
    return subprocess.call(cmd)


def cmd_test(args: argparse.Namespace) -> int:
    return _script("test", args.extra)


def cmd_student(args: argparse.Namespace) -> int:
    from coursekit.exercises.student import write_student_notebooks

    out = Path(args.out) if args.out else None
    written = write_student_notebooks(lessons_dir(), out, force=args.force)
    for line in written:
        print(line)
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    import json

    from coursekit.exercises.grade import grade, report_card

    paths = args.paths or [str(lessons_dir() / "student")]
    try:
        results = grade(paths, timeout=args.timeout)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(results, indent=1, ensure_ascii=False) if args.json else report_card(results))
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from coursekit.render import render_site, site_problems

    out = Path(args.out)
    written = render_site(lessons_dir(), out)
    problems = site_problems(out, lessons_dir())
    for line in problems:
        print(f"problem: {line}", file=sys.stderr)
    print(f"wrote {len(written)} pages to {out}/ (open {out / 'index.html'})")
    return 1 if problems else 0


def cmd_nbgrader(args: argparse.Namespace) -> int:
    from coursekit.exercises.nbgrader import write_nbgrader_course

    written = write_nbgrader_course(lessons_dir(), args.out)
    for path in written:
        print(f"wrote {path}")
    print(f"an nbgrader course in {args.out}/ (cd there; nbgrader generate_assignment NN_name)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coursekit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    doctor = sub.add_parser("doctor", help="versions, device, checkpoints, lessons")
    doctor.set_defaults(func=cmd_doctor)
    lab = sub.add_parser("lab", help="open JupyterLab on lessons/ (127.0.0.1, token auth)")
    lab.add_argument("extra", nargs=argparse.REMAINDER)
    lab.set_defaults(func=cmd_lab)
    test = sub.add_parser("test", help="run the whole test suite (scripts/test)")
    test.add_argument("extra", nargs=argparse.REMAINDER)
    test.set_defaults(func=cmd_test)
    train = sub.add_parser(
        "train", help="train a lesson model into a run folder (runs/NAME/)",
        description="Train a lesson model from scratch into a run folder: NAME.pt, its "
                    "manifest.json entry (sha256, size, command, seed, metrics, quick) and the "
                    "resumable state of a stopped run. The shipped checkpoints in "
                    "data/checkpoints are never touched: replace one with "
                    "`coursekit install-checkpoint runs/NAME` after a full (not --quick) run. "
                    "Under torchrun only rank 0 writes and reports.")
    train.add_argument("name", help=f"the model: {', '.join(sorted(TRAINERS))}")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--quick", action="store_true",
                       help="a few steps only (smoke test; such a run cannot be installed)")
    train.add_argument("--out", metavar="DIR",
                       help="the run folder (default: runs/NAME under the current directory)")
    train.set_defaults(func=cmd_train)
    install = sub.add_parser(
        "install-checkpoint", help="replace a shipped checkpoint with a finished training run",
        description="Copy RUN/NAME.pt (what `coursekit train NAME` wrote) into the shipped "
                    "folder (data/checkpoints) and update its manifest.json, atomically. The "
                    "old checkpoint and its manifest entry are kept in "
                    "data/checkpoints/backup/NAME-<timestamp>.pt/.json. A --quick run, or a "
                    "file that does not match its sha256, is refused.")
    install.add_argument("run", metavar="RUN", help="the run folder, e.g. runs/unet")
    install.add_argument("--name", help="which model, when the run folder holds several")
    install.set_defaults(func=cmd_install_checkpoint)
    bench = sub.add_parser("bench", help="benchmark table (ours vs the reference)")
    bench.add_argument("--only", nargs="*", help="benchmark names to run")
    bench.add_argument("--quick", action="store_true")
    bench.add_argument("--markdown", action="store_true", help="print a Markdown table")
    bench.add_argument("--lessons", action="store_true",
                       help="also time every lesson from a fresh kernel")
    bench.set_defaults(func=cmd_bench)
    student = sub.add_parser(
        "student", help="write exercise versions of the lessons (never overwrites your work)")
    student.add_argument("--out", help="folder (default: lessons/student)")
    student.add_argument("--force", action="store_true",
                         help="replace changed notebooks, keeping a timestamped backup")
    student.set_defaults(func=cmd_student)
    grade = sub.add_parser(
        "grade", help="run a student's notebooks headless and print a report card",
        description="Run each notebook from a fresh kernel (in memory: your files are never "
                    "written) and report every exercise check: passed, failed (with the "
                    "grader's hint), not attempted, or not run (time limit).")
    grade.add_argument("paths", nargs="*", metavar="PATH",
                       help="notebooks or folders of them (default: lessons/student)")
    grade.add_argument("--timeout", type=float, default=300.0,
                       help="seconds per notebook (default 300)")
    grade.add_argument("--json", action="store_true", help="one JSON object per exercise")
    grade.set_defaults(func=cmd_grade)
    render = sub.add_parser(
        "render", help="the course as a static HTML site (contents, lessons, figures)")
    render.add_argument("--out", default="site", help="folder (default: ./site)")
    render.set_defaults(func=cmd_render)
    nbg = sub.add_parser(
        "nbgrader", help="write the lessons as an nbgrader course (source/ + nbgrader_config.py)",
        description="Each lesson with exercises becomes source/NN_name/NN_name.ipynb: each "
                    "exercise split into an autograded answer cell and a locked check cell "
                    "(1 point), nbgrader metadata set. Needs coursekit[classroom] to use.")
    nbg.add_argument("--out", default="course", help="the course folder (default: ./course)")
    nbg.set_defaults(func=cmd_nbgrader)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
