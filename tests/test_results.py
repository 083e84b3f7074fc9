"""genlib.results reads numbers a chapter glued into its executed notebook."""
import nbformat
import pytest

from genlib import results


def notebook_with(tmp_path, **values):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("glue(...)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={results.GLUE_PREFIX + "text/plain": repr(v)},
                                           metadata={"scrapbook": {"name": k, "mime_prefix": results.GLUE_PREFIX}})
                    for k, v in values.items()]
    nb.cells.append(cell)
    path = tmp_path / "02_x.ipynb"
    nbformat.write(nb, path)
    return path


def test_a_glued_number_is_quoted(tmp_path, monkeypatch):
    path = notebook_with(tmp_path, gmm_best_nll=126.53, k=20)
    monkeypatch.setattr(results, "BOOK", tmp_path)
    assert results.quote("02_x", "gmm_best_nll") == pytest.approx(126.53)
    assert results.glued(path) == {"gmm_best_nll": "126.53", "k": "20"}


def test_a_missing_key_or_notebook_is_one_line(tmp_path, monkeypatch):
    notebook_with(tmp_path, a=1.0)
    monkeypatch.setattr(results, "BOOK", tmp_path)
    with pytest.raises(KeyError, match="glues no number named 'b'; it glues: a"):
        results.quote("02_x", "b")
    with pytest.raises(FileNotFoundError, match="no executed notebook"):
        results.quote("07_nothing", "a")


# ----------------------------------------------------------------------------- quotes across chapters
#
# A chapter that quotes another chapter's number (``results.quote("02_density_models", "gmm_best_nll")``)
# glues it again under the same key to use it in its own text. Its executed notebook then records the
# value it was run with; it must still agree with the source chapter's committed value, or one of the two
# notebooks is stale (re-execute the quoting chapter after the source).
import re  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
QUOTE = re.compile(r"""results\.quote\(\s*["'](\w+)["']\s*,\s*["'](\w+)["']""")


def quotes_in(path: Path) -> list[tuple[str, str]]:
    return QUOTE.findall(path.read_text())


QUOTING = [p for p in sorted((ROOT / "book").glob("[0-9][0-9]_*.py")) if quotes_in(p)]


def disagreements(chapter: Path) -> list[str]:
    """Each quote in ``chapter``'s source whose value in its executed notebook differs from the source's."""
    mine = results.glued(chapter.with_suffix(".ipynb"))
    problems = []
    for source, key in quotes_in(chapter):
        value = results.quote(source, key)  # raises if the source glues no such number
        if key not in mine:
            problems.append(f"{chapter.stem} quotes {source}:{key} but does not glue it under {key!r}")
        elif float(mine[key]) != pytest.approx(value, rel=1e-9, abs=1e-12):
            problems.append(f"{chapter.stem} was run with {key} = {mine[key]}, {source} now glues {value}: "
                            f"re-execute {chapter.stem}")
    return problems


@pytest.mark.parametrize("chapter", QUOTING, ids=lambda p: p.stem)
def test_every_quoted_number_agrees_with_its_source(chapter):
    assert not disagreements(chapter)


def test_a_stale_quote_is_caught(tmp_path, monkeypatch):
    notebook_with(tmp_path, gmm_best_nll=126.53)  # the source: tmp_path/02_x.ipynb
    quoting = tmp_path / "07_y.py"
    quoting.write_text('x = results.quote("02_x", "gmm_best_nll")\nglue("gmm_best_nll", x)\n')
    monkeypatch.setattr(results, "BOOK", tmp_path)
    stale = notebook_with(tmp_path, gmm_best_nll=127.7)
    stale.rename(quoting.with_suffix(".ipynb"))
    notebook_with(tmp_path, gmm_best_nll=126.53)
    assert quotes_in(quoting) == [("02_x", "gmm_best_nll")]
    assert "re-execute 07_y" in disagreements(quoting)[0]
    fresh = notebook_with(tmp_path, gmm_best_nll=126.53)
    fresh.rename(quoting.with_suffix(".ipynb"))
    notebook_with(tmp_path, gmm_best_nll=126.53)
    assert disagreements(quoting) == []
