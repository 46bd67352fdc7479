"""Fuzz the SPZ and SOG readers at scale and print how each mutated input ended.

Every input must end as a clean InputFileError or a valid scene with finite values; anything else is a
bug and is listed (kind of mutation and message). The mutations and bases are those of
``tests/core/test_io_fuzz_interop.py`` (truncations, bit flips, lying counts and lengths in headers and
stream tables, re-compressed stream mutations, zstd/gzip/zip bombs, meta.json lies, resized and
corrupted images, random bytes); one SOG input in four is also read unbundled (meta.json + files).

Usage: ``.venv/bin/python scripts/fuzz_interop_readers.py [--n 10000] [--seed S] [--readers spz sog]``.
Exit status 1 if any input ended in another exception.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.core.test_io_fuzz_interop import Outcomes, fuzz_sog, fuzz_spz  # noqa: E402

logger = logging.getLogger("fuzz_interop_readers")


def report(name: str, out: Outcomes, seconds: float) -> None:
    total = sum(out.counts.values())
    logger.info("%s: %d inputs in %.0f s (slowest %.3f s: %s)", name, total, seconds, *out.slowest)
    for outcome in ("clean error", "valid scene", "other exception"):
        logger.info("  %-16s %6d", outcome, out.counts[outcome])
    by_kind: dict[str, list[int]] = {}
    for (kind, outcome), count in out.kinds.items():
        mutation = kind.split("/", 1)[1]
        row = by_kind.setdefault(mutation, [0, 0, 0])
        row[("clean error", "valid scene", "other exception").index(outcome)] += count
    logger.info("  per mutation (clean error / valid scene / other exception):")
    for mutation, row in sorted(by_kind.items()):
        logger.info("    %-28s %5d %5d %5d", mutation, *row)
    for failure in out.failures:
        logger.error("  FAILURE %s", failure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="inputs per reader (default 10,000)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    parser.add_argument("--readers", nargs="+", choices=("spz", "sog"), default=["spz", "sog"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("core").setLevel(logging.WARNING)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    logger.info("seed %d, %d inputs per reader", seed, args.n)
    failed = False
    with tempfile.TemporaryDirectory(prefix="fuzz-interop-") as tmp:
        for name in args.readers:
            t0 = time.perf_counter()
            if name == "spz":
                out = fuzz_spz(args.n, seed, Path(tmp) / "fuzz.spz")
            else:
                folder = Path(tmp) / "sog"
                folder.mkdir()
                out = fuzz_sog(args.n, seed, folder)
            report(name.upper(), out, time.perf_counter() - t0)
            failed |= out.counts["other exception"] > 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
