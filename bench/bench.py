"""Speed of short-run Langevin inference: one training iteration = a K-step chain + one Adam step.

    python bench/bench.py                        # auto device, default grid, writes results/bench_<device>.json
    python bench/bench.py --quick                # smoke run (batch 25, K=5): results/bench_<device>_quick.json
    python bench/bench.py --device cuda --full   # all of K in (5, 25, 100) x batch in (25, 100, 400)
    python bench/bench.py --precision            # also fp32 vs TF32 vs bf16 (time and reconstruction MSE)
    python bench/bench.py --cpu-fast             # CPU: naive fp32 loop vs the fast path (bf16 + channels-last) per
                                                 # training iteration -> results/bench_cpu_fast.json

Variants run side by side in one process, interleaved repeat by repeat (so a load change on a shared
machine hits all of them alike): `naive` (the loop as commonly written, below), `ours` (langevin.short_run),
and on CUDA `graph` (FastChain, CUDA graph only), `compile` (torch.compile only), `fast` (both).
Figures are medians over --repeats; the JSON keeps every repeat.
"""
import argparse, copy, ctypes, datetime, json, os, platform, statistics, subprocess, sys, threading, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torch.utils._python_dispatch import TorchDispatchMode
from shortrun_lvm.langevin import short_run, grad_log_joint, frozen, sample_prior
from shortrun_lvm.models import get_model, n_params
from shortrun_lvm.fast import FastChain, precision, fast_defaults, cpu_bf16_support

S, SIGMA = 0.05, 0.15                     # released CelebA-32 defaults (code convention: s = noise sd)
LR, BETAS = 8e-5, (0.5, 0.999)            # released Adam settings


# ---------------------------------------------------------------- the naive reference
def naive_short_run(g, x, K, s, sigma, z0=None, noise=True):
    "The loop as commonly written: latents re-wrapped each step, retain_graph=True, parameters left requiring grad."
    z = [torch.randn(len(x), d, device=x.device) for d in g.z_dims] if z0 is None else [t.clone() for t in z0]
    mse = nn.MSELoss(reduction="sum")
    for _ in range(K):
        z = [t.detach().requires_grad_(True) for t in z]
        x_hat = g(z)
        L = 1.0 / (2.0 * sigma * sigma) * mse(x_hat, x)
        grads = torch.autograd.grad(L, z, retain_graph=True)
        z = [t - 0.5 * s * s * (gr + t) for t, gr in zip(z, grads)]
        if noise: z = [t + s * torch.randn_like(t) for t in z]
    return [t.detach() for t in z]


# ---------------------------------------------------------------- timing and memory
def sync(dev):
    if dev.type == "cuda": torch.cuda.synchronize(dev)

class Marks:
    "Time points within one call: CUDA events on the current stream (no host sync), else perf_counter."
    def __init__(self, dev): self.dev, self.m = dev, []
    def __call__(self):
        if self.dev.type == "cuda":
            e = torch.cuda.Event(enable_timing=True); e.record(); self.m.append(e)
        else: self.m.append(time.perf_counter())
    def intervals(self):
        if self.dev.type == "cuda":
            self.m[-1].synchronize()
            return [a.elapsed_time(b) / 1e3 for a, b in zip(self.m, self.m[1:])]
        return [b - a for a, b in zip(self.m, self.m[1:])]

def time_call(fn, dev, repeats, inner=1, warmup=1):
    "Seconds per call of fn(), one figure per repeat (each the mean over `inner` calls)."
    for _ in range(warmup): fn()
    sync(dev); out = []
    for _ in range(repeats):
        mk = Marks(dev); mk()
        for _ in range(inner): fn()
        mk(); out.append(mk.intervals()[0] / inner)
    return out

class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

def heap_in_use():
    "Bytes malloc has handed out and not taken back (glibc mallinfo2: heap chunks in use + mmapped chunks); None elsewhere."
    try:
        f = ctypes.CDLL(None).mallinfo2; f.restype = _MallInfo2; m = f()
        return m.uordblks + m.hblkhd
    except (AttributeError, OSError): return None

def rss():
    with open("/proc/self/statm") as f: return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

class PeakMem:
    """Peak memory of a block above its starting level. CUDA: torch.cuda.max_memory_allocated. CPU: bytes in use by malloc
    (glibc mallinfo2, where torch's CPU tensors live), sampled every 2 ms by a thread; without glibc, the RSS (which
    misses re-used freed memory). Not tracemalloc: it does not see torch's allocations."""
    def __init__(self, dev): self.dev = dev
    def __enter__(self):
        sync(self.dev)
        if self.dev.type == "cuda":
            self.base = torch.cuda.memory_allocated(self.dev); torch.cuda.reset_peak_memory_stats(self.dev)
        else:
            self.probe = heap_in_use if heap_in_use() is not None else rss
            self.base = self.peak = self.probe(); self.stop = False
            self.t = threading.Thread(target=self._poll, daemon=True); self.t.start()
        return self
    def _poll(self):
        while not self.stop: self.peak = max(self.peak, self.probe()); time.sleep(0.002)
    def __exit__(self, *a):
        sync(self.dev)
        if self.dev.type == "cuda": self.bytes = torch.cuda.max_memory_allocated(self.dev) - self.base
        else:
            self.stop = True; self.t.join(); self.bytes = max(self.peak, self.probe()) - self.base

def med(xs): return statistics.median(xs)


# ---------------------------------------------------------------- floors: FLOPs, bytes, device ceilings
class ByteCount(TorchDispatchMode):
    "Bytes each aten op reads (tensor inputs) and writes (outputs): the traffic of the unfused eager step."
    def __init__(self): super().__init__(); self.bytes = 0
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        flat = torch.utils._pytree.tree_leaves((args, kwargs, out))
        self.bytes += sum(t.numel() * t.element_size() for t in flat if isinstance(t, torch.Tensor))
        return out

def latent_grad(g, x, zs, leaf=True):
    "One forward + latent-gradient pass (what a Langevin step costs besides the update)."
    with frozen(g), torch.enable_grad():
        zs = [z.detach().requires_grad_() for z in zs]
        if not leaf: zs = [z.clone() for z in zs]      # FlopCounterMode's module hooks refuse autograd.grad on leaves
        return grad_log_joint(g, x, zs, SIGMA)

def count_step(g, x, zs):
    "FLOPs of one forward and of one forward + latent gradient; bytes of the latter (eager, unfused)."
    with FlopCounterMode(display=False) as fc, torch.no_grad(): g(zs)
    fwd = fc.get_total_flops()
    with FlopCounterMode(display=False) as fc: latent_grad(g, x, zs, leaf=False)
    with ByteCount() as bc: latent_grad(g, x, zs)
    return fwd, fc.get_total_flops(), bc.bytes

def ceilings(dev, quick):
    "Measured peaks: a large matmul (fp32; on CUDA also TF32 and bf16) and a large copy (bytes read + written)."
    n = (1024 if quick else 2048) if dev.type == "cpu" else 8192
    modes = [("fp32", torch.float32, False)] + ([("tf32", torch.float32, True)] if dev.type == "cuda" else []) + \
            [("bf16", torch.bfloat16, False)]
    out = {}
    for name, dt, tf32 in modes:
        a, b = torch.randn(n, n, device=dev, dtype=dt), torch.randn(n, n, device=dev, dtype=dt)
        with precision(tf32=tf32):
            t = time_call(lambda: a @ b, dev, repeats=5, inner=3 if dev.type == "cpu" else 20)
        out[f"matmul_{name}_flops"] = 2 * n**3 / med(t)
    m = 2**26 if dev.type == "cpu" else 2**28
    a = torch.randn(m, device=dev); b = torch.empty_like(a)
    out["copy_bytes_per_s"] = 2 * a.nbytes / med(time_call(lambda: b.copy_(a), dev, repeats=5, inner=5))
    out["matmul_n"] = n
    return out


# ---------------------------------------------------------------- one training iteration
def make_x(g, n, dev):
    "A synthetic batch the generator can explain: g(z*) + sigma * noise, clamped to [-1, 1] (untrained g)."
    with torch.no_grad(): return (g(sample_prior(g, n, dev)) + SIGMA * torch.randn(n, *g.img_shape, device=dev)).clamp(-1, 1)

def train_iter(g, opt, x, chain, mk):
    "Chain, then one Adam step on sum((x - g(z_K))^2) (the released loss); marks around both parts."
    mk(); zK = chain(x); mk()
    loss = (x - g(zK)).pow(2).sum()
    opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); mk()

def chains(g, K, dev, which, zs=None):
    "The variants by name: callables x -> z_K. `bare` is K forward + latent-gradient passes and no update (the floor of a chain)."
    def bare(x):
        for _ in range(K): latent_grad(g, x, zs)
        return zs
    c = dict(naive=lambda x: naive_short_run(g, x, K, S, SIGMA), ours=lambda x: short_run(g, x, K, S, SIGMA), bare=bare)
    if dev.type == "cuda":
        if "graph" in which: c["graph"] = FastChain(g, K, S, SIGMA, compile=False, cuda_graph=True)
        if "compile" in which: c["compile"] = FastChain(g, K, S, SIGMA, compile=True, cuda_graph=False)
        if "fast" in which: c["fast"] = FastChain(g, K, S, SIGMA, compile=True, cuda_graph=True)
    return {k: c[k] for k in which if k in c}

def graph_pool_bytes(fc):
    "CUDA memory held by the private pools of a FastChain's captured graphs (what its replays use)."
    ids = {tuple(v[0].pool()) for v in fc.graphs.values()}
    segs = torch.cuda.memory._snapshot()["segments"]
    return sum(s["total_size"] for s in segs if tuple(s.get("segment_pool_id", ())) in ids)

def run_iters(g, x, K, dev, which, repeats):
    """Per variant: a first call (CUDA: compiles and captures; CPU: a 2-step warm-up), `repeats` timed iterations with the
    variants interleaved, then one iteration for peak memory (CPU: a 3-step chain, the peak does not grow with K)."""
    opt = torch.optim.Adam(g.parameters(), lr=LR, betas=BETAS)
    cpu, zs = dev.type == "cpu", sample_prior(g, len(x), dev)
    cs = chains(g, K, dev, which, zs); res = {k: dict(chain_s=[], update_s=[], iter_s=[], wall_s=[]) for k in cs}
    for k, c in cs.items():
        t0 = time.perf_counter()
        train_iter(g, opt, x, chains(g, min(K, 2), dev, [k], zs)[k] if cpu else c, Marks(dev)); sync(dev)
        res[k]["first_call_s"] = time.perf_counter() - t0
    for _ in range(repeats):
        for k, c in cs.items():
            sync(dev); t0 = time.perf_counter(); mk = Marks(dev)
            train_iter(g, opt, x, c, mk); ch, up = mk.intervals(); sync(dev)
            r = res[k]; r["chain_s"].append(ch); r["update_s"].append(up); r["iter_s"].append(ch + up)
            r["wall_s"].append(time.perf_counter() - t0)
    for k, c in cs.items():
        r = res[k]
        with PeakMem(dev) as pm: train_iter(g, opt, x, chains(g, min(K, 3), dev, [k], zs)[k] if cpu else c, Marks(dev))
        r["peak_bytes"] = pm.bytes
        if isinstance(c, FastChain) and c.cuda_graph:
            r["graph_pool_bytes"] = graph_pool_bytes(c); r["peak_bytes"] += r["graph_pool_bytes"]
        r.update(iter=med(r["iter_s"]), iter_min=min(r["iter_s"]), chain=med(r["chain_s"]), update=med(r["update_s"]),
                 step=med(r["chain_s"]) / K, step_min=min(r["chain_s"]) / K, img_per_s=len(x) / med(r["iter_s"]))
    return res


# ---------------------------------------------------------------- sections
def bench_preset(name, dev, B, K, which, repeats, quick):
    torch.manual_seed(0)
    g = get_model(name).to(dev); x = make_x(g, B, dev); zs = sample_prior(g, B, dev)
    r = dict(params=n_params(g), z_dims=g.z_dims, img_shape=list(g.img_shape), batch=B, K=K, s=S, sigma=SIGMA)
    inner = 1 if dev.type == "cpu" else 10
    with torch.no_grad(): r["fwd_s"] = time_call(lambda: g(zs), dev, repeats + 2, inner)
    r["fwd_grad_s"] = time_call(lambda: latent_grad(g, x, zs), dev, repeats + 2, inner)
    r["flops_fwd"], r["flops_step"], r["bytes_step_eager"] = count_step(g, x, zs)
    # same z0, no noise: naive and ours compute the same chain (a check that the naive loop is the same algorithm)
    a = naive_short_run(g, x, min(K, 5), S, SIGMA, z0=zs, noise=False)
    b = short_run(g, x, min(K, 5), S, SIGMA, z0=zs, noise=False)
    r["naive_vs_ours_maxabs"] = max((u - v).abs().max().item() for u, v in zip(a, b))
    r["variants"] = run_iters(g, x, K, dev, which + ["bare"], repeats)
    return r

def bench_scaling(name, dev, Ks, Bs, K0, B0, which, repeats, main=None):
    "Time per iteration and per step over K at batch B0 and over batch at K0 (the main point is reused when measured)."
    rows = []
    torch.manual_seed(0); g = get_model(name).to(dev)
    for K, B in dict.fromkeys([(K, B0) for K in Ks] + [(K0, B) for B in Bs]):
        if main and (K, B) == (main["K"], main["batch"]): res = {k: main["variants"][k] for k in which if k in main["variants"]}
        else: res = run_iters(g, make_x(g, B, dev), K, dev, which, repeats)
        for k, v in res.items():
            rows.append(dict(preset=name, variant=k, K=K, batch=B, iter=v["iter"], chain=v["chain"], step=v["step"],
                             img_per_s=v["img_per_s"], peak_bytes=v.get("peak_bytes"), iter_s=v["iter_s"]))
            print(f"  scaling {name} {k:7s} K={K:3d} B={B:3d}: {v['iter']:.4f} s/iter  {v['step']*1e3:.2f} ms/step", flush=True)
    return rows

def bench_precision(name, dev, B, K, repeats):
    """fp32 (strict) vs TF32 vs bf16 autocast (CUDA also: bf16 + channels_last, TF32 + channels_last + cuDNN autotuning):
    the reconstruction MSE of one batch with the same z_0 and noise (all modes on the
    same weights, before any training step), then the time per training iteration (chain in that mode, update in fp32/TF32)."""
    torch.manual_seed(0); g = get_model(name).to(dev); x = make_x(g, B, dev)
    modes = dict(fp32=dict(tf32=False), tf32=dict(tf32=True), bf16=dict(tf32=False, amp_dtype=torch.bfloat16),
                 bf16_nhwc=dict(tf32=False, amp_dtype=torch.bfloat16, channels_last=True),
                 tf32_nhwc_tuned=dict(tf32=True, channels_last=True, cudnn_benchmark=True))
    if dev.type != "cuda": modes = {m: modes[m] for m in ("fp32", "bf16")}
    out, fcs, gs, zref = {}, {}, {}, None
    for m, kw in modes.items():
        gs[m] = gm = copy.deepcopy(g) if kw.get("channels_last") else g     # channels_last converts its generator in place
        fcs[m] = fc = FastChain(gm, K, S, SIGMA, **kw)      # CUDA: compile + graph; CPU: eager (autocast for bf16)
        torch.manual_seed(7); zK = fc(x)
        with precision(tf32=False), torch.no_grad(): mse = (x - gm(zK)).pow(2).mean().item()
        if zref is None:
            zref = zK
            with precision(tf32=False): torch.manual_seed(7); zo = short_run(g, x, K, S, SIGMA)
            out["fast_vs_short_run_fp32_maxabs"] = max((u - v).abs().max().item() for u, v in zip(zK, zo))
        out[m] = dict(mse=mse, zK_rel_diff=max(((u - v).norm() / v.norm()).item() for u, v in zip(zK, zref)))
    for m in modes: out[m]["mse_rel_to_fp32"] = out[m]["mse"] / out["fp32"]["mse"] - 1
    opts = {id(gm): torch.optim.Adam(gm.parameters(), lr=LR, betas=BETAS) for gm in gs.values()}
    t = {m: [] for m in modes}
    for _ in range(repeats + 1):                            # interleaved; the first round is a warm-up
        for m, kw in modes.items():
            with precision(tf32=kw["tf32"]):
                mk = Marks(dev); train_iter(gs[m], opts[id(gs[m])], x, fcs[m], mk); t[m].append(sum(mk.intervals()))
    for m in modes: out[m].update(iter=med(t[m][1:]), iter_s=t[m][1:])
    return out

def bench_precision_trained(ckpt_dir, dev, n=200, seeds=3):
    """The reconstruction MSE of a *trained* run's test images with its chain in fp32 and in reduced precision (TF32 on
    CUDA, bf16 autocast on both), from the same z_0 and noise; the generator decodes in fp32. The target: within 1%."""
    from shortrun_lvm.train import load_run
    from shortrun_lvm.data import get_dataset
    method, cfg, ck = load_run(ckpt_dir, device=str(dev))
    g = method.g.eval()
    x = get_dataset(cfg.dataset, "test", root=cfg.data_root).batch(torch.arange(n)).to(dev)
    modes = dict(fp32=dict(tf32=False), bf16=dict(tf32=False, amp_dtype=torch.bfloat16))
    modes["bf16_nhwc"] = dict(tf32=False, amp_dtype=torch.bfloat16, channels_last=True)     # the CPU fast path (fast_defaults)
    if dev.type == "cuda": modes.update(tf32=dict(tf32=True))
    out = dict(run=str(ckpt_dir), model=cfg.model, model_kw=cfg.model_kw, dataset=cfg.dataset, iters=ck["iter"], n_test=n,
               K=cfg.K, s=getattr(method, "s", cfg.s), sigma=cfg.sigma, seeds=seeds, modes={})
    for m, kw in modes.items():
        gm = copy.deepcopy(g) if kw.get("channels_last") else g
        fc = FastChain(gm, cfg.K, out["s"], cfg.sigma, **kw)
        mses = []
        for sd in range(seeds):
            torch.manual_seed(100 + sd); zK = fc(x)
            with precision(tf32=False), torch.no_grad(): mses.append((x - g(zK)).pow(2).mean().item())
        out["modes"][m] = dict(mse=statistics.mean(mses), mse_per_seed=mses)
    ref = out["modes"]["fp32"]["mse"]
    for m, v in out["modes"].items(): v["rel_to_fp32"] = v["mse"] / ref - 1
    return out

def bench_stepsize(dev, iter_s, B, budget_s=120):
    """One step-size re-estimation on celeba32_l5 (if shortrun_lvm.stepsize exists) vs 5 epochs of training (400 iterations
    each). optimize(method="grid") evaluates the objective once per grid value (9), each a K=25 chain: one evaluation is timed
    at K=1, then at K=25 if that is predicted under `budget_s`, and the grid's cost is 9 evaluations."""
    try: from shortrun_lvm import stepsize
    except ImportError as e: return dict(error=f"no shortrun_lvm.stepsize ({e})")
    torch.manual_seed(0); g = get_model("celeba32_l5").to(dev); x = make_x(g, B, dev)
    G = len(getattr(stepsize, "PAPER_GRID", range(9))); train5 = 5 * 400 * iter_s
    out = dict(batch=B, grid_points=G, train_iter_s=iter_s, train_5_epochs_s=train5)
    for est in ("jacobian", "hutchinson", "gaussian"):
        def J(K): return stepsize.objective(g, x, S, K, SIGMA, est, seed=0)
        try:
            J(1); sync(dev); t0 = time.perf_counter(); J(1); sync(dev); t1 = time.perf_counter() - t0
            if 25 * t1 < budget_s:
                sync(dev); t0 = time.perf_counter(); J(25); sync(dev); t25, how = time.perf_counter() - t0, "measured at K=25"
            else: t25, how = 25 * t1, "K=1 time x 25 (linear in K)"
        except Exception as e:
            out[est] = dict(error=f"{type(e).__name__}: {e}"[:300]); continue
        out[est] = dict(eval_K1_s=t1, eval_K25_s=t25, how=how, grid_s=G * t25, fraction=G * t25 / train5)
    return out


# ---------------------------------------------------------------- CPU fast path: whole training iterations
def load_check(where, threshold=None, own=None):
    "The 1-minute load average; prints a warning line when the load of *other* processes (the average less `own`, the benchmark's own threads, which it includes once timing has run) is high enough to distort CPU timings (> 0.75 x the cores the benchmark leaves free, at least 0.75)."
    l1, n = os.getloadavg()[0], os.cpu_count()
    own = torch.get_num_threads() if own is None else own
    if l1 - own > (threshold if threshold is not None else 0.75 * max(n - own, 1)):
        print(f"WARNING: load average {l1:.2f} on {n} cores {where} (the benchmark's own {own} thread(s) included): other "
              "processes compete for the cores, so these timings are distorted (absolute times most; the interleaved ratios less)", flush=True)
    return l1

def parse_preset(p):
    "'name' or 'name:key=int,...' (model overrides, e.g. mnist:ngf=16) -> (name, overrides)."
    name, _, ov = p.partition(":")
    return name, {k: int(v) for k, v in (kv.split("=") for kv in ov.split(",") if kv)}

def update_flops(g, x, zs):
    "FLOPs of the parameter update: forward at z_K and backward of sum((x - g(z))^2) into the parameters."
    gc = copy.deepcopy(g)
    with FlopCounterMode(display=False) as fc: (x - gc(zs)).pow(2).sum().backward()
    return fc.get_total_flops()

class Variant:
    "One way of running a training iteration: its own copy of g and Adam, the chain, and the precision of the update's forward."
    def __init__(self, g, K, dev, kw=None, naive=False):
        self.g = copy.deepcopy(g); self.K, self.dev, self.naive = K, dev, naive
        self.kw = dict(kw or {}); self.cl = bool(self.kw.get("channels_last")); self.amp = self.kw.get("amp_dtype")
        self.chain = None if naive else FastChain(self.g, K, S, SIGMA, **self.kw)     # channels_last: converts self.g
        self.opt = torch.optim.Adam(self.g.parameters(), lr=LR, betas=BETAS)
    def __call__(self, x, mk, K=None):
        "chain (marks), then the update: as train() will run `method.loss` under `precision(amp_dtype, device_type)`."
        K = self.K if K is None else K
        if self.cl: x = x.contiguous(memory_format=torch.channels_last)
        mk()
        if self.naive:
            zK = naive_short_run(self.g, x, K, S, SIGMA); mk(); loss = (x - self.g(zK)).pow(2).sum()
        else:
            with precision(amp_dtype=self.amp, device_type=self.dev.type):
                zK = self.chain(x) if K == self.K else self.chain._run(x, None, True, None, K=K); mk()
                loss = (x - self.g(zK)).pow(2).sum()
        self.opt.zero_grad(set_to_none=True); loss.backward(); self.opt.step(); mk()
    def fwd_grad(self, x, zs):
        "One forward + latent-gradient pass in this variant's precision and layout (a bare chain step)."
        if self.cl: x = x.contiguous(memory_format=torch.channels_last)
        with precision(amp_dtype=self.amp, device_type=self.dev.type): return latent_grad(self.g, x, zs)

def bench_cpu_fast(name, dev, B, K, repeats, variants, compile_cold=True):
    """Whole training iterations (K-step chain + one Adam step) at batch B: the naive fp32 loop against the fast path
    (`fast_defaults(dev)`: bf16 autocast + channels-last for the chain and the update's forward) and the other variants
    asked for, interleaved repeat by repeat; plus bare forward + latent-gradient passes in fp32 and in the fast mode,
    and the FLOPs of an iteration (for the floors)."""
    pname, ov = parse_preset(name)
    torch.manual_seed(0); g = get_model(pname, **ov).to(dev); x = make_x(g, B, dev); zs = sample_prior(g, B, dev)
    fd = fast_defaults(dev)
    r = dict(preset=name, params=n_params(g), z_dims=g.z_dims, img_shape=list(g.img_shape), batch=B, K=K, fast_kw={k: str(v) for k, v in fd.items()},
             load_before=load_check(f"before {name}"))
    flops_step = count_step(g, x, zs)[1]
    r.update(flops_step=flops_step, flops_update=update_flops(g, x, zs))
    r["flops_iter"] = K * r["flops_step"] + r["flops_update"]
    kws = dict(fast=fd, fast_nchw={k: v for k, v in fd.items() if k != "channels_last"},
               fast_compile=dict(fd, compile=True), fp32_nhwc=dict(channels_last=True))
    vs = dict(naive=Variant(g, K, dev, naive=True))
    for v in variants: vs[v] = Variant(g, K, dev, kws[v])
    res = {k: dict(chain_s=[], update_s=[], iter_s=[], cpu_s=[]) for k in vs}
    for k, v in vs.items():                                     # bare passes (the same weights: no update yet), then a warm-up
        v.fwd_grad(x, zs)
        res[k]["fwd_grad_s"] = time_call(lambda: v.fwd_grad(x, zs), dev, repeats + 2)
        import torch._inductor.config as inductor_config
        inductor_config.force_disable_caches = k == "fast_compile" and compile_cold      # count a cold compile
        t0 = time.perf_counter(); v(x, Marks(dev), K=min(K, 2)); res[k]["first_call_s"] = time.perf_counter() - t0
        inductor_config.force_disable_caches = False
    for _ in range(repeats):
        for k, v in vs.items():
            c0 = time.process_time(); mk = Marks(dev); v(x, mk); ch, up = mk.intervals()
            res[k]["cpu_s"].append(time.process_time() - c0)          # CPU time of all threads: with 1 thread, the load hardly moves it
            res[k]["chain_s"].append(ch); res[k]["update_s"].append(up); res[k]["iter_s"].append(ch + up)
    nv = res["naive"]
    for k, q in res.items():
        q.update(iter=med(q["iter_s"]), chain=med(q["chain_s"]), update=med(q["update_s"]), fwd_grad=med(q["fwd_grad_s"]),
                 speedup_per_repeat=[a / b for a, b in zip(nv["iter_s"], q["iter_s"])], cpu=med(q["cpu_s"]),
                 cpu_speedup=med([a / b for a, b in zip(nv["cpu_s"], q["cpu_s"])]))
        q.update(speedup=med(q["speedup_per_repeat"]), speedup_range=[min(q["speedup_per_repeat"]), max(q["speedup_per_repeat"])],
                 bare_iter=K * q["fwd_grad"])
    r["variants"] = res
    r["bare_fp32_iter"] = K * res["naive"]["fwd_grad"]          # K fp32 forward + latent-gradient passes, no update
    r["load_after"] = load_check(f"after {name}")
    return r

def report_cpu_fast(R):
    "Rows of the CPU fast section and where each lands against the bf16 ceiling and floor."
    c, e = R["ceilings"], R["env"]
    ratio = c["matmul_bf16_flops"] / c["matmul_fp32_flops"]
    lines = [f"CPU fast path, {e['cpu']} (native bf16: {', '.join(e['cpu_bf16']) or 'none'}), torch {e['torch']}, "
             f"{e['torch_threads']} threads, {e['date'][:16]}, commit {e['git_commit'][:10]}; measured matmul peaks "
             f"fp32 {c['matmul_fp32_flops']/1e12:.2f}, bf16 {c['matmul_bf16_flops']/1e12:.2f} TFLOP/s ({ratio:.1f}x)", "",
             "| preset | batch | K | variant | s / iter | speed-up vs naive fp32 (median, range) | CPU-time speed-up | vs K bare fp32 fwd+grad | "
             "vs K bare passes in its mode | GFLOP / iter | floor s (fp32, bf16) | x its floor | load before, after |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for name, r in R["cpu_fast"].items():
        fl32, fl16 = r["flops_iter"] / c["matmul_fp32_flops"], r["flops_iter"] / c["matmul_bf16_flops"]
        for k, v in r["variants"].items():
            floor = fl32 if k in ("naive", "fp32_nhwc") else fl16
            lines.append(f"| {name} | {r['batch']} | {r['K']} | {k} | {v['iter']:.3f} | {v['speedup']:.2f}x "
                         f"({v['speedup_range'][0]:.2f}-{v['speedup_range'][1]:.2f}) | {v['cpu_speedup']:.2f}x | {r['bare_fp32_iter']/v['iter']:.2f}x | "
                         f"{v['bare_iter']/v['iter']:.2f}x | {r['flops_iter']/1e9:.0f} | {fl32:.3g}, {fl16:.3g} | {v['iter']/floor:.1f} | "
                         f"{r['load_before']:.1f}, {r['load_after']:.1f} |")
        f = r["variants"].get("fast")
        if f:
            notes.append(f"{name}: fast path {f['speedup']:.2f}x the naive fp32 loop per iteration (range {f['speedup_range'][0]:.2f}-"
                         f"{f['speedup_range'][1]:.2f}): {f['speedup']/2:.0%} of the ~2x AVX-512 BF16 arithmetic ceiling, "
                         f"{f['speedup']/ratio:.0%} of this CPU's measured bf16/fp32 matmul ratio ({ratio:.1f}x); "
                         f"{f['iter']/fl16:.1f}x the bf16 FLOP floor ({fl16:.3g} s), naive {r['variants']['naive']['iter']/fl32:.1f}x the fp32 floor")
        fc = r["variants"].get("fast_compile")
        if fc and f:
            gain = f["iter"] - fc["iter"]
            notes.append(f"{name}: torch.compile: first call {fc['first_call_s']:.0f} s (compile, cold cache) vs {f['first_call_s']:.1f} s; "
                         f"{fc['iter']:.3f} vs {f['iter']:.3f} s/iter: " + (f"pays back after {(fc['first_call_s'] - f['first_call_s'])/gain:.0f} iterations"
                                                                           if gain > 0 else "no gain per iteration"))
    return "\n".join(lines), notes


# ---------------------------------------------------------------- environment and report
def environment(dev):
    def git(*a):
        try: return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception: return ""
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    e = dict(date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
             git_commit=(lambda h: h if len(h) == 40 else "none (no commit yet)")(git("rev-parse", "HEAD")), git_dirty=bool(git("status", "--porcelain")),
             device=str(dev), cpu=cpu, cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads(),
             cpu_bf16=list(cpu_bf16_support()), cpu_capability=torch.backends.cpu.get_cpu_capability(),
             torch=torch.__version__, python=platform.python_version(), load_avg=os.getloadavg(),
             tf32_matmul=torch.backends.cuda.matmul.allow_tf32, tf32_cudnn=torch.backends.cudnn.allow_tf32)
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        e.update(gpu=p.name, gpu_mem_bytes=p.total_memory, sms=p.multi_processor_count, cuda=torch.version.cuda,
                 cudnn=torch.backends.cudnn.version())
    return e

NAMES = dict(naive="naive loop", ours="short_run", bare="fwd+grad xK", graph="FastChain graph", compile="FastChain compile",
             fast="FastChain compile+graph")

def report(R):
    "Markdown tables to paste in docs."
    dev, c, e = R["env"]["device"], R["ceilings"], R["env"]
    ms = lambda t: f"{t*1e3:.2f}" if t < 10 else f"{t*1e3:.0f}"
    lines = [f"Short-run chain, {e.get('gpu', e['cpu'])}, torch {e['torch']}, {e['torch_threads']} threads"
             + (" (machine shared with other jobs: medians, best in brackets)" if "cpu" in dev else "") + ", "
             + f"{e['date'][:10]}, commit {e['git_commit'][:10] if len(e['git_commit']) == 40 else 'uncommitted'}", "",
             "| preset | batch | K | variant | s / iter | img / s | ms / step | step / bare fwd+grad | time vs naive | peak MB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in R["presets"].items():
        v = r["variants"]; bare, nv = v["bare"], v["naive"]
        for k, x in v.items():
            if k == "bare": continue
            lines.append(f"| {name} | {r['batch']} | {r['K']} | {NAMES[k]} | {x['iter']:.4g} ({x['iter_min']:.4g}) | "
                         f"{x['img_per_s']:.1f} | {ms(x['step'])} | {x['step']/bare['step']:.2f}x | "
                         f"{x['iter']/nv['iter']:.2f}x | {x['peak_bytes']/2**20:.0f} |")
    fl_modes = [m for m in ("fp32", "tf32", "bf16") if f"matmul_{m}_flops" in c]
    lines += ["", f"| preset | fwd ms | fwd+grad ms | GFLOP / step | floor ms / step ({', '.join(fl_modes)}) | "
              "short_run (best step) vs fp32 floor | eager MB moved / step | bandwidth floor ms |", "|---|---|---|---|---|---|---|---|"]
    for name, r in R["presets"].items():
        fl = [r["flops_step"] / c[f"matmul_{m}_flops"] for m in fl_modes]
        ours = r["variants"]["ours"]["step_min"]
        lines.append(f"| {name} | {ms(med(r['fwd_s']))} ({ms(min(r['fwd_s']))}) | {ms(med(r['fwd_grad_s']))} ({ms(min(r['fwd_grad_s']))}) | {r['flops_step']/1e9:.1f} | "
                     f"{', '.join(ms(f) for f in fl)} | {fl[0]/ours:.0%} | {r['bytes_step_eager']/2**20:.0f} | "
                     f"{ms(r['bytes_step_eager']/c['copy_bytes_per_s'])} |")
    lines.append(f"(peaks measured here: " + ", ".join(f"{m} matmul {c[f'matmul_{m}_flops']/1e12:.2f} TFLOP/s" for m in fl_modes)
                 + f", copy {c['copy_bytes_per_s']/1e9:.0f} GB/s)")
    if R.get("precision"):
        p = R["precision"]
        lines += ["", "| precision (celeba32_l5) | s / iter | recon MSE | vs fp32 | z_K rel. diff |", "|---|---|---|---|---|"]
        lines += [f"| {m} | {x['iter']:.4g} | {x['mse']:.5f} | {x['mse_rel_to_fp32']:+.2%} | {x['zK_rel_diff']:.1e} |"
                  for m, x in p.items() if isinstance(x, dict)]
    if R.get("stepsize"):
        s = R["stepsize"]
        if "error" in s: lines += ["", f"Step-size re-estimation: not measured ({s['error']})"]
        else:
            lines += ["", f"| step-size re-estimation, celeba32_l5, batch {s['batch']}, K=25, grid of {s['grid_points']} | one evaluation s | "
                      f"grid s | / 5 epochs ({s['train_5_epochs_s']:.0f} s) |", "|---|---|---|---|"]
            for est in ("jacobian", "hutchinson", "gaussian"):
                e = s.get(est, {})
                lines.append(f"| {est} | " + (f"{e['eval_K25_s']:.1f} ({e['how']}) | {e['grid_s']:.1f} | {e['fraction']:.1%} |"
                                              if "grid_s" in e else f"{e.get('error', 'not run')} | | |"))
    return "\n".join(lines)

def explain(R):
    "Plain-language reading of the ratios (printed under the tables)."
    out = []
    for name, r in R["presets"].items():
        v = r["variants"]; o, n, bare = v["ours"], v["naive"], v["bare"]
        gap = o["step"] - bare["step"]
        out.append(f"{name}: short_run / naive per iteration {o['iter']/n['iter']:.2f}x median, {o['iter_min']/n['iter_min']:.2f}x best "
                   f"(peak memory {o['peak_bytes']/2**20:.0f} vs {n['peak_bytes']/2**20:.0f} MB). Per step short_run is "
                   f"{o['step']/bare['step']:.2f}x median, {o['step_min']/bare['step_min']:.2f}x best, of K bare forward+latent-gradient "
                   f"passes timed alongside ({gap*1e3:+.2f} ms/step = noise draw, update, Python loop"
                   f"{' and load noise' if 'cpu' in R['env']['device'] else ''}; the bare passes' own spread is "
                   f"{(max(bare['chain_s'])-min(bare['chain_s']))/r['K']*1e3:.1f} ms/step)")
        for k in ("graph", "compile", "fast"):
            if k in v: out.append(f"{name}: {NAMES[k]} takes {v[k]['iter']/n['iter']:.2f}x naive's time per iteration "
                                  f"({n['iter']/v[k]['iter']:.2f}x speed-up; {o['iter']/v[k]['iter']:.2f}x over short_run; "
                                  f"first call {v[k]['first_call_s']:.0f} s)")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    ap.add_argument("--presets", default="celeba32_l5,dcgan32,dcgan64", help="comma-separated model presets")
    ap.add_argument("--batch", type=int, default=None, help="batch of the main comparison (default 100; --quick 25)")
    ap.add_argument("--K", type=int, default=None, help="Langevin steps of the main comparison (default 25; --quick 5)")
    ap.add_argument("--repeats", type=int, default=None, help="timed iterations per variant (default 3 CPU, 10 CUDA)")
    ap.add_argument("--quick", action="store_true", help="smoke run: batch 25, K=5, no scaling grid")
    ap.add_argument("--full", action="store_true", help="scaling grid K in (5, 25, 100) x batch in (25, 100, 400)")
    ap.add_argument("--scaling-presets", default="celeba32_l5", help="presets of the scaling grid")
    ap.add_argument("--precision", action=argparse.BooleanOptionalAction, default=None,
                    help="fp32 vs TF32 vs bf16 section (default: on for CUDA, off for CPU)")
    ap.add_argument("--variants", default=None, help="default: naive,ours (CPU); naive,ours,graph,compile,fast (CUDA)")
    ap.add_argument("--stepsize-batch", type=int, default=None, help="batch of the step-size re-estimation (default 8 CUDA, 1 CPU)")
    ap.add_argument("--stepsize-budget", type=float, default=60, help="time K=25 directly if predicted under this many s, else K=1 x 25")
    ap.add_argument("--no-stepsize", action="store_true", help="skip the step-size re-estimation row")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's; 1 is steadier on a shared machine)")
    ap.add_argument("--report", default=None, metavar="JSON", help="only print the tables of an earlier run's JSON")
    ap.add_argument("--precision-run", default=None, metavar="RUN_DIR",
                    help="only: test MSE of trained runs (comma-separated run dirs with ckpt.pt), chain in fp32 vs TF32/bf16 -> results/precision_<device>.json")
    ap.add_argument("--cpu-fast", action="store_true",
                    help="only: whole training iterations, naive fp32 loop vs the fast path (fast_defaults) -> results/bench_cpu_fast.json")
    ap.add_argument("--fast-variants", default="fast,fast_nchw",
                    help="--cpu-fast variants besides naive: fast (fast_defaults), fast_nchw (bf16 only), fast_compile, fp32_nhwc")
    ap.add_argument("--fast-presets", default="celeba32_l5,dcgan32,mnist", help="--cpu-fast presets (name or name:key=int)")
    ap.add_argument("--repeats-for", default="", help="per-preset repeats for --cpu-fast, e.g. celeba32_l5=2")
    ap.add_argument("--out", default=None, help="JSON path (default results/bench_<device>[_quick].json)")
    a = ap.parse_args()
    if a.report:
        R = json.loads(Path(a.report).read_text())
        if "cpu_fast" in R: return print(R["table"] + "\n\n" + "\n".join(R["explain"]))
        return print(report(R) + "\n\n" + "\n".join(explain(R)))

    dev = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available() else "cpu" if a.device == "auto" else a.device)
    if dev.type == "cuda" and not torch.cuda.is_available(): sys.exit("--device cuda: no CUDA device visible")
    cuda = dev.type == "cuda"
    if a.threads: torch.set_num_threads(a.threads)
    if cuda:
        if dev.index is None: dev = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(dev)
    if a.precision_run:
        R = dict(env=environment(dev), precision_trained=[])
        out = Path(a.out) if a.out else ROOT / "results" / f"precision_{dev.type}.json"
        for run in a.precision_run.split(","):
            R["precision_trained"].append(p := bench_precision_trained(Path(run), dev))
            out.write_text(json.dumps(R, indent=1, default=str))
            print(f"{p['model']} {p['model_kw']} on {p['dataset']}, {p['iters']} iterations trained; {p['n_test']} test images, "
                  f"K={p['K']}, s={p['s']}, {p['seeds']} noise seeds")
            for m, v in p["modes"].items(): print(f"  {m:10s} test MSE {v['mse']:.6f}  ({v['rel_to_fp32']:+.3%} vs fp32)")
        return print(f"wrote {out}")
    if a.cpu_fast:
        R = dict(env=environment(dev), args=vars(a), cpu_fast={}, notes=[
            "iteration = a K-step chain from N(0, I) + one Adam step on sum((x - g(z_K))^2), batch of a synthetic x from the untrained g",
            "naive: the naive fp32 loop and an fp32 update; fast: FastChain(g, K, s, sigma, **fast_defaults(device)) with the update's "
            "forward under precision(amp_dtype, 'cpu') and x in channels-last (what train(fast=True) runs); fast_nchw: bf16 without channels-last",
            "variants interleaved repeat by repeat; speed-up per repeat = naive time / variant time of the same round; median and range",
            "CPU-time speed-up: the same from time.process_time (all threads); with --threads 1 it is nearly free of other processes' load",
            "bare: K forward + latent-gradient passes (no update, no noise) in the variant's mode, each pass timed alone",
            "FLOPs: FlopCounterMode (convolutions and matmuls) of K forward + latent-gradient passes + the update's forward and "
            "parameter backward; floor = FLOPs / the measured rate of a large (2048^2) matmul in fp32 or bf16"])
        out = Path(a.out) if a.out else ROOT / "results" / "bench_cpu_fast.json"
        print(f"device {dev} | {R['env']['cpu']} | native bf16: {R['env']['cpu_bf16'] or 'none'} | torch {torch.__version__} | "
              f"{torch.get_num_threads()} threads | load {os.getloadavg()[0]:.2f}", flush=True)
        load_check("at the start", own=0)
        R["ceilings"] = ceilings(dev, False)
        rep_for = dict(kv.split("=") for kv in a.repeats_for.split(",") if kv)
        for name in a.fast_presets.split(","):
            t0 = time.perf_counter()
            R["cpu_fast"][name] = r = bench_cpu_fast(name, dev, a.batch or 100, a.K or 25, int(rep_for.get(name, a.repeats or 3)),
                                                      [v for v in a.fast_variants.split(",") if v])
            print(f"{name}: " + ", ".join(f"{k} {v['iter']:.3f} s/iter ({v['speedup']:.2f}x)" for k, v in r["variants"].items())
                  + f"  [{time.perf_counter()-t0:.0f} s]", flush=True)
            out.write_text(json.dumps(R, indent=1, default=str))
        again = ceilings(dev, False)
        R["ceilings"] = {k: max(v, again[k]) for k, v in R["ceilings"].items()}
        R["table"], R["explain"] = report_cpu_fast(R)
        out.write_text(json.dumps(R, indent=1, default=str))
        load_check("at the end")
        return print("\n" + R["table"] + "\n\n" + "\n".join(R["explain"]) + f"\n\nwrote {out}")
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)  # many shapes and modes in one process
    B = a.batch or (25 if a.quick else 100); K = a.K or (5 if a.quick else 25)
    repeats = a.repeats or (10 if cuda else 3)
    which = (a.variants or ("naive,ours,graph,compile,fast" if cuda else "naive,ours")).split(",")
    if a.full: Ks, Bs = (5, 25, 100), (25, 100, 400)
    elif a.quick: Ks, Bs = (), ()
    else: Ks, Bs = ((5, 25, 100), (25, 100, 400)) if cuda else ((5, K), (25, B))
    do_prec = cuda if a.precision is None else a.precision

    R = dict(env=environment(dev), args=vars(a), presets={}, scaling=[], notes=[
        "untrained generators (random init, seed 0), synthetic x = clamp(g(z*) + sigma*noise): timings do not depend on the weights; "
        "the precision MSE comparison is only indicative",
        "CPU peak memory: bytes in use by malloc (glibc mallinfo2) above the starting level, sampled every 2 ms; CUDA: max_memory_allocated "
        "above the level before the block; for CUDA graphs, the graph's private pool (from the allocator snapshot) + the peak of a replayed iteration",
        "FLOP floor: FlopCounterMode FLOPs of one forward + latent gradient (matmul/conv only) over the measured peak of a large matmul; "
        "bytes: every aten op's tensor inputs + outputs in the eager step, over a large copy's bytes/s"])
    if not cuda: R["notes"].append("CPU timings taken on a machine shared with other jobs: noisy; medians of interleaved repeats")
    print(f"device {dev} | {R['env'].get('gpu', R['env']['cpu'])} | torch {torch.__version__} | {torch.get_num_threads()} threads", flush=True)
    if not cuda: R["env"]["load_at_start"] = load_check("at the start", own=0)
    R["ceilings"] = ceilings(dev, a.quick)
    print("ceilings:", {k: f"{v/1e12:.2f} T" if "flops" in k else (f"{v/1e9:.0f} GB/s" if "bytes" in k else v) for k, v in R["ceilings"].items()}, flush=True)
    for name in a.presets.split(","):
        t0 = time.perf_counter()
        R["presets"][name] = r = bench_preset(name, dev, B, K, which, repeats, a.quick)
        if not cuda: r["load_after"] = load_check(f"after {name}")
        print(f"{name}: " + ", ".join(f"{k} {v['iter']:.4f} s/iter ({v['step']*1e3:.2f} ms/step, first call {v['first_call_s']:.1f} s)"
                                      for k, v in r["variants"].items()) + f"  [{time.perf_counter()-t0:.0f} s]", flush=True)
    out = Path(a.out) if a.out else ROOT / "results" / f"bench_{dev.type}{'_quick' if a.quick else ''}.json"
    out.parent.mkdir(exist_ok=True)
    def save(final=False):
        if final: R["table"], R["explain"] = report(R), explain(R)
        out.write_text(json.dumps(R, indent=1, default=str))
    save()
    if do_prec:
        R["precision"] = bench_precision("celeba32_l5", dev, B, K, repeats); save()
        print("precision:", {m: (round(v["mse_rel_to_fp32"], 5), round(v["iter"], 4)) if isinstance(v, dict) else v
                             for m, v in R["precision"].items()}, flush=True)
    base = R["presets"].get("celeba32_l5")
    if base and not a.no_stepsize:
        v = base["variants"]
        it = v.get("fast", v["ours"])["iter"] * (100 / base["batch"]) * (25 / base["K"])   # rescaled to batch 100, K=25 (linear in both)
        R["stepsize"] = bench_stepsize(dev, it, a.stepsize_batch or (8 if cuda else 1), a.stepsize_budget); save()
        print("stepsize:", R["stepsize"], flush=True)
    for name in a.scaling_presets.split(",") if Ks or Bs else []:
        R["scaling"] += bench_scaling(name, dev, Ks, Bs, K, B, [w for w in which if w in ("ours", "fast")], repeats,
                                      R["presets"].get(name)); save()
    again = ceilings(dev, a.quick)            # a shared machine's load changes: keep the better of two measurements
    R["ceilings"] = {k: max(v, again[k]) for k, v in R["ceilings"].items()}
    if not cuda: R["env"]["load_at_end"] = load_check("at the end")
    save(final=True)
    print("\n" + R["table"] + "\n\n" + "\n".join(R["explain"]) + f"\n\nwrote {out}")

if __name__ == "__main__":
    main()
