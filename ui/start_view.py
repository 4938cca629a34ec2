"""The start page's data, pure (no st.* calls; unit-tested directly): the bundled example
experiments (every examples/*.json results file, loaded into the history once each) and the latest
answer the history holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bench.analysis import Analysis
from bench.e6 import load_e6
from bench.e6_import import import_e6
from bench.experiments import analyse_experiment
from core.errors import InputError
from store import runs as store_runs
from store.db import Database

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
"""The bundled example results files (E6 format), one experiment each."""
INTRO = ("Which GPU — or engine, or model — upscales your clips with Real-ESRGAN cheapest, and "
         "from which clip length does another one win? Run the same clips on each and read the "
         "verdict.")
"""The one line that says what the tool answers."""
LATEST_SCAN = 10
"""How many of the newest experiments the start page looks through for the latest verdict."""


@dataclass(frozen=True)
class Example:
    """One bundled results file."""

    path: Path
    """The file."""
    title: str
    """config.title, else the file name."""
    notes: str
    """config.notes: what the numbers are and where they come from ('' when it says nothing)."""

    @property
    def import_name(self) -> str:
        """The name its import gets in the history (e6_import: 'import of examples/NAME')."""
        return f"import of {self.source_name}"

    @property
    def source_name(self) -> str:
        """'examples/NAME.json'."""
        return f"{self.path.parent.name}/{self.path.name}"


def examples(folder: Path = EXAMPLES_DIR) -> list[Example]:
    """Every *.json of the folder, by name; a file whose config cannot be read is listed by its
    name (loading it then says what is wrong). Raises nothing."""
    found = []
    for path in sorted(folder.glob("*.json")):
        config = {}
        try:
            config = json.loads(path.read_text(encoding="utf-8")).get("config") or {}
        except (OSError, ValueError, AttributeError):
            pass
        config = config if isinstance(config, dict) else {}
        found.append(Example(path, str(config.get("title") or path.stem),
                             str(config.get("notes") or "")))
    return found


def missing_examples(db: Database, folder: Path = EXAMPLES_DIR) -> list[Example]:
    """The examples not yet in the history (by their import name). Raises StorageError."""
    names = set(store_runs.list_experiments(db)["name"])
    return [e for e in examples(folder) if e.import_name not in names]


def load_examples(db: Database, folder: Path = EXAMPLES_DIR) -> tuple[list[str], list[str]]:
    """Import every example not yet in the history; returns (ids of the experiments now holding
    the examples, newest first by when they ran; one line per file that could not be loaded).
    Loading twice adds nothing. Raises StorageError."""
    problems = []
    for example in missing_examples(db, folder):
        try:
            import_e6(db, load_e6(example.path), example.source_name)
        except InputError as exc:
            problems.append(str(exc))
    wanted = {e.import_name for e in examples(folder)}
    stored = store_runs.list_experiments(db)
    return [r["id"] for r in stored.to_dict("records") if r["name"] in wanted], problems


def landing_experiment(db: Database, ids: list[str]) -> str | None:
    """Which of these experiments (newest first) to open first: the newest whose verdict compares
    two or more candidates (an example of one GPU alone answers nothing), else the newest.
    Raises StorageError."""
    for experiment_id in ids:
        analysis, _, _ = analyse_experiment(db, experiment_id)
        if analysis is not None and len(analysis.fits) >= 2:
            return experiment_id
    return ids[0] if ids else None


@dataclass(frozen=True)
class LatestAnswer:
    """The answer the start page shows, and what it comes from."""

    experiment_id: str
    """The experiment."""
    name: str
    """Its name (untrusted text: shown as text)."""
    analysis: Analysis
    """Its analysis."""
    runs: int
    """Its runs."""
    succeeded: int
    """How many of them succeeded."""

    @property
    def complete(self) -> bool:
        """Whether every run succeeded."""
        return self.succeeded == self.runs

    def completeness(self) -> str:
        """'all 6 runs succeeded' or '4 of 6 runs succeeded; 2 failed or did not finish'."""
        if self.complete:
            return f"all {self.runs} runs succeeded"
        return (f"{self.succeeded} of {self.runs} runs succeeded; {self.runs - self.succeeded} "
                f"failed or did not finish")


def latest_answer(db: Database) -> LatestAnswer | None:
    """The answer of the newest experiment, among the LATEST_SCAN newest, whose verdict compares
    two or more candidates and whose runs all succeeded; else the newest comparing two or more;
    else the newest with any verdict; None when there is none. Raises StorageError."""
    ranked: dict[int, LatestAnswer] = {}
    for row in store_runs.list_experiments(db, limit=LATEST_SCAN).to_dict("records"):
        if not row["succeeded"]:
            continue
        analysis, _, _ = analyse_experiment(db, row["id"])
        if analysis is None:
            continue
        answer = LatestAnswer(row["id"], str(row["name"]), analysis, int(row["runs"]),
                              int(row["succeeded"]))
        compares = len(analysis.fits) >= 2
        if compares and answer.complete:
            return answer
        ranked.setdefault(1 if compares else 2, answer)
    return ranked.get(1) or ranked.get(2)
