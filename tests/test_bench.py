"""The benchmark harness: summaries, range overlap, seeds on the command line."""
import math

import pytest

from genlib import bench


def test_summary_is_median_min_max_and_rejects_nan_or_nothing():
    assert bench.summary([3.0, 1.0, 2.0, 10.0]) == (2.5, 1.0, 10.0)
    with pytest.raises(ValueError, match="no values"):
        bench.summary([])
    with pytest.raises(ValueError, match="NaN"):
        bench.summary([1.0, math.nan])


def test_format_and_report():
    assert bench.fmt([91.2, 92.4, 91.7], ".1f") == "91.7 (91.2–92.4)"
    assert bench.fmt([5.0], ".1f") == "5.0"
    line = bench.report([{"nll": 1.0}, {"nll": 3.0}, {"nll": 2.0}], {"nll": ".1f"}, "vae")
    assert line == "vae: median (min–max) over 3 runs: nll 2.0 (1.0–3.0)"


def test_overlap_of_ranges():
    assert bench.overlap([1, 2, 3], [3, 4])
    assert not bench.overlap([1, 2], [2.5, 4])


def test_seeds_argument():
    p = bench.parser("doc")
    assert p.parse_args([]).seeds == [0, 1, 2]
    assert p.parse_args(["--seeds", "4", "5"]).seeds == [4, 5]
    with pytest.raises(SystemExit):
        p.parse_args(["--seeds", "-1"])


def test_seconds_counts_calls():
    calls = []
    assert bench.seconds(lambda: calls.append(1), repeats=3, warmup=2) >= 0
    assert len(calls) == 5
