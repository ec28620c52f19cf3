"Regenerate README.md from nbs/index.ipynb and results/*.json (Quarto, and so nbdev_readme, is not available here)."
from shortrun_lvm.repro import write_readme

if __name__ == "__main__": print("wrote", write_readme())
