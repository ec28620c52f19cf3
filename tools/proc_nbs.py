"""Run nbdev's docs processing (what `nbdev_proc_nbs`/`nbdev_docs` do before Quarto renders) on notebooks, without Quarto.

    python tools/proc_nbs.py                      # every notebook in nbs/
    python tools/proc_nbs.py nbs/00_data.ipynb    # some

Each notebook is processed in a fresh process into a temporary folder; prints one line per notebook and exits 1
if any failed. Unlike `nbdev_proc_nbs`, it never tries to install Quarto (nbdev then runs `pip install -e .[dev]`).
"""
import multiprocessing as mp, os, sys, tempfile, time, traceback, warnings
from pathlib import Path

def _proc(src, dst, q):
    try:
        os.environ["IN_TEST"] = "1"
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            from execnb.nbio import read_nb, write_nb
            from nbdev.processors import FilterDefaults
            os.chdir(Path(src).parent)
            nb = read_nb(src); FilterDefaults()(nb); write_nb(nb, dst)
        mixed = [x for x in w if "imports and other code" in str(x.message)]
        q.put((True, f"{len(mixed)} cell(s) mix imports and other code" if mixed else ""))
    except BaseException as e:
        q.put((False, "".join(traceback.format_exception_only(type(e.__cause__ or e), e.__cause__ or e)).strip()
               + "\n" + str(e).splitlines()[0]))

def main(paths):
    root = Path(__file__).resolve().parents[1]
    nbs = [Path(p).resolve() for p in paths] or sorted(p for p in (root / "nbs").glob("*.ipynb") if not p.name.startswith("_"))
    failed, ctx = 0, mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as d:
        for nb in nbs:
            q, t0 = ctx.Queue(), time.time()
            p = ctx.Process(target=_proc, args=(str(nb), str(Path(d) / nb.name), q)); p.start(); p.join()
            ok, msg = q.get() if not q.empty() else (False, f"process exited with {p.exitcode}")
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {nb.name} ({time.time() - t0:.0f} s){': ' + msg if msg else ''}", flush=True)
    print(f"proc_nbs: {len(nbs) - failed} of {len(nbs)} notebooks processed, {failed} failed")
    return 1 if failed else 0

if __name__ == "__main__": sys.exit(main(sys.argv[1:]))
