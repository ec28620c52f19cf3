"""The step-size re-estimation's cost at the paper's schedule, as a share of the training between two re-estimations.

PP-Fig 5's schedule: s is re-estimated every 5 epochs by a 9-point grid search on 10 examples. Between two
re-estimations the model trains 5 epochs of 40,000 CelebA images at batch 100 (2,000 iterations of K = 25). For each
model and estimator of J(s), this prints and records (results/bench_stepsize_<device>.json):

    grid cost = 9 x (one evaluation of J on 10 examples at K = 25)
    share     = grid cost / (2,000 x one training iteration at batch 100, K = 25, on the fast path train() uses)

An evaluation's cost is linear in K (one step of the chain, and for the exact estimator d vector-Jacobian products
per step), so it is timed at K = 1 and K = 3 and extrapolated to K = 25 (`--direct` times K = 25 itself where that is
predicted to take under a minute). The same schedule is applied to every model, so the rows compare latent sizes:
`celeba32_l5` is the released network (d = 416), `dcgan32` a single-layer model (d = 100), `mnist_ladder3` a
three-layer model (d = 96). The paper's estimator family is `jacobian` (exact log-determinant) and `hutchinson` (its
SLQ estimate: 1 probe, 10 Lanczos steps); `gaussian` is this project's noise-aware estimator (64 chains per example).

    python bench/stepsize_share.py                    # CPU here: about 5 minutes on 2 free cores
    python bench/stepsize_share.py --device cuda      # on a GPU
"""
import argparse, json, os, sys, time
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import ROOT, S, SIGMA, Variant, make_x, sync, med, environment, load_check, Marks, time_call   # noqa: E402
from shortrun_lvm import stepsize                                                                # noqa: E402
from shortrun_lvm.fast import fast_defaults                                                      # noqa: E402
from shortrun_lvm.models import get_model, n_params                                              # noqa: E402

EPOCH, BATCH, K, EVERY, EXAMPLES = 40_000, 100, 25, 5, 10   # the paper's CelebA-32 run (paper.md §5, §7)
ESTIMATORS = dict(jacobian=dict(), hutchinson=dict(n_probes=1, lanczos_steps=10), gaussian=dict(n_samples=64))
FAMILY = ("jacobian", "hutchinson")                         # the paper's estimator: exact, or its SLQ estimate


def train_iteration(g, dev, repeats):
    "Median seconds of one training iteration (K-step chain + Adam step) at batch 100 on `fast_defaults(dev)`'s path."
    v = Variant(g, K, dev, fast_defaults(dev)); x = make_x(g, BATCH, dev)
    ts = time_call(lambda: v(x, Marks(dev)), dev, repeats)                 # (after one warm-up call)
    return med(ts), ts


def evaluation(g, x, est, Kc, dev):
    "Seconds of one evaluation of J(s = 0.05) with `est` on x at Kc steps."
    sync(dev); t0 = time.perf_counter()
    stepsize.objective(g, x, S, Kc, SIGMA, est, seed=0, **ESTIMATORS[est])
    sync(dev); return time.perf_counter() - t0


def bench_model(name, dev, repeats, direct, estimators):
    torch.manual_seed(0); g = get_model(name).to(dev)
    d = sum(g.z_dims); G = len(stepsize.PAPER_GRID)
    it, its = train_iteration(g, dev, repeats)
    between = EVERY * EPOCH / BATCH * it
    r = dict(model=name, params=n_params(g), d=d, z_dims=g.z_dims, train_iter_s=it, train_iter_runs=its,
             training_between_s=between, grid_points=G, examples=EXAMPLES, estimators={})
    print(f"{name} (d = {d}, {n_params(g) / 1e6:.3g} M): one training iteration {it:.2f} s; 5 epochs = {between / 3600:.2f} h", flush=True)
    x = make_x(g, EXAMPLES, dev)
    for est in estimators:
        evaluation(g, x[:1], est, 1, dev)                                   # warm-up on one example
        t1 = evaluation(g, x, est, 1, dev)
        if est == "jacobian" and t1 * 3 > 120: t3, how = None, "K=1 x 25 (K=3 not timed: over 2 minutes)"
        else: t3, how = evaluation(g, x, est, 3, dev), "linear in K through K=1 and K=3"
        per_step = (t3 - t1) / 2 if t3 is not None else t1
        t25 = t1 + (K - 1) * per_step if t3 is not None else K * t1
        if direct and t25 < 60: t25, how = evaluation(g, x, est, K, dev), "timed at K=25"
        grid = G * t25
        r["estimators"][est] = e = dict(eval_K1_s=t1, eval_K3_s=t3, eval_K25_s=t25, how=how, grid_s=grid, share=grid / between,
                                        family=est in FAMILY)
        print(f"  {est:10s} one evaluation {t25:8.1f} s ({how}); grid {grid:8.0f} s = {e['share']:.2%} of the training between", flush=True)
    return r


def report(R):
    lines = [f"Step-size re-estimation at the paper's schedule ({R['schedule']}), {R['env'].get('gpu', R['env']['cpu'])}, "
             f"{R['env']['torch_threads']} threads, torch {R['env']['torch']}, {R['env']['date'][:16]}, load {R['load_start']:.2f} -> {R['load_end']:.2f}", "",
             "| model | d | training iteration (batch 100, K=25) | 5 epochs | estimator | one J evaluation (10 examples, K=25) | 9-point grid | share of the 5 epochs |",
             "|---|---|---|---|---|---|---|---|"]
    for r in R["models"]:
        for est, e in r["estimators"].items():
            mark = " (paper's family)" if e["family"] else ""
            lines.append(f"| {r['model']} | {r['d']} | {r['train_iter_s']:.2f} s | {r['training_between_s'] / 3600:.2f} h | {est}{mark} | "
                         f"{e['eval_K25_s']:.1f} s | {e['grid_s']:.0f} s | {e['share']:.2%} |")
    best = {r["model"]: min((e["share"], est) for est, e in r["estimators"].items() if e["family"]) for r in R["models"]
            if any(e["family"] for e in r["estimators"].values())}
    lines += ["", "Cheapest of the paper's family per model: " + "; ".join(f"{m}: {est} {sh:.2%}" for m, (sh, est) in best.items())
              + f" (target: under {R['target']:.0%})"]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    ap.add_argument("--models", default="celeba32_l5,dcgan32,mnist_ladder3", help="comma-separated model presets")
    ap.add_argument("--estimators", default="jacobian,hutchinson,gaussian")
    ap.add_argument("--repeats", type=int, default=2, help="timed training iterations per model (after one warm-up)")
    ap.add_argument("--direct", action="store_true", help="time K=25 directly where predicted under a minute")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--out", default=None, help="JSON path (default results/bench_stepsize_<device>.json)")
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    dev = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available() else "cpu" if a.device == "auto" else a.device)
    ests = [e for e in a.estimators.split(",") if e]
    for e in ests:
        if e not in ESTIMATORS: sys.exit(f"unknown estimator {e!r}; use some of {list(ESTIMATORS)}")
    R = dict(env=environment(dev), args=vars(a), target=0.10, load_start=load_check("at the start", own=0),
             schedule=f"a {len(stepsize.PAPER_GRID)}-point grid every {EVERY} epochs of {EPOCH:,} images at batch {BATCH}, "
                      f"{EXAMPLES} examples, K = {K}", models=[])
    out = Path(a.out) if a.out else ROOT / "results" / f"bench_stepsize_{dev.type}.json"
    for name in a.models.split(","):
        R["models"].append(bench_model(name, dev, a.repeats, a.direct, ests))
        R["load_end"] = os.getloadavg()[0]; out.write_text(json.dumps(R, indent=1, default=str))
    R["load_end"] = load_check("at the end")
    R["table"] = report(R); out.write_text(json.dumps(R, indent=1, default=str))
    print("\n" + R["table"] + f"\n\nwrote {out}")


if __name__ == "__main__":
    main()
