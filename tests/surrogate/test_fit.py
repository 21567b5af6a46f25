"""Fitting the GP's hyperparameters, as a user's process sees it."""

from __future__ import annotations

import subprocess
import sys


def test_a_fit_shows_the_user_no_warning_of_the_libraries_it_uses():
    code = (
        "import warnings, numpy as np\n"
        "warnings.simplefilter('always')\n"
        "from asynchpo.surrogate import fit_hyper\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    warnings.simplefilter('always')\n"
        "    x = np.linspace(0, 1, 12)[:, None]\n"
        "    fit_hyper(x, np.sin(6 * x[:, 0]))\n"
        "print([str(w.message)[:80] for w in seen])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
