# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
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
# calls it "a rough categorisation of vanilla versions of each model". This chapter replaces the
# rough table with a measured one: every family's book-profile model, trained on the same 1,000
# digits and measured by the same code on the same 447 test images.
#
# The measurements are made by one command, the **scoreboard**, which writes a file; this chapter
# only reads that file (it does not retype a number) and re-measures one row to show that the file is
# reproducible. To measure again, after changing a model or on another machine:
#
# ```bash
# OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/scoreboard.py     # every family, ~25 min on 2 cores
# OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/scoreboard.py --families gmm,vae --seed 1
# ```
#
# and rerun this chapter. Each family is trained by its chapter's own code and parameters (the
# `parameters` cell of that chapter, book profile), or loaded from a file that
# `python -m genlib.train_family` wrote (`--checkpoints DIR`).

# %% tags=["parameters"]
device = "cpu"          # "auto", "cpu", "cuda" or "mps" (checked; the live re-fit of section 6 is EM on the CPU)
dataset = "digits"      # the scoreboard's data: the book's split of the 8x8 digits (the only one measured)
results = "../results/scoreboard.json"  # the scoreboard file (relative to book/), written by benchmarks/scoreboard.py
epochs = 100            # EM iterations of the Gaussian mixtures re-fitted live in section 6 (the scoreboard's: 100)
seed = 0                # the seed of the live re-measurement (the file's seed reproduces its row)

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

import genlib
from genlib import compare, data, diagrams, metrics, plot, scoreboard

genlib.device(device)  # an unknown or missing device is a one-line error, as in every chapter
data.check_dataset(dataset, ("digits",))
board = compare.load_scoreboard(results)
rows = board["rows"]
by_key = {row["key"]: row for row in rows}
short = {row["key"]: row["family"].split(" (")[0] for row in rows}  # labels for the figures
print(f"{results}: {len(rows)} families, measured {board['date']} with seed {board['seed']}")
print(f"machine: {board['machine']['processor']}, {board['machine']['cpu_count']} cores, "
      f"torch {board['machine']['torch']}, {board['machine']['threads']} threads")
print(f"data: {board['data']}")


# %% [markdown]
# ## 1. The same data, the same measurements
#
# Every number below is measured the same way for every family:
#
# * **Test NLL**, in nats per image and bits per dimension, of the 447 test digits *as the integer
#   images they are* (17 grey levels, 64 pixels), so that a continuous density is charged for the
#   width of a grey level (chapter 2's dequantisation) and every number is on one scale. The
#   uniform model, which gives every one of the $17^{64}$ images the same probability, scores
#   $64\log 17$ nats. What kind of number it is matters as much as its value: **exact**
#   (the model's own probability), a **bound** (an upper bound on the NLL, so the true NLL is
#   lower), an **estimate** (a Monte Carlo bound that tightens with more samples), **energy only**
#   (known up to $\log Z$, so no number) or **none** (no density at all).
# * **Sample quality**: 447 samples against the 447 test images, on the features of the small digits
#   classifier of chapter 5 (not Inception features, so these numbers are comparable with each
#   other and with the *floor* below, not with published FIDs): the Fréchet distance (FD, lower is
#   better) and precision and recall by $k$-nearest-neighbour manifolds
#   {cite:p}`kynkaanniemi2019improved`. The floor is the training images measured against the test
#   images: two samples of the same distribution, the best a model can hope for.
# * **Time**: training wall time, and sampling time per image (447 images drawn at once).
# * **Representation**: where the model maps an image to a code, the test accuracy of a linear
#   classifier (logistic regression) trained on the codes of the training images.

# %% tags=["nbval-check-output"]
uniform = board["uniform_nats"]
print(f"uniform model: {uniform:.1f} nats per image = {metrics.nats_to_bpd(uniform, 64):.3f} bits/dim "
      f"(64 log 17 = {64 * math.log(17):.1f}: {math.isclose(uniform, 64 * math.log(17), abs_tol=1e-3)})")
print(f"features: a digits classifier with test accuracy {board['classifier_test_accuracy']:.3f}")
floor = board["floor"]
print(f"floor (training images vs test images): FD {floor['frechet']:.2f}, "
      f"precision {floor['precision']:.2f}, recall {floor['recall']:.2f}")

# %% [markdown]
# ## 2. What each family can do, read off the code
#
# The lecture's table says which model types have latents, a density and a generator. Here the
# answers are not typed in: `genlib.compare.capabilities` asks each family's class whether it
# defines `log_prob` (an image's log-probability, exact or bounded or up to a constant), `sample`,
# and `encode` (or, for a mixture, `responsibilities`: the posterior over its components is a
# code too). The scoreboard recorded the same reading for the trained models; the cell checks that
# the classes in this checkout still agree with the file.

# %%
print(compare.capabilities.__doc__.split("\n\n")[0])
classes = {key: scoreboard.model_class(key) for key in by_key}
live = {key: compare.capabilities(cls) for key, cls in classes.items()}

# %% tags=["nbval-check-output"]
columns = [("family", "key", 0), ("class", "class", 0), ("log_prob", "log_prob", 0), ("sample", "sample", 0),
           ("latents", "latent features", 0), ("density", "density", 0)]
print(compare.table([{"key": k, "class": cls.__name__, **live[k], "density": by_key[k]["density"]}
                     for k, cls in classes.items()], columns))
print("the file agrees with the classes:", all(live[k] == by_key[k]["capabilities"] for k in by_key))

# %% [markdown]
# Three readings of that table refine the lecture's. First, a `log_prob` method and a number in the
# density column are not the same thing. The EBM has neither: its class offers `energy`, which is
# $-\log p_\theta(x)$ only up to the unknown $\log Z(\theta)$ (chapter 3), so its column says *energy
# only*. The diffusion model has no `log_prob` but a `bound` method, whose value is an upper bound on
# the NLL (chapter 8). Second, the lecture marks VAEs and diffusion models as having no density;
# here both give a number: a bound, or an importance-sampled estimate of one (chapters 4 and 8).
# Third, "has latents" is a property of the model *and* of the code we wrote: a flow's $z=f(x)$ and
# a mixture's responsibilities are codes; the diffusion model's $x_T$ is a latent of the same size as the image,
# but reaching it from an image needs the deterministic sampler (DDIM, $\eta=0$ in chapter 8) run
# backwards, which genlib does not do; and the GAN has latents but no encoder to reach them.

# %% [markdown]
# ## 3. The scoreboard

# %% tags=["nbval-check-output"]
main_columns = [("family", "family", 0), ("ch.", "chapter", 0), ("density", "density", 0),
                ("NLL nats", "test_nll_nats", 1), ("bits/dim", "bits_per_dim", 3),
                ("train s", "train_seconds", 0), ("sample ms", "sample_ms_per_image", 2),
                ("FD", "frechet", 2), ("precision", "precision", 2), ("recall", "recall", 2),
                ("probe", "probe_accuracy", 3)]
print(compare.table(rows, main_columns))
print(compare.table([{"family": "floor: train vs test images", **floor}], main_columns[:1] + main_columns[7:10]))

# %% [markdown]
# The file also keeps, for each family, what the number in each column means for that model (the
# sampler used, how the NLL was computed, what was chosen on the validation set):

# %%
for row in rows:
    print(f"{row['family']}:")
    for note in row["notes"]:
        print(f"    - {note}")

# %% [markdown]
# And a few of the samples that were measured (the first 16 of the 447; the GAN's continuous outputs
# are shown at the 17 grey levels the others use):

# %%
fig, axes = plt.subplots(2, math.ceil(len(rows) / 2), figsize=(2.6 * math.ceil(len(rows) / 2), 5.6))
for ax, row in zip(axes.flat, rows):
    images = torch.tensor(row["samples"], dtype=torch.float32) / 16  # (16, 64) in [0, 1]
    plot.image_grid(images, nrow=4, ax=ax, title=f"{short[row['key']]}\nFD {row['frechet']:.2f}")
for ax in axes.flat[len(rows):]:
    ax.axis("off")
fig.suptitle("16 samples of each family (the scoreboard's draw)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Scoring: likelihoods on one scale
#
# Only the families with a density appear in the next figure. The bar's hatching says what kind of
# number it is; the dashed line is the uniform model.

# %%
scored = [r for r in rows if r["bits_per_dim"] is not None]
kinds = {"exact": "", "bound": "//", "estimate": ".."}
fig, ax = plt.subplots(figsize=(7.5, 3.2))
order = sorted(scored, key=lambda r: r["bits_per_dim"])
ax.barh([short[r["key"]] for r in order], [r["bits_per_dim"] for r in order], color="#9ecae1", edgecolor="0.2")
for bar, r in zip(ax.patches, order):
    bar.set_hatch(kinds.get(r["density"], "xx"))
    ax.text(bar.get_width() + 0.03, bar.get_y() + bar.get_height() / 2, f"{r['bits_per_dim']:.2f} ({r['density']})",
            va="center", fontsize=9)
u_bpd = metrics.nats_to_bpd(uniform, 64)
ax.axvline(u_bpd, ls="--", c="0.4")
ax.text(u_bpd, 0.97, " uniform over\n 17 levels", fontsize=8, color="0.3", va="top", transform=ax.get_xaxis_transform())
ax.set_xlabel("test NLL (bits per dimension, lower is better)")
ax.set_xlim(0, max(u_bpd, max(r["bits_per_dim"] for r in order)) * 1.3)
ax.invert_yaxis()
ax.set_title("Likelihood of the test digits")
plt.tight_layout()
plt.show()

# %% tags=["nbval-check-output"]
best = min(scored, key=lambda r: r["test_nll_nats"])
exact = [r for r in scored if r["density"] == "exact"]
print(f"lowest NLL: {best['family']} ({best['density']}), {best['test_nll_nats']:.1f} nats = "
      f"{best['bits_per_dim']:.3f} bits/dim")
for r in exact:
    print(f"{r['family']}: P(a test image) ≈ e^-{r['test_nll_nats']:.0f}, "
          f"{uniform - r['test_nll_nats']:.0f} nats above the uniform model")

# %% [markdown]
# **What is and is not comparable.** A bound can be compared with an exact number in one direction
# only: a model whose *bound* beats another's *exact* NLL is certainly better, but a bound that
# loses may hide a better model. The GMM's and the flow's numbers are dequantisation bounds
# (chapters 2 and 7) with one draw of uniform noise per image; the VAE's is $-\mathrm{IWAE}_k$
# (chapter 4), which approaches the true NLL from above as $k$ grows; the diffusion model's is its
# variational bound estimated on random timesteps (chapter 8). All are charged for the same
# discretisation, so the scale is the same. Neither the EBM nor the GAN is in the figure, and
# "energy only" and "none" are not zeros: the EBM could be given a number by estimating $\log Z$
# (annealed importance sampling), the GAN not at all.

# %% [markdown]
# ## 5. Sampling: quality against time

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6))
markers = "osD^vP*X"
for i, r in enumerate(rows):  # one colour and marker per family, the same in both panels
    style = dict(s=55, color=plt.cm.tab10(i), marker=markers[i % len(markers)], label=short[r["key"]])
    ax1.scatter(r["sample_ms_per_image"], r["frechet"], **style)
    ax2.scatter(r["recall"], r["precision"], **style)
ax1.axhline(floor["frechet"], ls="--", c="0.4")
ax1.text(0.02, floor["frechet"], "floor (train vs test)", fontsize=8, color="0.3", va="bottom",
         transform=ax1.get_yaxis_transform())
ax1.set_xscale("log")
ax1.set_xlim(min(r["sample_ms_per_image"] for r in rows) / 3, max(r["sample_ms_per_image"] for r in rows) * 3)
ax1.set_xlabel("sampling time (ms per image, log scale)")
ax1.set_ylabel("Fréchet distance to the test set")
ax1.set_ylim(0, None)

ax1.set_title("Quality against speed")
ax2.scatter(floor["recall"], floor["precision"], marker="*", s=160, c="k", label="floor (train vs test)")
ax2.set_xlim(0, 1.05)
ax2.set_ylim(0, 1.05)
ax2.set_xlabel("recall (test images covered by the samples)")
ax2.set_ylabel("precision (samples that look like test images)")
ax2.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
ax2.set_title("Fidelity and coverage")
plt.tight_layout()
plt.show()

# %% tags=["nbval-check-output"]
by_fd = sorted(rows, key=lambda r: r["frechet"])
print("by Fréchet distance:", ", ".join(f"{r['family']} {r['frechet']:.2f}" for r in by_fd))
slow = compare.iterative_sampler(rows)
fastest = min(rows, key=lambda r: r["sample_ms_per_image"])
print(f"fastest sampler: {fastest['family']}; more than 20x slower:",
      ", ".join(by_key[k]["family"] for k, s in slow.items() if s) or "none")

# %% [markdown]
# Precision and recall separate what the Fréchet distance mixes. Precision asks whether each sample
# lands near some test image (fidelity); recall asks whether each test image has a sample near it
# (coverage). A model that collapses onto a few good modes keeps its precision and loses recall.
#
# Sampling time separates the one-pass generators (a network evaluation per image: the GAN, the
# VAE's decoder, the flow's inverse, a mixture) from the iterative ones: the PixelCNN runs its
# network once per pixel, the diffusion model once per denoising step and flow matching once per
# Euler step. The EBM is iterative too (a Langevin chain), but its 20 steps of a small MLP cost
# little at this size, so it lands among the fast ones. On $8\times 8$ images all of these are
# milliseconds; the number of network evaluations grows with the image (PixelCNN: with its pixels)
# or with the quality asked for (diffusion: with the steps), which is what the chapters' timing
# sections measured. Note also that the lowest Fréchet distance and the lowest NLL do not belong
# to the same family: a sample metric and a likelihood reward different things
# {cite:p}`theis2016note`.

# %% [markdown]
# ## 6. Reproducible: one row measured again
#
# The scoreboard fixes every seed, so the same seed gives the same likelihood. The cell re-fits the
# Gaussian mixtures of chapter 2 (the same search over covariance types and $K$, chosen on the
# validation set) with this chapter's `seed` and `epochs` and measures them as the scoreboard does.

# %%
trained = scoreboard.FAMILIES["gmm"](seed, epochs=epochs)
again = scoreboard.measure(trained, seed)

# %% tags=["nbval-check-output"]
same_run = seed == board["seed"] and epochs == 100
print(f"{again['family']}: NLL {again['test_nll_nats']:.1f} nats, FD {again['frechet']:.2f}, "
      f"probe {again['probe_accuracy']:.3f}")
print(f"file: {by_key['gmm']['family']}: NLL {by_key['gmm']['test_nll_nats']:.1f} nats")
if same_run:
    print("same NLL as the file:", again["test_nll_nats"] == by_key["gmm"]["test_nll_nats"])
else:
    print(f"(seed {seed}, {epochs} EM iterations: a different run from the file's, so a different number)")

# %% [markdown]
# ## 7. Representation: what the codes know
#
# Generative modelling and representation learning meet in the encoder (chapter 4 began there). A
# code that makes the digit's class easy to read off, with no labels used in training, is evidence
# that the model found the structure a human would name first. The baseline is the same linear
# classifier on the 64 raw pixels.

# %% tags=["nbval-check-output"]
pixels = scoreboard.linear_probe(lambda x: x.float())
probed = sorted([r for r in rows if r["probe_accuracy"] is not None], key=lambda r: -r["probe_accuracy"])
print(compare.table(probed + [{"family": "raw pixels (no model)", "probe_accuracy": pixels}],
                    [("features", "family", 0), ("linear probe, test accuracy", "probe_accuracy", 3)]))
print("a code beats the pixels:", any(r["probe_accuracy"] > pixels for r in probed))

# %% [markdown]
# Accuracy is not the only thing a code offers. The VAE's $z$ is low-dimensional and smooth, so it
# can be walked (chapter 4's traversals and interpolations: the *latent controls* of the lecture);
# a flow's $z$ has all 64 dimensions of the image and an exact inverse, so it interpolates but does
# not compress; a mixture's code is a soft choice among $K$ prototypes. A linear probe on pixels is
# already strong on these small, centred digits, and in the book profile no code beats it: the
# codes keep most of what identifies the digit without making it more linear than the pixels are.
# The ranking among the codes is the informative part. The VAE's 32 numbers keep more than the
# flow's 64, which must also describe every detail needed to invert them exactly, and far more than
# the mixture's choice among 15 prototypes.

# %% [markdown]
# ## 8. Fit, score, sample: what each family gives up
#
# Put the three answers together. *Scores*: the family has a normalised density, exact or bounded
# (section 4). *Encodes*: its class maps an image to a code (section 2). *Samples in one pass*:
# its measured sampling time is within a factor 20 of the fastest family's (section 5). Every
# family is fitted, so fitting is not a region of the figure: what differs is what each fit costs.

# %%
members = {short[r["key"]]: (r["density"] in ("exact", "bound", "estimate"),
                                         r["capabilities"]["latent features"], not slow[r["key"]])
           for r in rows}
diagrams.draw_capability_map(members)
plt.title("Each family's answers, from the scoreboard file")
plt.show()

# %% [markdown]
# The figure is the measured version of the lecture's table. Reading it family by family, with the
# numbers of sections 3-7:
#
# * The **Gaussian mixture** sits in the middle, with all three, and pays in fit: its likelihood is
#   some 30 to 40 nats per image behind the VAE, the flow and the PixelCNN, because a few Gaussians
#   cannot bend to the digits' manifold. Its samples are not far behind the VAE's by the Fréchet distance: on
#   digits this small and this centred, a blurry prototype plus noise already looks like a digit to
#   the classifier (and exercise 1 shows that this comparison does not survive a change of seed).
# * The **VAE** and the **flow** also have all three, and pay differently: the VAE scores only through a
#   bound, and its samples are blurred by the decoder's independent pixels; the flow's density is
#   exact up to dequantisation, but every layer must be invertible with a cheap Jacobian, which
#   costs flexibility per parameter (chapter 7).
# * The **PixelCNN** has the best likelihood, and it is exact; it pays at sampling time, one pass
#   per pixel (chapter 6). The **diffusion model** pays more: a thousand passes per image, and in the
#   book profile its bound is *above* the uniform model's, since the bound is dominated by the
#   terms at small $t$ that a small model trained for seconds gets wrong (chapter 8). Its samples
#   are better than that number suggests, which is the point of the previous remark: the bound is a
#   bound.
# * **Flow matching** has the best samples of the book profile, at a fraction of the diffusion
#   model's sampling time, and no likelihood computed here: it is in no disc, a reminder that the
#   three questions are not everything one asks of a model.
# * The **GAN** samples in one pass and gives up scoring altogether: no density, no encoder, and a
#   training game with no loss to stop on (chapter 5). In the book profile it is also far from the
#   floor; chapter 5's benchmark shows how much a GAN's result moves from seed to seed.
# * The **EBM** gives up scoring and encoding: an energy known up to $\log Z$ and a short Langevin
#   chain to sample it (chapter 3), whose samples from noise are the weakest here (its replay
#   buffer's chains, in the row's notes, score much better). Its strength is elsewhere: any network
#   can be an energy, and energies compose (a sum of energies is a product of experts).
#
# None of these placements is permanent: distillation makes diffusion sample in a step or two, an
# encoder can be trained for a GAN, and VAEs with flow priors or hierarchical latents close much of
# the likelihood gap. They hold for the *vanilla* versions the book builds, measured on its data.

# %% [markdown]
# ## Summary
#
# * One command, `benchmarks/scoreboard.py`, trains each family's book-profile model on the same
#   digits and measures it the same way; this chapter renders the file it writes.
# * Capabilities are read off genlib's classes; "has a `log_prob`" is not "has a normalised
#   density", and a bound is not an exact number.
# * On these digits the families spread along the three axes the book began with: fit, score,
#   sample. No vanilla family is best on all three.
#
# ## Exercises
#
# **1. A second seed.** Run `benchmarks/scoreboard.py --families gmm,vae --seed 1 --out
# /tmp/seed1.json` and this chapter with `results=/tmp/seed1.json`. Which numbers move by more than
# their rounding? Which rankings survive?
#
# ```{admonition} Solution
# :class: dropdown
# One run of this exercise (seed 1 against the file's seed 0) gave: mixture NLL 127.2 against
# 128.9 nats and FD 5.78 against 8.22; VAE NLL 91.9 against 91.7 and FD 6.49 against 7.13. The
# likelihoods move by a nat or two, far less than the 35 nats between the two families, so that
# ranking survives. The Fréchet distances move by more than their difference: with seed 1 the
# mixture's samples score *better* than the VAE's. A difference of a point or two of FD between
# families cannot be read from one seed (447 samples, one training run); that is why the family
# chapters' benchmarks report a median and a range over seeds.
# ```
#
# **2. Tighter bounds.** The VAE's NLL is $-\mathrm{IWAE}_k$ with $k=1000$. What would $k=1$ give,
# and where in chapter 4 is the difference measured? Is the gap between the VAE and an exact model
# in section 4 larger or smaller than the gap between $\mathrm{ELBO}$ and $\mathrm{IWAE}_{1000}$?
#
# ```{admonition} Solution
# :class: dropdown
# $k=1$ is the ELBO itself; the row's notes print the $-\mathrm{ELBO}$ next to the
# $-\mathrm{IWAE}_{1000}$ that the table uses, and chapter 4's section 7 measures it for
# $k = 1, 10, 100, 1000$. The bound tightens by a few nats per image from $k=1$ to $k=1000$. That is
# less than the gap to the mixture, so that comparison stands; but it is of the size of the gap to
# the PixelCNN's exact number, so with the ELBO alone the VAE would look further behind than it is.
# ```
#
# **3. Change a model, change the table.** In chapter 2's search, allow only full-covariance
# mixtures (edit the grid `genlib.density.GRID`: $K\in\{1,2,3\}$) and rerun `--families gmm`.
# Which columns change, and why does the probe accuracy depend on $K$?
#
# ```{admonition} Solution
# :class: dropdown
# The family name (the chosen covariance and $K$), the NLL, the samples' quality and the probe
# change; the capabilities do not. With seed 0, a full mixture with $K=3$ scores a test NLL of about
# 130 nats (close to the diagonal $K=15$'s 129), but its probe falls to about 0.20: three
# responsibilities cannot separate ten classes linearly. More components give more, finer
# prototypes (several per digit) that a linear classifier can pool: diagonal $K=5$ gives about
# 0.46, $K=40$ about 0.80 (one run each, the scoreboard's measurement code).
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
