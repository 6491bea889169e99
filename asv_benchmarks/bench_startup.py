"""Start-up cost in a fresh interpreter (asv ``timeraw_``: each sample is a new process).

``Startup`` measures a warm cache: its ``setup`` runs the same code once in a
child process first, so a sample is import plus loading the cached kernels that
the first forward and backward need. ``ColdStartup`` points nbgrad's cache at a
new empty folder in each sample: it measures compilation, as on a fresh install.
"""

import subprocess
import sys
import textwrap

from ._common import FRAMEWORKS, import_framework

IMPORT = "import {framework} as fw"

# No backslashes: asv pastes these into a triple-quoted string in the child.
MLP_BACKWARD = """
import {framework} as fw
x = fw.randn(32, 16)
w1 = fw.randn(16, 32, requires_grad=True)
w2 = fw.randn(32, 1, requires_grad=True)
loss = ((x @ w1).relu() @ w2).pow(2).mean()
loss.backward()
assert w1.grad is not None
"""

# The first training step of ``python -m nbgrad.examples.mlp`` with its defaults.
EXAMPLE_STEP = """
import nbgrad as nb
import nbgrad.nn.functional as F
from nbgrad.examples.data import load_digits
x_train, y_train, _, _ = load_digits()
model = nb.nn.Sequential(nb.nn.Linear(64, 64), nb.nn.ReLU(), nb.nn.Linear(64, 10))
optimizer = nb.optim.Adam(model.parameters(), lr=0.01)
optimizer.zero_grad()
F.cross_entropy(model(x_train[:32]), y_train[:32]).backward()
optimizer.step()
"""

EMPTY_CACHE = """
import os
import tempfile
os.environ["NBGRAD_CACHE_DIR"] = tempfile.mkdtemp()
"""


class Startup:
    params = [FRAMEWORKS]
    param_names = ["framework"]
    repeat = 5
    timeout = 240

    def setup(self, framework):
        import_framework(framework)  # skips torch when it is not importable
        code = MLP_BACKWARD.format(framework=framework) + (EXAMPLE_STEP if framework == "nbgrad" else "")
        subprocess.run([sys.executable, "-c", textwrap.dedent(code)], check=True)  # warm the on-disk caches

    def timeraw_import(self, framework):
        """(a) ``import <framework>`` in a fresh interpreter."""
        return IMPORT.format(framework=framework)

    def timeraw_import_and_first_mlp_backward(self, framework):
        """(b) Import, then a small MLP loss forward and backward (warm cache)."""
        return MLP_BACKWARD.format(framework=framework)



class ExampleStartup:
    """The MLP example is nbgrad's: timed for nbgrad only."""

    params = [["nbgrad"]]
    param_names = ["framework"]
    repeat = Startup.repeat
    timeout = Startup.timeout
    setup = Startup.setup

    def timeraw_example_first_step(self, framework):
        """(d) The MLP example's first training step, data loading included (warm cache)."""
        return EXAMPLE_STEP


class ColdStartup:
    """The same with an empty cache: everything the code needs is compiled (tens of seconds)."""

    params = [["nbgrad"]]
    param_names = ["framework"]
    repeat = 1
    number = 1
    timeout = 600

    def timeraw_import_and_first_mlp_backward(self, framework):
        """(c) Import and the first MLP backward, compiling everything they need."""
        return EMPTY_CACHE + MLP_BACKWARD.format(framework=framework)

    def timeraw_example_first_step(self, framework):
        """(d) The MLP example's first step, compiling everything it needs."""
        return EMPTY_CACHE + EXAMPLE_STEP
