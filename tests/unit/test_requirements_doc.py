"""docs/requirements.md defines every requirement ID the repository cites, and every test it
names exists (and this check can fail).

Definitions are the ``### <ID>: ...`` headings of the page. Test references are the
backticked node ids (``tests/...py::name``), contract-suite tests by import path
(``portside.testing.contracts.<module>.<Class>.<test>``) and benchmark scripts
(``benchmarks/<name>.py``) listed in each section.

Citations are found in ``src/``, ``tests/``, ``benchmarks/``, ``docs/`` and ``README.md``.
Only ID-shaped tokens in a citing context count, so percent escapes (``%E2``), colours
(``#E2E2E2``) or an A4 page or S3 bucket in prose are not mistaken for requirements:

- a test name with the IDs right after ``test_``: ``test_q3_...``, ``test_q1_q12_...``;
- a parenthesis that opens with IDs: ``(Q4)``, ``(A6, Q2)``, ``(O4; issue 9)``, ``(Q10: ...)``;
- IDs leading a docstring, comment, list item, table cell or clause: ``\"\"\"O2: ...``,
  ``# O1: ...``, ``-- ... (O1-O6)``, ``| O1 atomic append |``, ``...; Q2 bad input``;
- a comment after code: ``x == 1  # O4: gap-free``;
- a clause of IDs only, between commas or closing a parenthesis: ``behaviour, Q1-Q9 and
  Q11, in one class``, ``(a second publisher, O6)``;
- IDs after the word requirement(s): ``requirement H5``, ``requirements O1-O6``,
  ``Requirements covered here: A1-A5, A7 (jobs), A8``, and ``requirement P``;
- IDs before the word test(s): ``(portside Q12 test)``.

IDs may be chained with ``,``, ``/``, ``;``, ``&`` or ``and``; ``Q1-Q9`` (or an en dash)
cites every ID of the range. Any number after a family letter is recognised (Q18, A10, ...),
so citing an ID the page does not define fails the test.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "requirements.md"
SCANNED = (ROOT / "src", ROOT / "tests", ROOT / "benchmarks", ROOT / "docs", ROOT / "README.md")
SUFFIXES = {".py", ".md", ".sql", ".cjs", ".js", ".mjs", ".lua", ".toml"}
SKIPPED_DIRS = {"node_modules", "__pycache__", ".venv", ".git"}
# The page itself defines rather than cites; this module holds made-up citations on purpose.
SKIPPED_FILES = {DOC, Path(__file__).resolve()}

# --- citations ---------------------------------------------------------------------------

_FAMILY = r"(?:OPS|OBS|[QOHASE])"
_ID = rf"{_FAMILY}\d{{1,2}}(?!\w)"
_RANGE = rf"{_ID}(?:\s*[-\u2013]\s*{_ID})?"
_REMARK = r"(?:\s*\([^()\n]{1,30}\))?"  # "A7 (jobs)"
_SEP = r"\s*(?:,|/|;|&|\band\b)\s*"
_LIST = rf"{_RANGE}{_REMARK}(?:{_SEP}{_RANGE}{_REMARK})*"
# Markers before a leading ID, one character at a time (so "####" or "----" cannot make the
# pattern backtrack): comments (#, //, --), headings, list items, quotes and table cells.
_LEAD = r"[#/*>|-]"

_CITATIONS = (
    # (Q4)  (A6, Q2)  (O4; issue 9)  (Q10: how fast ...)
    re.compile(rf"\(\s*({_LIST})"),
    # a line, docstring, comment, list item or table cell that starts with IDs
    re.compile(rf"(?:^|\"\"\"|''')[ \t]*(?:{_LEAD}[ \t]*)*({_LIST})", re.MULTILINE),
    # a cell or a clause that starts with IDs: "| Q1 enqueue ...; Q2 bad input"
    re.compile(rf"[|;][ \t]*({_LIST})"),
    # a comment after code: "== list(range(1, 10))  # O4: gap-free"
    re.compile(rf"(?:#|//|--)[ \t]+({_LIST})"),
    # a clause of IDs only, between commas or closing a parenthesis: "behaviour, Q1-Q9 and
    # Q11, in one class", "(a second publisher, O6)"
    re.compile(rf",[ \t]*({_LIST})[ \t]*(?=[,.;:)]|$)", re.MULTILINE),
    # requirement H5, requirements O1-O6, Requirements covered here: A1-A5, A7 (jobs)
    re.compile(rf"\b[Rr]equirements?\b(?:[ \t]+[a-z]+){{0,2}}[ \t]*:?[ \t]+({_LIST})"),
    # "the Q12 test", "O1-O6 tests"
    re.compile(rf"(?<![\w%])({_LIST})[ \t]+tests?\b"),
)
_REQUIREMENT_P = re.compile(r"\b[Rr]equirements?[ \t]+(P)(?![\w-])")
_TEST_NAME = re.compile(r"\btest_((?:(?:ops|obs|[qohase])\d{1,2}_)+)")
_ONE_ID = re.compile(rf"({_FAMILY})(\d{{1,2}})(?!\w)")
_ONE_RANGE = re.compile(rf"({_FAMILY})(\d{{1,2}})\s*[-\u2013]\s*({_FAMILY})(\d{{1,2}})(?!\w)")


def _expand(listed: str) -> Iterator[str]:
    """Every ID of a matched list; a range of one family yields all IDs between its ends."""
    listed = re.sub(r"\([^()]*\)", " ", listed)  # drop remarks such as "(jobs)"
    for match in _ONE_RANGE.finditer(listed):
        family, first, last_family, last = match.groups()
        low, high = int(first), int(last)
        if family == last_family and low <= high:
            yield from (f"{family}{n}" for n in range(low, high + 1))
        else:  # not a real range: both ends are cited as written
            yield f"{family}{first}"
            yield f"{last_family}{last}"
    for match in _ONE_ID.finditer(_ONE_RANGE.sub(" ", listed)):
        yield match.group(1) + match.group(2)


def cited_ids(text: str) -> set[str]:
    """The requirement IDs ``text`` cites (see the module docstring for the contexts)."""
    found: set[str] = set()
    for pattern in _CITATIONS:
        for match in pattern.finditer(text):
            found.update(_expand(match.group(1)))
    for match in _TEST_NAME.finditer(text):
        found.update(part.upper() for part in match.group(1).split("_") if part)
    found.update(match.group(1) for match in _REQUIREMENT_P.finditer(text))
    return found


def _scanned_files() -> Iterator[Path]:
    for place in SCANNED:
        files: Iterable[Path] = [place] if place.is_file() else sorted(place.rglob("*"))
        for path in files:
            if (
                path.is_file()
                and path.suffix in SUFFIXES
                and path.resolve() not in SKIPPED_FILES
                and not SKIPPED_DIRS.intersection(path.relative_to(ROOT).parts)
            ):
                yield path


@cache
def citations() -> dict[str, list[str]]:
    """Cited ID -> the files (relative to the repository) that cite it."""
    where: dict[str, list[str]] = {}
    for path in _scanned_files():
        for found in sorted(cited_ids(path.read_text(encoding="utf-8", errors="replace"))):
            where.setdefault(found, []).append(str(path.relative_to(ROOT)))
    return where


# --- the page ----------------------------------------------------------------------------

_HEADING = re.compile(rf"^###[ \t]+({_FAMILY}\d+|P)\b[^\n]*$", re.MULTILINE)
_REFERENCE = re.compile(
    r"`((?:tests|benchmarks)/[\w/.-]+\.py(?:::\w+)*(?:\[[^\]`]*\])?"
    r"|portside\.testing\.contracts(?:\.\w+)+\.test_\w+)`"
)
_NO_TEST = re.compile(r"not yet (?:fully )?implemented \(issue \d+\)|no (?:pytest )?test", re.I)


@cache
def sections() -> dict[str, str]:
    """Defined ID -> the text of its section (up to the next heading)."""
    text = DOC.read_text(encoding="utf-8")
    starts = list(_HEADING.finditer(text))
    found: dict[str, str] = {}
    for index, match in enumerate(starts):
        end = starts[index + 1].start() if index + 1 < len(starts) else len(text)
        body = text[match.end() : end]
        body = re.split(r"^##[ \t]", body, maxsplit=1, flags=re.MULTILINE)[0]
        assert match.group(1) not in found, f"{match.group(1)} is defined twice in {DOC.name}"
        found[match.group(1)] = body
    return found


def references(section: str) -> list[str]:
    return _REFERENCE.findall(section)


def _defined_names(path: Path, qualname: list[str]) -> bool:
    """Whether ``path`` defines ``qualname`` (a function, a class, a method of a class)."""
    body: list[ast.stmt] = ast.parse(path.read_text(encoding="utf-8"), str(path)).body
    for index, name in enumerate(qualname):
        nodes = [
            node
            for node in body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and node.name == name
        ]
        if not nodes:
            return False
        if index + 1 < len(qualname):
            if not isinstance(nodes[0], ast.ClassDef):
                return False
            body = nodes[0].body
    return True


def reference_problem(reference: str) -> str | None:
    """Why ``reference`` names no existing test or script, or None when it does."""
    reference = re.sub(r"\[[^\]]*\]$", "", reference)  # a parametrize id is not checked
    if reference.startswith("portside."):
        parts = reference.split(".")[1:]
        for cut in range(len(parts) - 1, 0, -1):
            module = ROOT / "src" / Path(*parts[:cut])
            for path in (module.with_suffix(".py"), module / "__init__.py"):
                if path.is_file():
                    if _defined_names(path, parts[cut:]):
                        return None
                    return f"{path.relative_to(ROOT)} defines no {'.'.join(parts[cut:])}"
        return "no module of that import path under src/"
    file, *qualname = reference.split("::")
    path = ROOT / file
    if not path.is_file():
        return f"{file} does not exist"
    if qualname and not _defined_names(path, qualname):
        return f"{file} defines no {'::'.join(qualname)}"
    return None


# --- the tests ---------------------------------------------------------------------------


def test_the_page_defines_every_requirement_and_names_its_tests() -> None:
    defined = sections()
    for family, count in (("Q", 17), ("O", 6), ("H", 5), ("A", 9), ("S", 5), ("E", 2)):
        for number in range(1, count + 1):
            assert f"{family}{number}" in defined, f"{family}{number} is not defined"
    for family in ("OPS", "OBS"):
        assert {f"{family}{n}" for n in (1, 2, 3)} <= defined.keys()
    assert "P" in defined
    for requirement, section in defined.items():
        assert references(section) or _NO_TEST.search(section), (
            f"{requirement} names no test and does not say why "
            "(write 'not yet implemented (issue N)' or 'No test ...')"
        )


def test_every_cited_requirement_is_defined() -> None:
    undefined = {
        requirement: files
        for requirement, files in citations().items()
        if requirement not in sections()
    }
    assert not undefined, (
        f"requirement IDs cited but not defined in docs/requirements.md: {undefined}; define "
        "them there or fix the citation"
    )


def test_every_test_the_page_names_exists() -> None:
    problems = [
        f"`{reference}`: {problem}"
        for reference in dict.fromkeys(references(DOC.read_text(encoding="utf-8")))
        if (problem := reference_problem(reference)) is not None
    ]
    assert not problems, "stale test references in docs/requirements.md:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"""Q3: retries wait 1 s, 5 s and 30 s."""', {"Q3"}),
        ("    # O1: the event commits with the caller's writes.", {"O1"}),
        ("-- Transactional outbox (O1-O6): events", {f"O{n}" for n in range(1, 7)}),
        (
            '"""The queue contract suite (Q1-Q9, Q11, O1)."""',
            {*(f"Q{n}" for n in range(1, 10)), "Q11", "O1"},
        ),
        ("It covers requirements Q1\u2013Q12; the fake", {f"Q{n}" for n in range(1, 13)}),
        (
            "Requirements covered here: A1\u2013A3, A7 (jobs), A8, Q10.",
            {"A1", "A2", "A3", "A7", "A8", "Q10"},
        ),
        ("Burn-in (requirement H5): run it ten times", {"H5"}),
        ("start-up is reported (requirement P: < 500 ms)", {"P"}),
        ('"""O5/issue 10: a lost session."""', {"O5"}),
        ('"""A3/Q1: jsonb cannot hold NUL."""', {"A3", "Q1"}),
        ("(O4; issue 9)", {"O4"}),
        ("| O1 atomic append | ... |", {"O1"}),
        ("| Q1 enqueue, ids; Q2 bad input; Q3 attempts |", {"Q1", "Q2", "Q3"}),
        ("## Defining jobs (A1)", {"A1"}),
        ("    assert seqs == list(range(1, 10))  # O4: gap-free", {"O4"}),
        (
            '"""every QueuePort behaviour, Q1-Q3 and Q11, in one class."""',
            {"Q1", "Q2", "Q3", "Q11"},
        ),
        ("    second publisher process, O6); streams are claimed whole", {"O6"}),
        ("// Add jobs with Node BullMQ 5 (portside Q12 test).", {"Q12"}),
        ("async def test_q1_q12_namespaced_queue(", {"Q1", "Q12"}),
        ("def test_ops2_queues_prints_json() -> None:", {"OPS2"}),
        ('"""Q2, Q18: a made-up ID is found too."""', {"Q2", "Q18"}),
        ("a range cites its inside (Q13-Q17)", {"Q13", "Q14", "Q15", "Q16", "Q17"}),
        # not citations
        ('for run_id in ("run-nope", "%E2%9C%93"):', set()),
        ("the S3 bucket and an A4 sheet of paper", set()),
        ("x = Q1 + O2  # arithmetic", set()),
        ("def test_e2e_latency() -> None:", set()),
        ("P95 < 5 s and P99 < 50 ms", set()),
        ("the requirement Person", set()),
        ("colour = '#E2E2E2'  # a grey", set()),
        ('HOSTILE_IDS = ["%FF", "%ED%A0%80", "%C0%AF"]', set()),
    ],
)
def test_citations_are_found_only_where_they_are_citations(text: str, expected: set[str]) -> None:
    assert cited_ids(text) == expected


def test_the_checks_catch_an_undefined_id_and_a_stale_reference() -> None:
    assert "Q99" not in sections()
    assert "Q99" in cited_ids('"""Q99: not a requirement."""')
    assert reference_problem("tests/unit/nowhere/test_gone.py::test_q1_x") is not None
    assert reference_problem("tests/unit/test_layering.py::test_h4_no_such_test") is not None
    assert (
        reference_problem("portside.testing.contracts.queue_retries.RetryContract.test_q3_none")
        is not None
    )
    assert (
        reference_problem(
            "tests/unit/test_layering.py::test_h4_integration_tests_never_use_the_fakes"
        )
        is None
    )
