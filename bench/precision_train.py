"""bf16 against fp32 in training (issue 17): the same short MNIST run with `train(fast=True)` in bf16 autocast + channels-last
(what `fast_defaults` gives on a CPU with native bf16) and with `fast=False` (the fp32 loop), seeds 1-3.

    python bench/precision_train.py ITERS fp32|bf16|fp32,bf16 [OUT_DIR]     # OUT_DIR default: runs/precision_train

Two processes (one per mode, 1 thread each) can run side by side; each writes OUT_DIR/result_<modes>.json.
results/precision_train_cpu.json summarises the committed run (150 iterations)."""
import json, sys, time, torch
from pathlib import Path
from shortrun_lvm.train import get_config, train
from shortrun_lvm.fast import cpu_bf16_support

iters, modes = int(sys.argv[1]), sys.argv[2].split(",")
out_dir = Path(sys.argv[3]) if len(sys.argv) > 3 else Path(__file__).resolve().parents[1] / "runs" / "precision_train"
if bad := set(modes) - {"fp32", "bf16"}: sys.exit(f"precision_train: unknown mode(s) {sorted(bad)}: fp32, bf16")
out_dir.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(1)
out = {"cpu_bf16": list(cpu_bf16_support()), "runs": []}
BF16 = dict(amp="bfloat16", channels_last=True)          # = fast_defaults on a CPU with native bf16, explicit elsewhere
for seed in (1, 2, 3):
    for mode in modes:
        cfg = get_config("mnist", model_kw=dict(ngf=16), batch_size=32, K=25, lr=1e-3, lr_milestones=(), max_iters=iters,
                         seed=seed, eval_n=500, n_test=500, sample_every=10**6, ckpt_every=10**6, log_every=50, progress=False,
                         out_dir=str(out_dir / f"{mode}_{seed}"), overwrite=True, device="cpu",
                         fast=(mode == "bf16"), fast_kw=BF16 if mode == "bf16" else {})
        t = time.time(); r = train(cfg); dt = time.time() - t
        out["runs"].append(dict(mode=mode, seed=seed, iters=r.metrics["iters"], test_mse_pm1=r.metrics["test_mse_pm1"],
                                train_mse_pm1=r.metrics.get("mse_pm1"), seconds=dt))
        print(out["runs"][-1], flush=True)
        (out_dir / f"result_{'_'.join(modes)}.json").write_text(json.dumps(out, indent=1))
