"""The rules engine compiled to C with mypyc, and the switch back to its Python source.

Why: judging is CPython's work per call, per small object and per dict (docs/benchmarks.md,
"Rules"); compiled by mypyc (the mypy project's compiler, which also compiles mypy and black) the
same source runs the evaluation about three times as fast, and the worker's own code around it
(loading, batches, alerts, coverage) faster too, with no second implementation to keep equal to
it. The source stays the truth: `make install` compiles it, and whenever the compiled modules
are missing, built from other sources (a file edited since) or switched off
(`VROEGSIGNAAL_NATIVE=0`), the package imports the Python files instead, as a stale `.pyc` would
be ignored.

    make native          # compile (make install does it too)
    make clean-native    # remove the compiled modules
    python -c 'from services.rules import native; print(native.MODE)'   # which runs, and why
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import logging
import os
import shutil
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)

PACKAGE = "services.rules"
HERE = Path(__file__).resolve().parent
# What runs per judgement: the pure evaluation (conditions, evaluate, explain, series, state) and
# the worker around it (alerts, batch, coverage, events, loading, reasons, worker). Fully typed;
# what they call in SQLAlchemy, asyncpg and pydantic stays as it is.
MODULES = (
    *("alerts", "batch", "conditions", "coverage", "evaluate", "events", "explain", "loading"),
    *("reasons", "series", "state", "worker"),
)
GROUP = f"{PACKAGE}._native"
RUNTIME = "_native__mypyc"  # the group's shared runtime library: services/rules/_native__mypyc*.so
MANIFEST = HERE / "_native.json"  # the hash of each source the compiled modules were built from
SWITCH = "VROEGSIGNAAL_NATIVE"


def _source(name: str) -> Path:
    return HERE / f"{name}.py"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compiled_files() -> list[Path]:
    """The extension modules a build left here (this interpreter's ABI or another's)."""
    return sorted(
        {
            path
            for suffix in importlib.machinery.EXTENSION_SUFFIXES
            for path in HERE.glob(f"*{suffix}")
            if path.name.split(".", 1)[0] in (*MODULES, RUNTIME)
        }
    )


def _compiled_here(name: str) -> bool:
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    return any((HERE / f"{name}{suffix}").exists() for suffix in suffixes)


def why_interpreted() -> str | None:
    """None when the compiled modules are current and wanted; otherwise the reason they are not."""
    if os.environ.get(SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return f"{SWITCH}=0"
    if not all(_compiled_here(name) for name in (*MODULES, RUNTIME)):
        return "not compiled (make native)"
    try:
        built = json.loads(MANIFEST.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"no {MANIFEST.name} beside the compiled modules (make native)"
    changed = [name for name in MODULES if built.get(name) != _digest(_source(name))]
    if changed:
        return f"compiled from older sources of {', '.join(changed)} (make native)"
    return None


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Finds the engine's compiled modules as their `.py` files instead."""

    def __init__(self) -> None:
        self.names = {f"{PACKAGE}.{name}": _source(name) for name in MODULES}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        source = self.names.get(fullname)
        return None if source is None else importlib.util.spec_from_file_location(fullname, source)


MODE = "interpreted"


def choose() -> str:
    """Import the compiled modules when current, else the sources; says which (once, at import)."""
    global MODE
    reason = why_interpreted()
    if reason is None:
        MODE = "compiled (mypyc)"
    else:
        if not any(isinstance(finder, _SourceFinder) for finder in sys.meta_path):
            sys.meta_path.insert(0, _SourceFinder())
        MODE = f"interpreted: {reason}"
        if compiled_files() and not reason.startswith(SWITCH):
            log.warning("rules engine runs interpreted: %s", reason)
    return MODE


def build(verbose: bool = False) -> None:
    """Compile the modules in place (the C files and objects go to build/native)."""
    from mypyc.build import mypycify  # only a build needs mypy
    from setuptools import Distribution  # type: ignore[import-untyped]

    clean()
    root = HERE.parent.parent
    previous = Path.cwd()
    os.chdir(root)  # mypyc names the modules by their paths from here
    try:
        sources = [str(_source(name).relative_to(root)) for name in MODULES]
        modules = mypycify(sources, opt_level="3", group_name=GROUP, target_dir="build/native")
        # A bare Distribution, not setup(): that would read pyproject.toml as a project to build.
        distribution = Distribution({"name": "vroegsignaal-native", "ext_modules": modules})
        distribution.script_args = ["build_ext", "--inplace", "--build-temp", "build/native/o"]
        if not verbose:
            distribution.script_args.insert(0, "--quiet")
        distribution.parse_command_line()
        distribution.run_commands()
    finally:
        os.chdir(previous)
    MANIFEST.write_text(
        json.dumps({name: _digest(_source(name)) for name in MODULES}, indent=2) + "\n",
        encoding="utf-8",
    )


def clean() -> None:
    for path in compiled_files():
        path.unlink()
    MANIFEST.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    command = (list(argv if argv is not None else sys.argv[1:]) or ["status"])[0]
    if command == "build":
        compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
        if shutil.which(compiler) is None:
            print(f"• No C compiler ({compiler}): the rules engine runs as Python, slower")
            return 0  # no manifest: the next `make` tries again
        print(f"• Compiling the rules engine with mypyc ({', '.join(MODULES)}); about a minute")
        build()
        print(f"  {len(compiled_files())} modules in {HERE}")
    elif command == "clean":
        clean()
    elif command == "status":
        reason = why_interpreted()
        print("compiled (mypyc)" if reason is None else f"interpreted: {reason}")
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":  # the Makefile runs `python -c` with main(), not `-m`: the package
    raise SystemExit(main())  # imports this module first, and runpy would warn of a second copy
