"""The ``.ngs`` v1 file (DESIGN.md §7): round trips, progressive loading, exact size, clear errors.

Malformed-input fuzzing is in test_codec_fuzz.py; the helpers here (``small_model``,
``rewrite_header``, ``split_file``) are shared with it.
"""

from __future__ import annotations

import copy
import json
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.codec import (
    NgsFormatError,
    decode_ngs,
    encode_ngs,
    quantise_model_,
    quantise_model_positions_,
    quantise_model_weights_,
    read_ngs,
    read_ngs_header,
    write_ngs,
)
from core.codec import ngs_format as fmt
from core.bench.decode import make_random_model, random_cluster_sizes
from core.neural_field import FieldArch, NeuralGSModel
from core.scene import SH_REST_COUNTS
from tests.conftest import shared_path

pytestmark = pytest.mark.timeout(120)


# -- helpers (also used by test_codec_fuzz.py) ------------------------------------------------------------
def small_model(n=40, k=3, sh=1, hidden=8, layers=3, pe=2, seed=0, **kw) -> NeuralGSModel:
    return make_random_model(n, k, sh_degree=sh, hidden=hidden, layers=layers, pe_freqs=pe, seed=seed, **kw)


def split_file(data: bytes) -> tuple[dict, bytes, list[tuple[int, bytes, int]]]:
    """An independent parse of the documented layout: (header dict, header bytes, [(length, payload, crc)])."""
    magic, version, flags, hlen = struct.unpack_from("<4sHHI", data, 0)
    assert (magic, version, flags) == (b"NGS\x00", 1, 0)
    hbytes = data[12: 12 + hlen]
    (hcrc,) = struct.unpack_from("<I", data, 12 + hlen)
    assert hcrc == zlib.crc32(hbytes)
    header = json.loads(hbytes)
    off = 16 + hlen
    sections = []
    while off < len(data):
        (length,) = struct.unpack_from("<I", data, off)
        payload = data[off + 4: off + 4 + length]
        (crc,) = struct.unpack_from("<I", data, off + 4 + length)
        sections.append((length, payload, crc))
        off += 8 + length
    assert off == len(data)
    return header, hbytes, sections


def rewrite_header(data: bytes, mutate=None, *, header_text: bytes | None = None, fix_crc: bool = True) -> bytes:
    """``data`` with its header JSON replaced (mutate(dict) edits it in place) and a correct CRC."""
    (flags, hlen) = struct.unpack_from("<HI", data, 6)
    deflated = bool(flags & 1)  # .ngs v2 deflates its header JSON
    header = json.loads(zlib.decompress(data[12: 12 + hlen]) if deflated else data[12: 12 + hlen])
    if mutate is not None:
        mutate(header)
    new = header_text if header_text is not None else json.dumps(header).encode()
    if deflated:
        new = zlib.compress(new)
    crc = zlib.crc32(new) if fix_crc else struct.unpack_from("<I", data, 12 + hlen)[0]
    return data[:8] + struct.pack("<I", len(new)) + new + struct.pack("<I", crc) + data[16 + hlen:]


def expect_error(data: bytes, *fragments: str, source: str = "scene.ngs", **kw) -> NgsFormatError:
    with pytest.raises(NgsFormatError) as info:
        decode_ngs(data, source=source, **kw)
    err = info.value
    assert str(err).startswith(f"{source}: ") and err.path == Path(source)
    for f in fragments:
        assert f in err.problem, f"{f!r} not in {err.problem!r}"
    assert not err.problem.startswith("unexpected"), err.problem
    return err


def field_params(model: NeuralGSModel, c: int) -> list[torch.Tensor]:
    return [p.detach() for p in model.fields[c].parameters()]


def assert_bit_equal(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    if a.dtype == torch.float32:  # compare the bits: -0.0 != 0.0 and NaN == NaN here
        a, b = a.view(torch.int32), b.view(torch.int32)
    assert torch.equal(a, b)


def position_bound(model: NeuralGSModel) -> torch.Tensor:
    """Half a quantisation step per axis, plus float32 rounding of the decoded value."""
    span = (model.pos_hi - model.pos_lo).double()
    mag = torch.maximum(model.pos_lo.abs(), model.pos_hi.abs()).double()
    return span / 65535 / 2 + mag * 2.0**-24 + 1e-30


# -- the torch-free mirror agrees with the model code -----------------------------------------------------
@pytest.mark.parametrize("sh", [0, 1, 2, 3])
@pytest.mark.parametrize("hidden,layers,pe", [(1, 2, 0), (8, 3, 2), (128, 5, 10), (4096, 16, 16)])
def test_param_count_mirror(sh, hidden, layers, pe):
    arch = FieldArch(sh, hidden, layers, pe)
    assert fmt.n_params(sh, hidden, layers, pe) == arch.n_params()
    assert fmt.layer_shapes(sh, hidden, layers, pe) == arch.layer_shapes()
    assert fmt.SH_REST_COUNTS == SH_REST_COUNTS


def test_random_cluster_sizes():
    rng = np.random.default_rng(1)
    for n, k in [(0, 0), (10, 10), (3, 5), (1000, 7)]:
        s = random_cluster_sizes(n, k, rng)
        assert len(s) == k and sum(s) == n and s == sorted(s, reverse=True)


# -- round trips ------------------------------------------------------------------------------------------
CASES = [  # sh, k, hidden, layers, pe, n
    (0, 1, 4, 2, 0, 1),
    (0, 5, 16, 3, 4, 50),
    (1, 2, 8, 3, 2, 33),
    (1, 4, 32, 4, 1, 64),
    (2, 3, 24, 2, 3, 40),
    (2, 5, 8, 5, 0, 80),
    (3, 1, 16, 3, 10, 17),
    (3, 5, 12, 4, 2, 75),
]


@pytest.mark.parametrize("sh,k,hidden,layers,pe,n", CASES)
def test_round_trip(sh, k, hidden, layers, pe, n):
    m = small_model(n, k, sh, hidden, layers, pe, seed=sh * 10 + k, extent=500.0, center=300.0)
    m.meta = {"preset": "preview", "prune_ratio": 0.4, "lambda_freq": 0.01, "nested": {"a": [1, 2.5, None]}}
    d = decode_ngs(encode_ngs(m))
    # header fields
    assert d.arch == m.arch and d.cluster_sizes == m.cluster_sizes and d.meta == m.meta
    for name in ("pos_lo", "pos_hi", "attr_lo", "attr_hi"):
        assert_bit_equal(getattr(d, name), getattr(m, name))
    # positions within half a step per axis
    err = (d.positions.double() - m.positions.double()).abs()
    assert d.positions.dtype == torch.float32 and bool((err <= position_bound(m)).all()), err.max(0).values
    # weights: fp16-rounded, so within fp16 relative precision; exact after quantising
    for c in range(k):
        for a, b in zip(field_params(m, c), field_params(d, c)):
            assert torch.allclose(a, b, rtol=2**-11, atol=2**-24)
    quantise_model_weights_(m)
    d = decode_ngs(encode_ngs(m))
    x = torch.rand(64, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        for c in range(k):
            for a, b in zip(field_params(m, c), field_params(d, c)):
                assert_bit_equal(a, b)
            assert_bit_equal(m.fields[c](x), d.fields[c](x))


@pytest.mark.parametrize("sh", [0, 1, 2, 3])
def test_quantised_model_decodes_bit_identically(sh):
    m = small_model(60, 4, sh, hidden=16, layers=3, pe=3, seed=sh, extent=800.0)
    quantise_model_(m)
    data = encode_ngs(m)
    d = decode_ngs(data)
    assert_bit_equal(d.positions, m.positions)
    with torch.no_grad():
        assert_bit_equal(d.predict_normalised(), m.predict_normalised())
        s1, s2 = m.decode(), d.decode()
    for a, b in zip(s1.tensors(), s2.tensors()):
        assert_bit_equal(a, b)
    assert encode_ngs(d) == data  # a decoded file re-encodes to the same bytes


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sh=st.integers(0, 3), k=st.integers(1, 5), hidden=st.integers(1, 24), layers=st.integers(2, 5),
       pe=st.integers(0, 4), n_extra=st.integers(0, 30), seed=st.integers(0, 2**16),
       extent=st.sampled_from([1e-3, 1.0, 1000.0, 1e6]), center=st.sampled_from([0.0, -250.0, 1e4]))
def test_round_trip_property(sh, k, hidden, layers, pe, n_extra, seed, extent, center):
    m = small_model(k + n_extra, k, sh, hidden, layers, pe, seed=seed, extent=extent, center=center)
    quantise_model_(m)
    data = encode_ngs(m)
    d = decode_ngs(data)
    assert_bit_equal(d.positions, m.positions)
    for c in range(k):
        for a, b in zip(field_params(m, c), field_params(d, c)):
            assert_bit_equal(a, b)
    with torch.no_grad():
        assert_bit_equal(d.predict_normalised(), m.predict_normalised())
    assert encode_ngs(d) == data


def test_quantise_positions_is_idempotent_and_within_bound():
    m = small_model(500, 2, 1, extent=1000.0, center=37.0, seed=3)
    original = m.positions.clone()
    quantise_model_positions_(m)
    assert m.positions is not original
    assert bool(((m.positions.double() - original.double()).abs() <= position_bound(m)).all())
    once = m.positions.clone()
    quantise_model_positions_(m)
    assert_bit_equal(m.positions, once)


def test_degenerate_axis_and_single_gaussian():
    m = small_model(1, 1, 2, seed=5)
    assert bool((m.pos_lo == m.pos_hi).all())  # one point: a zero-width box on every axis
    d = decode_ngs(encode_ngs(m))
    assert_bit_equal(d.positions, m.positions)
    m = small_model(30, 2, 1, seed=6)
    m.positions[:, 1] = 7.25
    m.pos_lo[1] = m.pos_hi[1] = 7.25
    d = decode_ngs(encode_ngs(m))
    assert bool((d.positions[:, 1] == 7.25).all())


def test_header_floats_round_trip_float32_exactly():
    m = small_model(10, 1, 0, seed=1)
    odd = torch.tensor([0.1, -3.4028235e38, 1.1754944e-38], dtype=torch.float32)
    m.attr_lo[:3] = odd
    m.attr_hi[:3] = torch.tensor([0.3, 3.4028235e38, 1e-30])
    m.attr_lo[3] = 1e-45  # the smallest subnormal
    m.attr_hi[3] = 2e-45
    d = decode_ngs(encode_ngs(m))
    assert_bit_equal(d.attr_lo, m.attr_lo)
    assert_bit_equal(d.attr_hi, m.attr_hi)


# -- progressive loading ----------------------------------------------------------------------------------
@pytest.mark.parametrize("sh", [1, 3])
def test_progressive_prefixes(tmp_path, sh):
    m = small_model(90, 5, sh, hidden=12, seed=11)
    quantise_model_(m)
    path = tmp_path / "p.ngs"
    write_ngs(m, path)
    data = path.read_bytes()
    with torch.no_grad():
        full = m.predict_normalised()
        for n in range(1, 6):
            for d in (decode_ngs(data, n_clusters=n), read_ngs(path, n_clusters=n)):
                cnt = sum(m.cluster_sizes[:n])
                assert d.n_clusters == n and d.cluster_sizes == m.cluster_sizes[:n] and len(d.fields) == n
                assert_bit_equal(d.positions, m.positions[:cnt])
                assert_bit_equal(d.predict_normalised(), full[:cnt])
                assert_bit_equal(d.decode().means, m.decode(n).means)
        for n in (6, 100, None):
            d = read_ngs(path, n_clusters=n)
            assert d.n_clusters == 5 and d.num_gaussians == 90
            assert_bit_equal(d.predict_normalised(), full)


@pytest.mark.parametrize("sh", [0, 2])
def test_zero_clusters_gives_an_empty_model(sh):
    m = small_model(20, 3, sh, seed=2)
    d = decode_ngs(encode_ngs(m), n_clusters=0)
    assert d.n_clusters == 0 and d.num_gaussians == 0 and d.fields == [] and tuple(d.positions.shape) == (0, 3)
    assert d.arch == m.arch and d.meta == m.meta
    with torch.no_grad():
        assert d.decode().num_gaussians == 0


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_bad_n_clusters_argument(bad):
    with pytest.raises(ValueError, match="n_clusters"):
        decode_ngs(encode_ngs(small_model(5, 1)), n_clusters=bad)


def test_progressive_read_skips_the_sections_it_does_not_decode(tmp_path):
    m = small_model(40, 4, 1, seed=4)
    data = bytearray(encode_ngs(m))
    data[-6] ^= 0xFF  # inside the last MLP section's payload
    path = tmp_path / "late-damage.ngs"
    path.write_bytes(bytes(data))
    assert read_ngs(path, n_clusters=3).n_clusters == 3
    with pytest.raises(NgsFormatError, match="CRC mismatch in section mlp_3"):
        read_ngs(path)


# -- exact size and layout --------------------------------------------------------------------------------
@pytest.mark.parametrize("sh,k,hidden,layers,pe,n", CASES[::2])
def test_size_is_exactly_the_documented_parts(sh, k, hidden, layers, pe, n):
    m = small_model(n, k, sh, hidden, layers, pe)
    data = encode_ngs(m)
    header, hbytes, sections = split_file(data)
    n_params = FieldArch(sh, hidden, layers, pe).n_params()
    assert len(data) == 4 + 2 + 2 + 4 + len(hbytes) + 4 + (4 + 6 * n + 4) + k * (4 + 2 * n_params + 4)
    assert [s["name"] for s in header["sections"]] == ["positions"] + [f"mlp_{i}" for i in range(k)]
    for s, (length, payload, crc) in zip(header["sections"], sections):
        assert s["length"] == length == len(payload) and s["crc32"] == crc == zlib.crc32(payload)
    assert header["position_bits"] == 16 and header["weight_dtype"] == "float16"
    assert header["n_gaussians"] == n and header["n_clusters"] == k and header["cluster_sizes"] == m.cluster_sizes
    assert header["arch"] == {"hidden": hidden, "layers": layers, "pe_freqs": pe}
    # positions: uint16 q = round((p - lo) / (hi - lo) * 65535), rows grouped by cluster
    q = np.frombuffer(sections[0][1], "<u2").reshape(n, 3).astype(np.float64)
    lo, hi = m.pos_lo.double().numpy(), m.pos_hi.double().numpy()
    span = np.where(hi > lo, hi - lo, 1.0)
    expect = np.where(hi > lo, np.rint((m.positions.double().numpy() - lo) / span * 65535), 0)
    assert np.array_equal(q, expect)
    # weights: float16, per layer weight [out, in] row-major then bias
    w = np.frombuffer(sections[1][1], "<f2")
    flat = torch.cat([t.detach().reshape(-1) for lin in m.fields[0].linears for t in (lin.weight, lin.bias)])
    assert np.array_equal(w, flat.numpy().astype(np.float16))


def test_write_ngs_is_atomic_and_refuses_to_overwrite(tmp_path):
    m = small_model(30, 2, 2)
    path = tmp_path / "scene.ngs"
    n = write_ngs(m, path)
    assert n == path.stat().st_size == len(encode_ngs(m))
    with pytest.raises(FileExistsError):
        write_ngs(m, path)
    m2 = small_model(10, 1, 2, seed=9)
    assert write_ngs(m2, path, overwrite=True) == path.stat().st_size
    assert read_ngs(path).num_gaussians == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.ngs"]  # no temporary files left


def test_read_ngs_header(tmp_path):
    m = small_model(30, 2, 3, hidden=8, layers=3, pe=2)
    m.meta = {"k": 2, "source": "x.ply"}
    path = tmp_path / "h.ngs"
    size = write_ngs(m, path)
    h = read_ngs_header(path)
    assert h["version"] == 1 and h["file_size"] == size and h["n_gaussians"] == 30 and h["n_clusters"] == 2
    assert h["sh_degree"] == 3 and h["arch"] == {"hidden": 8, "layers": 3, "pe_freqs": 2} and h["meta"] == m.meta
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(NgsFormatError, match="truncated section mlp_1"):
        read_ngs_header(path)


def test_header_only_read_loads_no_torch(tmp_path):
    path = tmp_path / "h.ngs"
    write_ngs(small_model(5, 1), path)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        from core.codec import read_ngs_header, NgsFormatError
        h = read_ngs_header({str(path)!r})
        assert h["n_gaussians"] == 5
        assert "torch" not in sys.modules, "torch was imported"
        print("ok")
    """)], cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_sh3_capture_positions_within_target():
    """Real coordinates up to ~1000 units: 16-bit quantisation error <= 1e-4 of the extent (the issue's target)."""
    from core.io import read_scene

    scene = read_scene(shared_path("scenes", "sh3-capture.ply"))
    pos = scene.means
    lo, hi = pos.min(0).values, pos.max(0).values
    arch = FieldArch(3, hidden=4, layers=2, pe_freqs=0)
    sizes = random_cluster_sizes(pos.shape[0], 4, np.random.default_rng(0))
    from core.neural_field import ClusterField

    m = NeuralGSModel(arch, pos, sizes, [ClusterField(arch) for _ in sizes], lo, hi,
                      torch.zeros(arch.out_dim), torch.ones(arch.out_dim))
    d = decode_ngs(encode_ngs(m))
    err = (d.positions.double() - pos.double()).abs()
    extent = float((hi - lo).max())
    assert float(pos.abs().max()) > 900  # the case where fp16 would fail (step 0.5 near 1000)
    assert bool((err <= position_bound(m)).all())
    assert float(err.max()) / extent <= 1e-4
    assert float(err.max()) / extent <= 0.5 / 65535 * 1.001  # and in fact half a step


# -- encoder refusals (caller bugs: ValueError) -----------------------------------------------------------
def test_encoder_refuses_what_v1_cannot_store():
    m = small_model(20, 2, 1)
    m.positions[3, 0] = m.pos_hi[0] + 1.0
    with pytest.raises(ValueError, match="outside the quantisation box"):
        encode_ngs(m)
    m = small_model(20, 2, 1)
    with torch.no_grad():
        m.fields[1].linears[0].weight[0, 0] = 70000.0
    with pytest.raises(ValueError, match="float16"):
        encode_ngs(m)
    with pytest.raises(ValueError, match="float16"):
        quantise_model_weights_(m)
    m = small_model(20, 2, 1)
    with torch.no_grad():
        m.fields[0].linears[0].bias[0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        encode_ngs(m)
    m = small_model(20, 2, 1)
    m.cluster_sizes = m.cluster_sizes[::-1]
    with pytest.raises(ValueError, match="non-increasing"):
        encode_ngs(m)
    m = small_model(20, 2, 1)
    m.meta = {"bad": float("nan")}
    with pytest.raises(ValueError, match="JSON"):
        encode_ngs(m)
    m.meta = {"bad": object()}
    with pytest.raises(ValueError, match="JSON"):
        encode_ngs(m)
    m = small_model(20, 2, 1)
    m.pos_lo[0] = float("inf")
    with pytest.raises(ValueError, match="finite"):
        encode_ngs(m)


# -- reader errors: one clear message per problem --------------------------------------------------------
@pytest.fixture(scope="module")
def good() -> bytes:
    return encode_ngs(small_model(30, 3, 1, hidden=6, layers=3, pe=1, seed=21))


def test_bad_magic_version_flags(good):
    expect_error(b"", "empty file")
    expect_error(b"PK\x03\x04" + good[4:], "not an .ngs file", "bad magic")
    expect_error(b"NG", "truncated prelude (expected 12 bytes, found 2)")
    expect_error(good[:4] + struct.pack("<H", 3) + good[6:], "unsupported .ngs version 3", "supports version 1, 2")
    # a v1 header under a version-2 prelude is read as v2 and rejected by name, not misread
    expect_error(good[:4] + struct.pack("<H", 2) + good[6:], "header is missing key 'codec'")
    expect_error(good[:6] + struct.pack("<H", 1) + good[8:], "unsupported flags")


def test_header_problems(good):
    expect_error(good[:8] + struct.pack("<I", 2**31) + good[12:], "header length", "16 MiB")
    expect_error(good[:8] + struct.pack("<I", len(good)) + good[12:], "truncated header JSON")
    bad = bytearray(good)
    bad[20] ^= 1
    expect_error(bytes(bad), "CRC mismatch in the header JSON")
    expect_error(rewrite_header(good, header_text=b"{not json"), "header JSON is invalid")
    expect_error(rewrite_header(good, header_text=b"\xff\xfe{}"), "header JSON is invalid", "UTF-8")
    expect_error(rewrite_header(good, header_text=b"[1, 2]"), "expected an object")
    expect_error(rewrite_header(good, header_text=b"[" * 100000), "header JSON is invalid")
    expect_error(rewrite_header(good, header_text=b'{"a": 1, "a": 2}'), "duplicate key")
    expect_error(rewrite_header(good, lambda h: h.pop("cluster_sizes")), "missing key 'cluster_sizes'")
    expect_error(rewrite_header(good, lambda h: h["arch"].pop("pe_freqs")), "missing key 'pe_freqs'")
    expect_error(rewrite_header(good, lambda h: h.update(n_gaussians="30")), "'n_gaussians' has the wrong type")
    expect_error(rewrite_header(good, lambda h: h.update(n_gaussians=30.0)), "'n_gaussians' has the wrong type")
    expect_error(rewrite_header(good, lambda h: h.update(sh_degree=True)), "'sh_degree' has the wrong type")
    expect_error(rewrite_header(good, lambda h: h.update(meta=[])), "'meta' has the wrong type")
    expect_error(rewrite_header(good, lambda h: h.update(position_bits=8)), "position_bits")
    expect_error(rewrite_header(good, lambda h: h.update(weight_dtype="float32")), "weight_dtype")


@pytest.mark.parametrize("edit,fragment", [
    (lambda h: h.update(n_clusters=65536), "n_clusters = 65536 is out of range"),
    (lambda h: h.update(n_gaussians=2**31), "n_gaussians = 2147483648 is out of range"),
    (lambda h: h.update(n_gaussians=-1), "out of range"),
    (lambda h: h["arch"].update(hidden=4097), "hidden = 4097 is out of range"),
    (lambda h: h["arch"].update(hidden=0), "hidden = 0 is out of range"),
    (lambda h: h["arch"].update(layers=1), "layers = 1 is out of range (allowed 2..16)"),
    (lambda h: h["arch"].update(layers=17), "layers = 17 is out of range"),
    (lambda h: h["arch"].update(pe_freqs=17), "pe_freqs = 17 is out of range"),
    (lambda h: h.update(sh_degree=4), "sh_degree = 4 is out of range (allowed 0..3)"),
])
def test_absurd_values(good, edit, fragment):
    expect_error(rewrite_header(good, edit), fragment)


@pytest.mark.parametrize("edit,fragment", [
    (lambda h: h.update(n_gaussians=h["n_gaussians"] + 1), "cluster sizes sum to 30 but n_gaussians is 31"),
    (lambda h: h.update(n_clusters=2), "cluster_sizes has 3 entries but n_clusters is 2"),
    (lambda h: h["cluster_sizes"].reverse(), "non-increasing"),
    (lambda h: h["cluster_sizes"].__setitem__(0, "9"), "'cluster_sizes'[0] has the wrong type"),
    (lambda h: h["sections"].pop(), "lists 3 sections, expected 4"),
    (lambda h: h["sections"][2].update(name="mlp_7"), "named 'mlp_7', expected 'mlp_1'"),
    (lambda h: h["sections"][0].update(length=h["sections"][0]["length"] + 6),
     "section positions length 186 does not match n_gaussians (30 x 6 bytes)"),
    (lambda h: h["sections"][1].update(length=10), "section mlp_0 length 10 does not match the architecture"),
    (lambda h: h["arch"].update(hidden=7), "does not match the architecture"),
    (lambda h: h.update(sh_degree=2), "'attr_lo' has 19 values, expected 34"),
    (lambda h: h["pos_lo"].pop(), "'pos_lo' has 2 values, expected 3"),
    (lambda h: h["pos_lo"].__setitem__(1, 1e39), "non-finite range"),
    (lambda h: h["attr_hi"].__setitem__(0, -3.5e38), "non-finite range"),
    (lambda h: h["attr_hi"].__setitem__(2, -(10**400)), "non-finite range: header key 'attr_hi'[2] = a 401-digit"),
    (lambda h: h["attr_hi"].__setitem__(0, "1"), "'attr_hi'[0] has the wrong type"),
    (lambda h: h["pos_hi"].__setitem__(2, -1e30), "pos_hi[2]"),
    (lambda h: h["sections"][1].update(crc32=-1), "crc32 = -1 is out of range"),
])
def test_inconsistent_counts_and_ranges(good, edit, fragment):
    expect_error(rewrite_header(good, edit), fragment)


def test_huge_integer_in_header(good):
    (hlen,) = struct.unpack_from("<I", good, 8)
    h = json.loads(good[12: 12 + hlen])
    for digits, fragment in ((4000, "4000-digit integer"), (5000, "header JSON is invalid")):
        h["n_gaussians"] = 0
        text = json.dumps(h).replace('"n_gaussians": 0', '"n_gaussians": ' + "9" * digits).encode()
        expect_error(rewrite_header(good, header_text=text), fragment)


def test_nan_literal_in_header(good):
    (hlen,) = struct.unpack_from("<I", good, 8)
    h = good[12: 12 + hlen].replace(b'"pos_lo":[', b'"pos_lo":[NaN,', 1)
    expect_error(rewrite_header(good, header_text=h), "header JSON is invalid", "NaN")
    h = good[12: 12 + hlen].replace(b'"pos_lo":[', b'"pos_lo":[1e400,', 1)
    expect_error(rewrite_header(good, header_text=h), "'pos_lo' has 4 values")
    h = good[12: 12 + hlen]
    start = h.index(b'"pos_lo":[') + len(b'"pos_lo":[')
    h = h[:start] + b"1e400" + h[h.index(b",", start):]
    expect_error(rewrite_header(good, header_text=h), "non-finite range", "'pos_lo'[0]")


def test_section_problems(good):
    header, hbytes, sections = split_file(good)
    start = [16 + len(hbytes)]
    for length, _, _ in sections:
        start.append(start[-1] + 8 + length)
    # truncated at each section
    for i, name in enumerate(["positions", "mlp_0", "mlp_1", "mlp_2"]):
        cut = good[: start[i] + 5]
        expect_error(cut, f"truncated section {name} (expected {8 + sections[i][0]} bytes", "found 5)")
    expect_error(good + b"\0", "1 trailing bytes after the last section (mlp_2)")
    # length field disagreeing with the header
    bad = bytearray(good)
    bad[start[2]: start[2] + 4] = struct.pack("<I", 0xFFFFFFFF)
    expect_error(bytes(bad), "section mlp_1 length field says 4294967295 bytes but the header says")
    # payload damage, CRC field damage
    bad = bytearray(good)
    bad[start[3] + 10] ^= 0x10
    expect_error(bytes(bad), "CRC mismatch in section mlp_2 (stored")
    bad = bytearray(good)
    bad[start[1] - 1] ^= 0x80
    expect_error(bytes(bad), "CRC mismatch in section positions: the CRC field")


def test_non_finite_weights_with_valid_crcs(good):
    header, hbytes, sections = split_file(good)
    payload = bytearray(sections[2][1])
    payload[0:2] = np.float16("inf").tobytes()
    crc = zlib.crc32(payload)
    body = b"".join(struct.pack("<I", len(p)) + (bytes(payload) if i == 2 else p)
                    + struct.pack("<I", crc if i == 2 else c)
                    for i, (_, p, c) in enumerate(sections))

    def edit(h):
        h["sections"][2]["crc32"] = crc

    data = rewrite_header(good[: 16 + len(hbytes)] + body, edit)
    expect_error(data, "non-finite weights", "mlp_1")


def test_file_errors(tmp_path):
    with pytest.raises(NgsFormatError, match="file not found"):
        read_ngs(tmp_path / "missing.ngs")
    with pytest.raises(NgsFormatError, match="is a folder"):
        read_ngs(tmp_path)
    with pytest.raises(NgsFormatError, match="file not found"):
        read_ngs_header(tmp_path / "missing.ngs")
    p = tmp_path / "t.ngs"
    p.write_bytes(b"NGS\x00\x01\x00")
    with pytest.raises(NgsFormatError, match="truncated prelude") as info:
        read_ngs(p)
    assert isinstance(info.value, NgsFormatError) and str(info.value).startswith(str(p))


def test_benchmark_decode_runs_small():
    from core.bench.decode import benchmark_decode

    r = benchmark_decode(n_gaussians=3000, n_clusters=4, hidden=8, sh_degree=3, layers=3, pe_freqs=2, repeats=2,
                         threads=1)
    assert r["n"] == 3000 and r["threads"] == 1 and len(r["runs"]) == 2 and r["seconds"] == min(r["runs"])
    assert r["bytes"] > 18000
    assert r["seconds"] >= r["mlp_seconds"] > 0 and r["cpu_seconds"] > 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_model_encodes_like_the_cpu_model():
    m = small_model(50, 3, 2, seed=8)
    quantise_model_(m)
    cpu_bytes = encode_ngs(m)
    g = NeuralGSModel(m.arch, m.positions.cuda(), list(m.cluster_sizes), [copy.deepcopy(f).cuda() for f in m.fields],
                      m.pos_lo.cuda(), m.pos_hi.cuda(), m.attr_lo.cuda(), m.attr_hi.cuda(), dict(m.meta))
    quantise_model_(g)  # idempotent, stays on the GPU
    assert g.positions.is_cuda and next(g.fields[0].parameters()).is_cuda
    assert encode_ngs(g) == cpu_bytes


def test_is_ngs_file_reads_the_magic_and_names_unreadable_paths(tmp_path):
    from core.codec import is_ngs_file
    from core.errors import InputFileError

    ngs, ply = tmp_path / "scene.bin", tmp_path / "scene.ngs"
    ngs.write_bytes(b"NGS\x00" + b"\x01" * 8)
    ply.write_bytes(b"ply\nformat ascii 1.0\n")  # the name says .ngs; the bytes do not
    assert is_ngs_file(ngs) and not is_ngs_file(ply)
    with pytest.raises(InputFileError, match="is a folder"):
        is_ngs_file(tmp_path)
    with pytest.raises(InputFileError, match="file not found"):
        is_ngs_file(tmp_path / "missing.ngs")
