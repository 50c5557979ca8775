"""core.bakeoff.stats against examples computed by hand (written out below) and independent computations."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import f1_score

from core.bakeoff.stats import (
    McNemar,
    accuracy,
    binomial_two_sided_p,
    bootstrap_ci,
    holm,
    macro_f1,
    mcnemar,
    paired_bootstrap_ci,
    per_class_accuracy,
)

ROOT = Path(__file__).resolve().parents[2]


def paired_answers(a_only: int, b_only: int, both: int, neither: int) -> tuple[list[bool], list[bool]]:
    """Two models' right/wrong answers on the same images with the four counts given."""
    a = [True] * a_only + [False] * b_only + [True] * both + [False] * neither
    b = [False] * a_only + [True] * b_only + [True] * both + [False] * neither
    return a, b


# -- McNemar ---------------------------------------------------------------------------------------------


def test_mcnemar_seven_against_one() -> None:
    # n = 8 discordant; P(X <= 1) = (C(8,0) + C(8,1)) / 2^8 = 9/256; two-sided: 18/256 = 0.0703125
    a, b = paired_answers(7, 1, both=5, neither=4)
    assert mcnemar(a, b) == McNemar(a_only=7, b_only=1, n=8, p_value=0.0703125)
    assert mcnemar(b, a) == McNemar(a_only=1, b_only=7, n=8, p_value=0.0703125)


def test_mcnemar_ten_against_none() -> None:
    # P(X <= 0) = 1/1024; two-sided 2/1024
    a, b = paired_answers(10, 0, both=3, neither=0)
    result = mcnemar(a, b)
    assert (result.a_only, result.b_only, result.n) == (10, 0, 10)
    assert result.p_value == 2 / 1024


def test_mcnemar_balanced_and_no_discordant_pair_give_one() -> None:
    # 3 against 3: 2 * (1 + 6 + 15 + 20) / 64 = 84/64, capped at 1
    assert mcnemar(*paired_answers(3, 3, both=2, neither=2)).p_value == 1.0
    assert mcnemar(*paired_answers(0, 0, both=6, neither=4)) == McNemar(0, 0, 0, 1.0)
    assert mcnemar([], []) == McNemar(0, 0, 0, 1.0)


def test_mcnemar_two_against_nine() -> None:
    # n = 11: 2 * (1 + 11 + 55) / 2048 = 134/2048
    assert mcnemar(*paired_answers(2, 9, both=0, neither=1)).p_value == 134 / 2048


@pytest.mark.parametrize(("k", "n"), [(1450, 3000), (4900, 10000), (30, 5000), (2500, 5000)])
def test_exact_binomial_p_holds_for_thousands_of_discordant_images(k: int, n: int) -> None:
    expected = binomtest(k, n, 0.5, alternative="two-sided").pvalue  # scipy: symmetric null, same definition
    assert binomial_two_sided_p(k, n) == pytest.approx(expected, rel=1e-9, abs=1e-300)
    assert 0.0 <= binomial_two_sided_p(k, n) <= 1.0


def test_mcnemar_refuses_unpaired_answers() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        mcnemar([True, False], [True])


# -- Holm ------------------------------------------------------------------------------------------------


def test_holm_hand_example() -> None:
    # sorted: 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04 -> running max 0.06; back in the order given
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_holm_caps_at_one_and_keeps_order() -> None:
    assert holm([0.5, 0.01]) == pytest.approx([0.5, 0.02])
    assert holm([0.6, 0.7]) == [1.0, 1.0]
    assert holm([0.2]) == [0.2]
    assert holm([]) == []


# -- bootstrap -------------------------------------------------------------------------------------------


def test_bootstrap_degenerate_cases() -> None:
    assert bootstrap_ci([True] * 30) == (1.0, 1.0)
    assert bootstrap_ci([False] * 30) == (0.0, 0.0)
    low, high = bootstrap_ci([])
    assert math.isnan(low) and math.isnan(high)
    assert math.isnan(accuracy([]))


def test_bootstrap_half_right_matches_the_normal_interval() -> None:
    correct = [True, False] * 100  # 200 images, accuracy 0.5: 0.5 -+ 1.96 sqrt(0.25 / 200) = 0.5 -+ 0.0693
    half_width = 1.96 * math.sqrt(0.25 / 200)
    low, high = bootstrap_ci(correct)
    assert low == pytest.approx(0.5 - half_width, abs=0.01)
    assert high == pytest.approx(0.5 + half_width, abs=0.01)
    assert accuracy(correct) == 0.5


def test_bootstrap_matches_a_brute_force_resampling_of_images() -> None:
    correct = np.array([True] * 300 + [False] * 100)  # 400 images, 75 %
    rng = np.random.default_rng(123)
    rates = [correct[rng.integers(0, correct.size, correct.size)].mean() for _ in range(20000)]
    expected = np.quantile(rates, [0.025, 0.975])
    low, high = bootstrap_ci(correct, resamples=20000, seed=7)
    assert low == pytest.approx(expected[0], abs=0.006)
    assert high == pytest.approx(expected[1], abs=0.006)
    assert low < 0.75 < high


def test_bootstrap_is_reproducible_and_narrows_with_the_level() -> None:
    correct = [i % 3 != 0 for i in range(90)]
    assert bootstrap_ci(correct, seed=5) == bootstrap_ci(correct, seed=5)
    wide, narrow = bootstrap_ci(correct, level=0.99), bootstrap_ci(correct, level=0.5)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]
    with pytest.raises(ValueError):
        bootstrap_ci(correct, level=1.0)
    with pytest.raises(ValueError):
        bootstrap_ci(correct, resamples=0)


def test_paired_bootstrap_against_brute_force() -> None:
    a, b = paired_answers(40, 20, both=100, neither=40)  # 200 images; A - B = 20 / 200 = 0.1
    a_arr, b_arr = np.array(a), np.array(b)
    rng = np.random.default_rng(99)
    diffs = []
    for _ in range(20000):
        pick = rng.integers(0, a_arr.size, a_arr.size)
        diffs.append(a_arr[pick].mean() - b_arr[pick].mean())
    expected = np.quantile(diffs, [0.025, 0.975])
    low, high = paired_bootstrap_ci(a, b, resamples=20000)
    assert low == pytest.approx(expected[0], abs=0.006)
    assert high == pytest.approx(expected[1], abs=0.006)
    assert paired_bootstrap_ci([True, False], [True, False]) == (0.0, 0.0)
    assert paired_bootstrap_ci([True] * 5, [False] * 5) == (1.0, 1.0)


# -- macro-F1 and per-class accuracy ---------------------------------------------------------------------

# 9 images of 3 classes; one could not be decoded (-1)
TRUE = [0, 0, 0, 1, 1, 2, 2, 2, 2]
PRED = [0, 0, 1, 1, 2, 2, 2, -1, 0]


def test_macro_f1_hand_example() -> None:
    # class 0: TP 2, FP 1 (image 8), FN 1 (image 2): F1 = 4 / 6
    # class 1: TP 1, FP 1 (image 2), FN 1 (image 4): F1 = 2 / 4
    # class 2: TP 2, FP 1 (image 4), FN 2 (image 7 undecoded, image 8): F1 = 4 / 7
    expected = (4 / 6 + 2 / 4 + 4 / 7) / 3  # = 73 / 126
    assert macro_f1(TRUE, PRED, 3) == pytest.approx(73 / 126)
    assert macro_f1(TRUE, PRED, 3) == pytest.approx(expected)
    assert macro_f1(TRUE, PRED, 4) == pytest.approx(expected)  # a class with no image and no prediction: left out
    assert macro_f1(TRUE, PRED, 3) == pytest.approx(f1_score(TRUE, PRED, labels=[0, 1, 2], average="macro"))
    assert math.isnan(macro_f1([], [], 3))


def test_per_class_accuracy_counts_undecoded_images_as_wrong() -> None:
    assert per_class_accuracy(TRUE, PRED, 4) == pytest.approx([2 / 3, 1 / 2, 2 / 4, None])


# -- numpy only ------------------------------------------------------------------------------------------


@pytest.mark.subprocess
def test_the_statistics_and_the_leaderboard_load_no_torch() -> None:
    code = ("import sys, core.bakeoff.stats, core.bakeoff.leaderboard\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'PySide6', 'PIL'))\n"
            "print(bad); sys.exit(1 if bad else 0)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
