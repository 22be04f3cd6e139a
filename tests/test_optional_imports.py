"""Optional dependencies stay optional: ``import fastspec`` does not import torch."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_fastspec_does_not_import_torch():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    code = ("import fastspec, fastspec.schedules, fastspec.models, sys; "
            "assert fastspec.__file__.startswith(sys.argv[1]), fastspec.__file__; "
            "assert 'torch' not in sys.modules, 'import fastspec imported torch'")
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_import_fastspec_does_not_import_dask():
    # fastspec.cluster imports dask only when its functions run.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    code = ("import fastspec, fastspec.cluster, sys; "
            "assert fastspec.__file__.startswith(sys.argv[1]), fastspec.__file__; "
            "loaded = [m for m in ('dask', 'distributed') if m in sys.modules]; "
            "assert not loaded, f'import fastspec imported {loaded}'")
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
