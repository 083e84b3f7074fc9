# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Comparing the families
#
# Chapter 1 asked three things of a generative model: that we can **fit** it to data, **score** an
# image with its probability, and **sample** new images from it. Each chapter since then built one
# family, and each paid for two of the three with the third, or with an approximation. Isola's lecture
# {cite:p}`isola2024dgm2` closes with a table of model types — latents? density? generator? — and
# calls it "a rough categorisation of vanilla versions of each model". This chapter puts a measured
# table beside it: every family's book-profile model, trained on the same digits with several seeds
# and measured by the same code on the same test images.
#
# The measurements are made by one command, the **scoreboard**, which writes a file; this chapter
# only reads that file (it does not retype a number) and re-measures a part of it to show that the
# file is reproducible. To measure again, after changing a model or on another machine:
#
# ```bash
# OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/scoreboard.py --seeds 0 1 2            # every family
# OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/scoreboard.py --families gmm,vae --seeds 0 1 2
# ```
#
# (a subset of families is merged into the file, which must hold the same seeds) and rerun this
# chapter. Each family is trained by its chapter's own code and parameters (the `parameters` cell of
# that chapter, book profile), or loaded from files that `python -m genlib.train_family` wrote
# (`--checkpoints DIR`).

# %% tags=["parameters"]
device = "cpu"          # "auto", "cpu", "cuda" or "mps" (checked; the re-measurement of section 6 runs on the CPU)
dataset = "digits"      # the scoreboard's data: the book's split of the 8x8 digits (the only one measured)
results = "../results/scoreboard.json"  # the scoreboard file (relative to book/), written by benchmarks/scoreboard.py
seed = 0                # the seed whose samples are shown (one of the file's seeds)

# %% tags=["hide-input"]
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import HTML, display
from myst_nb import glue

import genlib
from genlib import bench, compare, data, diagrams, metrics, plot, scoreboard
from genlib.results import quote

genlib.device(device)  # an unknown or missing device is a one-line error, as in every chapter
data.check_dataset(dataset, ("digits",))
board = compare.load_scoreboard(results)
rows = board["rows"]
by_key = {row["key"]: row for row in rows}
seeds = board["seeds"]
if seed not in seeds:
    raise ValueError(f"seed must be one of the file's seeds {seeds}, got {seed!r}")
NAMES = {"diffusion": "DDPM, DDIM", "diffusion_ancestral": "DDPM, ancestral", "flow_matching": "flow matching",
         "gmm": "mixture", "pixelcnn": "PixelCNN"}


def label(row):
    """A short name for the figures; a conditional model is flagged (it used the labels), and so is a line
    measured on fewer samples than the protocol's (its FD and precision/recall are not comparable)."""
    name = NAMES.get(row["key"], row["family"].split(" (")[0])
    name += " (conditional)" if row.get("conditional") and "conditional" not in name else ""
    return name + (f" (N = {row['n_samples']})" if row.get("n_samples", N) != N else "")


N = board["n_samples"]
short = {row["key"]: label(row) for row in rows}
# FD and k-NN precision/recall depend on the number of samples: rank by them only the rows at the protocol's N
# (KID is unbiased at any N, and ranks every row)
at_n = [row for row in rows if row.get("n_samples", N) == N]
median = {row["key"]: {k: (None if compare.values(row, k) is None else bench.summary(compare.values(row, k))[0])
                       for k in compare.RUN_KEYS} for row in rows}
print(f"{results}: {len(rows)} rows, seeds {', '.join(map(str, seeds))}, measured {board['date']}")
print(f"machine: {board['machine']['processor']}, {board['machine']['cpu_count']} cores, "
      f"torch {board['machine']['torch']}, {board['machine']['threads']} threads; "
      f"this run took {board['wall_seconds']:.0f} s"
      + (f"; the rows' own times add up to {board['rows_seconds'] / 60:.0f} min" if "rows_seconds" in board else ""))
if board.get("note"):
    print(f"note: {board['note']}")
print(f"data: {board['data']}")
if not board.get("complete", True):
    print("NOTE: the file is from an interrupted run; the rows it finished are shown")
glue("n_seeds", len(seeds), display=False)
glue("n_samples", board["n_samples"], display=False)
glue("feature_accuracy", board["classifier_test_accuracy"], display=False)
glue("wall_minutes", board.get("rows_seconds", board["wall_seconds"]) / 60, display=False)

# %% [markdown]
# ## 1. The same data, the same measurements
#
# Every row is measured by the same code, with each of the file's {glue:text}`n_seeds` seeds (a seed
# fixes the model's initialisation, its training batches and every random draw of the measurement):
#
# * **Test NLL**, in nats per image and bits per dimension, of the test digits *as the integer images
#   they are* (17 grey levels, 64 pixels), so that a continuous density is charged for the width of a
#   grey level (chapter 2's dequantisation) and every number is on one scale. The uniform model,
#   which gives every one of the $17^{64}$ images the same probability, scores $64\log 17$ nats. What
#   kind of number it is matters as much as its value: **exact** (the model's own probability), a
#   **bound** (an upper bound on the NLL, so the true NLL is lower), an **estimate** (a Monte Carlo
#   bound that tightens with more samples), **energy only** (known up to $\log Z$, so no number) or
#   **none** (no density at all).
# * **Sample quality**: as many samples as there are test images ({glue:text}`n_samples`), each
#   quantised to the 17 grey levels and put on the test images' scale before any measure, against
#   the test images. The features are those of a small CNN trained on the training and validation
#   digits (its test accuracy, {glue:text}`feature_accuracy:.1%`, is in the file) — not Inception
#   features, so these numbers are comparable with each other and with the *floor*, not with
#   published FIDs. Three measures: the Fréchet distance (FD), the kernel distance (KID: an unbiased
#   estimate of a squared maximum mean discrepancy, which has no bias at small $N$ and can be
#   slightly negative) {cite:p}`binkowski2018demystifying`, and precision and recall by
#   nearest-neighbour manifolds ($n_{\text{nn}}=3$ neighbours) {cite:p}`kynkaanniemi2019improved`.
# * **The floor** is real images measured like a model's samples: disjoint subsets of the training
#   and validation images, each as large as the test set, against the test images. FD and
#   precision/recall depend on the number of images, so a floor at another $N$ could not be
#   compared with a model.
# * **Time and budget**: training wall time (each row's training budget, from its chapter's book
#   profile, is in its notes: a confounder of every comparison below), and sampling time per image.
#   The iterative ODE/SDE samplers get one budget of network evaluations per image: flow matching's
#   Euler steps, and the DDPM sampled with DDIM at the same number; the DDPM's full ancestral chain
#   is a second line.
# * **Representation**: where the model maps an image to a code, the test accuracy of a linear
#   classifier (logistic regression) trained on the codes of the training images.
#
# Every number is shown as the median over the seeds with its range (min–max) in brackets.

# %% tags=["nbval-check-output"]
uniform = board["uniform_nats"]
print(f"uniform model: {uniform:.1f} nats per image = {metrics.nats_to_bpd(uniform, 64):.3f} bits/dim "
      f"(64 log 17 = {64 * math.log(17):.1f}: {math.isclose(uniform, 64 * math.log(17), abs_tol=1e-3)})")
floor = board["floor"]
print(f"floor ({len(floor['frechet'])} disjoint subsets of {board['n_samples']} real images vs the test images): "
      + ", ".join(f"{k} {bench.fmt(v, '.3f')}" for k, v in floor.items()))
print("the protocol, as the file records it:")
for line in board["protocol"]:
    print(f"  - {line}")

# %% [markdown]
# ## 2. What each family can do, read off the code
#
# The lecture's table says which model types have latents, a density and a generator. On the left,
# that table for the families of this book (the plain versions, as chapter 1 printed it); on the right,
# the same questions answered by the code: `genlib.compare.capabilities` asks each family's class
# whether it defines `log_prob` (an image's log-probability, exact or bounded or up to a constant),
# `sample`, and `encode` (or, for a mixture, `responsibilities`: the posterior over its components is
# a code too). The scoreboard recorded the same reading for the trained models; the cell checks that
# the classes in this checkout still agree with the file.

# %%
print(compare.capabilities.__doc__.split("\n\n")[0])
classes = {key: scoreboard.model_class(key) for key in by_key}
live = {key: compare.capabilities(cls) for key, cls in classes.items()}

# %%
LECTURE = [  # Isola's categorisation of the vanilla model types (chapter 1's table)
    ("Gaussian mixture", "which component", "exact density", "yes"),
    ("energy-based model", "no", "energy only", "no: MCMC"),
    ("VAE", "yes, low-dimensional", "lower bound (ELBO)", "yes"),
    ("GAN", "yes, low-dimensional", "none", "yes"),
    ("autoregressive (PixelCNN)", "no", "exact density", "yes, one pixel at a time"),
    ("normalizing flow", "yes, as many as pixels", "exact density", "yes, one pass"),
    ("diffusion model", "yes, at every step", "lower bound", "yes, many denoising steps"),
]
lecture = compare.html_table([dict(zip(("type", "latents", "density", "generator"), r)) for r in LECTURE],
                             [("model type", "type", 0), ("latent variables?", "latents", 0),
                              ("density?", "density", 0), ("direct generator?", "generator", 0)],
                             "the lecture's table (Isola)")
measured = compare.html_table([{"family": short[k], "class": cls.__name__, **live[k], "density": by_key[k]["density"]}
                               for k, cls in classes.items()],
                              [("family", "family", 0), ("class", "class", 0), ("log_prob", "log_prob", 0),
                               ("sample", "sample", 0), ("encodes", "latent features", 0),
                               ("density", "density", 0)],
                              "read off genlib's classes and the scoreboard file")
display(HTML(f'<div style="display:flex;gap:2em;flex-wrap:wrap;align-items:flex-start">{lecture}{measured}</div>'))

# %% tags=["nbval-check-output"]
print("the file agrees with the classes:", all(live[k] == by_key[k]["capabilities"] for k in by_key))

# %% [markdown]
# Three readings of the two tables refine the lecture's. First, a `log_prob` method and a number in
# the density column are not the same thing. The EBM has neither: its class offers `energy`, which
# is $-\log p_\theta(x)$ only up to the unknown $\log Z(\theta)$ (chapter 3), so its column says
# *energy only*. The diffusion model has no `log_prob` but a `bound` method, whose value is an upper
# bound on the NLL (chapter 8). Second, the lecture marks VAEs and diffusion models as having only a
# bound; that is what the file records too, and such a number can still be compared with an exact
# one in one direction (section 4). Third, "has latents" is a property of the model *and* of the code
# we wrote: a flow's $z=f(x)$ and a mixture's responsibilities are codes; the diffusion model's $x_T$
# is a latent of the same size as the image, but reaching it from an image needs the deterministic
# sampler (DDIM without added noise, chapter 8) run backwards, which genlib does not do; and the GAN has
# latents but no encoder to reach them.

# %% [markdown]
# ## 3. The scoreboard
#
# Each cell is the median over the seeds and, in brackets, the range. Every row is an unconditional
# model: the GAN is chapter 5's headline DCGAN, trained on images only like the others. (The
# scoreboard would mark a conditional row, trained on (image, label) pairs, in the table and with
# hollow markers in the figures, since it used information the other rows did not; the printed line
# below names any.) A line measured on fewer samples than the protocol's says so in its name: the
# DDPM's full ancestral chain costs a thousand network passes per image, so that line has fewer
# samples per seed, and only its KID compares with the other rows (FD rises as $N$ falls).

# %%
main_columns = [("family", "name", 0), ("ch.", "chapter", 0), ("density", "density", 0),
                ("NLL (nats)", "test_nll_nats", 1), ("bits/dim", "bits_per_dim", 3),
                ("train (s)", "train_seconds", 0), ("sample (ms/image)", "sample_ms_per_image", 2),
                ("FD", "frechet", 2), ("KID", "kid", 4), ("precision", "precision", 2), ("recall", "recall", 2),
                ("probe", "probe_accuracy", 3)]
table_rows = [{**row, "name": short[row["key"]]} for row in rows]
table_rows.append({"name": "floor: real images", "chapter": None, "density": None, "runs": None,
                   **{k: v for k, v in floor.items()}})
fewer = "; ".join(f"{short[r['key']]}: {r['n_samples']}" for r in rows if r not in at_n)
display(HTML(compare.html_table(table_rows, main_columns,
                                f"median (min–max) over seeds {', '.join(map(str, seeds))}; "
                                f"{N} samples per row and seed" + (f" ({fewer})" if fewer else ""))))

# %% tags=["nbval-check-output"]
print(f"rows: {len(rows)}; every row has one run per seed:",
      all([run["seed"] for run in row["runs"]] == seeds for row in rows))
print("conditional rows:", ", ".join(short[r["key"]] for r in rows if r.get("conditional")) or "none")
print(f"rows measured on fewer than {N} samples:", fewer or "none")

# %% [markdown]
# The file also keeps, for each row, what the number in each column means for that model (the
# sampler used, how the NLL was computed, the training budget, what was chosen on the validation set):

# %%
for row in rows:
    print(f"{row['family']}:")
    for note in row["notes"]:
        print(f"    - {note}")

# %% [markdown]
# And a few of the samples that were measured (the first 16 of the seed shown, after quantisation):

# %%
shown = {row["key"]: row["samples_by_seed"][str(seed)] if "samples_by_seed" in row else row["samples"]
         for row in rows}
ncol = 3
nrow = math.ceil(len(rows) / ncol)
fig, axes = plt.subplots(nrow, ncol, figsize=(3.3 * ncol, 3.7 * nrow), squeeze=False, layout="constrained")
for ax, row in zip(axes.flat, rows):
    images = torch.tensor(shown[row["key"]], dtype=torch.float32) / 16  # (16, 64) in [0, 1]
    plot.image_grid(images, nrow=4, ax=ax, title=f"{short[row['key']]}\nFD {median[row['key']]['frechet']:.2f} (median)")
    ax.title.set_fontsize(10)
for ax in axes.flat[len(rows):]:
    ax.axis("off")
fig.suptitle("16 samples of each row (the scoreboard's draw)")
plt.show()

# %% [markdown]
# ## 4. Scoring: likelihoods on one scale
#
# Only the rows with a density appear in the next figure (the DDPM once: its two lines share one bound). The bar is the median over the seeds, the
# whisker the range; the hatching says what kind of number it is; the dashed line is the uniform model.

# %%
scored = [r for r in rows if median[r["key"]]["bits_per_dim"] is not None and r["key"] not in scoreboard.LINE_OF]
kinds = {"exact": "", "bound": "//", "estimate": ".."}
fig, ax = plt.subplots(figsize=(8, 0.45 * len(scored) + 1.6))
order = sorted(scored, key=lambda r: median[r["key"]]["bits_per_dim"])
mids = [median[r["key"]]["bits_per_dim"] for r in order]
spans = np.array([[m - min(compare.values(r, "bits_per_dim")), max(compare.values(r, "bits_per_dim")) - m]
                  for m, r in zip(mids, order)]).T
ax.barh([short[r["key"]] for r in order], mids, xerr=spans, color="#9ecae1", edgecolor="0.2", capsize=3)
for bar, r, m in zip(ax.patches, order, mids):
    bar.set_hatch(kinds.get(r["density"], "xx"))
    ax.text(max(compare.values(r, "bits_per_dim")) + 0.05, bar.get_y() + bar.get_height() / 2,
            f"{m:.2f} ({r['density']})", va="center", fontsize=9)
u_bpd = metrics.nats_to_bpd(uniform, 64)
ax.axvline(u_bpd, ls="--", c="0.4")
ax.text(u_bpd, 1.0, " uniform over 17 levels", fontsize=8, color="0.3", va="bottom",
        transform=ax.get_xaxis_transform())
ax.set_xlabel("test NLL (bits per dimension, lower is better)")
ax.set_xlim(0, max(u_bpd, max(max(compare.values(r, "bits_per_dim")) for r in order)) * 1.3)
ax.invert_yaxis()
ax.set_title("Likelihood of the test digits (median and range over seeds)", pad=18)
fig.tight_layout()
plt.show()

# %% tags=["nbval-check-output"]
def print_ranking(key, what, lower_is_better=True, digits=2, among=None):
    groups = compare.ranked(rows if among is None else among, key, lower_is_better)
    print(f"{what}, best first; rows in one group have overlapping ranges (indistinguishable at this budget):")
    for i, group in enumerate(groups, 1):
        print(f"  {i}. " + "; ".join(f"{short[k]} {compare.summary_cell(compare.values(by_key[k], key), digits)}"
                                     for k in group))
    return groups


# a second line shares its family's trained model and bound: the likelihood ranking has each model once
nll_groups = print_ranking("test_nll_nats", "test NLL (nats; one line per trained model)", digits=1,
                           among=[r for r in rows if r["key"] not in scoreboard.LINE_OF])
# the book has one mixture: chapter 2's chosen model, whose test NLL chapter 2 glued (quoted, not retyped)
chapter_2_nll = quote("02_density_models", "gmm_best_nll")
glue("gmm_best_nll", chapter_2_nll, display=False)
if "gmm" in by_key:
    lo, hi = min(compare.values(by_key["gmm"], "test_nll_nats")), max(compare.values(by_key["gmm"], "test_nll_nats"))
    print(f"chapter 2's chosen mixture: {chapter_2_nll:.1f} nats; the scoreboard's mixture row: "
          f"{compare.summary_cell(compare.values(by_key['gmm'], 'test_nll_nats'), 1)}; "
          f"within a nat of the row's range: {lo - 1 <= chapter_2_nll <= hi + 1}")

# %% [markdown]
# **What is and is not comparable.** A bound can be compared with an exact number in one direction
# only: a model whose *bound* beats another's *exact* NLL is certainly better, but a bound that
# loses may hide a better model. The mixture's and the flow's numbers are dequantisation bounds
# (chapters 2 and 7); the VAE's is $-\mathrm{IWAE}_{\hat N}$ (chapter 4), which approaches the true NLL
# from above as $\hat N$ grows; the diffusion model's is its variational bound over all the test images,
# its sum over timesteps estimated by chapter 8's stratified estimator (one random step per stratum,
# weighted by the stratum's size: unbiased; the strata and the standard error are in its notes; its
# two lines share one trained model and one bound).
# The notes of section 3 say how many draws each estimate uses. All are charged for the same
# discretisation, so the scale is the same. Neither the EBM nor the GAN is in the figure, and
# "energy only" and "none" are not zeros: the EBM could be given a number by estimating $\log Z$
# (annealed importance sampling), the GAN not at all. The ranking above is the only one this chapter
# claims for likelihoods: rows in one group cannot be told apart by these seeds. The mixture row is
# chapter 2's model — the same search over covariance types and $K$ with the same restarts — so the
# number chapter 2 printed for it, {glue:text}`gmm_best_nll:.1f` nats, is one draw of this row.

# %% [markdown]
# ## 5. Sampling: quality against time

# %% tags=["hide-input"]
def label_points(ax, xs, ys, labels, step=10, size=8):
    """Write each label to the right of its point; a label whose box (estimated from its length) would
    overlap a marker or a label already written is moved up or down in steps of ``step`` points, with a
    thin line to its point."""
    ax.figure.canvas.draw()  # fix the axes' limits and scales before converting to display units
    px_per_pt = ax.figure.dpi / 72
    centres = [tuple(ax.transData.transform((x, y)) / px_per_pt) for x, y in zip(xs, ys)]  # in points
    taken = [(cx - 5, cy - 5, cx + 5, cy + 5) for cx, cy in centres]  # the markers' boxes

    def free(box):
        return not any(box[0] < o[2] and o[0] < box[2] and box[1] < o[3] and o[1] < box[3] for o in taken)

    for (x, y, text), (cx, cy) in sorted(zip(zip(xs, ys, labels), centres), key=lambda t: -t[1][1]):
        width = 0.55 * size * len(text)
        for k in range(15):
            dy = (1 if k % 2 else -1) * step * ((k + 1) // 2)  # 0, +1, -1, +2, -2, ... steps
            box = (cx + 7, cy + dy - size / 2, cx + 7 + width, cy + dy + size / 2)
            if free(box):
                break
        else:
            dy, box = 0, (cx + 7, cy - size / 2, cx + 7 + width, cy + size / 2)
        taken.append(box)
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(7, dy), fontsize=size, va="center",
                    arrowprops=dict(arrowstyle="-", color="0.5", lw=0.6) if dy else None)


fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.2))
markers = "osD^vP*Xh"
for i, r in enumerate(rows):  # one colour and marker per row, the same in both panels
    k = r["key"]
    fd, ms = compare.values(r, "frechet"), compare.values(r, "sample_ms_per_image")
    pr, rc = compare.values(r, "precision"), compare.values(r, "recall")
    m = median[k]
    hollow = r.get("conditional")
    style = dict(color=plt.cm.tab10(i % 10), marker=markers[i % len(markers)], ms=8, capsize=2, ls="none",
                 mfc="white" if hollow else plt.cm.tab10(i % 10), label=short[k])
    ax1.errorbar(m["sample_ms_per_image"], m["frechet"], xerr=[[m["sample_ms_per_image"] - min(ms)],
                 [max(ms) - m["sample_ms_per_image"]]], yerr=[[m["frechet"] - min(fd)], [max(fd) - m["frechet"]]],
                 **style)
    ax2.errorbar(m["recall"], m["precision"], xerr=[[m["recall"] - min(rc)], [max(rc) - m["recall"]]],
                 yerr=[[m["precision"] - min(pr)], [max(pr) - m["precision"]]], **style)
ax1.axhspan(min(floor["frechet"]), max(floor["frechet"]), color="0.85", zorder=0)
ax1.axhline(np.median(floor["frechet"]), ls="--", c="0.4")
ax1.text(0.98, np.median(floor["frechet"]), "floor (real images, same N)", fontsize=8, color="0.3", va="bottom",
         ha="right", transform=ax1.get_yaxis_transform())
ax1.set_xscale("log")
all_ms = [v for r in rows for v in compare.values(r, "sample_ms_per_image")]
ax1.set_xlim(min(all_ms) / 3, max(all_ms) * 200)  # room for the slowest row's label
ax1.set_xlabel("sampling time (ms per image, log scale)")
ax1.set_ylabel("Fréchet distance to the test images")
ax1.set_ylim(0, None)
ax1.set_title("Quality against speed (median, range over seeds)")
ax2.scatter(np.median(floor["recall"]), np.median(floor["precision"]), marker="*", s=160, c="k",
            label="floor (real images, same N)")
ax2.set_xlim(0, 1.05)
ax2.set_ylim(0, 1.05)
ax2.set_xlabel("recall (test images covered by the samples)")
ax2.set_ylabel("precision (samples that look like test images)")
ax2.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0),
           title="hollow: conditional" if any(r.get("conditional") for r in rows) else None)
ax2.set_title("Fidelity and coverage")
fig.tight_layout()
label_points(ax1, [median[r["key"]]["sample_ms_per_image"] for r in rows], [median[r["key"]]["frechet"] for r in rows],
             [short[r["key"]] for r in rows])
label_points(ax2, [median[r["key"]]["recall"] for r in rows], [median[r["key"]]["precision"] for r in rows],
             [short[r["key"]] for r in rows])
plt.show()

# %% tags=["nbval-check-output"]
fd_groups = print_ranking("frechet", f"Fréchet distance (the rows with {N} samples)", among=at_n)
kid_groups = print_ranking("kid", "KID", digits=4)
slow = compare.iterative_sampler([{"key": k, "sample_ms_per_image": median[k]["sample_ms_per_image"]} for k in by_key])
fastest = min(rows, key=lambda r: median[r["key"]]["sample_ms_per_image"])
print(f"fastest sampler (median): {short[fastest['key']]}; more than 20x slower:",
      ", ".join(short[k] for k, s in slow.items() if s) or "none")
at_floor = [short[r["key"]] for r in at_n if bench.overlap(compare.values(r, "frechet"), floor["frechet"])]
print("rows whose FD range reaches the floor's:", ", ".join(at_floor) or "none")

# %% [markdown]
# Precision and recall separate what the Fréchet distance mixes. Precision asks whether each sample
# lands near some test image (fidelity); recall asks whether each test image has a sample near it
# (coverage). A model that collapses onto a few good modes keeps its precision and loses recall.
# FD and KID usually agree on the order; where they do not, the difference sits within the ranges.
#
# Sampling time separates the one-pass generators (a network evaluation per image: the GAN, the
# VAE's decoder, the flow's inverse, a mixture) from the iterative ones: the PixelCNN runs its
# network once per pixel, the diffusion model once per denoising step and flow matching once per
# Euler step. The EBM is iterative too (a Langevin chain), but its steps of a small MLP cost little at
# this size. The DDPM's two lines are one trained model sampled two ways: the chain that the bound
# describes, and DDIM at the flow-matching budget — compare them to see what the sampler, not the
# model, contributes (by KID, which is unbiased at the ancestral line's smaller number of samples). On $8\times 8$ images all of these are milliseconds; the number of network
# evaluations grows with the image (PixelCNN: with its pixels) or with the quality asked for
# (diffusion: with the steps), which is what the chapters' timing sections measured. A sample metric
# and a likelihood reward different things {cite:p}`theis2016note`: compare the two rankings printed
# above.

# %% [markdown]
# ## 6. Reproducible: a part of the file measured again
#
# The scoreboard fixes every seed, so the same code on the same machine gives the same numbers. The
# cell re-measures the floor — the real images against the test images, with the committed feature
# network — and compares it with the file's. (Re-training a row is the scoreboard's job:
# `benchmarks/scoreboard.py --families gmm --seeds 0 --out /tmp/gmm.json` reproduces the mixture's
# first run.)

# %% tags=["nbval-check-output"]
again = metrics.quality_floor_runs()
same = len(again) == len(floor["frechet"]) and all(math.isclose(run[k], floor[k][i], abs_tol=1e-4)
                                                   for i, run in enumerate(again) for k in floor)
print(f"floor re-measured: FD {bench.fmt([r['frechet'] for r in again], '.3f')}; the same as the file's: {same}")

# %% [markdown]
# ## 7. Representation: what the codes know
#
# Generative modelling and representation learning meet in the encoder (chapter 4 began there). A
# code that makes the digit's class easy to read off, with no labels used in training, is evidence
# that the model found the structure a human would name first. The baseline is the same linear
# classifier on the 64 raw pixels.

# %% tags=["nbval-check-output"]
pixels = scoreboard.linear_probe(lambda x: x.float())
probed = sorted([r for r in rows if median[r["key"]]["probe_accuracy"] is not None],
                key=lambda r: -median[r["key"]]["probe_accuracy"])
print(compare.table([{"family": short[r["key"]], "probe": compare.summary_cell(compare.values(r, "probe_accuracy"), 3)}
                     for r in probed] + [{"family": "raw pixels (no model)", "probe": f"{pixels:.3f}"}],
                    [("features", "family", 0), ("linear probe, test accuracy", "probe", 0)]))
print("a code beats the pixels in every seed:",
      ", ".join(short[r["key"]] for r in probed if min(compare.values(r, "probe_accuracy")) > pixels) or "none")
probe_groups = print_ranking("probe_accuracy", "linear probe", lower_is_better=False, digits=3)

# %% [markdown]
# Accuracy is not the only thing a code offers. The VAE's $z$ is low-dimensional and smooth, so it
# can be walked (chapter 4's traversals and interpolations: the *latent controls* of the lecture);
# a flow's $z$ has all 64 dimensions of the image and an exact inverse, so it interpolates but does
# not compress; a mixture's code is a soft choice among $K$ prototypes. A linear probe on pixels is
# already strong on these small, centred digits: the printed comparison says whether any code beats
# it in every seed, and the ranking which codes can be told apart.

# %% [markdown]
# ## 8. Fit, score, sample: what each family gives up
#
# Put the three answers together. *Scores*: the row has a normalised density, exact or bounded
# (section 4). *Encodes*: its class maps an image to a code (section 2). *Samples fast*: its median
# sampling time per image is within a factor 20 of the fastest row's (section 5) — measured, so it
# says "fast at this size", not "one network pass". Every family is fitted, so fitting is not a region
# of the figure: what differs is what each fit costs.

# %%
members = {short[r["key"]]: (r["density"] in ("exact", "bound", "estimate"), r["capabilities"]["latent features"],
                             not slow[r["key"]]) for r in rows}
diagrams.draw_capability_map(members, sets=("scores $\\log p(x)$", "encodes $x \\to z$",
                                             "samples within 20×\nof the fastest"))
plt.title("Each row's answers, from the scoreboard file", pad=12)
plt.show()

# %% tags=["remove-input"]
# numbers the reading below quotes (from the file and the rankings printed above)
def group_of(groups, key):
    """(1-based rank of the group holding ``key``, the other rows of that group)."""
    for i, group in enumerate(groups, 1):
        if key in group:
            return i, [short[k] for k in group if k != key]
    return None, []


def said(names):
    return ", ".join(names) if names else "no other row"


if "diffusion" in by_key:
    ddpm_rank, ddpm_peers = group_of(nll_groups, "diffusion")
    glue("ddpm_nll", median["diffusion"]["test_nll_nats"], display=False)
    ddpm_values = compare.values(by_key["diffusion"], "test_nll_nats")
    glue("ddpm_nll_range", f"{min(ddpm_values):.1f}–{max(ddpm_values):.1f}", display=False)
    glue("ddpm_nll_rank", ddpm_rank, display=False)
    glue("ddpm_nll_peers", said(ddpm_peers), display=False)
    glue("ddpm_nll_better", said([short[k] for g in nll_groups[:ddpm_rank - 1] for k in g]), display=False)
    glue("n_nll_groups", len(nll_groups), display=False)
    if ddpm_rank > 1:  # the nearest row that ranks above it, and by how much (medians)
        nearest = max(nll_groups[ddpm_rank - 2], key=lambda k: median[k]["test_nll_nats"])
        glue("ddpm_nearest", short[nearest], display=False)
        glue("ddpm_nearest_gap", median["diffusion"]["test_nll_nats"] - median[nearest]["test_nll_nats"], display=False)
        print(f"nearest above: {short[nearest]}, "
              f"{median['diffusion']['test_nll_nats'] - median[nearest]['test_nll_nats']:.1f} nats lower (medians)")
    print(f"DDPM's bound: group {ddpm_rank} of {len(nll_groups)}, with {said(ddpm_peers)}")
spread = {r["key"]: max(compare.values(r, "frechet")) - min(compare.values(r, "frechet")) for r in at_n}
widest = max(spread, key=spread.get)
glue("widest_fd", short[widest], display=False)
glue("widest_fd_spread", spread[widest], display=False)
if "gan" in by_key:
    gan_rank, gan_peers = group_of(fd_groups, "gan")
    glue("gan_fd_rank", gan_rank, display=False)
    glue("gan_fd_peers", said(gan_peers), display=False)
    glue("n_fd_groups", len(fd_groups), display=False)
print(f"widest FD range over the seeds: {short[widest]} ({spread[widest]:.2f})")

# %% [markdown]
# The figure is the measured version of the lecture's table. Reading it family by family, with the
# rankings printed in sections 4, 5 and 7 (and only those: where two rows share a group, the seeds do
# not separate them at this budget):
#
# * The **Gaussian mixture** has all three, and pays in fit: a few Gaussians cannot bend to the
#   digits' manifold, which its place in the likelihood ranking shows. On digits this small and this
#   centred, a blurry prototype plus noise can still look like a digit to the feature network, so its
#   sample quality is judged by the printed groups, not by intuition.
# * The **VAE** and the **flow** also have all three, and pay differently: the VAE scores only
#   through a bound, and its samples are blurred by the decoder's independent pixels; the flow's
#   density is exact up to dequantisation, but every layer must be invertible with a cheap Jacobian,
#   which costs flexibility per parameter (chapter 7).
# * The **PixelCNN**'s likelihood is exact; it pays at sampling time, one pass per pixel (chapter 6).
#   The **diffusion model** pays more: many network passes per image. Its row is chapter 8's fixed
#   model, with the noise schedule matched to the 17 grey levels, and its bound now competes: a
#   median of {glue:text}`ddpm_nll:.1f` nats ({glue:text}`ddpm_nll_range` over the seeds), in group
#   {glue:text}`ddpm_nll_rank` of the {glue:text}`n_nll_groups` of the likelihood ranking, with
#   {glue:text}`ddpm_nll_peers`; only {glue:text}`ddpm_nll_better` rank above it, the nearest,
#   {glue:text}`ddpm_nearest`, by {glue:text}`ddpm_nearest_gap:.1f` nats (medians). Being a bound, the
#   true NLL is lower still, so where it ties with another family's bound the seeds cannot tell them
#   apart, and where it loses to an exact number the gap may be partly the bound's.
# * **Flow matching** has no likelihood computed here: it is in no disc of "scores", a reminder that
#   the three questions are not everything one asks of a model.
# * The **GAN** (chapter 5's unconditional DCGAN with R1, which sees images only like every other
#   row) samples in one pass and gives up scoring altogether: no density, no encoder, and a training
#   game with no loss to stop on (chapter 5). Its Fréchet distance is in group
#   {glue:text}`gan_fd_rank` of {glue:text}`n_fd_groups`, with {glue:text}`gan_fd_peers`. A training
#   game's outcome varies from seed to seed, and so does every row's: the widest range of FD over the
#   seeds in the table is {glue:text}`widest_fd`'s ({glue:text}`widest_fd_spread:.1f`), which is why one
#   lucky run says little.
# * The **EBM** gives up scoring and encoding: an energy known up to $\log Z$ and a short Langevin
#   chain to sample it (chapter 3); its replay buffer's chains, in the row's notes, are what training
#   saw. Its strength is elsewhere: any network can be an energy, and energies compose (a sum of
#   energies is a product of experts).
#
# None of these placements is permanent: distillation makes diffusion sample in a step or two, an
# encoder can be trained for a GAN, and VAEs with flow priors or hierarchical latents close much of
# the likelihood gap. They hold for the *vanilla* versions the book builds, measured on its data,
# with the training budgets of the book profile.

# %% [markdown]
# ## Summary
#
# * One command, `benchmarks/scoreboard.py --seeds 0 1 2`, trains each family's book-profile model
#   with each seed on the same digits and measures it the same way; this chapter renders the file it
#   writes, every number as a median and a range.
# * Capabilities are read off genlib's classes; "has a `log_prob`" is not "has a normalised
#   density", and a bound is not an exact number.
# * A ranking is stated only where the ranges over seeds do not overlap; on these digits the families
#   spread along the three axes the book began with — fit, score, sample — and no vanilla family is
#   best on all three.
#
# ## Exercises
#
# **1. More seeds.** Run `benchmarks/scoreboard.py --families gmm,vae --seeds 0 1 2 3 4 --out
# /tmp/five.json` and this chapter with `results=/tmp/five.json`. Which ranges widen, and which
# groups of the rankings split or merge?
#
# ```{admonition} Solution
# :class: dropdown
# A range over more seeds can only widen (the minimum and maximum of a larger set), so groups can
# merge but never split from more seeds alone; the median moves much less than the range. The
# rankings printed in sections 4 and 5 then say which differences survive. Likelihoods usually move
# by far less than the gaps between families, sample metrics by more: a difference in FD between two
# rows of one group cannot be read from one seed, which is why every number here carries its range.
# ```
#
# **2. Tighter bounds.** The VAE's NLL is $-\mathrm{IWAE}_{\hat N}$ with $\hat N=1000$. What would $\hat N=1$ give,
# and where in chapter 4 is the difference measured? Is the gap between the VAE and an exact model
# in section 4 larger or smaller than the gap between $\mathrm{ELBO}$ and $\mathrm{IWAE}_{1000}$?
#
# ```{admonition} Solution
# :class: dropdown
# $\hat N=1$ is the ELBO itself; the row's notes print the $-\mathrm{ELBO}$ next to the
# $-\mathrm{IWAE}_{1000}$ that the table uses, and chapter 4's section 7 measures it for several $\hat N$.
# Compare that difference, printed in the notes, with the gaps between the groups of the likelihood
# ranking: where it is smaller, the comparison stands with the ELBO too; where it is of the size of a
# gap, the ELBO alone would make the VAE look further behind than it is.
# ```
#
# **3. Change a model, change the table.** In chapter 2's search, allow only full-covariance
# mixtures with $K\in\{1,2,3\}$ (edit the grid `genlib.density.GRID`) and rerun
# `--families gmm --out /tmp/full.json`. Which columns change, and why does the probe accuracy
# depend on $K$?
#
# ```{admonition} Solution
# :class: dropdown
# The family name (the chosen covariance and $K$), the NLL, the samples' quality and the probe
# change; the capabilities do not. The probe reads the digit off the $K$ responsibilities: with three
# components there are at most three directions to separate ten classes with, so the accuracy falls
# far below the diagonal mixture's; more components give more, finer prototypes (several per digit)
# that a linear classifier can pool.
# ```
#
# **4. Score without a density.** The GAN has no density, but its discriminator outputs a number
# for every image. Why is $\log D(x)$ not a log-likelihood, and what would $D^*$ give you if the
# game were solved (chapter 5)?
#
# ```{admonition} Solution
# :class: dropdown
# $D$ is a classifier between data and samples, not a distribution: nothing makes
# $\sum_x D(x)$ (or any function of it) equal one, and at the end of training it is near $1/2$
# everywhere the generator is good. At the optimum $D^*(x)=p_{\text{data}}(x)/(p_{\text{data}}(x)+p_g(x))$
# gives the *ratio* $p_{\text{data}}/p_g=D^*/(1-D^*)$: a density ratio, which would give
# $\log p_{\text{data}}$ only if $p_g$ had a known density, and the generator's has none.
# ```
