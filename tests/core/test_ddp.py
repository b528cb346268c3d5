"""Data parallel training: two torchrun ranks on halves of a batch = one process on all of it.

``fit`` wraps the model in DistributedDataParallel under torchrun, which averages the ranks'
gradients. With a loss that is a mean over the batch, two ranks that each see half of the
same global batch take exactly the single process's steps (up to float rounding): the test
trains a small conv net both ways (gloo on CPU) and compares the weights.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SCRIPT = '''
import sys
import torch
from torch import nn
from coursekit.train import distributed_rank, finish_distributed, fit

rank, world = distributed_rank()
torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1))
g = torch.Generator().manual_seed(1)
images, targets = torch.randn(6, 8, 3, 16, 16, generator=g), torch.randn(6, 8, 2, 16, 16,
                                                                         generator=g)
per_rank = 8 // world


def batch_fn(step):  # this rank's share of the global batch of step `step`
    part = slice(rank * per_rank, (rank + 1) * per_rank)
    return images[step, part], targets[step, part]


def loss_fn(net, batch):
    x, y = batch
    return ((net(x) - y) ** 2).mean()


fit(model, batch_fn, loss_fn, steps=6, lr=1e-2, progress=False)
if rank == 0:
    torch.save(model.state_dict(), sys.argv[1])
finish_distributed()
'''


@pytest.mark.slow
def test_two_ranks_reach_the_single_process_weights(tmp_path):
    pytest.importorskip("torch.distributed.run")
    import torch  # here, not at the top: the lane that runs this test collects without torch
    script = tmp_path / "ddp_fit.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env.pop("WORLD_SIZE", None)
    one = subprocess.run([sys.executable, str(script), str(tmp_path / "one.pt")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node", "2", str(script), str(tmp_path / "two.pt")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    a = torch.load(tmp_path / "one.pt", weights_only=True)
    b = torch.load(tmp_path / "two.pt", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5)
    torch.manual_seed(0)  # the script's initial weights: training moved them (not a trivial match)
    start = torch.nn.Conv2d(3, 8, 3, padding=1).weight.detach()
    assert (a["0.weight"] - start).abs().max() > 1e-3
