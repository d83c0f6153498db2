#!/usr/bin/env python3
"""Regenerates the libCacheSim reference miss counts MoeLab's cache policies are tested against.

Usage: regenerate.py LCS_MISSES_BINARY [MIXTRAL_LINES]
  LCS_MISSES_BINARY  lcs_misses.c (this folder) built inside libCacheSim's tree, see README.md
  MIXTRAL_LINES      /work/shared/traces/mixtral-8x7b-h39s.lines (optional; its rows are kept when absent)

Writes ../synthetic-8x32.lines (when missing) and ../libcachesim-misses.csv.
"""
import csv, os, random, struct, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.dirname(HERE)
SYNTHETIC = os.path.join(DATA, "synthetic-8x32.lines")
OUT = os.path.join(DATA, "libcachesim-misses.csv")
ALGOS = ["lru", "fifo", "lfu", "arc", "s3fifo", "belady"]


def expert_bytes(layer, expert):
    """Varied per-expert sizes for the byte-size runs (mirrored in LibCacheSimEqualityTests)."""
    return 1000 + 250 * ((7 * layer + 13 * expert) % 5)


def make_synthetic(path, layers=8, experts=32, top=2, tokens=500, seed=20261125):
    """Per-layer Zipf(1.1) popularity over a shuffled expert order, 50% reuse of the previous token's choice."""
    rng = random.Random(seed)
    weights = [1.0 / (r + 1) ** 1.1 for r in range(experts)]
    order = []
    for _ in range(layers):
        o = list(range(experts))
        rng.shuffle(o)
        order.append(o)
    prev = [[] for _ in range(layers)]
    with open(path, "w") as f:
        for _ in range(tokens):
            for l in range(layers):
                chosen = []
                while len(chosen) < top:
                    if prev[l] and rng.random() < 0.5:
                        e = rng.choice(prev[l])
                    else:
                        e = order[l][rng.choices(range(experts), weights)[0]]
                    if e not in chosen:
                        chosen.append(e)
                prev[l] = chosen
                f.write(",".join(map(str, chosen)) + "\n")


def requests(lines_path, layers, skip_tokens):
    with open(lines_path) as f:
        rows = [line.strip() for line in f if line.strip()]
    out = []
    for s, row in enumerate(rows):
        token, layer = divmod(s, layers)
        if token < skip_tokens:
            continue
        for e in row.split(","):
            out.append((token - skip_tokens, layer, int(e)))
    return out


def write_oracle_general(path, reqs, experts_per_layer, size_of):
    ids = [layer * experts_per_layer + e for _, layer, e in reqs]
    nxt = [-1] * len(ids)
    seen = {}
    for i in range(len(ids) - 1, -1, -1):
        nxt[i] = seen.get(ids[i], -2) + 1 if ids[i] in seen else -1
        seen[ids[i]] = i
    with open(path, "wb") as f:
        for (token, layer, e), obj, n in zip(reqs, ids, nxt):
            f.write(struct.pack("<IQIq", token, obj, size_of(layer, e), n))


def run(driver, trace_path, algo, sizes):
    out = subprocess.run([driver, trace_path, algo, ",".join(map(str, sizes))], check=True, capture_output=True, text=True).stdout
    return [line.split(",") for line in out.strip().splitlines()]


def main():
    driver = sys.argv[1]
    mixtral = sys.argv[2] if len(sys.argv) > 2 else None
    if not os.path.exists(SYNTHETIC):
        make_synthetic(SYNTHETIC)
    traces = [("synthetic-8x32", SYNTHETIC, 8, 32, 0, [8, 16, 24, 32, 48, 64, 96, 128])]
    if mixtral and os.path.exists(mixtral):
        traces.append(("mixtral-8x7b-h39s", mixtral, 32, 8, 1, [16, 32, 48, 64, 96, 128, 192]))
    rows = []
    kept = []
    if os.path.exists(OUT):
        with open(OUT) as f:
            kept = [r for r in csv.DictReader(f) if r["trace"] not in {t[0] for t in traces}]
    with tempfile.TemporaryDirectory() as tmp:
        for name, path, layers, experts, skip, unit_sizes in traces:
            reqs = requests(path, layers, skip)
            unit = os.path.join(tmp, name + ".unit.oracleGeneral.bin")
            write_oracle_general(unit, reqs, experts, lambda l, e: 1)
            sized = os.path.join(tmp, name + ".bytes.oracleGeneral.bin")
            write_oracle_general(sized, reqs, experts, expert_bytes)
            uniform = os.path.join(tmp, name + ".uniform.oracleGeneral.bin")
            write_oracle_general(uniform, reqs, experts, lambda l, e: 1500)
            byte_sizes = [s * 1500 + 700 for s in unit_sizes]  # not multiples of any expert size
            for algo in ALGOS:
                for unit_name, trace_file in [("experts", unit), ("bytes", sized if algo != "belady" else uniform)]:
                    sizes = unit_sizes if unit_name == "experts" else byte_sizes
                    for a, size, n, misses, miss_bytes, fnv in run(driver, trace_file, algo, sizes):
                        rows.append({"trace": name, "skip_tokens": skip, "algo": algo, "unit": unit_name,
                                     "sizes": "unit" if unit_name == "experts" else ("uniform-1500" if algo == "belady" else "varied"),
                                     "cache_size": size, "requests": n, "misses": misses, "miss_bytes": miss_bytes,
                                     "outcome_fnv1a": fnv})
    fields = ["trace", "skip_tokens", "algo", "unit", "sizes", "cache_size", "requests", "misses", "miss_bytes", "outcome_fnv1a"]
    with open(OUT, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        for r in kept + rows:
            w.writerow(r)


if __name__ == "__main__":
    main()
