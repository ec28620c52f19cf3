"bf16 (train(fast=True), this CPU's defaults) against fp32 (fast=False): the same short MNIST training, 3 seeds. Usage: python bench/precision_train.py ITERS fp32|bf16 -> results in /tmp/b16 (issue 17)."
import json, sys, time, torch
from shortrun_lvm.train import get_config, train
from shortrun_lvm.fast import cpu_bf16_support
torch.set_num_threads(1)
out = {"cpu_bf16": list(cpu_bf16_support()), "runs": []}
for seed in (1, 2, 3):
    for mode in sys.argv[2].split(","):
        cfg = get_config("mnist", model_kw=dict(ngf=16), batch_size=32, K=25, lr=1e-3, lr_milestones=(), max_iters=int(sys.argv[1]),
                         seed=seed, eval_n=500, n_test=500, sample_every=10**6, ckpt_every=10**6, log_every=50, progress=False,
                         out_dir=f"/tmp/b16/{mode}_{seed}", overwrite=True, fast=(mode == "bf16"), device="cpu")
        t = time.time(); r = train(cfg); dt = time.time() - t
        out["runs"].append(dict(mode=mode, seed=seed, iters=r.metrics["iters"], test_mse_pm1=r.metrics["test_mse_pm1"],
                                train_mse_pm1=r.metrics.get("mse_pm1"), seconds=dt))
        print(out["runs"][-1], flush=True)
        json.dump(out, open(f"/tmp/b16/result_{sys.argv[2]}.json", "w"), indent=1)
