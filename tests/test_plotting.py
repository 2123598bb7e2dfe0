"""bayes_mem.plotting.pyplot: Agg in a fresh process, the process's own backend kept otherwise
(a notebook's inline figures must still show after an evaluation or a report draws)."""

from __future__ import annotations

import subprocess
import sys


def test_a_fresh_process_draws_on_agg_without_a_display():
    code = ("import os; os.environ.pop('MPLBACKEND', None); os.environ.pop('DISPLAY', None)\n"
            "from bayes_mem.plotting import pyplot\n"
            "pyplot(); import matplotlib; print(matplotlib.get_backend().lower())")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "agg"


def test_a_chosen_backend_is_kept():
    code = ("import matplotlib.pyplot as plt; plt.switch_backend('svg')\n"
            "from bayes_mem.plotting import pyplot\n"
            "assert pyplot() is plt\n"
            "import matplotlib; print(matplotlib.get_backend().lower())")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "svg"
