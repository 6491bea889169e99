"""Start-up cost in a fresh interpreter (asv ``timeraw_``: each sample is a new process).

Numba's on-disk cache is warmed in ``setup`` (the same code runs once in a child
process first), so these measure a warm-cache start: import, plus loading the
cached kernels that the first forward and backward need, not compilation.
"""

import subprocess
import sys
import textwrap

from ._common import FRAMEWORKS, import_framework

IMPORT = "import {framework} as fw"

# No backslashes: asv pastes this into a triple-quoted string in the child.
FIRST_BACKWARD = """
import {framework} as fw
x = fw.ones(4, dtype=fw.float32, requires_grad=True)
loss = (x * x + 1.0).sum()
loss.backward()
assert float(x.grad.sum()) == 8.0
"""


class Startup:
    params = [FRAMEWORKS]
    param_names = ["framework"]
    repeat = 5
    timeout = 240

    def setup(self, framework):
        import_framework(framework)  # skips torch when it is not importable
        code = textwrap.dedent(FIRST_BACKWARD.format(framework=framework))
        subprocess.run([sys.executable, "-c", code], check=True)  # warm the on-disk caches

    def timeraw_import(self, framework):
        """``import <framework>`` in a fresh interpreter."""
        return IMPORT.format(framework=framework)

    def timeraw_import_and_first_backward(self, framework):
        """Import, then one small forward + backward, in a fresh interpreter (warm cache)."""
        return FIRST_BACKWARD.format(framework=framework)
