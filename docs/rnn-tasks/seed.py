"""Lays a committed study's runs out as finished runs, so that regenerate.sh resumes
from them on a machine that does not have the study's directory.

    python3 docs/rnn-tasks/seed.py docs/rnn-tasks OUT
    sh docs/rnn-tasks/regenerate.sh OUT

It copies results.json into OUT and writes each run's record as
OUT/runs/<task>-T<length>-<method>/method.json, which `hessfree experiment rnn-tasks
--resume` reuses instead of running that method again. Runs already in OUT are
overwritten. (The sweep lives in docs/rnn-tasks/sweep, for OUT-sweep.)
"""
import json
import os
import shutil
import sys


def run_name(run):
    """The run directory's suffix, as `hessfree` names it: hf, or adam-3e-4 for lr 0.0003."""
    if run["method"] == "hf":
        return "hf"
    mantissa, exponent = f"{run['learning_rate']:e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{run['method']}-{mantissa}e{int(exponent)}"


def main(src, out):
    with open(os.path.join(src, "results.json")) as f:
        study = json.load(f)
    os.makedirs(os.path.join(out, "runs"), exist_ok=True)
    shutil.copy(os.path.join(src, "results.json"), os.path.join(out, "results.json"))
    for comparison in study["comparisons"]:
        for run in comparison["result"]["runs"]:
            name = f"{comparison['task']}-T{comparison['length']}-{run_name(run)}"
            directory = os.path.join(out, "runs", name)
            os.makedirs(directory, exist_ok=True)
            with open(os.path.join(directory, "method.json"), "w") as f:
                json.dump(run, f)
            print(directory)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: seed.py COMMITTED_STUDY_DIR OUT")
    main(sys.argv[1], sys.argv[2])
