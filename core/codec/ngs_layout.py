"""The layout of an ``.ngs`` file of either version: its checked header and sections (torch-free; DESIGN.md §7).

:func:`read_layout` reads the container's prelude and header (:mod:`core.codec.ngs_format`), validates the
header with its version's module (:mod:`core.codec.ngs_format_v1`, :mod:`core.codec.ngs_format_v2`) and
checks that the file size is exactly what the header implies; :func:`read_ngs_header` gives ``info`` the
header as a dict, reading nothing else.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from core.codec.ngs_format import ByteSource, FileSource, check_file_size, open_file, read_header
from core.codec.ngs_format_v1 import VERSION1, NgsHeader, validate_header_v1
from core.codec.ngs_format_v2 import NgsHeaderV2, validate_header_v2

logger = logging.getLogger(__name__)


def read_layout(src: ByteSource | FileSource, path: Path) -> NgsHeader | NgsHeaderV2:
    """Read and check the prelude and header, and that the file size is exactly what they imply."""
    version, hlen, obj = read_header(src, path)
    validate = validate_header_v1 if version == VERSION1 else validate_header_v2
    hdr = validate(obj, version, hlen, path)
    check_file_size(src.size, hdr.sections, hdr.file_size, path)
    return hdr


def read_ngs_header(path: str | os.PathLike[str]) -> dict:
    """The header of an ``.ngs`` file as a dict, reading only the prelude and header (for ``info``).

    Returns the header JSON object (its keys: :mod:`core.codec.ngs_format_v1`, :mod:`core.codec.ngs_format_v2`)
    plus ``"version"`` (int) and ``"file_size"`` (bytes). The header is fully validated and the file size
    checked against it (so a truncated file is reported here too); section CRCs are not checked (read_ngs does).
    Raises NgsFormatError.
    """
    p = Path(path)
    with open_file(p) as f:
        hdr = read_layout(FileSource(f, p), p)
    out = dict(hdr.raw)
    out["version"] = hdr.version
    out["file_size"] = hdr.file_size
    logger.debug("%s: .ngs v%d header, %d Gaussians, %d clusters", p, hdr.version, hdr.n_gaussians, hdr.n_clusters)
    return out
