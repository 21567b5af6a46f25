"""Checkpoint files: written and read on the worker, under the study's checkpoint folder.

A checkpoint is one pickle file, ``trial-<number>/<seq>-<random>.pkl`` under the folder (a
local path, or any URL ``fsspec`` opens: a shared file system on HPC, object storage). The
journal records only its name and its SHA-256; a checkpoint is read back only from under the
study's own folder, and only if its bytes are the ones written, so a journal from a stranger
can never make a trial unpickle a file it points at.
"""

from __future__ import annotations

import contextlib
import hashlib
import pickle
import re
import uuid
from typing import Any

import fsspec

_NAME = re.compile(r"trial-[0-9]{1,19}/[0-9]{1,19}-[0-9a-f]{32}\.pkl")


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read back: it is missing, or not the file that was written."""


def _fs(root: str) -> tuple[Any, str]:
    fs, path = fsspec.core.url_to_fs(root)
    return fs, path.rstrip("/")


def check_writable(root: str) -> None:
    """``ValueError`` naming ``checkpoint_dir`` unless checkpoints can be written there."""
    try:
        fs, base = _fs(root)
        fs.makedirs(base, exist_ok=True)
        probe = f"{base}/.asynchpo-{uuid.uuid4().hex}"
        with fs.open(probe, "wb") as f:
            f.write(b"")
        fs.rm(probe)
    except Exception as exc:  # whatever the file system says: the run would lose its copies
        raise ValueError(
            f"checkpoint_dir: {root!r} cannot hold checkpoints ({type(exc).__name__}: {exc}); "
            "give the study a folder every worker can write, Study(..., checkpoint_dir=...)"
        ) from None


def save(obj: Any, root: str, number: int, seq: int) -> dict[str, str]:
    """Write ``obj`` as trial ``number``'s checkpoint after its report ``seq``; its name
    (relative to ``root``) and SHA-256."""
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    name = f"trial-{number}/{seq}-{uuid.uuid4().hex}.pkl"
    fs, base = _fs(root)
    fs.makedirs(f"{base}/trial-{number}", exist_ok=True)
    tmp = f"{base}/{name}.partial"
    with fs.open(tmp, "wb") as f:
        f.write(data)
    fs.mv(tmp, f"{base}/{name}")  # whole or not at all
    return {"name": name, "sha256": hashlib.sha256(data).hexdigest()}


def copy(root: str, name: str, sha256: str, number: int) -> dict[str, str]:
    """A copy of trial ``number``'s checkpoint ``name`` (checked against ``sha256``), which
    that trial never deletes: what a trial copied from it starts from stays."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise CheckpointError(f"checkpoint {name!r}: not a checkpoint's name; not read")
    fs, base = _fs(root)
    try:
        with fs.open(f"{base}/{name}", "rb") as f:
            data = f.read()
    except OSError as exc:
        raise CheckpointError(f"checkpoint {name!r} under {root}: {exc}") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise CheckpointError(
            f"checkpoint {name!r} under {root} is not the file that was written (its SHA-256 "
            "differs); not copied"
        )
    mine = f"trial-{number}/{name.split('/')[1].split('-')[0]}-{uuid.uuid4().hex}.pkl"
    fs.makedirs(f"{base}/trial-{number}", exist_ok=True)
    with fs.open(f"{base}/{mine}.partial", "wb") as f:
        f.write(data)
    fs.mv(f"{base}/{mine}.partial", f"{base}/{mine}")
    return {"name": mine, "sha256": sha256}


def remove(root: str, name: str) -> None:
    """Delete checkpoint ``name`` under ``root``, if it is still there."""
    fs, base = _fs(root)
    with contextlib.suppress(OSError):  # gone already: nothing to free
        fs.rm(f"{base}/{name}")


def load(root: str, name: str, sha256: str) -> Any:
    """The object of checkpoint ``name`` under ``root``, if its bytes hash to ``sha256``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise CheckpointError(f"checkpoint {name!r}: not a checkpoint's name; not read")
    fs, base = _fs(root)
    try:
        with fs.open(f"{base}/{name}", "rb") as f:
            data = f.read()
    except OSError as exc:
        raise CheckpointError(f"checkpoint {name!r} under {root}: {exc}") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise CheckpointError(
            f"checkpoint {name!r} under {root} is not the file that was written (its SHA-256 "
            "differs); not read"
        )
    return pickle.loads(data)
