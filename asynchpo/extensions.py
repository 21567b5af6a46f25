"""Extensions the core finds through entry points, never by importing them.

A package plugs a sampler in under the entry-point group ``asynchpo.samplers``: the entry
point's name is what ``Study(sampler="<name>")`` accepts, and its object is a callable that
takes no argument and returns a :class:`~asynchpo.samplers.BaseSampler`. In the package's
``pyproject.toml``::

    [project.entry-points."asynchpo.samplers"]
    optuna-tpe = "asynchpo_optuna:tpe"

``asynchpo extensions`` lists what is installed.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from asynchpo._checks import short
from asynchpo.samplers import BaseSampler

#: The entry-point group of samplers.
SAMPLERS = "asynchpo.samplers"

#: Every group the core reads.
GROUPS = (SAMPLERS,)


def installed(group: str = SAMPLERS) -> dict[str, EntryPoint]:
    """The entry points of ``group`` that installed packages declare, by name."""
    return {ep.name: ep for ep in entry_points(group=group)}


def sampler(name: str) -> BaseSampler:
    """The sampler an installed extension registered as ``name``.

    Raises:
        ValueError: No installed package registered ``name`` (the message lists those
            that are); or its factory failed, or did not return a sampler.
    """
    found = installed(SAMPLERS)
    if name not in found:
        known = ", ".join(repr(n) for n in sorted(found)) or "none is installed"
        raise ValueError(
            f'sampler must be a BaseSampler, "auto", or the name of an installed sampler '
            f"({known}), got {short(name)}"
        )
    ep = found[name]
    try:
        made = ep.load()()
    except Exception as error:  # a broken or half-installed extension
        raise ValueError(
            f"sampler {name!r}: the entry point {ep.value!r} of {_package(ep)} failed: "
            f"{type(error).__name__}: {error}"
        ) from error
    if not isinstance(made, BaseSampler):
        raise ValueError(
            f"sampler {name!r}: the entry point {ep.value!r} of {_package(ep)} returned "
            f"{type(made).__name__}, not a BaseSampler"
        )
    return made


def _package(ep: EntryPoint) -> str:
    dist = ep.dist
    return f"{dist.name} {dist.version}" if dist is not None else "an unknown package"


def describe() -> list[tuple[str, str, str]]:
    """Each installed extension point as (group, name, package and version)."""
    return [
        (group, name, _package(ep))
        for group in GROUPS
        for name, ep in sorted(installed(group).items())
    ]
