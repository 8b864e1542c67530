"""JAX's gradient, Gauss-Newton product and Adam step on the arrays `speed_vs_jax.rs`
exported: checks JAX's values against hf's and prints both timings side by side.

    cargo run --release -p hf-models --example speed_vs_jax -- --out /tmp/vs-jax
    python3 -m venv /tmp/V && /tmp/V/bin/pip install "jax[cpu]" optax
    /tmp/V/bin/python hf-models/examples/speed_vs_jax.py /tmp/vs-jax

JAX is never a dependency of hf's build or tests; this script only measures.

The network is Martens' autoencoder as hf-models builds it: `h W + b` per layer,
logistic units except the linear code layer and the output layer, whose logits go to
the cross-entropy `-sum t log s(z) + (1 - t) log s(-z)` per case, averaged over the
batch. hf's parameter vector holds every weight matrix (row-major, `[fan_in,
fan_out]`) in layer order, then every bias; `layout.json` lists the shapes and the
script refuses any other order. The Gauss-Newton product is `J^T H_L J v / R` with
`H_L = diag(p (1 - p))`, by `jax.jvp` then `jax.vjp`, both inside one `jax.jit` and,
like hf's, with `theta` and `v` as flat vectors.

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


def timed(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return {"median_s": statistics.median(times), "min_s": times[0], "max_s": times[-1]}


def unflatten(flat, sizes):
    """hf's order: every weight matrix, then every bias."""
    layers = len(sizes) - 1
    weights, biases, offset = [], [], 0
    for i in range(layers):
        n = sizes[i] * sizes[i + 1]
        weights.append(flat[offset:offset + n].reshape(sizes[i], sizes[i + 1]))
        offset += n
    for i in range(layers):
        biases.append(flat[offset:offset + sizes[i + 1]])
        offset += sizes[i + 1]
    return weights, biases


def logits(weights, biases, x, code):
    h = x
    last = len(weights) - 1
    for i, (w, b) in enumerate(zip(weights, biases)):
        z = h @ w + b
        h = z if i in (code, last) else jax.nn.sigmoid(z)
    return h


def mean_loss(z, t):
    per_case = -(t * jax.nn.log_sigmoid(z) + (1.0 - t) * jax.nn.log_sigmoid(-z)).sum(axis=1)
    return per_case.mean()


def relative(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def model_run(directory, model, repeats, hf_results):
    d = os.path.join(directory, model)
    layout = json.load(open(os.path.join(d, "layout.json")))
    sizes, code = layout["sizes"], layout["code_layer"]
    expected = [[sizes[i], sizes[i + 1]] for i in range(len(sizes) - 1)] + [[s] for s in sizes[1:]]
    if layout["shapes"] != expected:
        sys.exit(f"{model}: hf's parameter layout {layout['shapes']} is not weights-then-biases {expected}")
    theta = jnp.asarray(np.load(os.path.join(d, "theta.npy")))
    v = jnp.asarray(np.load(os.path.join(d, "v.npy")))
    x = jnp.asarray(np.load(os.path.join(d, "x.npy")))
    batch = x.shape[0]

    def objective(flat):
        w, b = unflatten(flat, sizes)
        return mean_loss(logits(w, b, x, code), x)

    def outputs(flat):
        w, b = unflatten(flat, sizes)
        return logits(w, b, x, code)

    gradient = jax.jit(jax.value_and_grad(objective))

    @jax.jit
    def gn_product(flat, direction):
        z, jv = jax.jvp(outputs, (flat,), (direction,))
        p = jax.nn.sigmoid(z)
        _, pullback = jax.vjp(outputs, flat)
        return pullback(p * (1.0 - p) * jv / batch)[0]

    f, g = gradient(theta)
    gv = gn_product(theta, v)
    hf_g = np.load(os.path.join(d, "gradient.npy"))
    hf_gv = np.load(os.path.join(d, "gn_product.npy"))
    agreement = {
        "objective_relative": abs(float(f) - layout["objective"]) / abs(layout["objective"]),
        "gradient_relative": relative(np.asarray(g), hf_g),
        "gn_product_relative": relative(np.asarray(gv), hf_gv),
    }

    grad_t = timed(lambda: gradient(theta)[1].block_until_ready(), repeats)
    gn_t = timed(lambda: gn_product(theta, v).block_until_ready(), repeats)

    import optax

    # burn's AdamConfig defaults: β₁ 0.9, β₂ 0.999, ε 1e-5.
    adam = optax.adam(1e-3, b1=0.9, b2=0.999, eps=1e-5)
    params = unflatten(theta, sizes)
    opt_state = adam.init(params)

    @jax.jit
    def adam_step(params, opt_state):
        grads = jax.grad(lambda p: mean_loss(logits(p[0], p[1], x, code), x))(params)
        updates, opt_state = adam.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    state = [params, opt_state]

    def one_step():
        state[0], state[1] = adam_step(state[0], state[1])
        jax.block_until_ready(state[0])

    adam_t = timed(one_step, repeats)

    matmuls = []
    rng = np.random.default_rng(0)
    for (m, k, n, transposed) in [(batch, sizes[0], sizes[1], False), (batch, sizes[1], sizes[2], False),
                                  (sizes[0], batch, sizes[1], True)]:
        a_np = rng.standard_normal((k, m) if transposed else (m, k), dtype=np.float32)
        b_np = rng.standard_normal((k, n), dtype=np.float32)
        a, b = jnp.asarray(a_np), jnp.asarray(b_np)
        mm = jax.jit((lambda a, b: a.T @ b) if transposed else (lambda a, b: a @ b))
        t_jax = timed(lambda: mm(a, b).block_until_ready(), max(repeats, 9))["median_s"]
        a_np_used = a_np.T if transposed else a_np
        t_np = timed(lambda: a_np_used @ b_np, max(repeats, 9))["median_s"]
        flops = 2.0 * m * k * n
        matmuls.append({"m": m, "k": k, "n": n, "lhs_transposed": transposed,
                        "jax_gflops": flops / t_jax / 1e9, "numpy_gflops": flops / t_np / 1e9})

    return {"model": model, "params": int(theta.shape[0]), "batch": batch, "agreement": agreement,
            "gradient": grad_t, "gn_product": gn_t, "adam_step": adam_t, "matmuls": matmuls}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    hf = json.load(open(os.path.join(args.directory, "hf.json")))
    models = sorted({r["model"] for r in hf["results"]}, key=["mnist", "curves"].index)
    jax_results = [model_run(args.directory, m, args.repeats, hf) for m in models]

    lines = [
        "| model | backend | gradient hf | gradient JAX | ratio | GN product hf | GN product JAX | ratio "
        "| Adam step hf | Adam step JAX | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for j in jax_results:
        for h in (r for r in hf["results"] if r["model"] == j["model"]):
            row = [j["model"], h["backend"]]
            for key in ("gradient", "gn_product", "adam_step"):
                a, b = h[key]["median_s"], j[key]["median_s"]
                row += [f"{1e3 * a:.1f} ms", f"{1e3 * b:.1f} ms", f"**{a / b:.2f}**"]
            lines.append("| " + " | ".join(row) + " |")
    lines += ["", "| model | shape (m×k×n) | " + " | ".join(
        f"{r['backend']} GFLOP/s" for r in hf["results"] if r["model"] == models[0]) + " | JAX GFLOP/s | numpy GFLOP/s |",
        "|---|---|" + "---|" * (len([r for r in hf["results"] if r["model"] == models[0]]) + 2)]
    for j in jax_results:
        hf_rows = [r for r in hf["results"] if r["model"] == j["model"]]
        for i, mm in enumerate(j["matmuls"]):
            shape = f"{mm['m']}×{mm['k']}×{mm['n']}" + (" (lhsᵀ)" if mm["lhs_transposed"] else "")
            cells = [f"{r['matmuls'][i]['gflops']:.0f}" for r in hf_rows]
            lines.append(f"| {j['model']} | {shape} | " + " | ".join(cells)
                         + f" | {mm['jax_gflops']:.0f} | {mm['numpy_gflops']:.0f} |")
    lines += ["", "| model | objective rel. diff | gradient rel. diff | GN product rel. diff |", "|---|---|---|---|"]
    for j in jax_results:
        a = j["agreement"]
        lines.append(f"| {j['model']} | {a['objective_relative']:.1e} | {a['gradient_relative']:.1e} "
                     f"| {a['gn_product_relative']:.1e} |")
    table = "\n".join(lines)
    print(f"JAX {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPUs; hf: {hf['command']}")
    print(table)
    json.dump({"jax_version": jax.__version__, "results": jax_results},
              open(os.path.join(args.directory, "jax.json"), "w"), indent=2)
    open(os.path.join(args.directory, "comparison.md"), "w").write(table + "\n")
    worst = max(max(j["agreement"].values()) for j in jax_results)
    if worst > 1e-5:
        sys.exit(f"hf and JAX disagree: relative difference {worst:.1e} > 1e-5")


if __name__ == "__main__":
    main()
