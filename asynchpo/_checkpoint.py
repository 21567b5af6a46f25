"""Checkpoint files: written and read on the worker, under the study's checkpoint folder.

A checkpoint is one pickle file, ``trial-<number>/<seq>-<random>.pkl`` under the folder (a
local path, or any URL ``fsspec`` opens: a shared file system on HPC, object storage). The
journal records only its name and its keyed SHA-256 (an HMAC, with a key of this user's:
``$ASYNCHPO_CHECKPOINT_KEY``, else ``~/.asynchpo/checkpoint.key``, made on first use). A
checkpoint is read back only from under the study's own folder, and only if its bytes are
the ones this user's trials wrote: a study and checkpoints from a stranger are never
unpickled, even when they agree with each other.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import pickle
import re
import secrets
import uuid
from typing import Any

import fsspec

_NAME = re.compile(r"trial-[0-9]{1,19}/[0-9]{1,19}-[0-9a-f]{32}\.pkl")


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read back: it is missing, or not a file this user's trials wrote."""


def _key() -> bytes:
    """This user's checkpoint key (workers on other machines need the same: a shared home,
    or ``ASYNCHPO_CHECKPOINT_KEY`` in their environment)."""
    given = os.environ.get("ASYNCHPO_CHECKPOINT_KEY")
    if given:
        return given.encode()
    path = os.path.join(os.path.expanduser("~"), ".asynchpo", "checkpoint.key")
    try:
        with open(path, "rb") as f:
            return f.read().strip()
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        with open(path, "rb") as f:
            return f.read().strip()
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_hex(32).encode())
    with open(path, "rb") as f:
        return f.read().strip()


def digest(data: bytes) -> str:
    """The keyed SHA-256 of a checkpoint's bytes."""
    return hmac.new(_key(), data, hashlib.sha256).hexdigest()


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
    return {"name": name, "sha256": digest(data)}


def _read(root: str, name: str, sha256: str) -> bytes:
    """The bytes of checkpoint ``name`` under ``root``, if this user's trials wrote them."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise CheckpointError(f"checkpoint {name!r}: not a checkpoint's name; not read")
    fs, base = _fs(root)
    try:
        with fs.open(f"{base}/{name}", "rb") as f:
            data: bytes = f.read()
    except OSError as exc:
        raise CheckpointError(f"checkpoint {name!r} under {root}: {exc}") from None
    if not hmac.compare_digest(digest(data), sha256):
        raise CheckpointError(
            f"checkpoint {name!r} under {root} is not a file this user's trials wrote (its "
            "keyed SHA-256 differs); not read"
        )
    return data


def copy(root: str, name: str, sha256: str, number: int) -> dict[str, str]:
    """A copy of trial ``number``'s checkpoint ``name`` (checked against ``sha256``), which
    that trial never deletes: what a trial copied from it starts from stays."""
    data = _read(root, name, sha256)
    fs, base = _fs(root)
    mine = f"trial-{number}/{name.split('/')[1].split('-')[0]}-{uuid.uuid4().hex}.pkl"
    fs.makedirs(f"{base}/trial-{number}", exist_ok=True)
    with fs.open(f"{base}/{mine}.partial", "wb") as f:
        f.write(data)
    fs.mv(f"{base}/{mine}.partial", f"{base}/{mine}")
    return {"name": mine, "sha256": sha256}


def check_found(root: str, waiting: dict[int, str]) -> None:
    """``ValueError`` naming ``checkpoint_dir`` when trials are waiting to go on from
    checkpoints (``waiting``: trial number -> checkpoint name) and none of them is under
    ``root``: the study was run with another folder, or the files are gone. (Some missing:
    those trials fail as they resume, the others go on.) At most the 20 newest are looked
    for, one call each, after one look at the folder itself, so that a study of thousands
    of paused trials on a remote file system starts at once."""
    if not waiting:
        return
    fs, base = _fs(root)
    if fs.exists(base):
        newest = sorted(waiting, reverse=True)[:20]
        names = [waiting[n] for n in newest if _NAME.fullmatch(waiting[n])]
        if any(fs.exists(f"{base}/{name}") for name in names):
            return
    number, name = next(iter(waiting.items()))
    raise ValueError(
        f"checkpoint_dir: {len(waiting)} trial(s) wait to go on from checkpoints, and none "
        f"is under the default folder {root!r} (trial {number}'s is {name!r}); give the "
        "study the folder it ran with, e.g. Study.load(..., checkpoint_dir=...), or, if "
        "those files are gone for good, this folder explicitly (checkpoint_dir="
        f"{root!r}): the trials then fail as they resume and the study goes on"
    )


def remove(root: str, name: str) -> None:
    """Delete checkpoint ``name`` under ``root``, if it is still there."""
    fs, base = _fs(root)
    with contextlib.suppress(OSError):  # gone already: nothing to free
        fs.rm(f"{base}/{name}")


def load(root: str, name: str, sha256: str) -> Any:
    """The object of checkpoint ``name`` under ``root``, if this user's trials wrote it."""
    return pickle.loads(_read(root, name, sha256))  # checked byte for byte: our own
