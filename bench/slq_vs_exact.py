"""Does the stochastic log-determinant (SLQ, `estimator="hutchinson"`) pick the same step size as the paper's exact one
on a trained five-layer network? (issue 15, item 3b)

For a trained run (default: `repro_celeba`'s cpu-preset SRI (L=5), the released architecture at ngf=4, n_up=2, d=416),
it evaluates J(s) over the paper's 9-point grid on held-out test images with the exact `jacobian` estimator and with
SLQ (1 probe, `--lanczos` steps), the chain noise shared per seed, and reports each seed's grid minimisers and the
largest difference in J. The linear-Gaussian check is in nbs/04_stepsize.ipynb. Writes results/slq_vs_exact.json.

    python bench/slq_vs_exact.py                                   # about 15 minutes on one CPU core
    python bench/slq_vs_exact.py --run runs/repro_stepsize_cpu/seed1/fixed_0_05 --seeds 3 --images 2
"""
import argparse, json, time
from pathlib import Path
import torch
from shortrun_lvm.train import load_run
from shortrun_lvm.data import get_dataset
from shortrun_lvm.stepsize import curve, PAPER_GRID
from shortrun_lvm.repro import hardware

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--run", default="runs/repro_celeba_cpu/seed1/sri_l_5", help="a trained run directory (ckpt.pt)")
ap.add_argument("--seeds", type=int, default=2, help="chain-noise seeds")
ap.add_argument("--images", type=int, default=2, help="held-out test images (after the first 1,000, which test MSEs use)")
ap.add_argument("--lanczos", type=int, default=10, help="SLQ Lanczos steps per probe")
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--out", default="results/slq_vs_exact.json")
a = ap.parse_args()
torch.set_num_threads(a.threads)
method, cfg, ck = load_run(a.run)
g = method.g.eval()
test = get_dataset(cfg.dataset, "test", progress=False)
x = test.batch(torch.arange(1000, 1000 + a.images)) if len(test) >= 1000 + a.images else test.batch(torch.arange(len(test) - a.images, len(test)))
rows, t0 = [], time.time()
for sd in range(a.seeds):
    t = time.perf_counter(); J_exact = curve(g, x, cfg.K, cfg.sigma, PAPER_GRID, "jacobian", seed=sd); t_exact = time.perf_counter() - t
    t = time.perf_counter(); J_slq = curve(g, x, cfg.K, cfg.sigma, PAPER_GRID, "hutchinson", seed=sd, lanczos_steps=a.lanczos); t_slq = time.perf_counter() - t
    rows.append(dict(seed=sd, s_exact=PAPER_GRID[int(J_exact.argmin())], s_slq=PAPER_GRID[int(J_slq.argmin())],
                     max_abs_diff=float((J_slq - J_exact).abs().max()), J_exact=J_exact.tolist(), J_slq=J_slq.tolist(),
                     seconds_exact=round(t_exact, 1), seconds_slq=round(t_slq, 1)))
    print({k: v for k, v in rows[-1].items() if not k.startswith("J_")}, flush=True)
agree = all(abs(r["s_exact"] - r["s_slq"]) <= 0.01 + 1e-9 for r in rows)
out = dict(run=a.run, model=cfg.model, model_kw=cfg.model_kw, iters=ck["iter"], d=sum(g.z_dims), K=cfg.K, sigma=cfg.sigma, grid=PAPER_GRID,
           images=a.images, lanczos_steps=a.lanczos, n_probes=1, rows=rows, within_one_grid_step=agree, hardware=hardware(torch.device("cpu")),
           threads=a.threads, wall_seconds=round(time.time() - t0, 1))
Path(a.out).write_text(json.dumps(out, indent=1))
print(f"within one grid step on every seed: {agree}; exact/SLQ time per curve: "
      f"{sum(r['seconds_exact'] for r in rows) / len(rows):.0f} s / {sum(r['seconds_slq'] for r in rows) / len(rows):.0f} s; wrote {a.out}")
