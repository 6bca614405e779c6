"""A source checkout that was never built: the engine still works on the numpy
reference kernels and says so once."""
import os
import shutil
import subprocess
import sys

import autograd_core

SCRIPT = r"""
import sys
# an editable install's import hook would find the built package before this copy
sys.meta_path[:] = [finder for finder in sys.meta_path if "editable" not in repr(finder).lower()]
import warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    import autograd_core as ag
    import numpy as np
    assert not ag.kernels.extension_available()
    assert ag.get_backend() == "numpy"
    x = ag.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    (x @ x.T).sum().backward()
    y = ag.conv2d(ag.ones((1, 4, 4, 1)), ag.ones((3, 3, 1, 2)), padding="same")
    assert y.shape == (1, 4, 4, 2)
    try:
        ag.set_backend("c")
    except RuntimeError as error:
        assert "not built" in str(error)
    else:
        raise AssertionError("set_backend('c') accepted a missing extension")
notices = [w for w in caught if "C extension is not built" in str(w.message)]
print(len(notices), x.grad.data.tolist())
"""


def test_import_without_the_extension_falls_back_and_warns_once(tmp_path):
    source = os.path.dirname(autograd_core.__file__)
    shutil.copytree(source, tmp_path / "autograd_core",
                    ignore=shutil.ignore_patterns("_kernels*", "__pycache__"))
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRAD_CORE_")}
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, env=environment,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    count, grad = result.stdout.split(" ", 1)
    assert count == "1"
    # sum_ij (x x^T)_ij = sum_k (sum_i x_ik)^2, so d/dx_ik = 2 * (column sum k)
    assert grad.strip() == "[[6.0, 10.0, 14.0], [6.0, 10.0, 14.0]]"
