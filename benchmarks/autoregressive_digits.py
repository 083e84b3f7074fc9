"""Benchmark: autoregressive models on digits (Chapter 6): exact test NLL, training time, sampling time.

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 .venv/bin/python benchmarks/autoregressive_digits.py \
        [--seeds 0 1 2] [--models gated plain made logistic mlp-text transformer-text] [--epochs 12]

Trains, per seed, on the book split (train 1000 / validation 350 / test 447; the test split only for
the final numbers), Adam with batches of 64, the weights of the best validation epoch kept:

* ``gated``: ``PixelCNN(arch="gated", channels=48, n_layers=5)``, lr 3e-3, ``--epochs`` epochs;
* ``plain``: ``PixelCNN(arch="pixelcnn", channels=32, n_layers=5)`` (the chapter's plain model), same;
* ``made``: ``CategoricalMADE(hidden=(512,))``, lr 1e-3, 4 × ``--epochs`` epochs (an MLP epoch is cheap);
* ``logistic``: the ``gated`` model with PixelCNN++'s discretised logistic mixture (5 components) as its
  output instead of the 17-way softmax, same training;
* ``mlp-text`` and ``transformer-text``: Chapter 6's two next-character models on its text (the first
  60,000 characters of Python's help pages, 90 % train / 10 % held out), 2 epochs each as in the chapter:
  the MLP over 16 characters (batches of 256, lr 2e-3) and the causal transformer (width 64, 4 heads,
  2 blocks) on pieces of 64 characters (batches of 8, lr 3e-3); ``nats`` is then the held-out
  cross-entropy in nats per character (the MLP's windows that reach into the training text dropped).

Reported per run and as the median (min–max) over seeds (``genlib.bench``): training wall time and
process CPU time, the best epoch, and the exact test NLL in nats per image and bits per dimension.
Then the wall time to sample one image with the naive and the windowed sampler of the gated model,
at 8x8 and 28x28 (untrained networks; ``--sample-repeats`` timings each).

Reference: the autoregressive model of Tomczak's intro_dgm (dilated causal 1-D convolutions over the
flattened image), our re-run of its code on the same digits and split: 86.5 nats (86.4–86.7 over
3 seeds) after about 99 s of training. Target: the gated PixelCNN below it in at most 50 s of training.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
import time

import torch

from genlib import autoregressive as ar
from genlib import bench, data, metrics, seed_everything
from genlib.train import fit

MODELS = {
    "gated": lambda: ar.PixelCNN(ar.PixelCNNConfig(arch="gated", channels=48, n_layers=5)),
    "plain": lambda: ar.PixelCNN(ar.PixelCNNConfig(arch="pixelcnn", channels=32, n_layers=5)),
    "made": lambda: ar.CategoricalMADE(ar.MADEConfig(hidden=(512,))),
    "logistic": lambda: ar.PixelCNN(ar.PixelCNNConfig(arch="gated", channels=48, n_layers=5, output="logistic")),
}
TEXT = ("mlp-text", "transformer-text")


def run_text(name: str, seed: int) -> dict[str, float]:
    """Chapter 6's next-character models, trained as in the chapter (book profile): held-out nats per character."""
    gen = seed_everything(seed)
    text = ar.text_corpus(60_000)
    vocab = ar.Vocabulary(text)
    codes = vocab.encode(text)
    cut = int(0.9 * len(codes))
    cpu = time.process_time()
    with bench.Timer() as timer:
        if name == "mlp-text":
            val = ar.windows(codes[cut:], 16)
            model = ar.CharModel(len(vocab), context=16)
            history = fit(model, ar.char_loss, ar.windows(codes[:cut], 16), (val[0][16:], val[1][16:]), epochs=2,
                          batch_size=256, lr=2e-3, generator=gen, progress=False)
        else:
            model = ar.CharTransformer(len(vocab), max_len=256, width=64, heads=4, n_layers=2)
            history = fit(model, ar.transformer_loss, ar.chunks(codes[:cut], 64), ar.chunks(codes[cut:], 64),
                          epochs=2, batch_size=8, lr=3e-3, generator=gen, progress=False)
    return {"seconds": timer.seconds, "cpu": time.process_time() - cpu, "best_epoch": history.best_epoch + 1,
            "nats": history.val[-1], "bpd": history.val[-1] / math.log(2)}


def run(name: str, seed: int, epochs: int) -> dict[str, float]:
    gen = seed_everything(seed)
    train, val, test = (data.digits(split) for split in ("train", "val", "test"))
    model = MODELS[name]()
    epochs, lr = (4 * epochs, 1e-3) if name == "made" else (epochs, 3e-3)
    cpu = time.process_time()
    with bench.Timer() as timer:
        history = fit(model, ar.batch_loss, train.x, val.x, epochs=epochs, batch_size=64, lr=lr,
                      patience=epochs, generator=gen, progress=False)
    nll = ar.evaluate_nll(model, test.x)
    return {"seconds": timer.seconds, "cpu": time.process_time() - cpu,
            "best_epoch": history.best_epoch + 1, "nats": nll.nats, "bpd": metrics.nats_to_bpd(nll.nats, 64)}


def sampling(side: int, repeats: int) -> dict[str, list[float]]:
    torch.manual_seed(0)
    model = ar.PixelCNN(ar.PixelCNNConfig(shape=(side, side), arch="gated", channels=48, n_layers=5)).eval()
    return {("fast" if fast else "naive"): [ar.sampling_seconds(model, 1, fast=fast,
                                                                generator=torch.Generator().manual_seed(r))
                                            for r in range(repeats)] for fast in (False, True)}


def main() -> None:
    parser = bench.parser(__doc__)
    parser.add_argument("--models", nargs="+", choices=[*MODELS, *TEXT], default=[*MODELS, *TEXT])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--sample-repeats", type=int, default=3, help="timings per sampler and size (0: none)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON file to merge each model's runs into (results/autoregressive_digits.json: the chapter quotes it)")
    args = parser.parse_args()
    print(bench.machine())
    print(f"uniform baseline: {metrics.uniform_nats(64, 17):.1f} nats per image; seeds {args.seeds}")
    specs = {"seconds": ".1f", "cpu": ".1f", "best_epoch": ".0f", "nats": ".2f", "bpd": ".3f"}
    for name in args.models:
        runs = []
        for seed in args.seeds:
            runs.append(run_text(name, seed) if name in TEXT else run(name, seed, args.epochs))
            r = runs[-1]
            print(f"{name}, seed {seed}: train {r['seconds']:.1f} s wall, {r['cpu']:.1f} s CPU, best epoch "
                  f"{r['best_epoch']}, {'held-out' if name in TEXT else 'test'} NLL {r['nats']:.2f} "
                  f"nats/{'character' if name in TEXT else 'image'} ({r['bpd']:.3f} bits/"
                  f"{'character' if name in TEXT else 'dim'})", flush=True)
        print(bench.report(runs, specs, label=name), flush=True)
        if args.out:  # merged per model, so that models can be run separately
            previous = json.loads(args.out.read_text()) if args.out.exists() else {}
            previous[name] = {"seeds": list(args.seeds), "epochs": None if name in TEXT else args.epochs,
                              "machine": bench.machine(), **{key: [r[key] for r in runs] for key in specs}}
            args.out.write_text(json.dumps(previous, indent=1) + "\n")
    for side in (8, 28) if args.sample_repeats else ():
        times = sampling(side, args.sample_repeats)
        print(f"sampling one {side}x{side} image, median (min–max) over {args.sample_repeats}: "
              f"naive {bench.fmt(times['naive'])} s, fast {bench.fmt(times['fast'])} s", flush=True)


if __name__ == "__main__":
    main()
