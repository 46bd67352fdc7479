"""PLY files: a generic header/element parser and the graphdeco 3DGS vertex layout (read and write).

The graphdeco layout is one ``vertex`` element with float properties
``x y z [nx ny nz] f_dc_0..2 f_rest_0..(3M-1) opacity scale_0..2 rot_0..3``, where ``f_rest`` is
channel-major (``f_rest_{c*M+k}`` is SH coefficient k of colour channel c). See core/scene.py.

Binary data is read with numpy structured dtypes straight from the file's bytes (no Python loops),
after checking ``count * record_size`` against the bytes present, so a corrupt count can never make
us allocate. :mod:`core.io.compressed_ply` reuses :func:`parse_header` and :func:`read_elements`.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field

import numpy as np
import torch
from numpy.lib import recfunctions as rfn

from core.io.formats import looks_like
from core.errors import InputFileError
from core.io.atomic import atomic_write
from core.scene import GaussianScene

logger = logging.getLogger(__name__)

PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
"""PLY scalar type names (both spellings) -> numpy type codes without byte order."""

BYTE_ORDER = {"binary_little_endian": "<", "binary_big_endian": ">", "ascii": "="}
MAX_HEADER_BYTES = 1 << 20
_END_HEADER = re.compile(rb"(?:^|\n)end_header[ \t]*(?:\r?\n|\Z)")
GRAPHDECO_REQUIRED = (
    "x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
    "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3",
)
NORMALS = ("nx", "ny", "nz")
F_REST_COUNTS = (0, 9, 24, 45)


@dataclass
class PlyProperty:
    """One ``property`` line: a scalar of ``type_name``, or a list of them when ``count_type`` is set."""

    name: str
    type_name: str
    count_type: str | None = None

    @property
    def is_list(self) -> bool:
        return self.count_type is not None

    def describe(self) -> str:
        return f"list {self.count_type} {self.type_name}" if self.is_list else self.type_name


@dataclass
class PlyElement:
    """One ``element`` line with its properties, in file order."""

    name: str
    count: int
    properties: list[PlyProperty] = field(default_factory=list)

    def prop(self, name: str) -> PlyProperty | None:
        return next((p for p in self.properties if p.name == name), None)

    def names(self) -> list[str]:
        return [p.name for p in self.properties]

    def dtype(self, byte_order: str) -> np.dtype | None:
        """Structured record dtype, or None when records have variable size or unknown types."""
        if any(p.is_list or p.type_name not in PLY_TYPES for p in self.properties):
            return None
        return np.dtype([(p.name, byte_order + PLY_TYPES[p.type_name]) for p in self.properties])

    def why_unreadable(self) -> str:
        bad = [p for p in self.properties if p.is_list or p.type_name not in PLY_TYPES]
        return ", ".join(f"'{p.name}' is a list property" if p.is_list else f"'{p.name}' has unknown type "
                         f"'{p.type_name}'" for p in bad)


@dataclass
class PlyHeader:
    """A parsed header: ``format`` (a BYTE_ORDER key), the elements, and where the data starts."""

    format: str
    elements: list[PlyElement]
    data_offset: int

    def element(self, name: str) -> PlyElement | None:
        return next((e for e in self.elements if e.name == name), None)


def _not_ply_problem(data: bytes) -> str:
    if not data:
        return "file is empty (0 bytes)"
    hint = looks_like(data)
    if hint:
        return f"not a PLY file (it looks like {hint}): a PLY file starts with the line 'ply'"
    return f"not a PLY file: it does not start with the line 'ply' (first bytes: {data[:16]!r})"


def parse_header(data: bytes, path: str | os.PathLike[str]) -> PlyHeader:
    """Parse the header at the start of ``data``; raise InputFileError naming the problem."""
    if not (data.startswith(b"ply\n") or data.startswith(b"ply\r\n") or data == b"ply"):
        raise InputFileError(path, _not_ply_problem(data))
    m = _END_HEADER.search(data, 0, MAX_HEADER_BYTES + 64)
    if m is not None and m.end() < len(data) and data[m.end() - 1 : m.end()] != b"\n":
        m = None  # \Z matched at the search limit, not at the end of the file
    if m is None:
        where = f"in its first {MAX_HEADER_BYTES} bytes" if len(data) > MAX_HEADER_BYTES else "(file ends first)"
        raise InputFileError(path, f"PLY header has no 'end_header' line {where}")
    text = data[: m.start()].decode("latin-1")
    fmt: str | None = None
    elements: list[PlyElement] = []
    for lineno, raw in enumerate(text.split("\n")[1:], start=2):
        tokens = raw.split()
        if not tokens or tokens[0] in ("comment", "obj_info"):
            continue
        bad = f"PLY header line {lineno} is malformed: {raw.strip()[:80]!r}"
        if tokens[0] == "format":
            if len(tokens) != 3 or tokens[1] not in BYTE_ORDER:
                raise InputFileError(path, f"unsupported PLY format line {lineno}: {raw.strip()[:80]!r}")
            if fmt is not None:
                raise InputFileError(path, f"PLY header has two format lines (line {lineno})")
            fmt = tokens[1]
        elif tokens[0] == "element":
            if len(tokens) != 3:
                raise InputFileError(path, bad)
            try:
                count = int(tokens[2])
            except ValueError:
                raise InputFileError(path, f"element '{tokens[1]}' has a non-integer count {tokens[2]!r}") from None
            if count < 0:
                raise InputFileError(path, f"element '{tokens[1]}' has a negative count ({count})")
            if any(e.name == tokens[1] for e in elements):
                raise InputFileError(path, f"PLY header declares element '{tokens[1]}' twice")
            elements.append(PlyElement(tokens[1], count))
        elif tokens[0] == "property":
            if not elements:
                raise InputFileError(path, f"PLY header line {lineno} declares a property before any element")
            if len(tokens) == 5 and tokens[1] == "list":
                prop = PlyProperty(tokens[4], tokens[3], tokens[2])
            elif len(tokens) == 3 and tokens[1] != "list":
                prop = PlyProperty(tokens[2], tokens[1])
            else:
                raise InputFileError(path, bad)
            if elements[-1].prop(prop.name) is not None:
                raise InputFileError(path, f"property '{prop.name}' is declared twice in element '{elements[-1].name}'")
            elements[-1].properties.append(prop)
        else:
            raise InputFileError(path, f"PLY header line {lineno} is not a PLY header line: {raw.strip()[:80]!r}")
    if fmt is None:
        raise InputFileError(path, "PLY header has no 'format' line")
    return PlyHeader(fmt, elements, m.end())


def _truncated(path, el: PlyElement, record: str, need: int, have: int, unit: str) -> InputFileError:
    return InputFileError(
        path,
        f"file is truncated: the header declares {el.count} '{el.name}' records of {record} "
        f"({need} {unit}) but only {max(have, 0)} {unit} of data are present",
    )


def read_elements(
    data: bytes, header: PlyHeader, path: str | os.PathLike[str], wanted: set[str]
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Read the ``wanted`` elements as structured arrays (native byte order, one record per row).

    Elements before a wanted one are skipped by size; elements after the last wanted one are only
    measured, to report trailing or missing bytes as warnings. Raises InputFileError when wanted
    data is cut short or cannot be located (variable-size list elements before it in binary files).
    Returns ``(arrays, warnings)``.
    """
    if header.format == "ascii":
        return _read_ascii(data, header, path, wanted)
    order = BYTE_ORDER[header.format]
    out: dict[str, np.ndarray] = {}
    warnings: list[str] = []
    offset = header.data_offset
    for el in header.elements:
        needed = bool(wanted - out.keys())
        dt = el.dtype(order)
        if dt is None:
            if needed:
                raise InputFileError(
                    path,
                    f"element '{el.name}' has variable-size or unknown-type records ({el.why_unreadable()}), "
                    f"unsupported {'in the element we read' if el.name in wanted else 'before the elements we read'}",
                )
            logger.debug("%s: not checking data after variable-size element '%s'", path, el.name)
            return out, warnings
        need, have = el.count * dt.itemsize, len(data) - offset
        if need > have:
            if needed:
                raise _truncated(path, el, f"{dt.itemsize} bytes", need, have, "bytes")
            warnings.append(f"element '{el.name}' after the data we read is truncated ({have} of {need} bytes)")
            return out, warnings
        if el.name in wanted:
            if dt.itemsize == 0:
                raise InputFileError(path, f"element '{el.name}' has no properties")
            arr = np.frombuffer(data, dtype=dt, count=el.count, offset=offset)
            out[el.name] = arr if dt.isnative else arr.astype(dt.newbyteorder("="))
        offset += need
    if len(data) > offset:
        warnings.append(f"{len(data) - offset} trailing bytes after the declared data were ignored")
    return out, warnings


def _read_ascii(data, header, path, wanted):
    tokens = data[header.data_offset :].split()
    out: dict[str, np.ndarray] = {}
    warnings: list[str] = []
    pos = 0
    for el in header.elements:
        needed = bool(wanted - out.keys())
        dt = el.dtype("=")
        if dt is None:
            if el.name in wanted or any(p.type_name not in PLY_TYPES for p in el.properties):
                if needed:
                    raise InputFileError(path, f"element '{el.name}' cannot be read: {el.why_unreadable()}")
                return out, warnings
            for row in range(el.count):  # list elements: one row at a time (small in practice)
                for p in el.properties:
                    if pos >= len(tokens):
                        if needed:
                            raise _truncated(path, el, "variable length", el.count, row, "records")
                        return out, warnings
                    pos += 1 + (_ascii_int(tokens[pos], path, el) if p.is_list else 0)
            continue
        need = el.count * len(el.properties)
        if pos + need > len(tokens):
            if needed:
                raise _truncated(path, el, f"{len(el.properties)} values", need, len(tokens) - pos, "values")
            warnings.append(f"element '{el.name}' after the data we read is truncated")
            return out, warnings
        if el.name in wanted:
            try:
                flat = np.array([float(t) for t in tokens[pos : pos + need]], dtype=np.float64)
            except ValueError as exc:
                raise InputFileError(path, f"element '{el.name}' has a non-numeric value: {exc}") from None
            table = flat.reshape(el.count, len(el.properties))
            with np.errstate(invalid="ignore", over="ignore"):
                out[el.name] = rfn.unstructured_to_structured(table, dtype=dt, casting="unsafe")
        pos += need
    if pos < len(tokens):
        warnings.append(f"{len(tokens) - pos} trailing values after the declared data were ignored")
    return out, warnings


def _ascii_int(token: bytes, path, el: PlyElement) -> int:
    try:
        n = int(token)
    except ValueError:
        raise InputFileError(path, f"element '{el.name}' has a non-integer list length {token[:20]!r}") from None
    if n < 0:
        raise InputFileError(path, f"element '{el.name}' has a negative list length ({n})")
    return n


def check_finite(values: np.ndarray, names: list[str], path) -> None:
    """Raise InputFileError naming each column of ``values`` [N, len(names)] holding NaN/Inf, with counts."""
    bad = (~np.isfinite(values)).sum(axis=0)
    if bad.any():
        parts = [f"{name} ({int(c)})" for name, c in zip(names, bad) if c]
        raise InputFileError(path, f"non-finite (NaN/Inf) values in {', '.join(parts)}")


def scalar_property_problems(el: PlyElement, names: list[str]) -> list[str]:
    """Why properties ``names`` of ``el`` cannot be read as numbers (list or unknown type)."""
    problems = []
    for n in names:
        p = el.prop(n)
        if p is not None and p.is_list:
            problems.append(f"'{n}' is a list property ({p.describe()}), expected a number")
        elif p is not None and p.type_name not in PLY_TYPES:
            problems.append(f"'{n}' has type '{p.type_name}', which is not a numeric PLY type")
    return problems


def graphdeco_columns(vertex: PlyElement, path) -> tuple[list[str], list[str]]:
    """Validate a graphdeco vertex element; return (columns to read in scene order, warnings)."""
    names = vertex.names()
    rest = [n for n in names if n.startswith("f_rest_")]
    missing = [n for n in GRAPHDECO_REQUIRED if n not in names]
    if missing:
        raise InputFileError(path, f"not a 3D Gaussian splat PLY: the vertex element lacks {', '.join(missing)}")
    if len(rest) not in F_REST_COUNTS or set(rest) != {f"f_rest_{i}" for i in range(len(rest))}:
        raise InputFileError(
            path, f"vertex element has {len(rest)} f_rest properties; expected f_rest_0.. numbered 0, 9, 24 or 45"
        )
    columns = list(GRAPHDECO_REQUIRED) + rest_names_coefficient_major(len(rest))
    problems = scalar_property_problems(vertex, columns)
    if problems:
        raise InputFileError(path, "wrong vertex property types: " + "; ".join(problems))
    extra = [n for n in names if n not in columns and n not in NORMALS]
    warnings = [f"ignored unknown vertex properties: {', '.join(extra)}"] if extra else []
    non_float = sorted({vertex.prop(n).type_name for n in columns} - {"float", "float32"})
    if non_float:
        warnings.append(f"vertex properties of type {', '.join(non_float)} were converted to float32")
    return columns, warnings


def rest_names_coefficient_major(n_rest: int) -> list[str]:
    """``f_rest_*`` names ordered as ``sh_rest[:, k, c]`` flattens: name ``k*3 + c`` is ``f_rest_{c*M + k}``."""
    m = n_rest // 3
    return [f"f_rest_{c * m + k}" for k in range(m) for c in range(3)]


def scene_from_columns(values: np.ndarray, n_rest: int) -> GaussianScene:
    """Scene from ``values`` [N, 14 + n_rest]: GRAPHDECO_REQUIRED, then rest_names_coefficient_major."""
    t = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))
    n, m = t.shape[0], n_rest // 3
    return GaussianScene(
        means=t[:, 0:3].contiguous(),
        quats=t[:, 10:14].contiguous(),
        log_scales=t[:, 7:10].contiguous(),
        opacity_logits=t[:, 6].contiguous(),
        sh_dc=t[:, 3:6].contiguous(),
        sh_rest=t[:, 14:].reshape(n, m, 3).contiguous(),
    )


def columns_as_float32(rec: np.ndarray, names: list[str]) -> np.ndarray:
    """Fields ``names`` of structured ``rec`` [N] as one float32 array [N, len(names)].

    Records of a single field type (the usual all-float file) are viewed as a 2D array and the
    columns gathered in one pass; mixed records go through numpy's structured_to_unstructured.
    """
    fields = rec.dtype.fields
    types = {fields[n][0] for n in rec.dtype.names}
    with np.errstate(over="ignore", invalid="ignore"):  # doubles beyond float32 become inf (reported later)
        if len(types) == 1 and rec.flags.c_contiguous:
            base = types.pop()
            if rec.dtype.itemsize == len(rec.dtype.names) * base.itemsize:
                table = rec.view(base).reshape(len(rec), len(rec.dtype.names))
                return table[:, [fields[n][1] // base.itemsize for n in names]].astype(np.float32, copy=False)
        return rfn.structured_to_unstructured(rec[names], dtype=np.float32, copy=True)


def read_graphdeco_ply(
    data: bytes, path: str | os.PathLike[str], header: PlyHeader | None = None, *,
    infinite_opacity_logit: float | None = None,
) -> tuple[GaussianScene, str, list[str]]:
    """Read a graphdeco 3DGS PLY from its bytes; returns ``(scene, encoding, warnings)``.

    ``infinite_opacity_logit``: when given, opacity logits of +/-inf (what splat-transform writes for
    alpha 1 / 0) become +/- this value instead of an error; every other non-finite value is an error.
    """
    header = header or parse_header(data, path)
    vertex = header.element("vertex")
    if vertex is None:
        raise InputFileError(path, "PLY file has no 'vertex' element")
    columns, warnings = graphdeco_columns(vertex, path)
    arrays, more = read_elements(data, header, path, {"vertex"})
    warnings += more
    other = [e.name for e in header.elements if e.name != "vertex"]
    if other:
        warnings.append(f"ignored PLY elements: {', '.join(other)}")
    values = columns_as_float32(arrays["vertex"], columns)
    if infinite_opacity_logit is not None:
        opacity = values[:, columns.index("opacity")]
        opacity[np.isinf(opacity)] = np.sign(opacity[np.isinf(opacity)]) * infinite_opacity_logit
    check_finite(values, columns, path)
    return scene_from_columns(values, len(columns) - 14), header.format, warnings


def graphdeco_table(scene: GaussianScene, include_normals: bool = True) -> tuple[list[str], np.ndarray]:
    """(property names, float32 table [N, P]) in graphdeco layout; normals are zeros."""
    s = scene.detach().to("cpu", torch.float32)
    n, m = s.num_gaussians, s.sh_rest.shape[1]
    normals = [torch.zeros(n, 3)] if include_normals else []
    rest = s.sh_rest.transpose(1, 2).reshape(n, 3 * m)  # channel-major f_rest
    parts = [s.means, *normals, s.sh_dc, rest, s.opacity_logits[:, None], s.log_scales, s.quats]
    names = ["x", "y", "z"] + (list(NORMALS) if include_normals else []) + list(GRAPHDECO_REQUIRED[3:6])
    names += [f"f_rest_{i}" for i in range(3 * m)] + list(GRAPHDECO_REQUIRED[6:])
    return names, torch.cat(parts, dim=1).numpy()


def write_ply(
    scene: GaussianScene, path: str | os.PathLike[str], *, ascii: bool = False, overwrite: bool = False,
    include_normals: bool = True,
) -> None:
    """Write ``scene`` as a graphdeco 3DGS PLY (all ``property float``), atomically.

    Binary little-endian by default; ``ascii=True`` writes ``%.9g`` text, which round-trips every
    float32 exactly. Raises FileExistsError if ``path`` exists and ``overwrite`` is false.
    """
    names, table = graphdeco_table(scene, include_normals)
    fmt = "ascii" if ascii else "binary_little_endian"
    header = [f"ply\nformat {fmt} 1.0\ncomment written by NeuralGS Studio\nelement vertex {len(table)}\n"]
    header += [f"property float {name}\n" for name in names] + ["end_header\n"]
    with atomic_write(path, overwrite=overwrite) as f:
        f.write("".join(header).encode("ascii"))
        if ascii:
            np.savetxt(f, table, fmt="%.9g", delimiter=" ")
        else:
            f.write(table.astype("<f4", copy=False).tobytes())
    logger.info("wrote %s: %d Gaussians, SH degree %d, %s", path, len(table), scene.sh_degree, fmt)
