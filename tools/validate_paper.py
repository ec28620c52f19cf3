"""Validate every reproduction notebook's `paper` preset on this device before spending GPU-days on it.

Each notebook runs through papermill with `preset=paper` and $SHORTRUN_LVM_VALIDATE=N: every training stops after
N iterations and every evaluation draws at most `runio.VALIDATE_N` samples, so each stage (data, training,
evaluation, FID/KID, writing results) runs once, in minutes. The notebooks' results go to a temporary directory;
this script prints each notebook's projected full-run time (from the measured speed of every stage) and writes
them to results/validate_paper_<device>.json.

    python tools/validate_paper.py                      # every notebook, 2 iterations per run (make validate-paper)
    python tools/validate_paper.py --notebooks mnist --iters 3 --out /tmp/v.json
"""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ("cifar", "mnist", "celeba", "inpaint", "hierarchy", "stepsize", "svhn")


def run_one(nb, iters, device, tmp, kernel):
    "Run repro_<nb> at the paper preset as a validation run; its summary dict."
    out = tmp / nb
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SHORTRUN_LVM_VALIDATE=str(iters))
    cmd = [sys.executable, "-m", "papermill", "-k", kernel, "--cwd", "nbs", f"nbs/repro_{nb}.ipynb", str(out / "out.ipynb"),
           "-p", "preset", "paper", "-p", "device", device, "-p", "out_dir", str(out)]
    t0, load0 = time.time(), os.getloadavg()[0]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = round(time.time() - t0, 1)
    # the machine's 1-minute load average before and after: the projections scale with it on a shared machine
    load = dict(before=round(load0, 2), after=round(os.getloadavg()[0], 2), cpus=os.cpu_count())
    res = out / "results" / f"repro_{nb}.json"
    if r.returncode != 0 or not res.is_file():
        err = [l for l in (r.stderr or "").splitlines() if l.strip() and "Warning" not in l]
        return dict(notebook=f"repro_{nb}", ok=False, wall_seconds=wall, load=load, error="\n".join(err[-6:]))
    return summary(nb, json.loads(res.read_text()), wall, load)


def summary(nb, d, wall, load):
    "The row of a finished validation run of repro_<nb>: `d` its results JSON, `wall` its seconds, `load` the machine's load."
    v = d.get("validation") or {}
    rec = round(sum(r["seconds"] for r in v.get("records") or []), 1)
    # a notebook whose data are missing runs through without a stage: it says so rather than project nothing as 0 h
    why = None if v.get("records") else next((r["note"] for r in d.get("rows", []) if r.get("ours") is None and r.get("note")),
                                             "no stage recorded")
    # unrecorded_seconds: the wall-clock the records do not cover (start-up, data, figures, anything not recorded); a stage
    # missing from the projection shows up here
    return dict(notebook=f"repro_{nb}", ok=True, git_commit=d.get("git_commit"), nothing_ran=why, wall_seconds=wall, recorded_seconds=rec,
                unrecorded_seconds=round(wall - rec, 1), load=load, hardware=d.get("hardware"), iterations=v.get("iterations"),
                projection=v.get("projection"), records=v.get("records"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--notebooks", default=",".join(NOTEBOOKS), help="comma-separated: " + ",".join(NOTEBOOKS))
    ap.add_argument("--iters", type=int, default=2, help="training iterations per run (the first, a warm-up, is recorded apart as a one-off)")
    ap.add_argument("--device", default="auto", help="the notebooks' device parameter")
    ap.add_argument("--kernel", default="shortrun_lvm", help="the Jupyter kernel (make installs it)")
    ap.add_argument("--out", default=None, help="the JSON to write (default results/validate_paper_<cpu|cuda>.json)")
    a = ap.parse_args(argv)
    nbs = [n.strip() for n in a.notebooks.split(",") if n.strip()]
    if bad := [n for n in nbs if n not in NOTEBOOKS]: ap.error(f"unknown notebook(s) {bad}; choose from {', '.join(NOTEBOOKS)}")
    if a.iters < 2: ap.error("--iters must be at least 2 (the first iteration carries the warm-up and is not timed)")
    import torch
    kind = "cuda" if (a.device == "auto" and torch.cuda.is_available()) or a.device.startswith("cuda") else "cpu"
    from shortrun_lvm.repro import git_commit
    tmp, commit = Path(tempfile.mkdtemp(prefix="srl_validate_")), git_commit()
    rows, out = [], Path(a.out) if a.out else ROOT / "results" / f"validate_paper_{kind}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    for nb in nbs:
        print(f"repro_{nb}: paper preset, {a.iters} iterations per run ...", flush=True)
        r = run_one(nb, a.iters, a.device, tmp, a.kernel)
        rows.append(r)
        if r["ok"] and r["nothing_ran"]: print(f"  ran through in {r['wall_seconds']:.0f} s without a stage: {r['nothing_ran']}", flush=True)
        elif r["ok"]:
            p = r["projection"] or {}
            print(f"  ok in {r['wall_seconds']:.0f} s ({r['unrecorded_seconds']:.0f} s of it outside the recorded stages); projected full run: {p.get('total_hours')} h "
                  f"({', '.join(f'{k} {v / 3600:.2f} h' for k, v in (p.get('by_unit') or {}).items())}) on {r['hardware']}", flush=True)
        else: print(f"  FAILED after {r['wall_seconds']:.0f} s:\n    " + r["error"].replace("\n", "\n    "), flush=True)
        # written after every notebook, so a validation cut off keeps the notebooks it finished
        out.write_text(json.dumps(dict(device=kind, iterations=a.iters, git_commit=commit, date=time.strftime("%Y-%m-%dT%H:%M:%S"), notebooks=rows), indent=1))
    print(f"wrote {out}; run outputs in {tmp}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
