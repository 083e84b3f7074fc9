"""Benchmark: Chapter 3's energy-based models, over seeds (median (min–max)), with the machine.

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ebm_digits.py [--seeds 0 1 2]

2-D toys (``--toys``, default moons and 8gaussians; 1000 training points drawn with the seed, 1000
held-out points with seed + 1): the energy network of ``EBMConfig.for_dataset(toy)`` trained for
``TrainConfig.for_dataset(toy)`` by persistent chains (PCD), score matching (SM), denoising score
matching (DSM, σ = 0.2) and noise-contrastive estimation (NCE, Gaussian noise at 1.5 × the data's
scale, ν = 1); each held-out log-likelihood normalised by the midpoint rule on a 200 x 200 grid over
[-4.5, 4.5]^2, next to Chapter 2's mixture of K = 8 Gaussians fitted by EM (continuous nats per point,
all normalised); PCD's training CPU time; NCE's learned constant minus the grid's log Z.

Digits (book split, pixels scaled to [0, 1]), as in the chapter:
* the image EBM of ``EBMConfig.for_dataset("digits")`` trained for ``TrainConfig.for_dataset("digits")``:
  sample quality (``genlib.metrics.sample_quality``, 300 samples against the 447 test images) of its
  buffer's chains and of 20-step chains from noise, next to the floor;
* RBMs with 16 hidden units on the binarised digits (pixel > 0.5), CD-1 and PCD-1 (100 chains),
  30 epochs of batches of 50 at lr 0.01: exact held-out log-likelihood (binary nats per image, by
  enumerating the 2^16 hidden states), next to independent pixels;
* JEM (``genlib.energy.JEM``, ``--jem-epochs`` epochs of batches of 100 at lr 3e-3) and the same
  network trained as a classifier only: test classification error, training CPU and wall time, and
  the Fréchet distance of 300 buffer samples.
"""
from __future__ import annotations

import time

import torch

from genlib import bench, data, ebm, energy, metrics, seed_everything
from genlib.density import GaussianMixture, mean_log_prob
from genlib.train import fit

BOX = (-4.5, 4.5, -4.5, 4.5)


def held_out(model, x_val) -> float:
    with torch.no_grad():
        return float(ebm.GridDensity(model.energy, BOX, 200).log_prob(x_val).mean())


def run_toy(name: str, seed: int) -> dict[str, float]:
    x_train, x_val = data.toy(name, n=1000, seed=seed), data.toy(name, n=1000, seed=seed + 1)
    config, settings = ebm.EBMConfig.for_dataset(name), ebm.TrainConfig.for_dataset(name)
    no_buffer = ebm.EBMConfig(**{**config.__dict__, "buffer_size": 0})

    def train(model, loss):
        gen = seed_everything(seed)
        tic = time.process_time()
        fit(model, loss(gen), x_train, epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.lr,
            generator=gen, progress=False)
        return model, time.process_time() - tic

    gen = seed_everything(seed)
    pcd, pcd_cpu = train(ebm.EBM(config, gen), lambda g: ebm.ContrastiveDivergence(g))
    sm, _ = train(ebm.EBM(no_buffer, gen), lambda g: energy.ScoreMatchingLoss())
    dsm, _ = train(ebm.EBM(no_buffer, gen), lambda g: energy.DenoisingScoreMatchingLoss(0.2, g))
    noise = energy.GaussianNoise.fit(x_train, scale=1.5)
    nce, _ = train(energy.SelfNormalised(ebm.EnergyNet(2, config.hidden, config.layers)),
                   lambda g: energy.NCELoss(noise, nu=1, generator=g))
    with torch.no_grad():
        nce_gap = float(nce.log_z.detach()) - float(ebm.GridDensity(nce.energy, BOX, 200).log_z())
    gmm = GaussianMixture(K=8).fit_em(x_train, generator=seed_everything(seed))
    return {"pcd": held_out(pcd, x_val), "sm": held_out(sm, x_val), "dsm": held_out(dsm, x_val),
            "nce": held_out(nce, x_val), "gmm": mean_log_prob(gmm, x_val), "pcd_cpu": pcd_cpu, "nce_c_minus_log_z": nce_gap}


def run_digits(seed: int, jem_epochs: int, only_jem: bool = False) -> dict[str, float]:
    images = {split: data.images("digits", split) for split in ("train", "test")}
    x, x_test = images["train"].scaled(), images["test"].scaled()
    y, y_test = images["train"].y, images["test"].y
    out: dict[str, float] = {}
    if not only_jem:
        out.update(_image_ebm_and_rbms(seed, x, x_test))
    _jem_and_twin(seed, jem_epochs, x, y, x_test, y_test, out)
    return out


def _image_ebm_and_rbms(seed: int, x, x_test) -> dict[str, float]:
    out: dict[str, float] = {}
    # the image EBM of sections 7-8
    gen = seed_everything(seed)
    model = ebm.EBM(ebm.EBMConfig.for_dataset("digits"), gen)
    settings = ebm.TrainConfig.for_dataset("digits")
    tic = time.process_time()
    fit(model, ebm.ContrastiveDivergence(gen), x, epochs=settings.epochs, batch_size=settings.batch_size,
        lr=settings.lr, generator=gen, progress=False)
    out["ebm_cpu"] = time.process_time() - tic
    for key, samples in (("buffer", model.sample(300, generator=gen, from_buffer=True)), ("noise20", model.sample(300, generator=gen))):
        q = metrics.sample_quality(samples, x_test, "digits")
        out[f"ebm_{key}_fd"], out[f"ebm_{key}_precision"], out[f"ebm_{key}_recall"] = q["frechet"], q["precision"], q["recall"]
    # RBMs
    v, v_test = (x > 0.5).float(), (x_test > 0.5).float()
    pixel_p = v.mean(0).clamp(1e-3, 1 - 1e-3)
    out["indep_ll"] = float((v_test * pixel_p.log() + (1 - v_test) * (1 - pixel_p).log()).sum(1).mean())
    for key, persistent in (("rbm_cd1_ll", False), ("rbm_pcd1_ll", True)):
        gen = seed_everything(seed)
        rbm = energy.RBM(64, 16, gen)
        fit(rbm, energy.RBMContrastiveDivergence(k=1, persistent=persistent, n_chains=100, generator=gen), v,
            epochs=30, batch_size=50, lr=0.01, generator=gen, progress=False)
        with torch.no_grad():
            out[key] = float(rbm.log_prob(v_test).mean())
    return out


def _jem_and_twin(seed: int, jem_epochs: int, x, y, x_test, y_test, out: dict) -> None:
    """JEM (its config's default generative weight) and the same network trained as a classifier only."""
    for key, weight in (("clf", 0.0), ("jem", energy.JEMConfig().gen_weight)):
        gen = seed_everything(seed)
        jem = energy.JEM(energy.JEMConfig(gen_weight=weight), gen)
        with bench.Timer() as wall:
            tic = time.process_time()
            fit(jem, energy.JEMLoss(gen), (x, y), epochs=jem_epochs, batch_size=100, lr=3e-3, generator=gen, progress=False)
        out[f"{key}_cpu"], out[f"{key}_wall"] = time.process_time() - tic, wall.seconds
        with torch.no_grad():
            out[f"{key}_error_pct"] = 100 * float((jem.classify(x_test) != y_test).float().mean())
        if weight > 0:
            out["jem_fd"] = metrics.sample_quality(jem.sample(300, gen), x_test, "digits")["frechet"]


def main() -> None:
    parser = bench.parser(__doc__)
    parser.add_argument("--toys", nargs="*", default=["moons", "8gaussians"], choices=data.TOYS)
    parser.add_argument("--jem-epochs", type=int, default=60)
    parser.add_argument("--no-digits", action="store_true")
    parser.add_argument("--only", choices=["jem"], default=None, help="on digits, only JEM and its classifier-only twin")
    args = parser.parse_args()
    print(bench.machine())
    for name in args.toys:
        runs = []
        for seed in args.seeds:
            runs.append(run_toy(name, seed))
            print(f"  {name}, seed {seed}: " + ", ".join(f"{k} {v:.3f}" for k, v in runs[-1].items()), flush=True)
        print(bench.report(runs, {"pcd": ".3f", "sm": ".3f", "dsm": ".3f", "nce": ".3f", "gmm": ".3f",
                                  "pcd_cpu": ".1f", "nce_c_minus_log_z": ".3f"},
                           label=f"{name}, held-out log-likelihood (nats per point)"))
    if args.no_digits:
        return
    floor = metrics.quality_floor("digits")
    print(f"digits floor (train vs test): Fréchet {floor['frechet']:.2f}, precision {floor['precision']:.3f}, "
          f"recall {floor['recall']:.3f}")
    runs = []
    for seed in args.seeds:
        runs.append(run_digits(seed, args.jem_epochs, only_jem=args.only == "jem"))
        print(f"  digits, seed {seed}: " + ", ".join(f"{k} {v:.3f}" for k, v in runs[-1].items()), flush=True)
    print(bench.report(runs, {k: ".2f" for k in runs[0]}, label="digits"))


if __name__ == "__main__":
    main()
