"""The core finds extensions through entry points, and never imports one itself."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest

import asynchpo as ah
from asynchpo import extensions
from asynchpo.cli import main


@pytest.fixture
def registered(monkeypatch):
    """Two samplers registered as an installed package would: one good, one broken."""
    points = [
        EntryPoint("seeded-random", "asynchpo:RandomSampler", extensions.SAMPLERS),
        EntryPoint("not-a-sampler", "builtins:dict", extensions.SAMPLERS),
        EntryPoint("not-installed", "asynchpo_nowhere:make", extensions.SAMPLERS),
        EntryPoint("other-group", "asynchpo:GPSampler", "somewhere.else"),
    ]

    def entry_points(*, group):
        return [ep for ep in points if ep.group == group]

    monkeypatch.setattr(extensions, "entry_points", entry_points)


def test_a_study_takes_a_registered_sampler_by_its_name(registered):
    study = ah.Study({"x": ah.Float(0.0, 1.0)}, sampler="seeded-random", name="s")
    assert type(study.sampler) is ah.RandomSampler
    study.optimize(lambda p: p["x"], n_trials=3, progress=False)
    assert len(study.get_trials(["complete"])) == 3


def test_an_unknown_or_broken_sampler_name_is_refused_naming_what_is_installed(registered):
    with pytest.raises(ValueError, match=r"sampler \('not-a-sampler', 'not-installed', 'seeded"):
        ah.Study({"x": ah.Float(0.0, 1.0)}, sampler="seeded-randon")
    with pytest.raises(ValueError, match=r"'builtins:dict' .* returned dict, not a BaseSampler"):
        ah.Study({"x": ah.Float(0.0, 1.0)}, sampler="not-a-sampler")
    with pytest.raises(ValueError, match=r"'asynchpo_nowhere:make' .* failed: ModuleNotFoundError"):
        ah.Study({"x": ah.Float(0.0, 1.0)}, sampler="not-installed")


def test_the_command_line_lists_the_installed_extensions(registered, capsys):
    assert main(["extensions"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["group", "name", "package"]
    names = [line.split()[1] for line in out[2:]]
    assert names == [
        "not-a-sampler",
        "not-installed",
        "seeded-random",
    ]  # only the groups the core reads


def test_nothing_registered_is_said_so(monkeypatch, capsys):
    monkeypatch.setattr(extensions, "entry_points", lambda *, group: [])
    assert main(["extensions"]) == 0
    assert "no extension is installed" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"installed sampler \(none is installed\)"):
        ah.Study({"x": ah.Float(0.0, 1.0)}, sampler="optuna-tpe")


def test_the_core_imports_no_extension():
    code = (
        "import sys, asynchpo as ah; import asynchpo.cli, asynchpo.extensions;"
        "ah.Study({'x': ah.Float(0, 1)}, sampler='auto');"
        "asynchpo.extensions.describe();"
        "print(sorted(m for m in sys.modules if m.startswith('asynchpo_')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
