"""Installs as they are: read-only package folders, progress bars."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastspec

PACKAGE = Path(fastspec.__file__).parent

_READ_ONLY = """
import sys, warnings
sys.dont_write_bytecode = True
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import numpy as np, fastspec, fastspec._jit as jit
print(jit.CACHE_AVAILABLE, any("NUMBA_CACHE_DIR" in str(w.message) for w in caught))
model = fastspec.ARModel(lambda c: np.full(c.shape + (2,), 0.5), n=5, q=2)
print(fastspec.sample(model, n_samples=2, seed=0).samples.shape)
"""


def test_read_only_install_imports_and_samples(tmp_path):
    # The package folder and $HOME read-only, NUMBA_CACHE_DIR unset: numba has no
    # cache location, so it would refuse to decorate the kernels at import.
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux) to mount folders read-only")
    home = tmp_path / "home"
    home.mkdir()
    ro = " && ".join(f"mount --bind {p} {p} && mount -o remount,bind,ro {p}"
                     for p in (PACKAGE, home))
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["HOME"] = str(home)
    probe = subprocess.run(["unshare", "-r", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("unprivileged mount namespaces are not available here")
    out = subprocess.run(["unshare", "-r", "--mount", "bash", "-c",
                          f"{ro} && cd {tmp_path} && {sys.executable} -c '{_READ_ONLY}'"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[:2] == ["False True", "(2, 5)"]


def test_progress_bar_reports_and_changes_nothing(capsys):
    model = fastspec.models.CurieWeiss(n=64)
    quiet = fastspec.sample(model, n_samples=3, seed=4)
    shown = fastspec.sample(model, n_samples=3, seed=4, progress=True)
    np.testing.assert_array_equal(quiet.samples, shown.samples)
    err = capsys.readouterr().err
    assert "fastspec block" in err and "rounds" in err
