"""The rules evaluation compiled by mypyc (services/rules/native.py): used where `make` built it
from the current sources, the same judgements as the Python source, and the source whenever the
compiled modules are missing, stale or switched off."""

from __future__ import annotations

import importlib.machinery
import json
import os
import random
import subprocess
import sys
import sysconfig
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

import services.rules.evaluate
from services.rules import native
from services.rules.evaluate import evaluate
from tests.rules.test_evaluate import DEFAULT, NOW, evaluation_facts, random_department
from tests.support.needs import need

ROOT = Path(__file__).resolve().parents[2]


def _compiled() -> None:
    """Go on when the evaluation runs compiled (under CI, `make install` must have built it)."""
    need(None if native.why_interpreted() is None else f"rules evaluation {native.MODE}", "mypyc")


def judgements(seed: int = 5, count: int = 300) -> list[str]:
    """Random departments judged, each as the text of everything the assessment says.

    Report ids come from `uuid.uuid4`: drawn from the seed here, so that two processes make
    the same departments."""
    rng = random.Random(seed)  # noqa: S311 - repeatable test data
    ids = random.Random(seed + 1)  # noqa: S311
    real = uuid.uuid4
    uuid.uuid4 = lambda: uuid.UUID(int=ids.getrandbits(128), version=4)
    try:
        found = []
        for _ in range(count):
            state = random_department(rng)
            trigger = rng.choice([None, *state.reports])
            now = NOW + timedelta(days=rng.choice([0, 10, 60]))
            found.append(repr(evaluation_facts(evaluate(state, DEFAULT, now, trigger=trigger))))
        return found
    finally:
        uuid.uuid4 = real


def _interpreted(code: str) -> str:
    environment = {**os.environ, native.SWITCH: "0"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return done.stdout


def test_the_evaluation_runs_compiled_where_make_built_it() -> None:
    _compiled()
    assert native.MODE == "compiled (mypyc)"
    suffix = Path(services.rules.evaluate.__file__ or "").name.split(".", 1)[1]
    assert f".{suffix}" in importlib.machinery.EXTENSION_SUFFIXES


def test_compiled_and_interpreted_evaluations_judge_alike() -> None:
    _compiled()
    printed = _interpreted(
        "import json; from tests.rules.test_native import judgements; "
        "print(json.dumps(judgements()))"
    )
    interpreted = json.loads(printed)
    compiled = judgements()
    assert len(compiled) == len(interpreted) == 300
    for number, (ours, theirs) in enumerate(zip(compiled, interpreted, strict=True)):
        assert ours == theirs, f"department {number}"
    assert any("Level.CRITICAL" in text for text in compiled), "the rules fired"


def test_switched_off_the_sources_are_imported() -> None:
    printed = _interpreted(
        "import services.rules.evaluate as e, services.rules.native as n; print(e.__file__, n.MODE)"
    )
    path, mode = printed.split(" ", 1)
    assert path.endswith("evaluate.py")
    assert mode.strip() == f"interpreted: {native.SWITCH}=0"


def test_a_source_edited_since_the_build_is_not_run_compiled(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    built = {name: native._digest(native._source(name)) for name in native.MODULES}
    manifest = tmp_path / "_native.json"
    monkeypatch.setattr(native, "MANIFEST", manifest)
    monkeypatch.setattr(native, "_compiled_here", lambda name: True)
    monkeypatch.delenv(native.SWITCH, raising=False)

    manifest.write_text(json.dumps(built), encoding="utf-8")
    assert native.why_interpreted() is None
    manifest.write_text(json.dumps({**built, "evaluate": "0" * 64}), encoding="utf-8")
    assert native.why_interpreted() == "compiled from older sources of evaluate (make native)"
    manifest.unlink()
    assert native.why_interpreted() == "no _native.json beside the compiled modules (make native)"
    monkeypatch.setattr(native, "_compiled_here", lambda name: name != "state")
    assert native.why_interpreted() == "not compiled (make native)"


def test_the_makefile_compiles_the_modules_native_names() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    line = next(line for line in makefile.splitlines() if line.startswith("NATIVE_SOURCES"))
    listed = line.split(",", 1)[1].rstrip(")").split()
    assert listed == [f"{name}.py" for name in native.MODULES]


def test_without_a_c_compiler_the_build_says_so_and_leaves_the_python(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    manifest = tmp_path / "_native.json"
    monkeypatch.setattr(native, "MANIFEST", manifest)
    monkeypatch.setattr(sysconfig, "get_config_var", lambda name: "no-such-cc -pthread")

    assert native.main(["build"]) == 0

    printed = capsys.readouterr().out
    assert "No C compiler (no-such-cc): the rules engine runs as Python" in printed
    assert not manifest.exists()  # so the next `make` tries again
