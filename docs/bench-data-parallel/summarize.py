import csv, sys, statistics as st
for name in ["one","one-2000","devices-2","nodes-2"]:
    rows=list(csv.DictReader(open(f"{sys.argv[1]}/{name}/metrics.csv")))
    prod=[float(r["solve_s"])/int(r["solver_iterations"]) for r in rows]
    el=[float(r["elapsed_s"]) for r in rows]
    it=[el[0]]+[b-a for a,b in zip(el,el[1:])]
    print(f"{name:10s} per product median {st.median(prod)*1e3:7.1f} ms [{min(prod)*1e3:.1f}-{max(prod)*1e3:.1f}]  per iteration median {st.median(it):6.2f} s [{min(it):.2f}-{max(it):.2f}]  products {[r['curvature_products'] for r in rows]} grad_s {st.median(float(r['gradient_s']) for r in rows):.3f}")
