"""Shared by tests/ and lessons/: one thread (stable float sums), and nbval fixes."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TQDM_DISABLE", "1")

try:  # nbval runs cells with store_history=False, so a trailing ';' is ignored: fix that.
    from nbval.kernel import RunningKernel

    def _execute_cell_input(self, cell_input, allow_stdin=None):
        return self.kc.execute(
            cell_input, allow_stdin=allow_stdin, stop_on_error=False, store_history=True
        )

    RunningKernel.execute_cell_input = _execute_cell_input
except ImportError:  # nbval is only in the [test] extra
    pass
