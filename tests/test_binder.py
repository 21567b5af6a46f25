"""Binder's recipe (binder/) installs the package into a fresh environment that runs the
notebooks: what repo2docker does, without Docker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

RUN_NOTEBOOKS = """
import pathlib, shutil, sys, nbclient, nbformat
out = pathlib.Path(sys.argv[1])
for path in sorted(pathlib.Path(sys.argv[2]).glob("*.ipynb")):
    if path.name == "hpc-slurm.ipynb":  # Binder has no Slurm (tests/hpc runs it)
        continue
    shutil.copy(path, out / path.name)
    nb = nbformat.read(out / path.name, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(out)}}).execute()
    print("ran", path.name, flush=True)
"""


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_binder_recipe_installs_and_runs_every_notebook(tmp_path):
    torch = pytest.importorskip("torch")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / "bin"
    env = dict(
        os.environ,
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        VIRTUAL_ENV=str(venv),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        ASYNCHPO_SMALL="1",
    )
    env.pop("PYTHONPATH", None)

    def run(*cmd: str) -> str:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
        assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    pip = str(bin_dir / "pip")
    # Binder takes torch from PyTorch's CPU index; here, the CPU build this machine has
    run(pip, "install", "--quiet", f"torch=={torch.__version__.split('+')[0]}")
    run(pip, "install", "--quiet", "-r", "binder/requirements.txt")
    run("bash", "binder/postBuild")
    run(pip, "install", "--quiet", "nbclient")  # Binder's image has Jupyter itself
    work = tmp_path / "work"
    work.mkdir()
    out = run(str(bin_dir / "python"), "-c", RUN_NOTEBOOKS, str(work), str(ROOT / "notebooks"))
    ran = {line.split()[1] for line in out.splitlines() if line.startswith("ran ")}
    assert ran == {p.name for p in (ROOT / "notebooks").glob("*.ipynb")} - {"hpc-slurm.ipynb"}
