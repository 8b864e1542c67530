"""JAX's recurrent Gauss-Newton product on the arrays `rnn_vs_jax.rs` exported: checks
JAX's products against hf's and prints both timings side by side (issue 23).

    cargo run --release -p hf-models --example rnn_vs_jax -- --out /tmp/rnn-vs-jax
    python3 -m venv /tmp/V && /tmp/V/bin/pip install "jax[cpu]"
    /tmp/V/bin/python hf-models/examples/rnn_vs_jax.py /tmp/rnn-vs-jax

JAX is never a dependency of hf's build or tests; this script only measures.

The network is hf-models' `TanhRnn`: `h_t = tanh(x_t W_in + h_{t-1} W_rec + b)` from
a learned initial state `h_0`, one linear output `z = h_T W_out + c` at the last step,
squared error. hf's parameter vector holds, in order, `W_in [2, 100]`, `W_rec [100,
100]`, `b`, `W_out [100, 1]`, `c`, `h_0` (row-major); `layout.json` lists the shapes
and the script refuses any other. The recurrence is a `jax.lax.scan`.

Two products, both `J^T w(J v)` by `jax.jvp` then `jax.vjp` inside one `jax.jit`,
with `theta` and `v` as flat vectors, like hf's:
- plain Gauss-Newton, `w = J_z v / R` (`R` output rows);
- with structural damping, `w` adds `mu lambda / R * (J_S v) / (1 - h^2)` on the
  hidden states `S` (the tanh units' matching loss, hf's default).

Timings are medians of `--repeats` calls after a warm-up (which also compiles), each
ending with `block_until_ready`. Writes `jax.json` and `comparison.md` next to the
inputs.
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

import jax
import jax.numpy as jnp

SHAPES = [[2, 100], [100, 100], [100], [100, 1], [1], [100]]


def timed(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return {"median_s": statistics.median(times), "min_s": times[0], "max_s": times[-1]}


def unflatten(flat):
    pieces, offset = [], 0
    for shape in SHAPES:
        n = int(np.prod(shape))
        pieces.append(flat[offset:offset + n].reshape(shape))
        offset += n
    return pieces


def run(theta, x):
    """Outputs `[cases, 1]` and hidden states `[cases, steps, hidden]`."""
    w_in, w_rec, b, w_out, c, h0 = unflatten(theta)
    cases = x.shape[0]
    projected = jnp.einsum("nti,ih->tnh", x, w_in) + b

    def step(h, p):
        h = jnp.tanh(p + h @ w_rec)
        return h, h

    last, states = jax.lax.scan(step, jnp.broadcast_to(h0, (cases, h0.shape[0])), projected)
    return last @ w_out + c, jnp.swapaxes(states, 0, 1)


def products(mu, lam):
    def plain(theta, v, x):
        (z, _), (jz, _) = jax.jvp(lambda t: run(t, x), (theta,), (v,))
        rows = z.shape[0]
        _, pullback = jax.vjp(lambda t: run(t, x)[0], theta)
        return pullback(jz / rows)[0]

    def structural(theta, v, x):
        (z, h), (jz, jh) = jax.jvp(lambda t: run(t, x), (theta,), (v,))
        rows = z.shape[0]
        metric = 1.0 / jnp.maximum(1.0 - h * h, 1e-12)
        _, pullback = jax.vjp(lambda t: run(t, x), theta)
        return pullback((jz / rows, mu * lam / rows * metric * jh))[0]

    return jax.jit(plain), jax.jit(structural)


def relative(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()
    d = args.directory
    with open(os.path.join(d, "layout.json")) as f:
        layout = json.load(f)
    if layout["shapes"] != SHAPES:
        sys.exit(f"unexpected parameter layout {layout['shapes']}, expected {SHAPES}")
    with open(os.path.join(d, "hf.json")) as f:
        hf = json.load(f)
    theta = jnp.asarray(np.load(os.path.join(d, "theta.npy")))
    v = jnp.asarray(np.load(os.path.join(d, "v.npy")))
    x = jnp.asarray(np.load(os.path.join(d, "x.npy")))
    plain, structural = products(layout["mu"], layout["lambda"])
    checks = {}
    for name, fn, file in [("gn_product", plain, "gn_product.npy"),
                           ("gn_product_structural", structural, "gn_product_structural.npy")]:
        got = np.asarray(fn(theta, v, x))
        checks[name] = relative(got, np.load(os.path.join(d, file)))
    worst = max(checks.values())
    timings = {
        "gn_product": timed(lambda: plain(theta, v, x).block_until_ready(), args.repeats),
        "gn_product_structural": timed(lambda: structural(theta, v, x).block_until_ready(), args.repeats),
    }
    report = {"jax": jax.__version__, "devices": [str(dv) for dv in jax.devices()],
              "relative_difference_to_hf": checks, "timings": timings}
    with open(os.path.join(d, "jax.json"), "w") as f:
        json.dump(report, f, indent=2)
    lines = [f"RNN Gauss-Newton product, {layout['cases']} cases x {layout['steps']} steps, 100 tanh units, f32; "
             f"JAX {jax.__version__}; medians, ms",
             "", "| backend | product | hf, forward mode (the default) | hf, the RNN's own R-operator | JAX "
             "| forward mode / JAX | own / JAX |",
             "|---|---|---|---|---|---|---|"]
    for r in hf["results"]:
        for key, label in [("gn_product", "plain"), ("gn_product_structural", "structural damping")]:
            ours, generic, theirs = r[key]["median_s"], r["generic_" + key]["median_s"], timings[key]["median_s"]
            lines.append(f"| {r['backend']} | {label} | {1e3 * generic:.2f} | {1e3 * ours:.2f} | {1e3 * theirs:.2f} "
                         f"| {generic / theirs:.2f} | {ours / theirs:.2f} |")
    lines += ["", "relative difference of JAX's products to hf's: "
              + ", ".join(f"{k} {v:.1e}" for k, v in checks.items())]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(d, "comparison.md"), "w") as f:
        f.write(text)
    print(text)
    if worst > 1e-4:
        sys.exit(f"JAX's products differ from hf's by {worst:.1e} (relative): not the same computation")


if __name__ == "__main__":
    main()
