"""Where a gradient's or a Gauss-Newton product's CPU time goes, per kind of operation,
from a `perf` profile of `speed_vs_jax --only ...` (issue 22).

    cargo build --release -p hf-models --example speed_vs_jax
    perf record -F 999 -o perf.data -- \
        target/release/examples/speed_vs_jax --backends flex --models mnist --only gradient --repeats 30
    python3 hf-models/examples/profile_kinds.py perf.data

Every sample's function (self time, the symbol the CPU was in) goes to the first kind
whose pattern it matches, in the order below (the kernel's functions to a kind of
their own); the share is of all samples, set-up
(data loading, the first call) included, so profile a run long enough for the timed
calls to dominate. The patterns follow the names of burn 0.21's and the kernels'
functions; `other` lists its largest symbols so that a new name can be classified.
"""

import re
import subprocess
import sys

KINDS = [
    ("matrix multiply", r"gemm|faer|matrixmultiply|sgemm|dgemm|nano_gemm|private_gemm|pulp::|dot_product|openblas"),
    ("allocation (malloc, free, mmap)", r"malloc|free|realloc|calloc|__rust_alloc|__rust_dealloc|alloc::alloc|"
                                        r"mmap|munmap|brk|sysmalloc|_int_|tcache|arena|unlink_chunk|peak_alloc"),
    ("threads (rayon, waits)", r"rayon|crossbeam|futex|sched|spin|yield|park|pthread|steal"),
    ("copies (memcpy, contiguous, cat, slice)", r"memcpy|memmove|copy|contiguous|clone|cat|slice|permute|transpose|"
                                                r"swap_dims|reshape|expand|gather|scatter|to_vec|into_data|from_data"),
    ("fill (memset, zeros)", r"memset|fill|zeros|full"),
    ("reductions (sum, mean)", r"sum|reduce|mean|fold"),
    ("elementwise (arithmetic, tanh, exp, log)", r"fast::math|tanh|exp|log|sigmoid|binary|unary|scalar|macerator|add|sub|mul|"
                                                 r"div|neg|powi|pow|sqrt|abs|map|zip|broadcast|float_|simd"),
    ("autodiff graph and bookkeeping", r"burn_autodiff|graph|hashbrown|HashMap|Arc|drop_in_place|checkpoint|"
                                       r"node|backward|Step|tensor_id|RandomState"),
]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    report = subprocess.run(
        ["perf", "report", "-i", sys.argv[1], "--stdio", "--no-children", "--sort", "symbol", "--percent-limit", "0"],
        capture_output=True, text=True, check=True).stdout
    kernel = "the kernel (page faults, zeroing new pages, scheduling)"
    shares = {name: 0.0 for name, _ in KINDS}
    shares[kernel] = 0.0
    shares["other"] = 0.0
    others = []
    for line in report.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\[[.k]\])\s+(.*)", line)
        if not m:
            continue
        share, space, symbol = float(m.group(1)), m.group(2), m.group(3).strip()
        name = f"{space} {symbol}"
        if space == "[k]":
            shares[kernel] += share
            continue
        for kind, pattern in KINDS:
            if re.search(pattern, symbol, re.IGNORECASE):
                shares[kind] += share
                break
        else:
            shares["other"] += share
            others.append((share, name))
    print("| kind | share of CPU time |")
    print("|---|---|")
    for kind, share in sorted(shares.items(), key=lambda kv: -kv[1]):
        print(f"| {kind} | {share:.1f}% |")
    others.sort(reverse=True)
    if others:
        print("\nlargest unclassified symbols:")
        for share, name in others[:12]:
            print(f"  {share:5.2f}%  {name[:140]}")


if __name__ == "__main__":
    main()
