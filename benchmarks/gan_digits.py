"""Benchmark: Chapter 5's GANs over seeds — the ring of Gaussians, and sample quality on the digits.

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 .venv/bin/python benchmarks/gan_digits.py --ring --seeds 0 1 2 3 4
    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 .venv/bin/python benchmarks/gan_digits.py --digits --seeds 0 1 2
    ... --out results/gan_digits.json    (the chapter reads the medians from this file)

``--ring`` trains, on the ring of 8 Gaussians (``gan.RingExperiment``, the chapter's settings), the
variants of the chapter from each seed: the plain GAN and the minibatch-std fix in the collapse
setting (the discriminator 10x slower than the generator), and, with balanced learning rates and
``gan.STABLE_RING_STEPS`` generator steps, the plain GAN, R1, spectral normalisation with the hinge
loss, and R1 with TTUR. It reports per seed and as the median (min–max) the modes covered and the
fraction of high-quality samples (within 3σ of a mode) among 2,500 samples, the CPU seconds, and
the number of seeds meeting the target (8/8 modes and at least 90% high quality). For scale, the
papers on this protocol report the plain GAN covering about 1 of 8 modes and PacGAN4 7.8
(Lin et al. 2018, their Table 3, with their networks and a longer run; not re-run here).

``--digits`` trains, from each seed, the chapter's unconditional DCGAN (with R1: ``gan.digits_config()``,
``gan.digits_train_config()``), the same without the penalty, the conditional DCGAN with R1 (sampled with labels at the training frequencies) and the book profile's VAE
(chapter 4), and reports the mean squared error per pixel of the DCGAN's inversion (``gan.invert``,
300 steps) and of the VAE's reconstruction (decoder mean at the encoder mean) on 100 test images, and the classifier-feature Fréchet distance and precision/recall of 447 samples
against the 447 test images, next to the floor at the same N (447 training images vs the test
images), the ratio of each GAN's Fréchet distance to the VAE's in the same run, and the training
time. These are not Inception FIDs: see ``genlib.metrics`` (its feature network is being replaced;
re-measure then).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from genlib import bench, data, gan, metrics, seed_everything, vae
from genlib.train import fit

TARGET_QUALITY = 0.9


class CPUTimer:
    """``with CPUTimer() as t: ...`` then ``t.seconds``: CPU time of the process in a block (less
    sensitive than wall time to other work on a shared machine)."""

    def __enter__(self):
        self._tic = time.process_time()
        return self

    def __exit__(self, *exc):
        self.seconds = time.process_time() - self._tic


def ring_variants() -> dict[str, tuple[gan.RingExperiment, dict]]:
    collapse = gan.RingExperiment()
    stable = gan.RingExperiment(steps=gan.STABLE_RING_STEPS, lr_d=1e-3)
    ema = {"ema": gan.STABLE_RING_EMA}
    return {"plain GAN (collapse setting)": (collapse, {}),
            "minibatch std (collapse setting)": (collapse, {"minibatch_std": True}),
            "PacGAN4 (collapse setting)": (collapse, {"pack": 4}),
            "plain GAN (balanced)": (stable, ema),
            "R1": (stable, {"r1": gan.STABLE_RING_R1, **ema}),
            "spectral norm + hinge": (stable, {"spectral_norm": True, "loss": "hinge", **ema}),
            "R1 + TTUR": (stable, {"r1": gan.STABLE_RING_R1, "lr_g": 2e-4, **ema}),
            # Gulrajani et al.'s settings: 5 critic steps per generator step, Adam(1e-4, β = (0, 0.9)), λ = 10
            "WGAN-GP": (gan.RingExperiment(steps=gan.STABLE_RING_STEPS, lr_g=1e-4, lr_d=1e-4),
                        {"loss": "wasserstein", "gp": 10.0, "k": 5, "betas": (0.0, 0.9), **ema}),
            # the balanced plain GAN trained twice as long: what the high-quality fraction needs
            "plain GAN (balanced, 2x steps)": (gan.RingExperiment(steps=2 * gan.STABLE_RING_STEPS, lr_d=1e-3), ema)}


def ring(seeds: list[int], only: list[str] | None = None) -> dict:
    out = {}
    variants = ring_variants()
    unknown = set(only or ()) - set(variants)
    if unknown:
        raise SystemExit(f"unknown ring variant(s) {sorted(unknown)}; choose from: {', '.join(variants)}")
    for name, (experiment, options) in variants.items():
        if only and name not in only:
            continue
        runs = []
        for seed in seeds:
            r = experiment.run(seed, **options)
            runs.append({"modes": r["final"]["modes"], "high_quality": r["final"]["high_quality"],
                         "cpu_seconds": r["cpu_seconds"]})
            print(f"ring, {name}, seed {seed}: {runs[-1]['modes']}/8 modes, high quality "
                  f"{runs[-1]['high_quality']:.3f}, {runs[-1]['cpu_seconds']:.1f} s CPU", flush=True)
        hits = sum(r["modes"] == 8 and r["high_quality"] >= TARGET_QUALITY for r in runs)
        print(bench.report(runs, {"modes": ".0f", "high_quality": ".3f", "cpu_seconds": ".1f"}, f"ring, {name}")
              + f"; seeds with 8/8 modes and >= {TARGET_QUALITY:.0%} high quality: {hits}/{len(runs)}", flush=True)
        out[name] = {"runs": runs, "steps": experiment.steps, "options": options, "target_hits": hits}
    return out


DIGIT_MODELS = ("DCGAN + R1", "DCGAN, no penalty", "conditional DCGAN + R1", "VAE")


def digits(seeds: list[int], epochs: int, models: list[str] | None = None) -> dict:
    models = list(models or DIGIT_MODELS)
    unknown = set(models) - set(DIGIT_MODELS)
    if unknown:
        raise SystemExit(f"unknown model(s) {sorted(unknown)}; choose from: {', '.join(DIGIT_MODELS)}")
    train, val, test = (data.digits(s) for s in ("train", "val", "test"))
    x_train, x_test = train.scaled(), test.scaled()
    n = len(x_test)
    floor = metrics.sample_quality(x_train[:n], x_test)
    print(f"floor ({n} training vs {n} test images): Fréchet {floor['frechet']:.2f}, precision "
          f"{floor['precision']:.3f}, recall {floor['recall']:.3f}", flush=True)
    results: dict[str, list] = {}
    inversion = []

    def record(name, seed, x, seconds, cpu_seconds):
        q = metrics.sample_quality(x, x_test)
        q["seconds"], q["cpu_seconds"] = seconds, cpu_seconds
        results.setdefault(name, []).append(q)
        print(f"digits, {name}, seed {seed}: Fréchet {q['frechet']:.2f}, precision {q['precision']:.3f}, "
              f"recall {q['recall']:.3f}, train {seconds:.1f} s wall, {cpu_seconds:.1f} s CPU", flush=True)

    for seed in seeds:
        for name, options, r1 in (("DCGAN + R1", {}, gan.DIGITS_R1), ("DCGAN, no penalty", {}, 0.0),
                                  ("conditional DCGAN + R1", {"n_classes": 10}, gan.DIGITS_R1)):
            if name not in models:
                continue
            gen = seed_everything(seed)
            model = gan.GAN(gan.digits_config(**options))
            labels = (x_train, train.y) if options else x_train
            with bench.Timer() as t, CPUTimer() as cpu:
                gan.fit_gan(model, labels, epochs=epochs, batch_size=64, config=gan.digits_train_config(r1=r1),
                            generator=gen)
            y = train.y[torch.randint(len(train.y), (n,), generator=gen)] if options else None
            record(name, seed, model.sample(n, y=y, generator=gen), t.seconds, cpu.seconds)
            if name == "DCGAN + R1":
                _, x_hat = gan.invert(model, x_test[:100], steps=300, lr=0.05, generator=gen)
                inversion.append({"gan_inversion_mse": float((x_hat - x_test[:100]).pow(2).mean())})
        if "VAE" not in models:
            continue
        gen = seed_everything(seed)
        model, settings = vae.VAE(vae.VAEConfig()), vae.TrainConfig()
        with bench.Timer() as t, CPUTimer() as cpu:
            fit(model, vae.batch_loss, train.x, val.x, epochs=settings.epochs, batch_size=settings.batch_size,
                lr=settings.lr, patience=settings.patience, generator=gen, progress=False)
        record("VAE", seed, model.sample(n, generator=gen).float() / (train.levels - 1), t.seconds, cpu.seconds)
        model.eval()
        with torch.no_grad():
            x_hat = model.decode(model.encode(test.x[:100])[0]).mean / (train.levels - 1)
        if "DCGAN + R1" not in models:
            inversion.append({})
        inversion[-1]["vae_reconstruction_mse"] = float((x_hat - x_test[:100]).pow(2).mean())
        print(f"digits, seed {seed}: mean squared error per pixel on 100 test images: "
              + ", ".join(f"{k} {v:.4f}" for k, v in inversion[-1].items()), flush=True)
        for name in models[:-1] if models[-1] == "VAE" else ():
            results[name][-1]["fd_over_vae"] = results[name][-1]["frechet"] / results["VAE"][-1]["frechet"]
    specs = {"frechet": ".2f", "precision": ".3f", "recall": ".3f", "seconds": ".1f", "cpu_seconds": ".1f"}
    for name, runs in results.items():
        extra = {"fd_over_vae": ".2f"} if "fd_over_vae" in runs[0] else {}
        print(bench.report(runs, {**specs, **extra}, f"digits, {name}"), flush=True)
    if inversion:
        print(bench.report(inversion, {k: ".4f" for k in inversion[0]}, "digits, inversion"))
    return {"floor": floor, "n": n, "epochs": epochs, "models": results, "inversion": inversion}


def main() -> None:
    parser = bench.parser(__doc__)
    parser.add_argument("--ring", action="store_true", help="the ring variants (default seeds: pass 0 1 2 3 4)")
    parser.add_argument("--digits", action="store_true", help="sample quality on the digits")
    parser.add_argument("--models", nargs="+", help=f"digit models to run (default: all of {DIGIT_MODELS})")
    parser.add_argument("--epochs", type=int, default=gan.DIGITS_EPOCHS, help="epochs of each image GAN")
    parser.add_argument("--only", nargs="+", help="ring variants to run (default: all), e.g. 'R1' 'plain GAN (balanced)'")
    parser.add_argument("--out", type=Path, help="write the runs as JSON here (merged into an existing file)")
    args = parser.parse_args()
    if not (args.ring or args.digits):
        parser.error("choose --ring and/or --digits")
    print(bench.machine())
    out = {"machine": bench.machine(), "seeds": args.seeds, "date": time.strftime("%Y-%m-%d")}
    if args.ring:
        out["ring"] = ring(args.seeds, args.only)
    if args.digits:
        out["digits"] = digits(args.seeds, args.epochs, args.models)
    if args.out:
        previous = json.loads(args.out.read_text()) if args.out.exists() else {}
        if "ring" in out:
            previous.setdefault("ring", {}).update(out["ring"])
        if "digits" in out:
            previous["digits"] = out["digits"]
        previous.setdefault("runs", {})
        for key in ("ring", "digits"):
            if key in out:
                previous["runs"][key] = {"machine": out["machine"], "seeds": args.seeds, "date": out["date"]}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(previous, indent=1))


if __name__ == "__main__":
    main()
