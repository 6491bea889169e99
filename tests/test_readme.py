"""Each Python block of the README runs as pasted, in a fresh interpreter."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if README.exists() else []


@pytest.mark.skipif(not BLOCKS, reason="no README beside the tests")
@pytest.mark.parametrize("number", range(len(BLOCKS)))
def test_readme_block_runs_as_pasted(number, tmp_path):
    script = tmp_path / f"block{number}.py"  # a file: register_op kernels are cached next to their source
    script.write_text(BLOCKS[number])
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, NBGRAD_QUIET="1"))
    assert done.returncode == 0, done.stderr[-3000:]
