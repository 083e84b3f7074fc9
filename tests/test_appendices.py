"""The appendices' generated parts (scripts/appendices.py) match their sources."""
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def appendices():
    spec = importlib.util.spec_from_file_location("appendices", ROOT / "scripts" / "appendices.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["appendices"] = module
    spec.loader.exec_module(module)
    return module


def test_the_committed_appendices_are_up_to_date(appendices, capsys):
    assert appendices.main(["--check"]) == 0, capsys.readouterr().err


def test_a_chapters_exercises_are_its_section_up_to_the_next_heading(appendices, tmp_path):
    (tmp_path / "01_x.py").write_text(
        "# %% [markdown]\n# # A title\n#\n# ## 1. Intro\n# text\n\n"
        "# %% [markdown]\n# ## Exercises\n#\n# **1.** Do it.\n#\n# ```{admonition} Solution\n"
        "# :class: dropdown\n# Done.\n# ```\n#\n# ## Further reading\n# not this\n")
    (tmp_path / "02_y.py").write_text("# %% [markdown]\n# # No exercises\n\n# %%\nx = 1\n")
    text = appendices.appendix(tmp_path)
    assert "## Chapter 1: A title\n\nFrom {doc}`01_x`." in text
    assert "**1.** Do it." in text and ":class: dropdown" in text
    assert "not this" not in text and "Further reading" not in text and "Chapter 2" not in text


def test_every_chapter_with_exercises_is_collected(appendices):
    text = (ROOT / "book" / "appendix_exercises.md").read_text()
    for chapter in sorted((ROOT / "book").glob("[0-9][0-9]_*.py")):
        if "# ## Exercises" in chapter.read_text():
            assert f"{{doc}}`{chapter.stem}`" in text


def test_the_profile_table_lists_every_value(appendices):
    import yaml

    table = appendices.profile_table()
    for chapter, values in yaml.safe_load((ROOT / "genlib" / "profiles.yml").read_text())["paper"].items():
        for key, value in values.items():
            assert f"| `{key}` | `{value}` |" in table
    broken = appendices.gpu_appendix((ROOT / "book" / "appendix_gpu.md").read_text().replace("| `epochs` | `200` |", "| `epochs` | `2` |"))
    assert broken == (ROOT / "book" / "appendix_gpu.md").read_text()
