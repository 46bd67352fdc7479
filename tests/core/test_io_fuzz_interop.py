"""Fuzzing the SPZ and SOG readers: mutated files (truncations, bit flips, lying counts and lengths, zip and
zstd bombs, random bytes) must each give a clean InputFileError or a valid scene with finite values, never
another exception. A few hundred inputs per reader per run here (seed logged; ``FUZZ_SEED`` replays one);
``scripts/fuzz_interop_readers.py`` runs the same harness at scale.

The harness (bases, mutations, :func:`run_one`) lives here and is imported by the script.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import random
import struct
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import zstandard

from core.errors import InputFileError
from core.io.sog import read_sog
from core.io.spz import MAGIC, read_spz, spz_bytes
from core.scene import GaussianScene
from tests.core.test_io_ply import random_scene
from tests.core.test_io_sog import bundle, encode_sog_v2, hand_built_v1, hand_built_v2, webp_bytes, write_folder
from tests.core.test_io_spz import v2_bytes

logger = logging.getLogger(__name__)

LYING = (0, 1, 2, 3, 7, 255, 256, 65535, 65536, 2**20, 2**31 - 1, 2**31, 2**32 - 1)


# -- base inputs ---------------------------------------------------------------------------------------------
def _scene(n: int, degree: int, seed: int) -> GaussianScene:
    s = random_scene(n, degree, seed=seed)
    return GaussianScene(s.means.clamp(-100, 100), *s.tensors()[1:])


def spz_bases() -> dict[str, bytes]:
    """Small valid SPZ files: v2 built by hand, v3 and v4 from our writer (SH 0, 1 and 3)."""
    return {
        "v2-hand": v2_bytes(True),
        "v2-plain": v2_bytes(False),
        "v3-sh1": spz_bytes(_scene(40, 1, 1), 3),
        "v4-sh0": spz_bytes(_scene(30, 0, 2), 4),
        "v4-sh3": spz_bytes(_scene(20, 3, 3), 4),
        "v3-aa": spz_bytes(_scene(10, 0, 4), 3, antialiased=True),
    }


def sog_bases() -> dict[str, tuple[dict[str, bytes], dict]]:
    """Small valid SOG scenes as (files, meta): hand-built v2 and v1, and encoded v2 with SH 0 and 2."""
    files2, meta2, _ = hand_built_v2()
    files1, meta1 = hand_built_v1()
    return {
        "v2-hand": (files2, meta2),
        "v1-hand": (files1, meta1),
        "v2-sh0": encode_sog_v2(_scene(50, 0, 5)),
        "v2-sh2": encode_sog_v2(_scene(70, 2, 6)),
    }


# -- mutations -----------------------------------------------------------------------------------------------
def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def flip_bits(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def overwrite_bytes(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def lying_word(rng: random.Random, data: bytes, region: int = 64) -> bytes:
    """A u32 or u64 near the start (headers, stream tables) replaced by an edge-case value."""
    width = rng.choice((4, 8))
    if len(data) < width:
        return data
    out = bytearray(data)
    pos = rng.randrange(min(region, len(data) - width + 1))
    value = rng.choice(LYING) if rng.random() < 0.8 else rng.randrange(2 ** (8 * width))
    out[pos : pos + width] = (value % 2 ** (8 * width)).to_bytes(width, "little")
    return bytes(out)


def insert_delete(rng: random.Random, data: bytes) -> bytes:
    i = rng.randrange(len(data) + 1)
    if rng.random() < 0.5:
        return data[:i] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 16))) + data[i:]
    return data[:i] + data[i + rng.randint(1, 16) :]


def random_bytes(rng: random.Random, data: bytes) -> bytes:
    prefix = rng.choice((b"", data[:2], data[:4], data[:16]))
    return prefix + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 600)))


BYTE_MUTATIONS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    "truncate": truncate,
    "flip_bits": flip_bits,
    "overwrite_bytes": overwrite_bytes,
    "lying_word": lying_word,
    "insert_delete": insert_delete,
    "random_bytes": random_bytes,
}


def mutate_bytes(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    kind = rng.choice(list(BYTE_MUTATIONS))
    return kind, BYTE_MUTATIONS[kind](rng, data)


def _spz_inner(data: bytes) -> tuple[bool, bytes]:
    return (True, gzip.decompress(data)) if data[:2] == b"\x1f\x8b" else (False, data)


def mutate_spz(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    """Byte mutations of the file, of the inflated legacy payload (re-gzipped, so they reach the header),
    of v4 stream tables and stream contents (re-compressed), and bombs."""
    gzipped, inner = _spz_inner(data)
    r = rng.random()
    if r < 0.35:
        return mutate_bytes(rng, data)
    if gzipped and r < 0.75:
        kind, inner = mutate_bytes(rng, inner) if rng.random() < 0.6 else ("lying_word", lying_word(rng, inner, 16))
        return f"inner-{kind}", gzip.compress(inner)
    if gzipped:
        return "gzip-bomb", zlib_bomb_tail(rng, inner)
    if inner[4:8] != struct.pack("<I", 4):  # a plain legacy file: lies in its header
        return "lying_word", lying_word(rng, inner, 16)
    # v4: stream table and streams
    ns, toc = inner[15], struct.unpack_from("<I", inner, 16)[0]
    entries = [struct.unpack_from("<QQ", inner, toc + 16 * i) for i in range(ns)]
    i = rng.randrange(ns)
    if r < 0.55:
        out = bytearray(inner)
        struct.pack_into("<Q", out, toc + 16 * i + rng.choice((0, 8)), rng.choice(LYING + (entries[i][1] + 1,)))
        return "toc-lie", bytes(out)
    offsets = np.cumsum([toc + 16 * ns] + [c for c, _ in entries])
    stream = inner[offsets[i] : offsets[i + 1]]
    raw = zstandard.ZstdDecompressor().decompress(stream)
    if r < 0.8:
        _, raw = mutate_bytes(rng, raw)
        kind = "stream-mutated"
    else:
        raw = raw + bytes(rng.choice((1, 1000, 10_000_000)))
        kind = "stream-bomb"
    new = zstandard.ZstdCompressor().compress(raw)
    out = bytearray(inner[: offsets[i]] + new + inner[offsets[i + 1] :])
    struct.pack_into("<Q", out, toc + 16 * i, len(new))
    if rng.random() < 0.5:  # keep the table's uncompressed size honest sometimes, lying other times
        struct.pack_into("<Q", out, toc + 16 * i + 8, len(raw))
    return kind, bytes(out)


def zlib_bomb_tail(rng: random.Random, inner: bytes) -> bytes:
    """A gzip stream of ``inner`` followed by up to 256 MiB of zeros (a repeated full-flushed segment)."""
    import zlib

    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    head = z.compress(inner) + z.flush(zlib.Z_FULL_FLUSH)
    segment = z.compress(bytes(1 << 20)) + z.flush(zlib.Z_FULL_FLUSH)
    return head + segment * rng.choice((1, 16, 256)) + z.flush()


def _mutate_json(rng: random.Random, meta: dict) -> dict:
    """One structural lie in meta.json: a number, list, type or key changed."""
    meta = json.loads(json.dumps(meta))
    paths = []

    def walk(obj, path):
        if isinstance(obj, dict):
            for k, v in obj.items():
                paths.append((path, k))
                walk(v, path + [k])
        elif isinstance(obj, list) and obj and len(obj) <= 16:
            for k, v in enumerate(obj):
                paths.append((path, k))
                walk(v, path + [k])

    walk(meta, [])
    parent_path, key = rng.choice(paths)
    parent = meta
    for p in parent_path:
        parent = parent[p]
    choice = rng.random()
    if choice < 0.2 and isinstance(parent, dict):
        del parent[key]
    elif choice < 0.5:
        parent[key] = rng.choice([0, -1, 1, 3, 2**31, 2**40, 1e308, -1e308, 0.5, "x", None, [], {}, True, [1, 2]])
    elif isinstance(parent[key], list):
        extra = [rng.choice((0, 1e30, "a"))] * rng.randrange(3)
        parent[key] = parent[key][: rng.randrange(len(parent[key]) + 1)] + extra
    elif isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
        parent[key] = parent[key] * rng.choice((-1, 2, 1000, 1e6)) + rng.choice((0, 1, -1))
    else:
        parent[key] = rng.choice(("../../etc/passwd", "/abs.webp", "means_l.webp", "", "C:x.webp"))
    return meta


def _zip_with(files: dict[str, bytes], meta: dict | str, method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr("meta.json", meta if isinstance(meta, str) else json.dumps(meta))
    return buf.getvalue()


def mutate_sog(rng: random.Random, files: dict[str, bytes], meta: dict) -> tuple[str, bytes, dict[str, bytes]]:
    """A mutated .sog bundle: bytes of the zip, meta.json lies, image bytes, image sizes, zip bombs.

    Returns (kind, bundle bytes, files): the files (meta.json included) are also what an unbundled copy holds.
    """
    r = rng.random()
    files = dict(files)
    if r < 0.25:
        kind, data = mutate_bytes(rng, bundle(files, meta))
        return kind, data, {**files, "meta.json": json.dumps(meta).encode()}
    if r < 0.5:
        meta = _mutate_json(rng, meta)
        kind = "meta-lie"
    elif r < 0.62:
        name = rng.choice(sorted(files))
        sub, files[name] = mutate_bytes(rng, files[name])
        kind = f"image-{sub}"
    elif r < 0.72:
        name = rng.choice(sorted(files))
        w, h = rng.choice(((1, 1), (4, 4), (3, 700), (512, 512), (2000, 2000), (16383, 1)))
        files[name] = webp_bytes(np.full((h, w, 4), rng.randrange(256), np.uint8))
        kind = "image-size"
    elif r < 0.8:
        text = json.dumps(meta)
        cut = rng.randrange(len(text))
        meta_text = rng.choice(
            (text[:cut], text.replace("2", "NaN", 1), text.replace("{", "[", 1), "[]", "1e999", "{}")
        )
        return "meta-text", _zip_with(files, meta_text), {**files, "meta.json": meta_text.encode()}
    elif r < 0.9:
        name = rng.choice(sorted(files))
        files[name] = bytes(rng.choice((2 << 20, 32 << 20)))
        kind = "zip-bomb"
        return kind, _zip_with(files, meta, zipfile.ZIP_DEFLATED), {**files, "meta.json": json.dumps(meta).encode()}
    else:
        data = _zip_with(files, meta, zipfile.ZIP_DEFLATED)
        name = rng.choice(sorted(files))
        from tests.core.test_io_sog import _set_zip_sizes

        return "zip-size-lie", _set_zip_sizes(data, name, rng.choice(LYING)), {**files, "meta.json": b"{}"}
    return kind, bundle(files, meta), {**files, "meta.json": json.dumps(meta).encode()}


# -- running ---------------------------------------------------------------------------------------------------
@dataclass
class Outcomes:
    """Counts of outcomes and the first few failures (any exception other than InputFileError)."""

    counts: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    slowest: tuple[float, str] = (0.0, "")

    def record(self, outcome: str, kind: str, seconds: float, detail: str = "") -> None:
        self.counts[outcome] += 1
        self.kinds[(kind, outcome)] += 1
        if seconds > self.slowest[0]:
            self.slowest = (seconds, kind)
        if outcome == "other exception" and len(self.failures) < 20:
            self.failures.append(f"{kind}: {detail}")


def run_one(read: Callable[[], tuple[GaussianScene, str, list[str]]], kind: str, out: Outcomes) -> None:
    """Run one read and classify it: "clean error", "valid scene" or "other exception"."""
    t0 = time.perf_counter()
    try:
        scene, encoding, warnings = read()
    except InputFileError as exc:
        if "\n" in str(exc) or "Traceback" in str(exc):
            out.record("other exception", kind, time.perf_counter() - t0, f"multi-line InputFileError {exc!r}")
        else:
            out.record("clean error", kind, time.perf_counter() - t0)
        return
    except Exception as exc:  # noqa: BLE001 - the point of the harness: any other exception is a bug
        out.record("other exception", kind, time.perf_counter() - t0, f"{type(exc).__name__}: {exc}")
        return
    bad = scene.non_finite_fields()
    ok = not bad and isinstance(encoding, str) and all(isinstance(w, str) for w in warnings)
    ok = ok and all(t.dtype.is_floating_point for t in scene.tensors())
    out.record("valid scene" if ok else "other exception", kind, time.perf_counter() - t0,
               "" if ok else f"invalid scene: non-finite {bad}")


def fuzz_spz(n: int, seed: int, path: Path) -> Outcomes:
    rng = random.Random(seed)
    bases = spz_bases()
    out = Outcomes()
    for _ in range(n):
        name = rng.choice(sorted(bases))
        kind, data = mutate_spz(rng, bases[name])
        run_one(lambda data=data: read_spz(data, path), f"{name}/{kind}", out)
    return out


def fuzz_sog(n: int, seed: int, folder: Path) -> Outcomes:
    """Bundles mostly; one input in four is also read unbundled (meta.json + files written to ``folder``)."""
    rng = random.Random(seed)
    bases = sog_bases()
    out = Outcomes()
    sog = folder / "fuzz.sog"
    for i in range(n):
        name = rng.choice(sorted(bases))
        files, meta = bases[name]
        kind, data, loose = mutate_sog(rng, files, meta)
        run_one(lambda data=data: read_sog(data, sog), f"{name}/{kind}", out)
        if i % 4 == 0:
            sub = folder / f"u{i}"
            sub.mkdir()
            for fname, blob in loose.items():
                (sub / fname).write_bytes(blob)
            meta_path = sub / "meta.json"
            run_one(lambda m=meta_path: read_sog(m.read_bytes(), m), f"{name}/unbundled-{kind}", out)
    return out


# -- the tests ---------------------------------------------------------------------------------------------------
def _seed() -> int:
    seed = int(os.environ.get("FUZZ_SEED") or random.SystemRandom().randrange(2**32))
    logger.info("fuzz seed %d (FUZZ_SEED=%d replays it)", seed, seed)
    return seed


def _check(out: Outcomes, seed: int, what: str) -> None:
    logger.info("%s fuzz (seed %d): %s; slowest %.3f s (%s)", what, seed, dict(out.counts), *out.slowest)
    assert not out.failures, f"{what} fuzz, seed {seed}: " + "\n".join(out.failures)
    assert out.slowest[0] < 10, f"{what} fuzz, seed {seed}: one input took {out.slowest[0]:.1f} s ({out.slowest[1]})"


def test_bases_are_valid(tmp_path):
    for name, data in spz_bases().items():
        scene, _, _ = read_spz(data, tmp_path / f"{name}.spz")
        assert scene.num_gaussians > 0, name
    for name, (files, meta) in sog_bases().items():
        scene, _, _ = read_sog(bundle(files, meta), tmp_path / f"{name}.sog")
        assert scene.num_gaussians > 0, name
        meta_path = write_folder(tmp_path / name, files, meta)
        read_sog(meta_path.read_bytes(), meta_path)


def test_fuzz_spz(tmp_path):
    seed = _seed()
    out = fuzz_spz(300, seed, tmp_path / "fuzz.spz")
    _check(out, seed, "SPZ")
    assert out.counts["clean error"] > 0 and out.counts["valid scene"] > 0


def test_fuzz_sog(tmp_path):
    seed = _seed()
    out = fuzz_sog(300, seed, tmp_path)
    _check(out, seed, "SOG")
    assert out.counts["clean error"] > 0 and out.counts["valid scene"] > 0


@pytest.mark.parametrize("size", [0, 1, 2, 4, 16, 33, 1000])
def test_random_bytes_and_magic_prefixes(tmp_path, size):
    rng = random.Random(size)
    noise = bytes(rng.randrange(256) for _ in range(size))
    for prefix in (b"", b"\x1f\x8b", struct.pack("<I", MAGIC), b"PK\x03\x04", b"{", b"NGSP\x04\0\0\0"):
        for read in (read_spz, read_sog):
            with pytest.raises(InputFileError):
                read(prefix + noise, tmp_path / "noise.bin")
