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
# # Autoregressive models and PixelCNN
#
# The VAE of Chapter 4 could only bound its likelihood. This chapter meets a family whose
# likelihood is *exact* and needs no latent variable at all: write the joint distribution as a
# product of one-dimensional conditionals, and learn each conditional with a classifier. That is
# the probability chain rule, and it is how language models generate text one token at a time and
# how PixelRNN and PixelCNN {cite:p}`vandenoord2016pixel,vandenoord2016conditional` generate images
# one pixel at a time. We follow the framing of two lectures {cite:p}`isola2024dgm1,johnson2022generative`:
#
# 1. the chain rule, and next-token prediction as classification ("Once upon a time");
# 2. images as sequences: PixelRNN's recurrence and its $2H-1$ sequential steps;
# 3. PixelCNN's masked convolutions, its receptive field and *blind spot*, measured by gradients on
#    a real network, and the gated PixelCNN that removes it;
# 4. training is one parallel pass, sampling is one pixel at a time: both measured;
# 5. test log-likelihoods on the digits (with MADE, dilated convolutions and PixelCNN++'s logistic-mixture
#    output beside PixelCNN), samples, class-conditional and colour samples (red, then green, then blue),
#    completions of half-hidden digits, and a small causal transformer with a KV cache on the text.

# %% tags=["parameters"]
device = "cpu"          # "auto", "cpu", "cuda" or "mps"
dataset = "digits"      # "digits", "mnist5k" (offline 28x28) or "binarized_mnist" (download)
epochs = 8              # training epochs for each PixelCNN (no early stopping: the best epoch is kept)
channels = 32           # feature maps per masked layer
n_layers = 5            # masked layers (the first one is mask A / the first gated layer)
text_chars = 60_000     # characters of Python's own documentation for the next-character model
text_epochs = 2
timing_sides = [8, 16, 28]  # image sides for the sampling-time measurement
timing_rows = 1         # rows actually sampled per timing (the time is scaled to all rows)
n_quality = 200         # samples (and training images, for the floor) in the sample-quality measurement
made_hidden = 512       # hidden units of MADE (its output layer has made_hidden x D x levels weights)
n_images = None         # at most this many images per split (None: the whole split; the smoke profile cuts it)
checkpoint = ""         # a file from genlib.train_family: load the main model, skip its training
seed = 0

# %% tags=["hide-input"]
import itertools
import json
import math
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

import ipywidgets

import genlib
from genlib import autoregressive as ar
from myst_nb import glue

from genlib import bench, checks, data, diagrams, metrics, plot, train_family, widgets
from genlib.train import check_epochs, fit

dev = genlib.device(device)
gen = genlib.seed_everything(seed)
data.check_dataset(dataset, ("digits", "mnist5k", "mnist", "binarized_mnist"))
check_epochs(epochs)
check_epochs(text_epochs)
checks.positive_int("channels", channels)
checks.positive_int("n_layers", n_layers)
checks.positive_int("text_chars", text_chars)
checks.positive_int("timing_rows", timing_rows)
if not isinstance(timing_sides, (list, tuple)) or not timing_sides or any(
        isinstance(s, bool) or not isinstance(s, int) or s < 2 for s in timing_sides):
    raise ValueError(f"timing_sides must be a non-empty list of integers >= 2, got {timing_sides!r}")
if n_images is not None and (isinstance(n_images, bool) or not isinstance(n_images, int) or n_images < max(n_quality, 32)):
    raise ValueError(f"n_images must be None or an integer >= max(n_quality, 32) = {max(n_quality, 32)}, got {n_images!r}")


show = genlib.show_source  # prints a genlib function's source, to read next to its equation

# the medians over seeds that the prose states come from the chapter's benchmark (benchmarks/autoregressive_digits.py)
BENCH = json.loads((Path(genlib.__file__).resolve().parent.parent / "results" / "autoregressive_digits.json").read_text())


def bench_quote(model):
    """"median (min–max)" of the benchmark's NLLs for ``model``, over its seeds."""
    return f"{bench.fmt(BENCH[model]['nats'])} over {len(BENCH[model]['seeds'])} seeds"


# %% [markdown]
# ## 1. The chain rule: generation as a sequence of classifications
#
# Split a data point into parts $x=(x_1,\dots,x_D)$ — the words of a sentence, the characters of a
# text, the pixels of an image — and apply the definition of conditional probability $D-1$ times:
#
# $$
# p(x) = p(x_1)\,p(x_2\mid x_1)\,p(x_3\mid x_1,x_2)\cdots
#      = \prod_{i=1}^{D} p(x_i\mid x_{<i}),
# \qquad
# \log p(x) = \sum_{i=1}^{D}\log p(x_i\mid x_{<i}).
# $$
#
# This is not an assumption: *every* distribution factorises this way, for any order of the parts.
# The modelling choice is to let one network with parameters $\theta$ output every conditional,
# $p_\theta(x_i\mid x_{<i})=\mathrm{Cat}\big(x_i;\ \mathrm{softmax}(f_\theta(x_{<i}))\big)$ when $x_i$
# takes one of $V$ values. Maximum likelihood on data $x^{(1)},\dots,x^{(N)}$,
#
# $$
# \max_\theta \sum_{n=1}^N \log p_\theta(x^{(n)}) = \max_\theta \sum_{n=1}^N\sum_{i=1}^D \log p_\theta\big(x^{(n)}_i\mid x^{(n)}_{<i}\big),
# $$
#
# is then a sum of cross-entropies: each conditional is a *classifier* that predicts the next part
# from the ones before it, trained with the true next part as its label. For the sentence
# "Once upon a time": $p(\text{Once})\,p(\text{upon}\mid\text{Once})\,p(\text{a}\mid\text{Once, upon})\,
# p(\text{time}\mid\text{Once, upon, a})$.

# %%
diagrams.draw_chain(["Once", "upon", "a", "time"])
plt.title("p(Once upon a time) as a product of next-word classifiers")
plt.show()

# %% [markdown]
# A tiny model makes this concrete. We need text without downloading any: Python ships the help
# pages of its language reference (`help("if")` prints one) in the module `pydoc_data.topics`.
# We read the first `text_chars` characters of it and train a next-*character* classifier: an MLP
# that sees the $n_{\mathrm{ctx}}=16$ previous characters (as learned embeddings) and outputs a softmax
# over the vocabulary. Limiting the context to $n_{\mathrm{ctx}}$ characters is an approximation of the
# chain rule's conditionals, $p(c_t\mid c_{<t})\approx p(c_t\mid c_{t-n_{\mathrm{ctx}}},\dots,c_{t-1})$;
# the product still defines a proper distribution over texts.

# %%
text = ar.text_corpus(text_chars)
vocab = ar.Vocabulary(text)
codes = vocab.encode(text)
cut = int(0.9 * len(codes))
char_train, char_val = ar.windows(codes[:cut], 16), ar.windows(codes[cut:], 16)
char_val = (char_val[0][16:], char_val[1][16:])  # drop contexts that reach into the training text
char_model = ar.CharModel(len(vocab), context=16)
tic = time.perf_counter()
char_history = fit(char_model, ar.char_loss, char_train, char_val, epochs=text_epochs, batch_size=256,
                   lr=2e-3, generator=gen, progress=False)
print(f"{len(text):,} characters, vocabulary of A = {len(vocab)}; trained {text_epochs} epochs in "
      f"{time.perf_counter() - tic:.1f} s")
print(f"held-out cross-entropy {char_history.val[-1]:.2f} nats/character "
      f"({char_history.val[-1] / math.log(2):.2f} bits) vs uniform log A = {math.log(len(vocab)):.2f} nats")

# %% [markdown]
# The classifier's probabilities of each word of our sentence given the words before it are
# products of character conditionals, and the log-probability of the whole string is their sum —
# the chain rule, checked numerically below. The text it learned from is a programming-language
# manual, not fairy tales, so it does not find "Once upon a time" very likely; its own
# continuations show what it did learn.

# %%
sentence = "Once upon a time"
with torch.no_grad():
    terms = char_model.log_prob(vocab.encode(sentence))  # (T,): log p(c_t | c_<t)
start = 0
for word in ["Once", " upon", " a", " time"]:
    log_p = float(terms[start:start + len(word)].sum())
    print(f"log p({word.strip()!r:8} | {sentence[:start].strip()!r:12}) = {log_p:7.2f} nats")
    start += len(word)
with torch.no_grad():
    probs = char_model.next_log_prob(vocab.encode("Once upon a ti")).exp()
top = probs.topk(5)
print("p(next character | 'Once upon a ti'):",
      ", ".join(f"{vocab.chars[int(k)]!r} {float(p):.2f}" for p, k in zip(top.values, top.indices)))

# %% tags=["nbval-check-output"]
with torch.no_grad():  # one prediction per prefix, each from its own call
    by_factor = sum(float(char_model.next_log_prob(vocab.encode(sentence[:t]))[vocab.index[sentence[t]]])
                    for t in range(len(sentence)))
print("sum of the 16 next-character log-probabilities == log p(sentence):",
      math.isclose(by_factor, float(terms.sum()), abs_tol=1e-4))

# %%
for temperature in (0.5, 1.0):
    out = char_model.sample(vocab.encode(sentence), 120, generator=gen, temperature=temperature)
    print(f"temperature {temperature}: {vocab.decode(out)!r}\n")

# %% [markdown]
# Sampling runs the chain rule forwards: draw $c_1$, feed it back, draw $c_2$, and so on — one
# network evaluation per character. (The temperature divides the logits: below 1 it sharpens each
# conditional and the text gets more repetitive and more word-like.) The same recipe works for
# any data that can be put in an order: pixels next.
#
# ## 2. Images as sequences: PixelRNN
#
# Read an $H\times W$ grey image in *raster order*, row by row and left to right within a row, so
# $x_{<i}$ is every pixel above the current one and every pixel to its left in the same row. Each
# pixel takes one of $V$ grey levels (here $V=17$ for the 8x8 digits), and its conditional is a
# softmax over those $V$ values, not a Gaussian: a categorical can be multi-modal ("either
# background or ink") and its log-probabilities are exact, with no dequantisation.
#
# PixelRNN {cite:p}`vandenoord2016pixel` computes a hidden state for every pixel with LSTMs. In the
# simplest two-dimensional recurrence, $h_{i,j}=f_\theta(h_{i-1,j},\,h_{i,j-1},\,x_{i,j-1})$, each state
# waits for the one above and the one to its left, and through them it sees the *rectangle* of pixels
# above and to the left — rows $\le i$, columns $\le j$ — not every earlier pixel: the pixels above
# and to the right of $(i,j)$ are missed. The paper's two layers fix this differently: the Row LSTM
# sees a triangle above the pixel, and the Diagonal BiLSTM, scanning the diagonals in both directions,
# covers the whole context $x_{<ij}$. The price is sequential computation even in training: a state
# waits for its neighbours, so an $H\times H$ image takes $2H-1$ steps, one per anti-diagonal (for
# the recurrence above), instead of one parallel pass.

# %%
diagrams.draw_pixelrnn_order(8)
plt.show()

# %% [markdown]
# ## 3. PixelCNN: masked convolutions
#
# PixelCNN {cite:p}`vandenoord2016pixel` replaces the recurrence by convolutions whose kernels are
# *masked* so that the output at a pixel only sees earlier pixels. With the whole training image
# known, every conditional is computed at once, in one pass of a convolutional network. The first
# layer uses **mask A**, which hides the centre and everything after it: the output at $(i,j)$ must
# not see $x_{ij}$, the value it predicts. Later layers use **mask B**, which also lets a position
# see its *own* features: those already depend only on earlier pixels, so nothing leaks. The gated
# PixelCNN of Section 4 uses two further masks: a vertical one (the rows above) and a horizontal one
# (the current row, to the left).

# %%
fig, axes = plt.subplots(1, 4, figsize=(10, 2.9))
diagrams.draw_mask(ar.mask_a(5), axes[0], "mask A (first layer)")
diagrams.draw_mask(ar.mask_b(5), axes[1], "mask B (later layers)")
diagrams.draw_mask(ar.mask_vertical(5, first=True), axes[2], "vertical stack, first layer")
diagrams.draw_mask(ar.mask_horizontal(5, first=True), axes[3], "horizontal stack, first layer")
fig.suptitle("5x5 masks: blue weights act, white are zeroed; red outline = the output's own position")
plt.tight_layout()
plt.show()
show(ar.mask_a)
show(ar.MaskedConv2d)

# %% [markdown]
# genlib's `PixelCNN` takes the image one-hot encoded, $V$ input channels, applies a mask-A
# convolution and `n_layers` residual mask-B convolutions (ReLU in between), then two 1x1
# convolutions to $V$ logits per pixel. Its `log_prob` is the chain rule in one pass: the
# cross-entropy of every pixel against its own logits, summed over pixels.

# %%
show(ar.PixelCNN.log_prob)

# %% [markdown]
# ## 4. The receptive field, measured, and the blind spot
#
# Which input pixels can the prediction at $(i,j)$ depend on? Rather than reason about the masks,
# we ask the network: the gradient $\partial\, r^\top f_\theta(x)_{ij}/\partial x$ (for a random
# direction $r$ over the $V$ logits, on random images) is nonzero exactly at the pixels the output
# depends on. `ar.dependency` computes it. Two untrained networks of the chapter's size, all kernels
# 3x3, are enough, since the dependency structure comes from the masks, not the weights.
#
# Stacked 3x3 masked layers reach a *cone*: each layer can move one row up (and one column left or
# right) or stay in the row (and move left). The row $d$ above the pixel is therefore reached only
# up to column $j+d$; the earlier pixels beyond, above and to the right, are reached by no path
# at all. That wedge is the **blind spot** of the PixelCNN {cite:p}`vandenoord2016conditional`,
# which `ar.cone` writes down.

# %%
levels = data.images(dataset, "train").levels
probe_shape = (8, 8)
plain_probe = ar.PixelCNN(ar.PixelCNNConfig(shape=probe_shape, levels=levels, arch="pixelcnn",
                                             channels=channels, n_layers=n_layers))
gated_probe = ar.PixelCNN(ar.PixelCNNConfig(shape=probe_shape, levels=levels, arch="gated",
                                            channels=channels, n_layers=n_layers))
pixel = (5, 2)
dep_plain = ar.dependency(plain_probe, *pixel, generator=gen)
dep_gated = ar.dependency(gated_probe, *pixel, generator=gen)
fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.9))
diagrams.draw_dependency(dep_plain, pixel, axes[0], f"PixelCNN (masks A, B): output {pixel}")
diagrams.draw_dependency(dep_gated, pixel, axes[1], f"gated PixelCNN: output {pixel}")
fig.text(0.5, 0.02, "red: the output pixel; blue: input pixels it depends on (darker = larger gradient);\n"
         "orange hatched: earlier pixels it cannot see; white: later pixels", ha="center", fontsize=9)
plt.tight_layout(rect=(0, 0.1, 1, 1))
plt.show()

# %% tags=["nbval-check-output"]
before = ar.raster_before(probe_shape, *pixel)
seen_plain, seen_gated = dep_plain > 0, dep_gated > 0
print("no output sees its own or a later pixel:", not bool((seen_plain & ~before).any() or (seen_gated & ~before).any()))
print("plain PixelCNN sees exactly the cone:", torch.equal(seen_plain, ar.cone(probe_shape, *pixel, n_layers + 1)))
print(f"blind spot of pixel {pixel}: {int((before & ~seen_plain).sum())} of {int(before.sum())} earlier pixels; "
      f"gated PixelCNN misses {int((before & ~seen_gated).sum())}")

# %% [markdown]
# The gated PixelCNN {cite:p}`vandenoord2016conditional` splits the network into two stacks. The
# **vertical stack** convolves with the vertical masks: its features at row $i$ depend on all rows
# above within its reach, every column, so no wedge is lost. The **horizontal stack** convolves
# along the current row only (pixels to the left) and adds, through a 1x1 convolution, the vertical
# features of the same position. Because the vertical features never look at row $i$, nothing leaks
# from the right. Each layer also replaces the ReLU by a gate, $\tanh(a)\odot\sigma(b)$, on two halves
# of its channels, as in an LSTM. Layer $l$ computes
#
# $$
# (a_v, b_v)=\mathrm{conv}^l_v(v^{l-1}),\qquad v^{l}=\tanh(a_v)\odot\sigma(b_v),
# $$
# $$
# (a_h, b_h)=\mathrm{conv}^l_h(h^{l-1})+\mathrm{lin}^l\big(\mathrm{conv}^l_v(v^{l-1})\big),\qquad
# h^{l}=h^{l-1}+\mathrm{lin}_o^l\big(\tanh(a_h)\odot\sigma(b_h)\big),
# $$
#
# starting from $v^0=h^0=$ the one-hot image (the first layer has no residual term), with
# $\mathrm{conv}_v$, $\mathrm{conv}_h$ masked convolutions and $\mathrm{lin}$, $\mathrm{lin}_o$
# 1x1 convolutions; a class label $y$ enters every gate as an added learned vector (the conditional
# model $p_\theta(x\mid y)$, available in genlib with `n_classes`). The reach is
# `n_layers` rows up and columns to each side for 3x3 kernels; inside it, every earlier pixel counts.
#
# The two networks do not have the same reach: the plain PixelCNN stacks a mask-A layer and
# `n_layers` mask-B layers, so it reaches one row further than the gated model with its `n_layers`
# layers. Over every pixel of the 8x8 image, we count the earlier pixels each network cannot see — the
# blind spot of the plain model, and, for both, what lies beyond the reach:

# %% tags=["nbval-check-output"]
def missed_context(net):
    """(earlier pixels not seen, summed over all outputs; the outputs that miss at least one)."""
    H_, W_ = probe_shape
    missed = torch.zeros(H_, W_, dtype=torch.long)
    for i in range(H_):
        for j in range(W_):
            seen = ar.dependency(net, i, j, n=2, generator=torch.Generator().manual_seed(0)) > 0
            missed[i, j] = int((ar.raster_before(probe_shape, i, j) & ~seen).sum())
    return missed


missed_plain, missed_gated = missed_context(plain_probe), missed_context(gated_probe)
n_pairs = probe_shape[0] * probe_shape[1] * (probe_shape[0] * probe_shape[1] - 1) // 2
print(f"reach (rows up): plain {plain_probe.reach()[0]}, gated {gated_probe.reach()[0]}")
print(f"earlier-pixel dependencies missed, of {n_pairs}: plain {int(missed_plain.sum())}, "
      f"gated {int(missed_gated.sum())}; pixels where the gated model misses more: "
      f"{int((missed_gated > missed_plain).sum())}")
glue("reach_plain", plain_probe.reach()[0], display=False)
glue("reach_gated", gated_probe.reach()[0], display=False)
glue("missed_plain", int(missed_plain.sum()), display=False)
glue("missed_gated", int(missed_gated.sum()), display=False)
glue("n_pairs", n_pairs, display=False)
glue("gated_misses_more", int((missed_gated > missed_plain).sum()), display=False)

# %% [markdown]
# Of the {glue:text}`n_pairs` pairs (output pixel, earlier pixel), the plain model misses
# {glue:text}`missed_plain` and the gated model {glue:text}`missed_gated`: the gated model has no
# blind spot, but its shorter reach hides the far rows, and at {glue:text}`gated_misses_more` output
# pixels it misses *more* context than the plain one. A likelihood comparison of these two networks
# therefore does not isolate the blind spot; we keep the counts next to the test NLLs below.

# %%
show(ar.PixelCNN.net)

# %% [markdown]
# ## 5. Training: one parallel pass
#
# Training never samples: the training image is given, so all $D$ conditionals are computed at once
# (teacher forcing) and the loss is the exact negative log-likelihood in nats per image. We train a
# gated PixelCNN and a plain one of the same width and depth with the same settings (Adam, batches of
# 64, `epochs` epochs, the weights of the best validation epoch kept), on the book's split of the
# digits. (The gated model can also be trained outside the notebook, e.g. on a GPU, by
# `python -m genlib.train_family pixelcnn --out DIR`; the parameter `checkpoint=DIR/pixelcnn.pt` then
# loads it instead of training it here.) First, a check of the claim "exact": on a 3x3 binary toy every
# one of the $2^9=512$ images can be listed, and the probabilities of an untrained model must sum to one.

# %% tags=["nbval-check-output"]
toy = ar.PixelCNN(ar.PixelCNNConfig(shape=(3, 3), levels=2, channels=8, n_layers=2))
all_images = torch.tensor(list(itertools.product([0, 1], repeat=9)))  # (512, 9)
with torch.no_grad():
    total = torch.logsumexp(toy.log_prob(all_images).double(), 0).exp()
print(f"sum over all 512 binary 3x3 images of p(x) = {float(total):.6f}")

# %%
train, val, test = (data.images(dataset, s) for s in ("train", "val", "test"))
if n_images is not None:
    train, val, test = (data.Images(s.x[:n_images], s.y[:n_images], s.levels, s.shape) for s in (train, val, test))
D = train.dims
print(f"{dataset}: train {tuple(train.x.shape)}, val {tuple(val.x.shape)}, test {tuple(test.x.shape)}, "
      f"V = {train.levels} levels, uniform model {metrics.uniform_nats(D, train.levels):.1f} nats/image")


def train_model(arch, output="softmax", generator=gen):
    config = ar.PixelCNNConfig(shape=train.shape, levels=train.levels, arch=arch, channels=channels, n_layers=n_layers,
                               output=output)
    net = ar.PixelCNN(config)
    tic = time.perf_counter()
    history = fit(net, ar.batch_loss, train.x, val.x, epochs=epochs, batch_size=64, lr=3e-3,
                  patience=epochs, device=dev, generator=generator, progress=False)
    print(f"{arch:>8} ({output}): {sum(p.numel() for p in net.parameters()):,} parameters, {history.epochs} epochs in "
          f"{time.perf_counter() - tic:.1f} s")
    return net, history


# trained elsewhere (python -m genlib.train_family pixelcnn ...) when `checkpoint` is given: loaded, not trained
gated, gated_history = train_family.load_or_train(checkpoint, "pixelcnn", lambda: train_model("gated"), device=device,
                                                  expect={"dataset": dataset, "channels": channels, "n_layers": n_layers})
plain, plain_history = train_model("pixelcnn")
gated_nll, plain_nll = ar.evaluate_nll(gated, test.x), ar.evaluate_nll(plain, test.x)
for name, nll in (("gated", gated_nll), ("plain", plain_nll)):
    print(f"{name:>8}: test NLL {nll.nats:.2f} nats/image = {metrics.nats_to_bpd(nll.nats, D):.3f} bits/dim ({nll.kind})")

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(6, 3.4))
for (name, h), color in zip([("gated PixelCNN", gated_history), ("PixelCNN (blind spot)", plain_history)],
                            ["tab:blue", "tab:orange"]):
    epochs_axis = np.arange(1, h.epochs + 1)
    ax.plot(epochs_axis, h.train, "--", color=color, label=f"{name}, train")
    ax.plot(epochs_axis, h.val, "-", color=color, label=f"{name}, validation")
ax.set_xlabel("epoch"), ax.set_ylabel("NLL (nats per image)"), ax.set_title("training curves (exact likelihood)")
ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
ax.legend(frameon=False, fontsize=8)
plt.show()

# %% tags=["nbval-check-output"]
print(f"test NLL: gated {gated_nll.nats:.0f} nats/image (misses {int(missed_gated.sum())} dependencies), "
      f"plain {plain_nll.nats:.0f} nats/image (misses {int(missed_plain.sum())}) (rounded); "
      f"uniform {metrics.uniform_nats(D, train.levels):.0f}")
print("gated and plain within 3 nats of each other:", abs(gated_nll.nats - plain_nll.nats) < 3)
glue("gated_test_nll", gated_nll.nats, display=False)
glue("plain_test_nll", plain_nll.nats, display=False)
glue("nll_gap", abs(gated_nll.nats - plain_nll.nats), display=False)

# %% [markdown]
# The numbers are exact log-likelihoods of the integer images, not bounds: they can be compared with
# the other families' test NLLs in nats per image on the same split (Chapter 4's VAE reports a bound
# on the same quantity, so its numbers lie above its true NLL; Chapter 2's densities of dequantised
# pixels are turned into the same units by the dequantisation bound). A uniform model pays
# $D\log V$; the PixelCNNs pay about half of it (gated {glue:text}`gated_test_nll:.1f`, plain
# {glue:text}`plain_test_nll:.1f` nats per image in this run, {glue:text}`nll_gap:.1f` apart). The
# blind spot, plain to see in the gradients of Section 4, does not show up as a clear loss of
# likelihood here — but, as counted in Section 4, the plain model also reaches one row further, so
# the comparison trades a blind spot against reach rather than isolating it. On 8x8 digits a pixel's
# best predictors are its near neighbours above and to the left, which both models see; the wedge the
# plain model misses matters more for larger images with long-range structure, where the gated model
# was introduced {cite:p}`vandenoord2016conditional`.
#
# Read the training curves with care: each training point is the average loss over the epoch's
# batches, taken while the weights were still improving, whereas each validation point is measured with the weights at the end of the
# epoch. That is why the training curves lie *above* the validation curves early on; only later,
# when the model starts to fit the 1,000 training images better than new ones, would the usual
# gap — training below validation — open.
#
# For reference, the autoregressive model of {cite:t}`tomczak2022dgm` (causal 1-D convolutions over
# the flattened image), in our re-run of its code on the same digits and split, reaches 86.5 nats
# per image (86.4–86.7 over 3 seeds) after about 99 s of training. The book-profile models here are
# smaller and train for a fixed few epochs; `benchmarks/autoregressive_digits.py` trains a wider
# gated PixelCNN (and the plain PixelCNN and MADE) for a fixed number of epochs and reports median
# and range over seeds.
#
# ### Dilated causal convolutions: reach that doubles
#
# That reference model is a stack of *dilated* causal convolutions, WaveNet's recipe
# {cite:p}`vandenoord2016wavenet`: a 1-D convolution over the raster-ordered pixels whose taps are
# spaced $1, 2, 4, \dots$ apart, so that the reach doubles with every layer instead of growing by one
# — the remedy for the short reach measured in Section 4. genlib's `DilatedCausalModel` stacks a
# first layer that sees only the positions *before* $t$ and gated residual layers with dilations
# $2^l$. We measure the reach of its last output by gradients as layers are added, and train one
# beside the PixelCNNs:

# %% tags=["nbval-check-output"]
reach_rows = []
for n_dil in range(1, 7):
    probe = ar.DilatedCausalModel(ar.DilatedConfig(dims=D, levels=train.levels, channels=8, n_layers=n_dil))
    one_hot = torch.nn.functional.one_hot(test.x[:1].long(), train.levels).float().transpose(1, 2).requires_grad_(True)
    h = probe.first(one_hot)
    for conv, mix in zip(probe.layers, probe.mix):
        a, b = conv(h).chunk(2, dim=1)
        h = h + mix(torch.tanh(a) * torch.sigmoid(b))
    probe.out(h)[0, :, D - 1].sum().backward()
    reach_rows.append((n_dil, int((one_hot.grad.abs().sum(1)[0] > 0).sum()), min(probe.config.receptive_field, D - 1)))
print("dilated layers | earlier pixels the last output depends on (gradients) | formula, at most D - 1")
for row in reach_rows:
    print(f"{row[0]:>14} | {row[1]:>55} | {row[2]:>7}")

# %%
dilated = ar.DilatedCausalModel(ar.DilatedConfig(dims=D, levels=train.levels, channels=channels, n_layers=6))
tic = time.perf_counter()
dilated_history = fit(dilated, ar.batch_loss, train.x, val.x, epochs=epochs, batch_size=64, lr=3e-3,
                      patience=epochs, device=dev, generator=gen, progress=False)
dilated_seconds = time.perf_counter() - tic
dilated_nll = ar.evaluate_nll(dilated.to(dev), test.x)
print(f"dilated causal model: {sum(p.numel() for p in dilated.parameters()):,} parameters, reach "
      f"{dilated.config.receptive_field} pixels, {dilated_history.epochs} epochs in {dilated_seconds:.1f} s; "
      f"test NLL {dilated_nll.nats:.2f} nats/image")
glue("dilated_test_nll", dilated_nll.nats, display=False)
glue("dilated_reach", dilated.config.receptive_field, display=False)

# %% [markdown]
# The reach grows as $2 + (2^n - 1)$ for $n$ dilated layers of kernel 2 (measured and formula agree,
# up to the $D-1$ pixels that exist before the last one), so six layers reach
# {glue:text}`dilated_reach` positions back — every earlier pixel of the last output of an 8x8 image,
# with no blind spot. With the same epochs it reaches
# {glue:text}`dilated_test_nll:.1f` nats per image in this run; a 1-D model does not know which
# pixels are vertical neighbours, and must learn that from the data.
#
# ### MADE: the same chain rule from a masked MLP
#
# The lectures' taxonomy puts NADE and MADE {cite:p}`germain2015made` next to PixelRNN/CNN. MADE
# needs no convolutions: take an ordinary MLP from $x\in\mathbb R^D$ to $D$ softmaxes and zero
# weights so that output $d$ depends only on the inputs before $d$. Give every input its position
# $m_0(d)\in\{1,\dots,D\}$ in the order, every hidden unit $k$ of layer $l$ a *degree*
# $m_l(k)\in\{1,\dots,D-1\}$, and keep a weight from unit $k'$ to unit $k$ only if
# $m_l(k)\ge m_{l-1}(k')$; a hidden unit of degree $m$ then sees at most the first $m$ inputs. The
# output for coordinate $d$ keeps unit $k$ only if $m_0(d) > m_L(k)$ — strictly, so that it never
# sees $x_d$. One pass gives every conditional, as for PixelCNN, and any order can be used (drawing a
# new order and new degrees at every step trains one network for many orders). The same masked
# network is the conditioner of the autoregressive flows of Chapter 7.

# %%
show(ar.made_masks)

# %% tags=["nbval-check-output"]
tiny = ar.MADE(4, 1, (6,), order=torch.tensor([2, 0, 3, 1]))  # x_2 first, then x_0, x_3, x_1
fig, axes = plt.subplots(1, 2, figsize=(7, 2.8), gridspec_kw={"width_ratios": [4, 6]})
for ax, mask, title, xlabel, ylabel in ((axes[0], tiny.hidden_layers[0].mask, "input -> hidden", "input coordinate d",
                                         "hidden unit k"),
                                        (axes[1], tiny.out.mask, "hidden -> output", "hidden unit k", "output coordinate d")):
    ax.imshow(mask.numpy(), cmap="Blues", vmin=0, vmax=1.3)
    ax.set(title=title + " (blue: weight kept)", xlabel=xlabel, ylabel=ylabel,
           xticks=range(mask.shape[1]), yticks=range(mask.shape[0]))
plt.tight_layout()
plt.show()
J_tiny = torch.autograd.functional.jacobian(lambda v: tiny(v.unsqueeze(0))[0, 0], torch.randn(4))
print("order x_2, x_0, x_3, x_1; output d depends on inputs (by gradients):",
      {d: [k for k in range(4) if float(J_tiny[d, k].abs()) > 0] for d in range(4)})

# %% [markdown]
# With hidden units of random weights, the gradients confirm the masks: $x_2$ is predicted from
# nothing, $x_0$ from $x_2$, $x_3$ from $x_2$ and $x_0$ (as far as the hidden degrees allow), $x_1$
# from the rest. On the digits, a categorical MADE in raster order with one hidden layer of 512 units
# and no convolutions trains as follows:

# %%
made = ar.CategoricalMADE(ar.MADEConfig(dims=D, levels=train.levels, hidden=(made_hidden,)))
tic = time.perf_counter()
made_history = fit(made, ar.batch_loss, train.x, val.x, epochs=4 * epochs, batch_size=64, lr=1e-3,
                   patience=4 * epochs, device=dev, generator=gen, progress=False)
made_seconds = time.perf_counter() - tic
made_nll = ar.evaluate_nll(made.to(dev), test.x)
print(f"MADE: {sum(p.numel() for p in made.parameters()):,} parameters, {made_history.epochs} epochs in "
      f"{made_seconds:.1f} s; test NLL {made_nll.nats:.2f} nats/image")
glue("made_test_nll", made_nll.nats, display=False)
glue("made_seconds", made_seconds, display=False)

# %% [markdown]
# MADE reaches {glue:text}`made_test_nll:.1f` nats per image in {glue:text}`made_seconds:.0f` s, against
# {glue:text}`gated_test_nll:.1f` and {glue:text}`plain_test_nll:.1f` for the two PixelCNNs: it is a
# valid exact likelihood, but an MLP knows nothing of which pixels are neighbours, and it must learn
# every position's conditional separately from 1,000 images. Convolutions share that work across
# positions.
#
# ### PixelCNN++'s output: a discretised logistic mixture
#
# Every model so far ends in a $V$-way softmax: $V$ free logits per pixel, which know nothing of the
# order of the grey levels — that level 7 lies between 6 and 8 must be learned from data, and for
# $V=256$ (8-bit images) the softmax is also a large output layer. PixelCNN++
# {cite:p}`salimans2017pixelcnnpp` replaces it by a continuous density *discretised* onto the levels. Put
# level $v\in\{0,\dots,V-1\}$ at $c_v = 2v/(V-1) - 1$ in $[-1, 1]$, a bin of width
# $\Delta = 2/(V-1)$ (the spacing of two levels) around it, and give each pixel a mixture of $K$ logistic distributions with weights
# $\pi_k$, means $\mu_k$ and scales $b_k$; level $v$ gets the mass of its bin,
#
# $$
# P(x_d = v) = \sum_{k=1}^{K} \pi_k\Big[\mathrm{sigmoid}\Big(\frac{c_v+\Delta/2-\mu_k}{b_k}\Big)
#   - \mathrm{sigmoid}\Big(\frac{c_v-\Delta/2-\mu_k}{b_k}\Big)\Big],
# $$
#
# with the first and the last bin stretched to $-\infty$ and $+\infty$, so that the $V$ masses sum to one
# (the logistic's CDF is the sigmoid). The network outputs $3K$ numbers per pixel instead of $V$, and
# mass given to one level spills onto its neighbours. In genlib the head is an option of the same
# PixelCNN, `PixelCNNConfig(output="logistic")`, and its level log-probabilities replace the logits:
# likelihood, sampling and the receptive field stay as they were. The function computes the log of each
# bin's mass in a stable form, $\sigma(a)-\sigma(b)=\sigma(a)\,(1-\sigma(b))\,(1-e^{b-a})$ for $a>b$:

# %%
show(ar.logistic_mixture_log_probs)

# %% tags=["nbval-check-output"]
mix_params = torch.randn(64, 3 * 5, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)  # K = 5
mix_log_p = ar.logistic_mixture_log_probs(mix_params, train.levels)  # (64, V)
w_, mu_, log_b_ = mix_params[0].chunk(3)
print("masses sum to one over the levels:", bool(torch.allclose(mix_log_p.exp().sum(1), torch.ones(64, dtype=torch.float64))))
print("equal to sigmoid differences computed directly:", bool(torch.allclose(
    mix_log_p[0].exp(), ar.logistic_mixture_direct(torch.softmax(w_, 0), mu_, log_b_.exp(), train.levels))))

# %% [markdown]
# We train the chapter's gated PixelCNN once more with this head ($K=5$ components: 15 outputs per pixel
# against the softmax's 17) and the same settings:

# %%
with torch.random.fork_rng():  # its own random stream: the sections after keep their numbers
    torch.manual_seed(seed + 1)
    logistic, logistic_history = train_model("gated", output="logistic", generator=torch.Generator().manual_seed(seed + 1))
logistic_nll = ar.evaluate_nll(logistic, test.x)
print(f"gated PixelCNN, test NLL: softmax head {gated_nll.nats:.2f}, logistic-mixture head {logistic_nll.nats:.2f} nats/image")
glue("logistic_test_nll", logistic_nll.nats, display=False)
glue("bench_logistic", bench_quote("logistic"), display=False)
glue("bench_gated_softmax", bench_quote("gated"), display=False)
glue("bench_logistic_cpu_ratio", float(np.median(BENCH["logistic"]["cpu"]) / np.median(BENCH["gated"]["cpu"])), display=False)

with torch.no_grad():  # one pixel's predicted distribution under the two heads
    x0 = test.x[:1].to(dev)
    p_soft = torch.softmax(gated.logits(x0)[0], 0).cpu()      # (V, H, W)
    p_logi = torch.softmax(logistic.logits(x0)[0], 0).cpu()
entropy = -(p_soft * p_soft.clamp_min(1e-12).log()).sum(0)   # the most uncertain pixel of this image
i0, j0 = divmod(int(entropy.argmax()), train.shape[1])
fig, axes = plt.subplots(1, 2, figsize=(8, 2.9), sharey=True)
for ax, probs, name in ((axes[0], p_soft, "17-way softmax"), (axes[1], p_logi, "logistic mixture, K = 5")):
    ax.bar(range(train.levels), probs[:, i0, j0].numpy(), color="#4a7fb5")
    ax.axvline(int(test.x[0].view(*train.shape)[i0, j0]), color="#d62728", ls="--", label="true level")
    ax.set(xlabel="grey level v", title=name)
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
axes[0].set_ylabel("p(x_d = v | earlier pixels)")
axes[1].legend(frameon=False, fontsize=8)
fig.suptitle(f"p(x_d = v | earlier pixels) at pixel ({i0}, {j0}) of a test digit, its most uncertain pixel", fontsize=10)
plt.tight_layout()
plt.show()

# %% [markdown]
# In this run the logistic head reaches {glue:text}`logistic_test_nll:.1f` nats per image against the
# softmax head's {glue:text}`gated_test_nll:.1f`. The benchmark (`benchmarks/autoregressive_digits.py`,
# a wider gated model, 12 epochs, 3 seeds) gives {glue:text}`bench_logistic` for the logistic head and
# {glue:text}`bench_gated_softmax` for the softmax: the mixture is lower on every seed (the ranges do not
# overlap), at about {glue:text}`bench_logistic_cpu_ratio:.1f` times the training CPU time (evaluating
# $K$ logistic CDFs at every level costs more than one softmax). Even with only $V=17$ levels, a head that
# knows the levels are ordered generalises better from 1,000 images; its design target is $V=256$, where
# most of a pixel's 256 softmax logits would see little data. The plot shows the difference in shape: the
# mixture's distribution over the levels is a few smooth bumps, the softmax's any histogram.
#
# ## 6. Sampling: one pixel at a time
#
# Sampling has no such shortcut: $x_{ij}$ must be drawn before anything after it can be predicted,
# so a $D$-pixel image needs $D$ network evaluations in sequence. genlib draws each pixel by the
# inverse CDF of its conditional from a uniform number $u_{ij}$; with the $u$ fixed, the sample is a
# deterministic function of the network (this is how the fast sampler below is tested against the
# naive one).

# %%
show(ar.PixelCNN.sample)

# %%
n_show = 32
samples = gated.sample(n_show, generator=gen, fast=True)
plain_samples = plain.sample(n_show, generator=gen, fast=True)
fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
plot.image_grid(test.x[:n_show], train.shape, nrow=8, ax=axes[0], title="test images")
plot.image_grid(samples, train.shape, nrow=8, ax=axes[1], title="gated PixelCNN samples")
plot.image_grid(plain_samples, train.shape, nrow=8, ax=axes[2], title="PixelCNN samples")
plt.tight_layout()
plt.show()

# %% [markdown]
# The samples have crisp strokes — each pixel is drawn from a categorical, never averaged — but
# many are not clean digits: a small model with a short reach makes local choices (a stroke here,
# a loop there) that need not add up to a global shape. A shared measure of sample quality, the
# Fréchet distance and precision/recall on the features of a small digit classifier (defined in
# `genlib.metrics` and used by every chapter), puts a number on it, next to its floor (training
# images against test images). It needs a couple of hundred samples, and the floor must be computed
# from the same number of images: both the Fréchet distance and precision/recall depend on the sample
# size, so we compare `n_quality` samples with as many training images, each against all test images.

# %%
many = gated.sample(n_quality, generator=gen, fast=True)
reference = test.x.float() / (test.levels - 1)
quality = metrics.sample_quality(many.float() / (train.levels - 1), reference, dataset)
floor = metrics.sample_quality(train.x[:n_quality].float() / (train.levels - 1), reference, dataset)
print(f"{'':34}{'Fréchet':>9}{'precision':>11}{'recall':>8}")
for name, q in ((f"floor: {n_quality} training images", floor), (f"gated PixelCNN: {n_quality} samples", quality)):
    print(f"{name:34}{q['frechet']:9.1f}{q['precision']:11.2f}{q['recall']:8.2f}")
glue("q_precision", quality["precision"], display=False)
glue("q_recall", quality["recall"], display=False)
glue("floor_precision", floor["precision"], display=False)
glue("floor_recall", floor["recall"], display=False)

# %% [markdown]
# The samples' precision, {glue:text}`q_precision:.2f` against {glue:text}`floor_precision:.2f` for
# real images, says that many samples fall outside the region of real digits. Their recall,
# {glue:text}`q_recall:.2f`, is *higher* than the floor's {glue:text}`floor_recall:.2f`: not better
# coverage than real images, but an artefact of the metric — recall asks whether each test image lies
# within the nearest-neighbour radius of some sample (the distance to its third-nearest
# sample, $n_{\text{nn}}=3$), and scattered, noisy samples have large radii that cover much of
# feature space. Read the two numbers together.

# %% [markdown]
# **Class-conditional samples.** A label $y$ can enter every layer as a learned vector (Section 4),
# giving $p_\theta(x\mid y) = \prod_i p_\theta(x_i\mid x_{<i}, y)$, trained on (image, digit) pairs with
# the same loss. We train a conditional plain PixelCNN of the chapter's size and draw four samples of
# every digit:

# %%
cond_config = ar.PixelCNNConfig(shape=train.shape, levels=train.levels, arch="pixelcnn", channels=channels,
                                n_layers=n_layers, n_classes=10)
cond = ar.PixelCNN(cond_config)
tic = time.perf_counter()
cond_history = fit(cond, ar.batch_loss, (train.x, train.y), (val.x, val.y), epochs=epochs, batch_size=64, lr=3e-3,
                   patience=epochs, device=dev, generator=gen, progress=False)
cond_nll = ar.evaluate_nll(cond, test.x, test.y)
print(f"conditional PixelCNN: {cond_history.epochs} epochs in {time.perf_counter() - tic:.1f} s; "
      f"test NLL given the label {cond_nll.nats:.2f} nats/image")
labels = torch.arange(10).repeat_interleave(4)
cond_samples = cond.sample(40, y=labels.to(dev), generator=gen, fast=True)
ax = plot.image_grid(cond_samples, train.shape, nrow=8, title="conditional samples: two digits per row, 0 to 9")
ax.figure.set_size_inches(4.6, 3.2)
plt.show()
glue("cond_test_nll", cond_nll.nats, display=False)

# %% [markdown]
# Each row shows two classes, four samples each; at this size and training budget the samples follow
# their class only loosely, and many are not recognisable digits. The conditional model scores
# $-\log p_\theta(x\mid y) =$ {glue:text}`cond_test_nll:.1f` nats per test image given its label,
# against {glue:text}`plain_test_nll:.1f` for the unconditional plain model. With exact models, knowing
# the label could save at most $\log 10$ nats (the label's entropy), so a difference larger than that
# comes from training, not from the label.
#
# ### Colour: red, then green, then blue
#
# A colour pixel holds three values, and the chain rule orders them too: within pixel $i$, red first,
# then green given red, then blue given both,
#
# $$
# p(x)=\prod_{i=1}^{H W} p(x_{i,\mathrm R}\mid x_{<i})\;p(x_{i,\mathrm G}\mid x_{<i}, x_{i,\mathrm R})\;
# p(x_{i,\mathrm B}\mid x_{<i}, x_{i,\mathrm R}, x_{i,\mathrm G}),
# $$
#
# the lectures' "red, then green, then blue" {cite:p}`vandenoord2016pixel`. The masks now act on channels
# as well as positions. Every feature map belongs to one colour group (a third of the channels; the
# one-hot input and the logits fall into their own colour's group). At the earlier positions, every
# group sees every group. At the centre, mask A lets the green group see the red input and the blue
# group the red and green inputs, and lets red see nothing of its own pixel; mask B, in every later layer,
# also lets a group see its own group. The centre taps of the two masks, drawn as (output group, input
# group):

# %%
fig, axes = plt.subplots(1, 2, figsize=(6, 2.6))
for ax, kind in zip(axes, "AB"):
    centre = ar.colour_mask(kind, 3, 3, 3)[:, :, 1, 1]  # (output group, input group) at the centre tap
    ax.imshow(centre.numpy(), cmap="Blues", vmin=0, vmax=1.3)
    ax.set(xticks=range(3), yticks=range(3), xticklabels=list("RGB"), yticklabels=list("RGB"),
           xlabel="input colour (same pixel)", ylabel="output colour", title=f"mask {kind}, centre tap (blue: kept)")
plt.tight_layout()
plt.show()

# %% [markdown]
# The leak test asks the network itself, as in Section 4: for every pixel and every output colour of an
# untrained colour PixelCNN, the gradient of its logits with respect to each input colour must be nonzero
# exactly on the earlier pixels of its reach (all three colours) and, at its own pixel, on the colours
# before it — nothing else.

# %% tags=["nbval-check-output"]
with torch.random.fork_rng():  # its own random stream: the sections after keep their numbers
    torch.manual_seed(seed)
    colour_probe = ar.ColourPixelCNN(ar.ColourConfig(shape=(5, 5), levels=3, channels=12, n_layers=2, head=12))
    leak_gen, exact = torch.Generator().manual_seed(seed), True
    for (i, j), c_out in itertools.product(itertools.product(range(5), range(5)), range(3)):
        seen = ar.colour_dependency(colour_probe, i, j, c_out, n=8, generator=leak_gen) > 0  # (3, H, W)
        for c_in in range(3):
            allowed = ar.cone((5, 5), i, j, 3)  # the earlier pixels within reach of mask A + 2 mask-B layers
            allowed[i, j] = c_in < c_out        # the same pixel: only the colours before this one
            exact &= torch.equal(seen[c_in], allowed)
print("every colour of every pixel depends on exactly the allowed inputs (R < G < B within a pixel):", exact)

# %% [markdown]
# A small colour data set without downloads: `data.coloured_digits` paints each digit in one random
# ink colour with a few levels per channel (here $V=4$ per channel, so a pixel takes one of $4^3=64$
# colours and an image has $3\times 64$ values). We train a colour PixelCNN for `epochs` epochs and look
# at its likelihood *per colour*: the sum of the red conditionals, of the green and of the blue.

# %%
c_train, c_val, c_test = (data.coloured_digits(s) for s in ("train", "val", "test"))
with torch.random.fork_rng():
    torch.manual_seed(seed + 2)
    colour_net = ar.ColourPixelCNN(ar.ColourConfig(shape=c_train.shape, levels=c_train.levels, channels=36,
                                                   n_layers=4, head=72))
    tic = time.perf_counter()
    colour_history = fit(colour_net, ar.batch_loss, c_train.x, c_val.x, epochs=epochs, batch_size=64, lr=3e-3,
                         patience=epochs, device=dev, generator=torch.Generator().manual_seed(seed + 2), progress=False)
    colour_seconds = time.perf_counter() - tic
    colour_nll = ar.evaluate_nll(colour_net, c_test.x)
    with torch.no_grad():
        per_colour = -colour_net.eval().log_prob_channels(c_test.x.to(dev)).mean(0).cpu()  # (3,) nats
    colour_samples = colour_net.sample(24, generator=torch.Generator().manual_seed(seed + 2))
uniform_colour = metrics.uniform_nats(c_train.dims, c_train.levels)
print(f"colour PixelCNN: {colour_history.epochs} epochs in {colour_seconds:.1f} s; test NLL {colour_nll.nats:.1f} "
      f"nats/image (uniform {uniform_colour:.1f}); per colour: R {per_colour[0]:.1f}, G {per_colour[1]:.1f}, "
      f"B {per_colour[2]:.1f}")
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
axes[0].imshow(ar.colour_grid(c_test.x[:24], c_test.levels, nrow=8), interpolation="nearest")
axes[0].set_title("coloured test digits")
axes[1].imshow(ar.colour_grid(colour_samples, c_test.levels, nrow=8), interpolation="nearest")
axes[1].set_title("colour PixelCNN samples (R, G, B per pixel)")
for ax in axes:
    ax.set_xticks([]), ax.set_yticks([])
plt.tight_layout()
plt.show()
glue("colour_nll", colour_nll.nats, display=False)
glue("colour_uniform", uniform_colour, display=False)
for k, name in enumerate("RGB"):
    glue(f"colour_nll_{name}", float(per_colour[k]), display=False)

# %% [markdown]
# The test NLL is {glue:text}`colour_nll:.1f` nats per image (a uniform model pays
# {glue:text}`colour_uniform:.1f`). Split by colour, red costs {glue:text}`colour_nll_R:.1f` nats, green
# {glue:text}`colour_nll_G:.1f` and blue {glue:text}`colour_nll_B:.1f`: the channel order at work. Red is
# predicted from the earlier pixels only; green also sees this pixel's red, which tells it whether the
# pixel is ink and, with the ink colour already seen in earlier pixels, nearly what its green must be;
# blue sees both. The samples keep one colour per digit for the same reason — each pixel's colour is
# predicted from the colours drawn before it.
#
# ## 7. Completions: conditioning on a visible part
#
# An exact conditional model makes some conditioning trivial: keep the pixels we know and sample the
# rest. For raster order the pixels we can condition on *exactly* are a prefix — the top rows. Below,
# the top half of test digits is given and the bottom half sampled three times. (Conditioning on an
# arbitrary visible region, say the bottom half, would need $p(x_\text{top}\mid x_\text{bottom})$,
# which the chain rule in this order does not give: the sampler would ignore later known pixels
# when drawing earlier ones.)

# %%
n_complete = 8
H, W = train.shape
known = torch.zeros(n_complete, H, W, dtype=torch.bool)
known[:, : H // 2] = True
known = known.reshape(n_complete, D)
originals = test.x[:n_complete]
completions = [gated.complete(originals, known, generator=gen, fast=True) for _ in range(3)]
occluded = torch.where(known, originals, torch.zeros_like(originals))
rows = torch.stack([occluded, *completions, originals], 1).reshape(-1, D)  # (n_complete * 5, D)
ax = plot.image_grid(rows, train.shape, nrow=5, title="top half given | three completions | original")
for r in range(n_complete):  # hatch the hidden half of each given image: hidden, not blank
    ax.add_patch(plt.Rectangle((0.5, 1 + r * (H + 1) + H // 2 - 0.5), W, H - H // 2, fc="#fde2c8", ec="#e6550d",
                               hatch="///", lw=0.6))
ax.figure.set_size_inches(4.2, 7)
plt.show()

# %% [markdown]
# The first column shows what the model is given (the hidden bottom half hatched). The completions
# continue the given strokes, and the three draws for one image often differ from each other and from
# the original — sometimes finishing it as a different digit than the one that was written: each is a
# draw from $p_\theta(x_\text{bottom}\mid x_\text{top})$, and the top half of a digit often leaves
# the rest open.
#
# ## 8. Training is parallel, sampling is sequential: measured
#
# How do the two costs grow with the image? We build gated PixelCNNs of the chapter's size for
# $H\times H$ images with $H$ in `timing_sides` (untrained: the cost does not depend on the weights)
# and time one training step (forward and backward over a batch of 32 images), and sampling 4
# images with two samplers:
#
# * **naive**: for every pixel, run the whole network on the whole image ($H^2$ passes over $H^2$
#   pixels: cost $\propto H^4$);
# * **fast**: for pixel $(i,j)$, run the network only on the window of rows and columns it can depend
#   on (its receptive field, `reach()`), which gives the same logits (tested) at a cost that does not
#   grow with $H$: total $\propto H^2$. Caching the activations that do not change between steps
#   {cite:p}`ramachandran2017fast` goes further; a window keeps the code short.
#
# To keep this chapter fast, each sampling time is measured on the last `timing_rows` rows (the rows
# above given, as in a completion) and scaled to all $H$ rows; the benchmark script times whole images.
# Single timings on a shared machine are noisy, so every time is the median of three repeats.

# %%
timing = {"train step": [], "naive sampler": [], "fast sampler": []}
repeats = 3
for side in timing_sides:
    net = ar.PixelCNN(ar.PixelCNNConfig(shape=(side, side), levels=train.levels, channels=channels,
                                        n_layers=n_layers)).to(dev)
    batch = torch.randint(0, train.levels, (32, side * side), generator=gen).to(dev)
    net.loss(batch).backward()  # warm-up
    steps = []
    for _ in range(repeats):
        tic = time.perf_counter()
        net.loss(batch).backward()
        steps.append(time.perf_counter() - tic)
    timing["train step"].append(float(np.median(steps)))
    for fast in (False, True):
        seconds = [ar.sampling_seconds(net, 4, fast=fast, rows=timing_rows, generator=gen) for _ in range(repeats)]
        timing["fast sampler" if fast else "naive sampler"].append(float(np.median(seconds)))
print(f"{'side':>5}{'pixels':>8}{'train step, 32 images (s)':>28}{'naive, 4 images (s)':>22}{'fast, 4 images (s)':>21}")
for k, side in enumerate(timing_sides):
    print(f"{side:>5}{side * side:>8}{timing['train step'][k]:>28.3f}{timing['naive sampler'][k]:>22.2f}"
          f"{timing['fast sampler'][k]:>21.2f}")

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(6, 3.8))
for (name, seconds), marker in zip(timing.items(), "so^"):
    ax.loglog(timing_sides, seconds, marker + "-", label=name)
sides = np.array(timing_sides, dtype=float)
# reference slopes, through the last point of the sampler they describe
ax.loglog(sides, timing["naive sampler"][-1] * (sides / sides[-1]) ** 4, ":", color="0.5", label="slope of $H^4$")
ax.loglog(sides, timing["fast sampler"][-1] * (sides / sides[-1]) ** 2, "--", color="0.5", label="slope of $H^2$")
ax.set_xticks(timing_sides, [str(s) for s in timing_sides])
ax.minorticks_off()
ax.set_xlabel("image side H (pixels)"), ax.set_ylabel("wall-clock time (s), median of 3")
ax.set_title("one training step vs sampling 4 images")
ax.legend(frameon=False, fontsize=8, loc="upper left")
plt.show()
per_pixel = {name: [t / side ** 2 for t, side in zip(timing[name], timing_sides)] for name in ("naive sampler", "fast sampler")}
glue("fast_per_pixel_growth", per_pixel["fast sampler"][-1] / per_pixel["fast sampler"][0], display=False)
glue("naive_per_pixel_growth", per_pixel["naive sampler"][-1] / per_pixel["naive sampler"][0], display=False)
glue("naive_over_fast_last", timing["naive sampler"][-1] / timing["fast sampler"][-1], display=False)
glue("largest_side", timing_sides[-1], display=False)
glue("smallest_side", timing_sides[0], display=False)

# %% [markdown]
# A training step on 32 images costs about as much as a handful of network passes; sampling 4
# images costs $H^2$ of them. From side {glue:text}`smallest_side` to side {glue:text}`largest_side`,
# the naive sampler's time *per pixel* grows {glue:text}`naive_per_pixel_growth:.1f`-fold (each pass
# covers the whole image; on a CPU, its passes over small images are dominated by fixed per-call
# overhead, so the measured growth is slower than the $H^4$ line at small $H$), while the windowed
# sampler's per-pixel time grows only by a factor of {glue:text}`fast_per_pixel_growth:.1f`: its
# windows are clipped by the image's edges at small sides and stop growing once the image is wider
# than the reach, so its per-pixel cost is bounded, whereas the naive one grows with $H^2$. At the largest side the windowed sampler is
# {glue:text}`naive_over_fast_last:.1f` times faster, but it still needs one sequential network call
# per pixel. That sequential loop is the price of the exact likelihood.
#
# ### Transformers as autoregressive models: causal attention and a KV cache
#
# Today's language models are autoregressive models of this kind over tokens, with a *transformer* as
# $f_\theta$ {cite:p}`vaswani2017attention`. Each position $t$ carries a vector; a self-attention layer
# turns it into a query $\mathbf q_t$, a key $\mathbf k_t$ and a value $\mathbf v_t$ (three linear maps)
# and outputs a weighted mean of the values of the positions it may see,
#
# $$
# \mathrm{out}_t=\sum_{s\le t} a_{ts}\,\mathbf v_s,\qquad
# a_{ts}=\frac{\exp(\mathbf q_t^\top\mathbf k_s/\sqrt{e})}{\sum_{s'\le t}\exp(\mathbf q_t^\top\mathbf k_{s'}/\sqrt{e})},
# $$
#
# with $e$ the width of a head. The sum stops at $s\le t$: this *causal mask* plays the role of
# PixelCNN's masks, so that the output at $t$, fed the characters up to $t$, predicts character $t+1$
# from the past only, and training computes every position in one pass. Unlike a window of
# $n_{\mathrm{ctx}}$ characters or a stack of $3\times3$ kernels, every output sees the *whole* past (up to
# a maximum length set by the position embeddings). genlib's `CharTransformer` is a small one: character
# and position embeddings of width 64, two blocks of 4-head causal attention and an MLP, a linear read-out.
#
# Sampling is again one position at a time, and done naively each step runs the network over the whole
# sequence so far: step $t$ costs $O(t)$ per layer for the new position's attention but also recomputes
# every earlier position, $O(t^2)$ in all, and a sequence of length $T$ costs $O(T^3)$. Yet the keys and
# values of earlier positions never change once computed (nothing can look forward). The **KV cache**
# keeps them: each step computes the query, key and value of the new position only and attends over the
# stored ones, $O(t)$ per step — the windowed PixelCNN sampler's idea carried to attention. We train the
# transformer on the text of Section 1, `text_epochs` passes over the same training characters as the MLP
# there, on pieces of 64 characters:

# %%
show(ar.CausalSelfAttention.forward)

# %%
with torch.random.fork_rng():  # its own random stream
    torch.manual_seed(seed + 3)
    transformer = ar.CharTransformer(len(vocab), max_len=256, width=64, heads=4, n_layers=2)
    tic = time.perf_counter()
    transformer_history = fit(transformer, ar.transformer_loss, ar.chunks(codes[:cut], 64), ar.chunks(codes[cut:], 64),
                              epochs=text_epochs, batch_size=8, lr=3e-3, generator=torch.Generator().manual_seed(seed + 3),
                              progress=False)
    transformer_seconds = time.perf_counter() - tic
    continuation = transformer.sample(vocab.encode(sentence), 40, generator=torch.Generator().manual_seed(seed + 3))
print(f"held-out cross-entropy after {text_epochs} epochs: transformer {transformer_history.val[-1]:.2f} nats/character "
      f"({sum(p.numel() for p in transformer.parameters()):,} parameters, {transformer_seconds:.1f} s), "
      f"MLP over {char_model.context} characters {char_history.val[-1]:.2f} "
      f"({sum(p.numel() for p in char_model.parameters()):,} parameters)")
print(f"continuation: {vocab.decode(continuation)!r}")
glue("transformer_val", transformer_history.val[-1], display=False)
glue("mlp_val", char_history.val[-1], display=False)
glue("bench_transformer_text", bench_quote("transformer-text"), display=False)
glue("bench_mlp_text", bench_quote("mlp-text"), display=False)

# %% [markdown]
# We time sampling one continuation of each length with and without the cache (median of three
# repeats, `genlib.bench.seconds`; the cost does not depend on the weights):

# %% tags=["nbval-check-output"]
cache_lengths = [32, 64, 128]
prompt_codes = vocab.encode(sentence)
cache_times = {c: [bench.seconds(lambda: transformer.sample(prompt_codes, n - len(prompt_codes) - 1, cache=c,
                                                             generator=torch.Generator().manual_seed(0)),
                                 repeats=3, warmup=1 if n == cache_lengths[0] else 0)
                   for n in cache_lengths] for c in (False, True)}
logged = {True: [], False: []}
for c in (True, False):
    transformer.sample(prompt_codes, 20, cache=c, generator=torch.Generator().manual_seed(0),
                       callback=lambda step, logits, c=c: logged[c].append(logits))
print("cached and uncached sampling give the same logits at every step:",
      bool(torch.allclose(torch.stack(logged[True]), torch.stack(logged[False]), atol=1e-4)))

# %%
fig, ax = plt.subplots(figsize=(6, 3.6))
lengths = np.array(cache_lengths, dtype=float)
ax.loglog(lengths, cache_times[False], "s-", label="no cache: the whole sequence at every step")
ax.loglog(lengths, cache_times[True], "o-", label="KV cache: the new position only")
ax.loglog(lengths, cache_times[False][-1] * (lengths / lengths[-1]) ** 2, ":", color="0.5", label="slope of $T^2$")
ax.loglog(lengths, cache_times[True][-1] * (lengths / lengths[-1]), "--", color="0.5", label="slope of $T$")
ax.set_xticks(cache_lengths, [str(n) for n in cache_lengths])
ax.minorticks_off()
ax.set_xlabel("sequence length T (characters)"), ax.set_ylabel("wall-clock time (s), median of 3")
ax.set_title("sampling one sequence from the transformer")
ax.legend(frameon=False, fontsize=8, loc="upper left")
plt.show()
glue("cache_speedup", cache_times[False][-1] / cache_times[True][-1], display=False)
glue("cache_longest", cache_lengths[-1], display=False)
glue("text_epochs_glue", text_epochs, display=False)

# %% [markdown]
# At length {glue:text}`cache_longest` the cache makes sampling {glue:text}`cache_speedup:.1f` times faster,
# and the gap between the two samplers widens with the length, as the counting above says. Read the slopes
# only as a guide: the network is small, so fixed per-call costs weigh on every step of both samplers, and
# these are timings on a shared CPU. The cache costs memory instead: a key and a value per layer and position.
#
# In this run, after the same {glue:text}`text_epochs_glue` passes over the training text, the transformer's
# held-out cross-entropy is {glue:text}`transformer_val:.2f` nats per character against the MLP's
# {glue:text}`mlp_val:.2f`. Over three seeds the benchmark gives {glue:text}`bench_transformer_text` for
# the transformer and {glue:text}`bench_mlp_text` for the MLP: at this tiny budget the MLP, whose every
# step sees a full window of 16 characters, learns faster than a transformer that must first learn to
# attend; the transformer's advantage, a context of any length, pays off with more data and training.
#
# ## 9. Interactive: what does a pixel depend on?
#
# Choose a pixel; the maps show which input pixels its prediction depends on in the two trained
# models (gradients, as in Section 4): the chosen pixel in red, the earlier pixels it depends on in
# blue, the earlier pixels it cannot see hatched in orange (the plain model's blind spot, or beyond
# either model's reach), the later pixels white. In the book, the animation walks through several pixels.

# %% tags=["hide-input"]
def draw_dependency_pair(fig, row, col):
    axes = fig.subplots(1, 2)
    for ax, (name, net) in zip(axes, [("PixelCNN", plain), ("gated PixelCNN", gated)]):
        dep = ar.dependency(net, row, col, n=4, generator=torch.Generator().manual_seed(0))
        diagrams.draw_dependency(dep, (row, col), ax, f"{name}: pixel ({row}, {col})")


widgets.live(draw_dependency_pair, figsize=(6.4, 3.4), row=(0, H - 1, 1), col=(0, W - 1, 1))

# %%
tour = [(r * (H - 1) // 6, c * (W - 1) // 6) for r in (3, 6) for c in (1, 4, 6)]
widgets.animate(lambda fig, rc: draw_dependency_pair(fig, *rc), tour, figsize=(6.4, 3.4), interval=700)

# %% [markdown]
# **Interactive: a sample, pixel by pixel.** The left panel shows the image so far, the right the
# conditional $p_\theta(x_{ij}\mid x_{<ij})$ of the current pixel over the $V$ levels, with the
# level that was drawn in red. Early pixels (blank border) are almost surely 0; the uncertain
# choices come where a stroke may start or end. (The book's animation shows every third step; the
# slider in JupyterLab, every pixel.)

# %%
trace = []
step_sample = gated.sample(1, generator=torch.Generator().manual_seed(seed + 1), fast=True,
                           callback=lambda i, j, x, p: trace.append((i, j, x[0].clone().cpu(), p[0].cpu())))


def draw_step(fig, step):
    i, j, image, probs = trace[step - 1]
    ax_img, ax_p = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.6]})
    fig.subplots_adjust(left=0.03, right=0.98, bottom=0.18, top=0.88, wspace=0.35)
    shown = np.ma.masked_where(~ar.raster_before((H, W), i, j + 1).numpy(), image.numpy())
    ax_img.imshow(shown, cmap="gray_r", vmin=0, vmax=train.levels - 1)
    ax_img.set_facecolor("#fde2c8")
    ax_img.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="#d62728", lw=2))
    ax_img.set_xticks([]), ax_img.set_yticks([])
    ax_img.set_title(f"step {step} of {H * W}: pixel ({i}, {j})", fontsize=9)
    colors = ["#d62728" if k == int(image[i, j]) else "#4a7fb5" for k in range(train.levels)]
    ax_p.bar(range(train.levels), probs.numpy(), color=colors)
    ax_p.set_ylim(0, 1), ax_p.set_xlabel("grey level k"), ax_p.set_ylabel("p(x_ij = k | earlier pixels)")
    ax_p.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax_p.set_title("conditional of this pixel (red: drawn)", fontsize=9)


widgets.live(draw_step, figsize=(5.6, 2.4), step=(1, len(trace), 1))

# %% tags=["hide-input"]
# the first frame shows the finished sample, so that the static page opens on a picture, not a blank grid
widgets.animate(draw_step, [len(trace)] + list(range(1, len(trace) + 1, max(3, len(trace) // 21))),
                figsize=(5.6, 2.4), interval=250)

# %% [markdown]
# ## 10. Where autoregressive models sit
#
# | | autoregressive (PixelRNN/PixelCNN) | VAE (Chapter 4) |
# | --- | --- | --- |
# | likelihood | exact $\log p_\theta(x)$, one pass | lower bound (ELBO, IWAE) |
# | training | parallel (PixelCNN) or $2H-1$ steps (PixelRNN) | parallel |
# | sampling | $D$ sequential network calls | one decoder pass |
# | latent code | none | $z$, usable for editing and features |
#
# The lectures' summary {cite:p}`johnson2022generative`: the explicit likelihood gives a good
# evaluation metric and a simple, stable training objective, and the samples are good; sequential
# generation is slow. This chapter implemented PixelCNN++'s discretised logistic mixture output but not
# its multi-scale structure {cite:p}`salimans2017pixelcnnpp`. Today's language models are
# autoregressive transformers of the kind of Section 8, over tokens instead of characters, sampled with
# a KV cache. Diffusion models (Chapter 8) also generate by a sequence of steps, but each step
# refines *every* pixel a little instead of fixing one pixel for good {cite:p}`isola2024dgm1`; flows
# (Chapter 7) keep the exact likelihood and sample in one pass, at the price of invertible networks.
#
# ## Summary
#
# * The chain rule writes any distribution as $\prod_i p(x_i\mid x_{<i})$; an autoregressive model
#   learns every factor with one classifier, and its log-likelihood is an exact sum of
#   cross-entropies.
# * PixelRNN's recurrences see a rectangle, a triangle or (Diagonal BiLSTM) all earlier pixels but need
#   about $2H-1$ sequential steps; PixelCNN's
#   masked convolutions (mask A, then B) compute every conditional in one pass.
# * Stacked 3x3 masks reach a cone and miss a wedge above-right, the blind spot — measured here by
#   gradients; the gated PixelCNN's vertical and horizontal stacks see every earlier pixel within
#   their reach. On the 8x8 digits the two reach different amounts of context, and their test
#   likelihoods end close.
# * Sampling needs one network call per pixel; restricting each call to the pixel's receptive field
#   gives the same samples at a cost per pixel that does not grow with the image. A transformer's KV
#   cache does the same for attention: the same logits, each step computing only the new position.
# * Colour images order the channels too (R, then G, then B within a pixel) through masks that act on
#   channel groups; a gradient leak test checks every channel sees exactly what it may.
#
# %% tags=["remove-input"]
ex5_gen = torch.Generator().manual_seed(seed)
prompt = vocab.encode(sentence)
for temperature, key in ((0.2, "ex5_ll_02"), (1.0, "ex5_ll_1"), (2.0, "ex5_ll_2")):
    per_char = []
    for _ in range(5):
        out = char_model.sample(prompt, 120, generator=ex5_gen, temperature=temperature)
        with torch.no_grad():
            per_char.append(float(char_model.log_prob(out)[len(prompt):].mean()))  # the continuation only
    glue(key, float(np.mean(per_char)), display=False)

# %% [markdown]
# ## Exercises
#
# **1. Order matters for the model, not for the chain rule.** Show that
# $p(x_1,x_2)=p(x_1)p(x_2\mid x_1)=p(x_2)p(x_1\mid x_2)$ for any joint distribution. Why do trained
# autoregressive models in the two orders still give different test likelihoods?
#
# ```{admonition} Solution
# :class: dropdown
# Both products equal $p(x_1,x_2)$ by the definition of conditional probability, so with perfect
# conditionals the order is irrelevant. A trained model approximates each conditional with a network
# of limited size and reach, from finite data; the conditionals in one order can be easier to learn
# than in the other (for images, a pixel's best predictors are its neighbours, and raster order
# hides the ones below and to the right). The two approximations are different distributions, so
# their test NLLs differ.
# ```
#
# **2. The size of the blind spot.** For the plain PixelCNN with $m$ stacked 3x3 masked layers on an
# $H\times W$ image, how many earlier pixels does the output at $(i,j)$ fail to see? Check your
# formula against `ar.dependency` for pixel $(5, 2)$ of Section 4.
#
# ```{admonition} Solution
# :class: dropdown
# The row $d$ above ($1\le d\le i$) is seen up to column $\min(j+d,\,W-1)$, from column
# $\max(j-m,0)$, and not at all if $d>m$. Of its earlier pixels (the whole row), the blind spot holds
# the $\max(0,\,W-1-j-d)$ columns right of $j+d$. For $(i,j)=(5,2)$, $W=8$: rows $d=1,\dots,5$ miss
# $4,3,2,1,0$ pixels, 10 in all, the number printed in Section 4 (with $m=6\ge d$ and $j-m<0$, reach
# does not cut anything else). `ar.cone` encodes the same rule and the test
# `test_plain_pixelcnn_has_its_blind_spot_exactly_in_the_cone_complement` compares it with gradients.
# ```
#
# **3. Completing the bottom half.** Section 7 completed digits whose top half was given. Why is
# keeping the bottom half and sampling the top with `known` set to the bottom rows *not* a sample from
# $p_\theta(x_\text{top}\mid x_\text{bottom})$? What would be?
#
# ```{admonition} Solution
# :class: dropdown
# The sampler draws each top pixel from $p_\theta(x_{ij}\mid x_{<ij})$, which never looks at the known
# bottom pixels, because they come *later* in raster order; the top half is then a sample from the
# model's marginal $p_\theta(x_\text{top})$, and the result is usually an inconsistent image. Exact
# conditioning needs $p_\theta(x_\text{top}\mid x_\text{bottom})\propto p_\theta(x_\text{top},x_\text{bottom})$,
# which the model can *evaluate* for any candidate top but not sample directly: one can train a
# second model in the reverse order (bottom to top), or use the exact likelihood inside importance
# sampling or MCMC over the top half.
# ```
#
# **4. The fast sampler's window.** `PixelCNN.reach()` says how many rows and columns a pixel may
# depend on. For the chapter's gated model and for one with `n_layers = 10`, how many pixels does the
# window of the last pixel hold at $H=8$ and at $H=28$, compared with the $H^2$ pixels of a naive
# pass? What does that predict for the speed-up of the fast sampler?
#
# ```{admonition} Solution
# :class: dropdown
# With 3x3 kernels the gated model's reach is $m$ = `n_layers` rows up and $m$ columns to each side,
# so the window of pixel $(i,j)$ is at most $(m+1)\times(2m+1)$ pixels, clipped to the image. For
# $m=5$ the last pixel's window is $6\times6=36$ of 64 pixels at $H=8$ (it is clipped at the right
# edge) and $6\times6=36$ of 784 at $H=28$; for $m=10$ it is $8\times8$, the whole image, at $H=8$ and
# $11\times11=121$ of 784 at $H=28$. (A pixel in the middle of a row has the full $(m+1)\times(2m+1)$
# window: $66$ and $231$ pixels at $H=28$.) So at $H=8$ the window saves little, and on a CPU the fixed
# cost of each network call dominates such small inputs anyway; at $H=28$ each call sees roughly
# $784/66$ times fewer pixels for $m=5$ and $784/231$ times fewer for $m=10$. A
# deeper network pays twice: more work per call and a larger window. Check the windows with
# `net.reach()` and the times with `ar.sampling_seconds`; the test
# `test_window_logits_equal_full_logits_everywhere` shows that the window never changes the logits.
# ```
#
# **5. Temperature.** Sample the next-character model at temperatures $0.2$, $1$ and $2$. Which one has
# the highest log-likelihood under the model, and which one reads best? Why are they different?
#
# ```{admonition} Solution
# :class: dropdown
# Low temperature concentrates each conditional on its most likely characters, so the sample's
# log-probability under the (temperature-1) model is highest at temperature $0.2$ — and the text becomes repetitive
# (the most likely word, again and again). Temperature 2 flattens the conditionals into near-random
# characters with a very low log-probability. Temperature 1 samples the model itself: the typical
# samples, neither the most likely nor random. High likelihood of *one* sequence is not the same as
# looking like typical data. (Five 120-character continuations per temperature, with the chapter's
# model and seed: {glue:text}`ex5_ll_02:.1f`, {glue:text}`ex5_ll_1:.1f` and {glue:text}`ex5_ll_2:.1f`
# nats per character at $0.2$, $1$ and $2$; at $0.2$ the text keeps repeating a few frequent words of
# the manual.)
# ```

# %% tags=["remove-cell", "nbval-check-output"]
widgets.check_live("06_autoregressive")  # moves every control of every live widget above: see genlib/widgets.py
