#!/usr/bin/env bash
# Set up NeuralGS Studio for development and use. Idempotent and fast when already done.
#
#   bash scripts/setup.sh            # from any directory
#   bash scripts/setup.sh --force    # redo the pip work even if the stamp matches
#
# 1. Creates .venv in the repository root with Python 3.11 (python3.11, else python3 if it is 3.11;
#    override with PYTHON=/path/to/python3.11).
# 2. Installs the pinned CPU torch FIRST (an unpinned torch pulls gigabytes of CUDA wheels), then the
#    project in editable mode with its test extras. Skipped when .venv/.setup-stamp matches the
#    sha256 of pyproject.toml and of this script.
# 3. Checks the system libraries offscreen rendering needs (EGL + Mesa llvmpipe). When missing it
#    installs them as root with apt-get, else warns (the display tests skip without EGL).
# 4. Checks the system libraries the desktop application (PySide6) needs: fontconfig, xkbcommon, dbus, glib
#    for any Qt platform (the GUI tests use QT_QPA_PLATFORM=offscreen), the xcb libraries for a real X
#    display, and Xvfb (a virtual display for screenshots of a real X window). Installed the same way.
#    Set NEURALGS_NO_APT=1 to never run apt-get.
#    NEURALGS_TORCH_INDEX=URL installs torch from that index (e.g. https://download.pytorch.org/whl/cpu
#    where no local CPU wheel is cached).
set -euo pipefail

SCRIPT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
cd "$(dirname "$SCRIPT")/.."
ROOT="$(pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.setup-stamp"

log() { echo "setup: $*" >&2; }
warn() { echo "setup: warning: $*" >&2; }
die() { echo "setup: error: $*" >&2; exit 1; }

FORCE=0
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,16p' "$SCRIPT" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$arg' (try --help)" ;;
    esac
done

[ -f "$ROOT/pyproject.toml" ] || die "no pyproject.toml in $ROOT; is this the NeuralGS Studio repository?"

is_py311() { "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' >/dev/null 2>&1; }

find_python() {
    local candidate
    for candidate in ${PYTHON:-} python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 && is_py311 "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

pip_quiet() {
    # pip, quiet, without the harmless "Location 'file:...' is ignored" lines that a machine-wide
    # extra-index-url pointing at a missing folder produces; pip's exit status is kept (pipefail).
    "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" --progress-bar off 2>&1 \
        | { grep -v "^WARNING: Location 'file:.*' is ignored" >&2 || true; }
}

# -- 1. the virtual environment ------------------------------------------------------------------
if [ -e "$VENV" ] && ! is_py311 "$VENV/bin/python"; then
    die ".venv exists but $VENV/bin/python is not a working Python 3.11; remove it (rm -rf .venv) and run this script again"
fi
if [ ! -e "$VENV" ]; then
    PY="$(find_python)" || die "Python 3.11 is required (tried ${PYTHON:+$PYTHON, }python3.11, python3); install it or set PYTHON=/path/to/python3.11"
    log "creating .venv with $PY"
    "$PY" -m venv "$VENV" \
        || die "could not create .venv with $PY (on Debian/Ubuntu: apt-get install python3.11-venv)"
fi

# -- 2. Python packages --------------------------------------------------------------------------
WANT_STAMP="pyproject=$(sha "$ROOT/pyproject.toml") setup=$(sha "$SCRIPT")"
if [ "$FORCE" = 1 ] || [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT_STAMP" ]; then
    TORCH_PIN="$(grep -oE '"torch==[^"]+"' "$ROOT/pyproject.toml" | tr -d '"' | head -n1)"
    TORCH_PIN="${TORCH_PIN:-torch==2.13.0}"
    TORCH_INDEX=()
    if [ -n "${NEURALGS_TORCH_INDEX:-}" ]; then TORCH_INDEX=(--index-url "$NEURALGS_TORCH_INDEX"); fi
    rm -f "$STAMP"
    log "installing $TORCH_PIN (CPU wheel; first, so nothing pulls an unpinned torch)"
    pip_quiet install "${TORCH_INDEX[@]}" "$TORCH_PIN" || die "pip could not install $TORCH_PIN (see the messages above)"
    log "installing the project in editable mode with test extras"
    pip_quiet install -e "$ROOT[test]" || die "pip could not install the project (see the messages above)"
    echo "$WANT_STAMP" > "$STAMP"
    log "Python environment ready in .venv"
fi

# -- 3. system libraries for offscreen (EGL) rendering -------------------------------------------
missing_egl_packages() {
    # Prints the Debian package names whose libraries are not found; nothing when all are present.
    local libs
    libs="$(ldconfig -p 2>/dev/null || true)"
    grep -q 'libEGL\.so\.1 ' <<<"$libs" || echo libegl1
    grep -q 'libEGL_mesa\.so\.0 ' <<<"$libs" || echo libegl-mesa0
    grep -q 'libGLESv2\.so\.2 ' <<<"$libs" || echo libgles2
    local dri found=0
    for dri in /usr/lib/*/dri /usr/lib64/dri /usr/lib/dri; do
        if [ -e "$dri/swrast_dri.so" ] || [ -e "$dri/kms_swrast_dri.so" ]; then found=1; break; fi
    done
    [ "$found" = 1 ] || echo libgl1-mesa-dri
}

# apt_install_missing WHAT CHECK_FUNCTION: when CHECK_FUNCTION names missing packages and we are root with
# apt-get (and NEURALGS_NO_APT is not 1), install them; prints the packages still missing afterwards.
apt_install_missing() {
    local what="$1" check="$2" missing apt_log
    missing="$($check | tr '\n' ' ' | sed 's/ $//')"
    if [ -n "$missing" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
            && [ "${NEURALGS_NO_APT:-0}" != 1 ]; then
        log "installing system libraries for $what: $missing"
        apt_log="$(mktemp)"
        # shellcheck disable=SC2086 - one package name per word
        if ! { apt-get update -qq \
               && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing; \
             } >"$apt_log" 2>&1; then
            warn "apt-get could not install $missing; its last messages:"
            tail -n 15 "$apt_log" | sed 's/^/    /' >&2
        fi
        rm -f "$apt_log"
        missing="$($check | tr '\n' ' ' | sed 's/ $//')"
    fi
    echo "$missing"
}

MISSING="$(apt_install_missing "offscreen rendering" missing_egl_packages)"
if [ -n "$MISSING" ]; then
    warn "offscreen rendering libraries not found (missing: $MISSING)."
    warn "install them with: sudo apt-get install $MISSING"
    warn "until then the display renderer is unavailable and its tests are skipped."
fi
# -- 4. system libraries for the desktop application (Qt) ---------------------------------------------
missing_qt_packages() {
    # Prints the Debian package names whose libraries (or, for xvfb, program) are not found.
    local libs pair
    libs="$(ldconfig -p 2>/dev/null || true)"
    for pair in libfontconfig.so.1:libfontconfig1 libfreetype.so.6:libfreetype6 libxkbcommon.so.0:libxkbcommon0 \
                libdbus-1.so.3:libdbus-1-3 libglib-2.0.so.0:libglib2.0-0 libGL.so.1:libgl1 libX11-xcb.so.1:libx11-xcb1 \
                libxcb-cursor.so.0:libxcb-cursor0 libxkbcommon-x11.so.0:libxkbcommon-x11-0 \
                libxcb-icccm.so.4:libxcb-icccm4 libxcb-keysyms.so.1:libxcb-keysyms1 libxcb-shape.so.0:libxcb-shape0 \
                libxcb-render-util.so.0:libxcb-render-util0 libxcb-image.so.0:libxcb-image0 \
                libxcb-xinerama.so.0:libxcb-xinerama0 libxcb-randr.so.0:libxcb-randr0; do
        grep -q "${pair%%:*} " <<<"$libs" || echo "${pair#*:}"
    done
    command -v Xvfb >/dev/null 2>&1 || echo xvfb
}

QT_MISSING="$(apt_install_missing "the desktop application" missing_qt_packages)"
if [ -n "$QT_MISSING" ]; then
    warn "libraries for the desktop application not found (missing: $QT_MISSING)."
    warn "install them with: sudo apt-get install $QT_MISSING"
    warn "the GUI tests use QT_QPA_PLATFORM=offscreen, which needs only fontconfig, xkbcommon, dbus and glib."
fi
exit 0
