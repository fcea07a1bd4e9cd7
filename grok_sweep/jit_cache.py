"""`python -m grok_sweep.jit_cache [--clear]`: the size of the compile cache of jobs' steps, or clear it."""

from __future__ import annotations

import argparse
import shutil

from grok_sweep.fast.jit_cache import cache_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m grok_sweep.jit_cache", description=__doc__.splitlines()[0])
    parser.add_argument("--clear", action="store_true", help="delete every entry")
    args = parser.parse_args(argv)
    folder = cache_dir()
    entries = sorted(folder.glob("*.jit")) if folder.is_dir() else []
    size = sum(f.stat().st_size for f in entries)
    if args.clear:
        shutil.rmtree(folder, ignore_errors=True)
        print(f"deleted {len(entries)} entries ({size / 2**20:.1f} MiB) from {folder}")
    else:
        print(f"{folder}: {len(entries)} entries, {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
