"""The bibliography lists each work once, and every citation in the book resolves to it.

``book/references.bib`` once held the same lecture under three keys (``isola2024dgm1`` /
``isola2024generative1`` / ``isola2024dgm``), so the rendered reference list showed it three times
and two chapters cited "different" sources that were one. The rules checked here:

1. no key is defined twice;
2. no two entries are the same work: the same normalised title (lower-cased; braces, TeX accents,
   punctuation and a leading "Lecture N:" dropped) with the same year, the same first author's
   surname, or a year missing on one of them; or the same url / doi / eprint;
3. every key cited in a chapter (``{cite}``, ``{cite:p}``, ``{cite:t}`` … in ``book/*.py`` and
   ``book/*.md``) is defined in the bib.

``test_the_check_fails_on_a_planted_duplicate`` plants a duplicate and an unknown key and checks that
the rules catch both.
"""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIB = ROOT / "book" / "references.bib"
SOURCES = sorted((ROOT / "book").glob("*.py")) + sorted((ROOT / "book").glob("*.md"))

_ENTRY = re.compile(r"@(\w+)\s*\{\s*([^,\s]+)\s*,(.*?)\n\}", re.S)
_FIELD = re.compile(r"(\w+)\s*=\s*(\{(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*\}|\"[^\"]*\"|\d+)", re.S)
_CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]*)`")


def parse_bib(text: str) -> list[tuple[str, dict[str, str], int]]:
    """(key, fields, line) for each entry, in file order; ``@comment``/``@string``/``@preamble`` skipped."""
    entries = []
    for m in _ENTRY.finditer(text):
        kind, key, body = m.group(1).lower(), m.group(2), m.group(3)
        if kind in {"comment", "string", "preamble"}:
            continue
        fields = {f.group(1).lower(): f.group(2).strip("{}\" ") for f in _FIELD.finditer(body)}
        entries.append((key, fields, text.count("\n", 0, m.start()) + 1))
    return entries


def normalise_title(title: str) -> str:
    t = re.sub(r"\\[\"'`^~=.vuHck]\s*\{?(\w)\}?", r"\1", title)  # TeX accents: {\"a} -> a
    t = unicodedata.normalize("NFKD", t).encode("ascii", "ignore").decode()
    t = re.sub(r"[{}]", "", t).lower()
    t = re.sub(r"^lecture\s+\d+\s*:\s*", "", t)
    return re.sub(r"[^a-z0-9]+", " ", t).strip()


def first_surname(authors: str) -> str:
    first = authors.split(" and ")[0].strip()
    surname = first.split(",")[0] if "," in first else (first.split() or [""])[-1]
    return normalise_title(surname)


def duplicates(entries) -> list[str]:
    problems, seen_key, seen_title, seen_link = [], {}, {}, {}
    for key, fields, line in entries:
        if key in seen_key:
            problems.append(f"line {line}: key {key!r} defined twice (first at line {seen_key[key]})")
        seen_key.setdefault(key, line)
        title = normalise_title(fields.get("title", ""))
        if title:
            year, surname = fields.get("year", ""), first_surname(fields.get("author", ""))
            for other, (oyear, osurname) in seen_title.get(title, {}).items():
                if other != key and (year == oyear or not year or not oyear or surname == osurname):
                    problems.append(f"line {line}: {key!r} is {other!r} again (title {title!r}, "
                                    f"years {oyear or '?'}/{year or '?'}, authors {osurname}/{surname})")
                    break
            seen_title.setdefault(title, {}).setdefault(key, (year, surname))
        for field in ("url", "doi", "eprint"):
            link = fields.get(field, "").lower().rstrip("/")
            if not link:
                continue
            link = re.sub(r"^https?://(www\.)?", "", link)
            if (field, link) in seen_link and seen_link[field, link] != key:
                problems.append(f"line {line}: {key!r} has the {field} of {seen_link[field, link]!r} ({link})")
            seen_link.setdefault((field, link), key)
    return problems


def cited_keys(paths) -> list[tuple[str, int, str]]:
    """(file name, line, key) for every key in every ``{cite...}`...``` role."""
    out = []
    for path in paths:
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for m in _CITE.finditer(line):
                out.extend((path.name, i, k.strip()) for k in m.group(1).split(",") if k.strip())
    return out


def unknown_citations(cites, keys) -> list[str]:
    return [f"{name}:{line}: {{cite}} key {key!r} is not in references.bib" for name, line, key in cites
            if key not in keys]


def test_no_duplicate_entries():
    problems = duplicates(parse_bib(BIB.read_text(encoding="utf-8")))
    assert not problems, "duplicate bibliography entries:\n" + "\n".join(problems)


def test_every_citation_is_in_the_bib():
    entries = parse_bib(BIB.read_text(encoding="utf-8"))
    cites = cited_keys(SOURCES)
    assert len(cites) > 50, "the citation scan found almost nothing: has the {cite} syntax changed?"
    problems = unknown_citations(cites, {k for k, _, _ in entries})
    assert not problems, "\n".join(problems)


def test_the_parser_reads_every_entry():
    text = BIB.read_text(encoding="utf-8")
    entries = parse_bib(text)
    assert len(entries) == len(re.findall(r"^@(?!comment|string|preamble)\w+\s*\{", text, re.M | re.I))
    assert all(fields.get("title") for _, fields, _ in entries), "an entry without a title"


def test_the_check_fails_on_a_planted_duplicate(tmp_path):
    text = BIB.read_text(encoding="utf-8")
    planted = text + (
        "\n@misc{isola2024dgm1again,\n  title = {Lecture 14: Deep Generative Models {I}},\n"
        "  author = {Isola, P.},\n  year = {2024}\n}\n"
        "\n@misc{kingma2014vae,\n  title = {Something else},\n  year = {2014}\n}\n"
        "\n@misc{a2020,\n  title = {A}, year = {2020},\n  url = {https://example.org/x/}\n}\n"
        "\n@misc{b2021,\n  title = {B}, year = {2021},\n  url = {http://www.example.org/x}\n}\n")
    problems = duplicates(parse_bib(planted))
    assert any("'isola2024dgm1again' is 'isola2024dgm1' again" in p for p in problems), problems
    assert not duplicates(parse_bib(text + "\n@misc{other2024,\n  title = {Deep Generative Modeling},\n"
                                           "  author = {Someone, Else},\n  year = {2025}\n}\n")), \
        "same title, different author and year: two works, not one"
    assert any("'kingma2014vae' defined twice" in p for p in problems), problems
    assert any("'b2021' has the url of 'a2020'" in p for p in problems), problems
    assert len(problems) == 3, problems

    chapter = tmp_path / "99_planted.md"
    chapter.write_text("As shown {cite:p}`kingma2014vae, isola2024dgm` and {cite:t}`ho2020ddpm`.\n")
    keys = {k for k, _, _ in parse_bib(text)}
    assert unknown_citations(cited_keys([chapter]), keys) == [
        "99_planted.md:1: {cite} key 'isola2024dgm' is not in references.bib"]
