"""The scoreboard command (chapter 9): every family's book-profile model on the digits, measured the same way.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/scoreboard.py [--seeds 0 1 2] [--families gmm,vae]
                                                                      [--out results/scoreboard.json]
                                                                      [--checkpoints checkpoints/]

The code is :mod:`genlib.scoreboard` (chapter 9 imports it); this file is the command.
"""
import sys

from genlib.scoreboard import main

if __name__ == "__main__":
    sys.exit(main())
