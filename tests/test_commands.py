"""The command-line tools as a newcomer meets them: outputs, dependencies, timing lines."""

import importlib.util

import pytest

from fastspec import demo
from fastspec.bench import __main__ as bench


def test_bench_writes_to_a_new_folder_unless_told(tmp_path, monkeypatch):
    """Field report: a quick study run from the repository root overwrote the committed
    docs/scaling.*, because ``--out`` defaulted to ``docs``."""
    monkeypatch.chdir(tmp_path)
    written = []
    monkeypatch.setattr(bench, "_run", lambda a: written.append(a.out))
    bench.main(["scaling", "--quick"])
    bench.main(["scaling", "--quick"])
    bench.main(["srs", "--out", "docs"])
    first, second, asked = written
    assert first != second and "docs" not in (first, second)
    assert first.startswith("fastspec-bench") and (tmp_path / first).is_dir()
    assert not any((tmp_path / first).iterdir())          # new and empty before the run
    assert asked == "docs"
    with pytest.raises(SystemExit):
        bench.main(["plot"])                              # reads a folder: must be named


def _no(module_name, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == module_name else real(name, *a))


@pytest.mark.parametrize("missing, argv", [
    ("sklearn", ["digits", "--samples", "2"]),
    ("matplotlib", ["digits", "--model", "diffusion", "--out", "x.png"]),
    ("matplotlib", ["text", "--out", "x.png"]),
])
def test_demo_checks_its_dependencies_before_any_work(missing, argv, monkeypatch):
    """Field report: the digits demo found matplotlib missing after 50 s of sampling."""
    _no(missing, monkeypatch)
    calls = []
    monkeypatch.setattr(demo, "_sample", lambda *a, **k: calls.append(a))
    with pytest.raises(SystemExit) as stop:
        demo.main(argv)
    assert not calls
    pip = {"sklearn": "scikit-learn"}.get(missing, missing)
    assert pip in str(stop.value.code) and "fastspec[demo]" in str(stop.value.code)


def test_demo_says_which_part_of_the_wall_clock_is_compilation(capsys, monkeypatch):
    """Field report: the first run printed "wall-clock 20.0 s, of which oracle 1.9 s" without
    saying that the rest was one-time compilation."""
    import numpy as np
    from numba import njit

    @njit(cache=False)
    def fresh_kernel(x):            # compiled on its first call, inside the timed sample
        return x + 1

    real = demo._sample

    def compiling_sample(model, **kwargs):
        fresh_kernel(np.arange(3))
        return real(model, **kwargs)

    monkeypatch.setattr(demo, "_sample", compiling_sample)
    demo.main(["--n", "16", "--samples", "1"])
    out = capsys.readouterr().out
    assert "one-time compilation:" in out and "later runs skip it" in out
    monkeypatch.setattr(demo, "_sample", real)
    demo.main(["--n", "16", "--samples", "1"])
    assert "no compilation" in capsys.readouterr().out
