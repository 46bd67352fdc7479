"""Fuzzing the ``.ngs`` version 2 decoder (DESIGN.md §7): every malformed input is one NgsFormatError (never
another exception, never the "unexpected error" safety net, never a hang); payloads corrupted behind a
valid CRC may also decode, to a well-formed model.

The base file (2,550 bytes, 1,632 of them header) has three clusters (MLP, constant, MLP predictors),
residuals in four groups and four importance levels. About 13,000 inputs per run (~15 s): every
truncation (in memory; every 11th also on disk), every byte position with one bit flipped, 1,500 random
1-8 bit flips aimed at the header and at each section, 1,100 random byte strings after a valid v2
prelude or header, about 4,700 section payloads corrupted behind recomputed CRCs (bytes set, bits
flipped, parts replaced, zeroed, truncated, extended, swapped between clusters, part boundaries moved,
position histograms edited, whole payloads random), and about 730 header JSON edits re-serialised with
a correct CRC (parts lengths, position_bits, level_counts, level_steps, steps, predictors, cluster
sizes, architecture, ranges, the section list, NaN/Infinity/duplicate keys; targeted and
hypothesis-generated). ``test_zz_fuzz_volume`` prints the count.
"""

from __future__ import annotations

import copy
import json
import struct
import time
import zlib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.codec import NgsFormatError, decode_ngs, read_ngs, read_ngs_header
from core.codec import ngs_format as fmt
from core.codec.ngs_format_v2 import GROUP_NAMES
from core.codec.ngs_v2 import encode_v2
from core.neural_field import ClusterField, ConstantField, NeuralGSModel
from tests.core.test_codec_ngs import rewrite_header
from tests.core.test_codec_v2 import v2_case, v2_settings

pytestmark = pytest.mark.timeout(120)

SOURCE = "fuzz2.ngs"
MAX_SECONDS = 2.0  # per input, on a loaded 2-core machine (typical: a few ms)
STEPS = {"opacity": 0.05, "log_scales": 0.1, "sh_dc": 0.05, "sh_band1": 0.2}


# -- the base file and its pieces --------------------------------------------------------------------------
def split_v2(data: bytes) -> tuple[dict, list[bytes]]:
    """(header dict without "sections", section payloads) of a v2 file (an independent parse of the layout)."""
    magic, version, flags, hlen = struct.unpack_from("<4sHHI", data, 0)
    assert (magic, version, flags) == (b"NGS\x00", 2, 1)  # flag 1: the header JSON is deflated
    header = json.loads(zlib.decompress(data[12: 12 + hlen]))
    off, payloads = 16 + hlen, []
    for sec in header.pop("sections"):
        (length,) = struct.unpack_from("<I", data, off)
        assert length == sec["length"]
        payloads.append(data[off + 4: off + 4 + length])
        off += 8 + length
    assert off == len(data)
    return header, payloads


def rebuild(header: dict, payloads: list[bytes]) -> bytes:
    """A v2 file from a header dict (no "sections") and payloads: section lengths and CRCs recomputed."""
    assert "sections" not in header
    return b"".join(fmt.assemble(header, [(f"cluster_{i}", p) for i, p in enumerate(payloads)], version=2))


def rebuild_text(header_text: str, payloads: list[bytes]) -> bytes:
    """Like :func:`rebuild` from raw header JSON text holding a ``"sections":%s`` slot (for NaN and other
    things json.dumps refuses to write)."""
    secs = [{"name": f"cluster_{i}", "length": len(p), "crc32": zlib.crc32(p)} for i, p in enumerate(payloads)]
    hb = (header_text % json.dumps(secs)).encode()
    out = [fmt.PRELUDE.pack(fmt.MAGIC, 2, 0, len(hb)), hb, struct.pack("<I", zlib.crc32(hb))]
    for p in payloads:
        out += [struct.pack("<I", len(p)), p, struct.pack("<I", zlib.crc32(p))]
    return b"".join(out)


def _make_valid() -> bytes:
    m, target, imp = v2_case(n=48, k=3, sh=1, hidden=3, layers=2, pe=0, seed=7, noise=0.02, init_scale=3.0)
    m.meta = {"fuzz": 1}
    encs = {p: encode_v2(m, v2_settings(steps=STEPS, predictor=p), target, imp) for p in ("mlp", "constant")}
    hm, pm = split_v2(b"".join(encs["mlp"].chunks))
    hc, pc = split_v2(b"".join(encs["constant"].chunks))
    assert hm["codec"] == hc["codec"]  # same levels, so clusters can be mixed
    hm["clusters"][1] = hc["clusters"][1]
    return rebuild(hm, [pm[0], pc[1], pm[2]])


VALID = _make_valid()
HEADER, PAYLOADS = split_v2(VALID)
HLEN = struct.unpack_from("<I", VALID, 8)[0]
SECTION_STARTS = [16 + HLEN]
for _p in PAYLOADS:
    SECTION_STARTS.append(SECTION_STARTS[-1] + 8 + len(_p))


# -- outcomes -----------------------------------------------------------------------------------------------
STATS = {"inputs": 0, "decoded": 0, "slowest": 0.0}


def outcome(data: bytes, **kw) -> NeuralGSModel | NgsFormatError:
    """The decoded model (checked to be well formed) or the NgsFormatError; any other exception fails."""
    start = time.perf_counter()
    try:
        r = decode_ngs(data, source=SOURCE, **kw)
    except NgsFormatError as err:
        assert str(err).startswith(f"{SOURCE}: ") and err.problem
        assert not err.problem.startswith("unexpected"), err.problem  # the safety net must not fire
        r = err
    else:
        _check_model(r)
        STATS["decoded"] += 1
    elapsed = time.perf_counter() - start
    STATS["inputs"] += 1
    STATS["slowest"] = max(STATS["slowest"], elapsed)
    assert elapsed < MAX_SECONDS, f"{elapsed:.2f} s for one input"
    return r


def _check_model(m: NeuralGSModel) -> None:
    n = m.num_gaussians
    assert sum(m.cluster_sizes) == n and len(m.fields) == m.n_clusters and m.positions.shape == (n, 3)
    assert all(isinstance(f, (ClusterField, ConstantField)) for f in m.fields)
    assert m.residual is None or m.residual.shape == (n, m.arch.out_dim)
    assert bool(torch.isfinite(m.positions).all())
    with torch.no_grad():
        scene = m.decode()
    assert scene.num_gaussians == n


def must_fail(data: bytes) -> NgsFormatError:
    r = outcome(data)
    assert isinstance(r, NgsFormatError), f"corrupt input decoded without error ({len(data)} bytes)"
    return r


def _flip(data: bytes, bits) -> bytes:
    b = bytearray(data)
    for bit in bits:
        b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


# -- the base file ---------------------------------------------------------------------------------------
def test_valid_file_decodes():
    m = outcome(VALID)
    assert isinstance(m, NeuralGSModel) and m.num_gaussians == 48 and m.n_clusters == 3
    assert [type(f) for f in m.fields] == [ClusterField, ConstantField, ClusterField]
    assert m.residual is not None and 1500 < len(VALID) < 3000
    assert rebuild(copy.deepcopy(HEADER), list(PAYLOADS)) == VALID
    for j in range(5):
        assert outcome(VALID, n_clusters=j).n_clusters == min(j, 3)


# -- truncations, bit flips, random bytes --------------------------------------------------------------------
def test_every_truncation():
    messages = set()
    for n in range(len(VALID)):
        messages.add(must_fail(VALID[:n]).problem.split(" (")[0])
    for part in ("empty file", "truncated prelude", "truncated header JSON", "truncated header CRC",
                 "truncated section cluster_0", "truncated section cluster_1",
                 "truncated section cluster_2"):
        assert any(m.startswith(part) for m in messages), (part, sorted(messages))


def test_truncations_on_disk(tmp_path):
    from tests.core.test_codec_fuzz import truncations_fail_on_disk

    path = tmp_path / "cut.ngs"
    truncations_fail_on_disk(VALID, path, 11)
    path.write_bytes(VALID)
    assert read_ngs_header(path)["version"] == 2 and read_ngs(path, n_clusters=2).n_clusters == 2


def test_every_byte_position_flipped():
    rng = np.random.default_rng(0)
    for pos in range(len(VALID)):
        must_fail(_flip(VALID, [pos * 8 + int(rng.integers(8))]))


@pytest.mark.parametrize("region", ["header", "cluster_0", "cluster_1", "cluster_2", "anywhere"])
def test_random_bit_flips(region):
    rng = np.random.default_rng(hash(region) % 2**32)
    if region == "header":
        lo, hi = 0, SECTION_STARTS[0]
    elif region == "anywhere":
        lo, hi = 0, len(VALID)
    else:
        i = int(region[-1])
        lo, hi = SECTION_STARTS[i], SECTION_STARTS[i + 1]
    kinds = set()
    for _ in range(300):
        bits = 8 * lo + rng.choice(8 * (hi - lo), size=int(rng.integers(1, 9)), replace=False)
        kinds.add(must_fail(_flip(VALID, bits)).problem.split(" (")[0].split(":")[0])
    if region.startswith("cluster"):
        assert f"CRC mismatch in section {region}" in kinds, kinds


def test_random_bytes_after_a_valid_prelude_or_header():
    rng = np.random.default_rng(99)
    header_part = VALID[: SECTION_STARTS[0]]
    for i in range(700):
        body = rng.integers(0, 256, size=int(rng.integers(0, 2000)), dtype=np.uint8).tobytes()
        if i % 3 == 0:
            data = fmt.PRELUDE.pack(fmt.MAGIC, 2, 0, int(rng.integers(0, 2000))) + body
        elif i % 3 == 1:
            data = fmt.MAGIC + struct.pack("<HH", 2, i % 2) + body
        else:  # a valid header, then noise where the sections should be
            data = header_part + body
        must_fail(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=1500))
def test_hypothesis_bytes_after_v2_prelude(data):
    must_fail(fmt.MAGIC + struct.pack("<HH", 2, 0) + data)
    must_fail(fmt.MAGIC + struct.pack("<HH", 2, 1) + data)
    must_fail(VALID[: SECTION_STARTS[0]] + data)


# -- payloads corrupted behind valid CRCs (the important case: CRCs catch plain bit flips) -------------------
def _parts(i: int) -> list[int]:
    return list(HEADER["clusters"][i]["parts"])


def _with_payload(i: int, payload: bytes, parts: list[int] | None = None) -> bytes:
    h = copy.deepcopy(HEADER)
    if parts is not None:
        h["clusters"][i]["parts"] = parts
    pl = list(PAYLOADS)
    pl[i] = payload
    return rebuild(h, pl)


def _corrupt_part(rng: np.random.Generator, i: int, part: int) -> tuple[bytes, list[int] | None]:
    """One random corruption of part ``part`` (0 positions, 1 predictor, 2 residuals) of cluster i."""
    parts = _parts(i)
    start = sum(parts[:part])
    p = bytearray(PAYLOADS[i])
    seg = p[start: start + parts[part]]
    kind = int(rng.integers(0, 9))
    if kind == 0:  # 1-4 bytes set to random values
        for _ in range(int(rng.integers(1, 5))):
            seg[int(rng.integers(len(seg)))] = int(rng.integers(256))
    elif kind == 1:  # 1-3 bits flipped
        for bit in rng.choice(8 * len(seg), size=min(8 * len(seg), int(rng.integers(1, 4))), replace=False):
            seg[bit // 8] ^= 1 << (bit % 8)
    elif kind == 2:  # the whole part random
        seg = bytearray(rng.integers(0, 256, size=len(seg), dtype=np.uint8).tobytes())
    elif kind == 3:  # zeroed (or its tail zeroed: an entropy stream ending in a zero word)
        cut = int(rng.integers(0, len(seg)))
        seg[cut:] = bytes(len(seg) - cut)
    elif kind == 4:  # 0xFF run
        a = int(rng.integers(0, len(seg)))
        seg[a: a + int(rng.integers(1, 9))] = b"\xff" * len(seg[a: a + 8])
    elif kind == 5:  # truncated by 1..8 bytes (the header's parts follow)
        seg = seg[: max(0, len(seg) - int(rng.integers(1, 9)))]
    elif kind == 6:  # extended by 1..8 random bytes
        seg = seg + bytearray(rng.integers(0, 256, size=int(rng.integers(1, 9)), dtype=np.uint8).tobytes())
    elif kind == 7:  # bytes inserted or deleted inside, length kept by the header
        a = int(rng.integers(0, len(seg) + 1))
        if rng.integers(2):
            seg[a:a] = bytes([int(rng.integers(256))])
        else:
            del seg[a: a + 1]
    else:  # a 4-byte word set to a small integer (lengths, counts, codes)
        a = int(rng.integers(0, max(1, len(seg) - 3)))
        word = struct.pack("<I", int(rng.choice([0, 1, 2, 255, 2**16, 2**31, 2**32 - 1])))
        seg[a: a + 4] = word[: len(seg[a: a + 4])]
    new_parts = list(parts)
    new_parts[part] = len(seg)
    p[start: start + parts[part]] = seg
    return bytes(p), (new_parts if new_parts != parts else None)


@pytest.mark.parametrize("cluster", [0, 1, 2])
@pytest.mark.parametrize("part", [0, 1, 2])
def test_corrupted_parts_behind_valid_crcs(cluster, part):
    rng = np.random.default_rng(1000 + 10 * cluster + part)
    results = {"error": 0, "decoded": 0}
    for _ in range(250):
        payload, parts = _corrupt_part(rng, cluster, part)
        r = outcome(_with_payload(cluster, payload, parts))
        results["error" if isinstance(r, NgsFormatError) else "decoded"] += 1
        if parts is None and isinstance(r, NeuralGSModel):
            assert r.num_gaussians == 48
    assert results["error"] > 0, results


def test_section_boundaries_moved():
    """Bytes moved between the parts of a cluster (the section length kept): every split is tried."""
    for i in range(3):
        total = sum(_parts(i))
        for a in range(0, total + 1, 3):
            for b in range(a, total + 1, max(1, total // 12)):
                parts = [a, b - a, total - b]
                if parts == _parts(i):
                    continue
                outcome(_with_payload(i, PAYLOADS[i], parts))


def test_whole_payloads_random_swapped_or_resized():
    rng = np.random.default_rng(5)
    for _ in range(300):  # random payloads of the right lengths, valid CRCs
        pl = [rng.integers(0, 256, size=len(p), dtype=np.uint8).tobytes() for p in PAYLOADS]
        outcome(rebuild(copy.deepcopy(HEADER), pl))
    for perm in ([1, 0, 2], [2, 1, 0], [0, 2, 1], [1, 2, 0]):  # payloads swapped between clusters
        h = copy.deepcopy(HEADER)
        h["clusters"] = [HEADER["clusters"][j] for j in perm]
        outcome(rebuild(h, [PAYLOADS[j] for j in perm]))  # parts follow, cluster_sizes do not: error or decode
        must_fail(rebuild(copy.deepcopy(HEADER), [PAYLOADS[j] for j in perm]))  # the parts no longer add up
    for i in range(3):  # a real positions part with parts of every other cluster
        for j in range(3):
            pi, pj = _parts(i), _parts(j)
            pos, rest = PAYLOADS[j][: pj[0]], PAYLOADS[i][pi[0]:]
            outcome(_with_payload(i, pos + rest, [pj[0], pi[1], pi[2]]))


def test_position_histogram_edits_behind_valid_crcs():
    """The histogram of gap bit lengths edited (count moved, range changed), the CRC recomputed."""
    for i in range(3):
        parts = _parts(i)
        block = bytearray(PAYLOADS[i][: parts[0]])
        nc = block[1] - block[0] + 1
        rest = PAYLOADS[i][parts[0]:]
        variants = []
        for a in range(nc):
            for b in range(nc):
                v = bytearray(block)
                ca, cb = struct.unpack_from("<I", v, 2 + 4 * a)[0], struct.unpack_from("<I", v, 2 + 4 * b)[0]
                if a != b and ca > 0:
                    struct.pack_into("<I", v, 2 + 4 * a, ca - 1)
                    struct.pack_into("<I", v, 2 + 4 * b, cb + 1)
                    variants.append(v)
        for cmin, cmax in ((0, block[1] - block[0]), (block[0] + 1, block[1] + 1), (block[1], block[0]),
                           (0, 48), (48, 48), (block[0], 49)):
            v = bytearray(block)
            v[0], v[1] = cmin, cmax
            variants.append(v)
        for v in variants:
            outcome(_with_payload(i, bytes(v) + rest))


# -- header JSON edits with a correct CRC -----------------------------------------------------------------
def _set(path, value):
    def f(h):
        obj = h
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = value
    return f


def _delete(path):
    def f(h):
        obj = h
        for key in path[:-1]:
            obj = obj[key]
        del obj[path[-1]]
    return f


def _shift_parts(i, a, b, d):
    def f(h):
        p = h["clusters"][i]["parts"]
        p[a] += d
        p[b] -= d
    return f


def _sizes(sizes):
    def f(h):
        h["cluster_sizes"] = sizes
        h["n_gaussians"] = sum(s for s in sizes if isinstance(s, int))
    return f


def _sh(sh):
    def f(h):
        d = 10 + 3 * fmt.SH_REST_COUNTS[sh]
        h["sh_degree"] = sh
        h["attr_lo"] = (h["attr_lo"] * 4)[:d]
        h["attr_hi"] = (h["attr_hi"] * 4)[:d]
    return f


def _mutations() -> list:
    sizes = HEADER["cluster_sizes"]
    muts = []
    for v in (7, 8, 9, 12, 15, 17, 0, -1, 2**31, "16", 16.0, None, True, [16]):
        muts.append(_set(("position_bits",), v))
    for v in ([], [0, 0, 0, 0], [1], [1, 1, 1], [1] * 5, [-1, 1, 1, 1], [1.5, 1, 1, 1], [2**40, 1, 1, 1],
              [0, 0, 0, 5], [5, 0, 0, 0], [True, 1, 1, 1], [fmt.MAX_GAUSSIANS, 1, 1, 1], "1111", None,
              [1, 1, 1, 2**32]):
        muts.append(_set(("codec", "level_counts"), v))
    for v in ([], [1.0], [1.0] * 4, [0.5, 1, 1, 1], [1, 1, 1, 1e6], [1, 1, 1, 1e7], [1, 2, 3, "4"], [1] * 17,
              [1, 1, 1, None], [3.5, 2.0, 1.0, 1.0], [1e-30, 1, 1, 1], None, 1.0):
        muts.append(_set(("codec", "level_steps"), v))
    muts.append(lambda h: h["codec"].update(level_steps=[1.0], level_counts=[48]))
    muts.append(lambda h: h["codec"].update(level_steps=[1.0, 2.0], level_counts=[24, 24]))
    muts.append(lambda h: h["codec"].update(level_steps=[1.0] * 16, level_counts=[3] * 16))
    for g in GROUP_NAMES:
        for v in (None, 0, -0.1, 1e-50, 1e-45, 1e-38, 1e5, 1e6, 2e6, "0.1", True, [0.1], 1):
            muts.append(_set(("codec", "steps", g), v))
        muts.append(_delete(("codec", "steps", g)))
    muts.append(_set(("codec", "steps"), {g: None for g in GROUP_NAMES}))
    muts.append(_set(("codec", "steps"), {g: 0.05 for g in GROUP_NAMES}))
    muts.append(_set(("codec", "steps"), []))
    for v in (4, 16, 8.0, "8", None):
        muts.append(_set(("codec", "weight_bits"), v))
    for key in ("steps", "level_steps", "level_counts", "weight_bits"):
        muts.append(_delete(("codec", key)))
    muts.append(_set(("codec",), None))
    for i in range(3):
        for v in ("mlp", "constant", "MLP", "", None, 1, ["mlp"]):
            muts.append(_set(("clusters", i, "predictor"), v))
        muts.append(_delete(("clusters", i, "predictor")))
        parts = _parts(i)
        for v in (parts[::-1], [parts[1], parts[0], parts[2]], parts[:2], parts + [0], [0, 0, sum(parts)],
                  [sum(parts), 0, 0], [-1, parts[1], parts[2] + 1], [float(x) for x in parts],
                  [parts[0], parts[1], parts[2] + 2**32], [True, parts[1], parts[2]], None, {}):
            muts.append(_set(("clusters", i, "parts"), v))
        for a, b in ((0, 1), (1, 0), (1, 2), (2, 1), (0, 2), (2, 0)):
            for d in (1, 2, 4, 5, 8):
                muts.append(_shift_parts(i, a, b, d))
        muts.append(_set(("clusters", i), None))
        muts.append(_set(("clusters", i), {}))
    muts.append(_set(("clusters",), HEADER["clusters"][:2]))
    muts.append(_set(("clusters",), HEADER["clusters"] + HEADER["clusters"][:1]))
    muts.append(_set(("clusters",), None))
    s0, s1, s2 = sizes
    for v in ([s1, s0, s2], [s0 + 1, s1, s2], [s0 - 1, s1, s2], [s0 + 1, s1 - 1, s2], [s0, s1, s2 + 5],
              [0, s1, s2], [s0, s1, 0], [s0 * 8, s1, s2], [s0, s1, s2 * 9], [s0, s1], [s0, s1, s2, 0],
              [s0, s1, float(s2)], [s0, s1, -s2], [2**40, s1, s2]):
        muts.append(_sizes(v))
    muts.append(_set(("n_gaussians",), 47))
    muts.append(_set(("n_gaussians",), 49))
    muts.append(_set(("n_clusters",), 2))
    muts.append(_set(("n_clusters",), 4))
    for sh in (0, 2, 3):
        muts.append(_sh(sh))
        muts.append(_set(("sh_degree",), sh))
    for key, vals in (("hidden", (1, 2, 4, 64, 4096, 0, 4097)), ("layers", (1, 3, 16, 17)),
                      ("pe_freqs", (1, 16, 17, -1))):
        for v in vals:
            muts.append(_set(("arch", key), v))
    for key in ("pos_lo", "pos_hi", "attr_lo", "attr_hi"):
        muts.append(_set((key, 0), 3.4e38))
        muts.append(_set((key, 0), -3.4e38))
        muts.append(_set((key, 0), 1e39))
        muts.append(_set((key,), HEADER[key][:-1]))
    muts.append(lambda h: h.update(pos_lo=h["pos_hi"], pos_hi=h["pos_lo"]))
    muts.append(lambda h: h.update(pos_hi=h["pos_lo"]))
    muts.append(lambda h: h.update(attr_hi=h["attr_lo"]))
    for key in list(HEADER):
        muts.append(_delete((key,)))
    muts.append(_set(("meta",), {"x": [1, {"y": None}]}))
    muts.append(_set(("meta",), []))
    return muts


MUTATIONS = _mutations()


def test_header_edits():
    decoded = 0
    for mutate in MUTATIONS:
        h = copy.deepcopy(HEADER)
        mutate(h)
        r = outcome(rebuild(h, list(PAYLOADS)))
        decoded += isinstance(r, NeuralGSModel)
    assert len(MUTATIONS) > 300
    assert 0 < decoded < len(MUTATIONS) // 2, decoded  # a few edits are harmless (meta, a step, a range value)


def test_header_edits_of_the_section_list():
    """The sections list itself edited (rewritten bytes keep the payloads): lengths, names, CRCs."""
    def sec(i, key, value):
        return lambda h: h["sections"][i].__setitem__(key, value)

    edits = [sec(i, k, v) for i in range(3) for k, v in (
        ("length", 0), ("length", 2**32 - 1), ("length", -1), ("length", "10"), ("crc32", 0), ("crc32", 2**32),
        ("name", "cluster_9"), ("name", None))]
    edits += [lambda h: h["sections"].pop(), lambda h: h.update(sections={})]
    for i in range(3):
        edits.append(sec(i, "length", HEADER["clusters"][i]["parts"][0]))
    for e in edits:
        must_fail(rewrite_header(VALID, e))


def test_non_finite_and_raw_json_values():
    """Values json.dumps refuses to write (NaN, Infinity), duplicate keys, huge numbers: raw header text."""
    base = json.dumps(HEADER)[:-1] + ',"sections":%s}'
    replacements = [
        ('"level_steps": [1.0', '"level_steps": [NaN'),
        ('"level_steps": [1.0', '"level_steps": [Infinity'),
        ('"level_steps": [1.0', '"level_steps": [1e400'),
        ('"opacity": 0.05', '"opacity": NaN'),
        ('"opacity": 0.05', '"opacity": Infinity'),
        ('"opacity": 0.05', '"opacity": -Infinity'),
        ('"opacity": 0.05', '"opacity": 1e400'),
        ('"opacity": 0.05', '"opacity": 0.05, "opacity": 0.1'),
        ('"position_bits": 16', '"position_bits": 16, "position_bits": 8'),
        ('"position_bits": 16', '"position_bits": 1' + "0" * 5000),
        ('"weight_bits": 8', '"weight_bits": 8' + "0" * 400),
    ]
    for old, new in replacements:
        assert old in base, old
        must_fail(rebuild_text(base.replace(old, new, 1), list(PAYLOADS)))
    assert isinstance(outcome(rebuild_text(base, list(PAYLOADS))), NeuralGSModel)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.integers(-3, 70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=10,
)
PATHS = ([(k,) for k in HEADER] + [("arch", k) for k in HEADER["arch"]] + [("codec", k) for k in HEADER["codec"]]
         + [("codec", "steps", g) for g in GROUP_NAMES] + [("codec", "level_steps", 2), ("codec", "level_counts", 1)]
         + [("clusters", i, k) for i in range(3) for k in ("predictor", "parts")]
         + [("clusters", i, "parts", j) for i in range(3) for j in range(3)]
         + [("cluster_sizes", 0), ("cluster_sizes", 2), ("pos_lo", 1), ("attr_hi", 9)])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), st.sampled_from(["replace", "delete"]), JSON)
def test_hypothesis_header_mutations(path, op, value):
    from tests.core.test_codec_fuzz import edit_path

    h = copy.deepcopy(HEADER)
    edit_path(h, path, op, value)
    outcome(rebuild(h, list(PAYLOADS)))


def test_zz_fuzz_volume():
    """Runs last in this file (pytest keeps file order): the inputs above, counted."""
    if STATS["inputs"] < 1000:
        pytest.skip("run with the whole file to count the inputs")
    print(f"\nv2 fuzz: {STATS['inputs']} inputs, {STATS['decoded']} decoded, slowest {STATS['slowest'] * 1000:.0f} ms")
    assert STATS["inputs"] > 6000
