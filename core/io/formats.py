"""What a file looks like, for the error that names a format we do not read.

:func:`describe_unsupported` gives one line such as ``"looks like a glTF binary (.glb), a format this tool
does not read; it reads .ply (graphdeco 3DGS), .compressed.ply, .splat, .spz, .sog and .ngs"``, from the
file's first bytes and its extension, so that no file that is plainly something else is reported as
"not a PLY file".
"""

from __future__ import annotations

from pathlib import Path

SUPPORTED = ".ply (graphdeco 3DGS), .compressed.ply (PlayCanvas), .splat (antimatter15), .spz (Niantic), " \
            ".sog (PlayCanvas) and .ngs (NeuralGS)"
"""The scene formats every command and the app open, for messages."""

MAGIC = (  # (prefix, what it is): checked in order
    (b"NGS\x00", "a NeuralGS .ngs file"),
    (b"glTF", "a glTF binary (.glb)"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"RIFF", "a RIFF file (WebP image, WAV audio, ...)"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a zip archive without a SOG meta.json"),
    (b"\x1f\x8b", "a gzip stream that is not an SPZ file"),
    (b"\x28\xb5\x2f\xfd", "a zstd stream"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-zip archive"),
    (b"\x7fELF", "a program (ELF executable)"),
    (b"solid ", "an ASCII STL mesh"),
    (b"#?RADIANCE", "a Radiance HDR image"),
    (b"v ", "an OBJ mesh"),
)

_EXTENSIONS = {
    ".ksplat": "a .ksplat file (mkkellogg's GaussianSplats3D)",
    ".lcc": "an XGRIDS .lcc file",
    ".glb": "a glTF binary (.glb)",
    ".gltf": "a glTF scene (.gltf)",
    ".obj": "an OBJ mesh",
    ".fbx": "an FBX scene",
    ".usdz": "a USDZ scene",
    ".e57": "an E57 point cloud",
    ".las": "a LAS point cloud",
    ".laz": "a LAZ point cloud",
    ".pcd": "a PCD point cloud",
    ".npz": "a numpy archive",
    ".pt": "a PyTorch checkpoint",
    ".pth": "a PyTorch checkpoint",
    ".ckpt": "a training checkpoint",
}


def looks_like(data: bytes, path: str | Path = "") -> str | None:
    """What ``data`` plainly is ("a PNG image", "a glTF binary (.glb)", "a JSON file ..."), from its first
    bytes, then the extension of ``path``; None when nothing is recognised."""
    for magic, name in MAGIC:
        if data.startswith(magic):
            return name
    suffix = Path(path).suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    first = data[:512].lstrip()[:1]
    if first in (b"{", b"["):
        return "a JSON file (a camera file? give it with --cameras)"
    if first == b"<":
        return "an XML or HTML document"
    return None


def describe_unsupported(data: bytes, path: str | Path) -> str:
    """One line naming what ``data`` (the content of ``path``) looks like and what is supported."""
    if not data:
        return f"the file is empty; supported scene formats: {SUPPORTED}"
    what = looks_like(data, path)
    if what is None:
        head = data[:512]
        text = all(32 <= b < 127 or b in (9, 10, 13) for b in head)
        what = "a text file" if text else "unrecognised binary data"
    return f"looks like {what}, a format this tool does not read; it reads {SUPPORTED}"
