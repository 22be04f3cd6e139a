"""The package as installed: module names, supported Python versions, the CI command."""

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import fastspec

PACKAGE = Path(fastspec.__file__).parent
ROOT = PACKAGE.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_no_module_is_named_like_the_standard_library():
    """A module named like one of the standard library's shadows it for a script run from its
    folder (field report: fastspec/bench/_csv.py broke ``import csv`` there)."""
    names = {p.stem for p in _modules()} | {p.name for p in PACKAGE.rglob("*") if p.is_dir()}
    clashes = sorted(names & set(sys.stdlib_module_names))
    assert not clashes, f"rename these modules, they shadow the standard library's: {clashes}"


def test_standard_library_imports_from_the_bench_folder():
    proc = subprocess.run([sys.executable, "-c", "import csv, json, io; print('ok')"],
                          cwd=PACKAGE / "bench", capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "ok", proc.stderr


def _floor():
    spec = PYPROJECT["project"]["requires-python"]
    match = re.fullmatch(r">=\s*3\.(\d+)", spec)
    assert match, f"requires-python is {spec!r}; this test reads a '>=3.N' floor"
    return 3, int(match.group(1))


def test_requires_python_is_true():
    """The floor is the oldest version the code runs on: its syntax parses as that version's
    grammar, and the one 3.11 API the driver needs (BaseException.add_note) exists there.
    Only 3.11 is installed on this project's machine; newer versions are covered by numba's
    and numpy's own support, not tested here."""
    floor = _floor()
    assert floor >= (3, 11), "fastspec._driver calls BaseException.add_note (Python 3.11+)"
    assert sys.version_info[:2] >= floor
    for path in _modules():
        ast.parse(path.read_text(), filename=str(path), feature_version=floor)
    classifiers = [c for c in PYPROJECT["project"]["classifiers"]
                   if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)]
    assert min(int(c.rsplit(".", 1)[1]) for c in classifiers) == floor[1]
    assert hasattr(BaseException, "add_note")


def test_ci_runs_the_readme_test_command_in_a_new_environment():
    """.ci/run installs exactly what the README's test command installs, in a new virtual
    environment, and runs that command."""
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"```bash\n(pip install \"torch==[^\n]*pytest -q)\n```", readme).group(1)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "-m venv" in ci and "mktemp -d" in ci
    steps = [s.strip() for s in command.split("&&")]
    for step in steps:
        assert step in ci, f".ci/run does not run the README's {step!r}"
    extras = re.search(r'-e "\.\[([a-z,]+)\]"', command).group(1).split(",")
    assert extras == ["test"]
    test_extra = " ".join(PYPROJECT["project"]["optional-dependencies"]["test"])
    for needed in ("torch", "dask[distributed]", "matplotlib", "scikit-learn", "scipy",
                   "hypothesis"):
        assert needed in test_extra, f"the test extra misses {needed}"


def test_the_wheel_holds_what_the_readme_says():
    """README, "What the package holds": the library, fastspec.bench and fastspec.train, the
    weights; not tests/, benchmarks/ or docs/."""
    from setuptools import find_packages
    find = PYPROJECT["tool"]["setuptools"]["packages"]["find"]
    packages = set(find_packages(str(ROOT), include=find["include"]))
    assert {"fastspec", "fastspec.bench", "fastspec.train", "fastspec.models"} <= packages
    assert not {p for p in packages if p.split(".")[0] in ("tests", "benchmarks", "docs")}
    assert PYPROJECT["tool"]["setuptools"]["package-data"]["fastspec.models"] == ["weights/*.npz"]
    readme = (ROOT / "README.md").read_text()
    assert "## What the package holds" in readme


def test_bench_and_train_import_no_optional_package():
    code = ("import sys, fastspec.bench, fastspec.train, fastspec.train.data, "
            "fastspec.train.baselines; "
            "print([m for m in ('torch', 'dask', 'distributed', 'matplotlib', 'sklearn') "
            "if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr
