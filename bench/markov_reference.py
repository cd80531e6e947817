#!/usr/bin/env python3
"""Reference Markov-chain attribution using the PyPI package ChannelAttribution.

Usage:
    python3 bench/markov_reference.py PATHS.csv [--nsim N] [--repeat R] [--order 1]
        [--max-step S] [--seed 0] [--ncore 1] [--nfold 10] [--conv-par 0.05]
        [--verbose] [--transitions]

PATHS.csv has the header
    path,total_conversions,total_null,total_conversion_value
where `path` is state names joined by " > " (ChannelAttribution's format).

stdout: CSV, one row per channel sorted by channel name:
    channel_name,total_conversions,total_conversion_value,
    removal_effects_conversion,removal_effects_conversion_value
stderr: parameters, sums of credited conversions/value (and input totals),
    min and median wall time of the markov_model call over R repeats.

Setup (tested with ChannelAttribution 2.2.5, Python 3.11):
    pip install ChannelAttribution matplotlib
(the package builds a C++ extension with g++; it imports matplotlib at
import time without declaring it as a dependency).

Notes on what ChannelAttribution computes (read from its 2.2.5 sources):
  * Consecutive repeated states in a path are collapsed ("a > a > b" -> "a > b").
  * Removal effects are Monte-Carlo estimates: the share of simulated
    converting walks (resp. their simulated value) that visited the channel.
    Credited conversions/value are those removal effects normalised to the
    observed totals.
  * Results come from one of `nfold` folds, each of nsim/nfold walks
    (nsim grows by 1.5x until the folds agree within conv_par).
  * Walks longer than max_step (default: the longest input path) count as
    non-converting; pass a large --max-step for chains with cycles.
"""

import argparse
import contextlib
import io
import statistics
import sys
import time

import pandas as pd

# The package prints a banner on import; keep stdout clean for the CSV.
with contextlib.redirect_stdout(io.StringIO()):
    import ChannelAttribution as ca  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("paths_csv")
    ap.add_argument("--nsim", type=float, default=1e5,
                    help="nsim_start (default 1e5, the package default)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--order", type=int, default=1)
    ap.add_argument("--max-step", type=int, default=None,
                    help="max steps of a simulated walk (default: package default = longest input path)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ncore", type=int, default=1)
    ap.add_argument("--nfold", type=int, default=10)
    ap.add_argument("--conv-par", type=float, default=0.05)
    ap.add_argument("--verbose", action="store_true",
                    help="pass verbose=True; the package's messages go to stderr")
    ap.add_argument("--transitions", action="store_true",
                    help="also print the estimated transition matrix on stderr")
    args = ap.parse_args(argv)

    df = pd.read_csv(args.paths_csv, dtype={"path": str})
    needed = ["path", "total_conversions", "total_null", "total_conversion_value"]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        sys.exit(f"missing columns: {missing}")
    # The C++ core takes conversions and nulls as unsigned integers.
    for c in ("total_conversions", "total_null"):
        if (df[c] != df[c].round()).any() or (df[c] < 0).any():
            sys.exit(f"column {c} must hold non-negative integers")
        df[c] = df[c].astype("int64")
    df["total_conversion_value"] = df["total_conversion_value"].astype("float64")
    df["path"] = df["path"].astype(object)

    kwargs = dict(
        var_path="path",
        var_conv="total_conversions",
        var_value="total_conversion_value",
        var_null="total_null",
        order=args.order,
        nsim_start=args.nsim,
        max_step=args.max_step,
        out_more=True,
        sep=">",
        ncore=args.ncore,
        nfold=args.nfold,
        seed=args.seed,
        conv_par=args.conv_par,
        verbose=args.verbose,
        flg_pro=False,
    )

    times = []
    res = None
    for _ in range(max(1, args.repeat)):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            t0 = time.perf_counter()
            res = ca.markov_model(df, **kwargs)
            times.append(time.perf_counter() - t0)
        if args.verbose and buf.getvalue():
            sys.stderr.write(buf.getvalue())

    out = res["result"].merge(res["removal_effects"], on="channel_name", how="outer")
    out = out.sort_values("channel_name").reset_index(drop=True)
    cols = ["channel_name", "total_conversions", "total_conversion_value",
            "removal_effects_conversion", "removal_effects_conversion_value"]
    out[cols].to_csv(sys.stdout, index=False, float_format="%.10g")

    err = sys.stderr
    print(f"ChannelAttribution {getattr(ca, '__version__', None) or _version()}; "
          f"markov_model(order={args.order}, nsim_start={args.nsim:g}, "
          f"max_step={args.max_step}, seed={args.seed}, ncore={args.ncore}, "
          f"nfold={args.nfold}, conv_par={args.conv_par})", file=err)
    print(f"sum total_conversions (credited) = {out['total_conversions'].sum():.10g}"
          f"  (input {df['total_conversions'].sum():.10g})", file=err)
    print(f"sum total_conversion_value (credited) = {out['total_conversion_value'].sum():.10g}"
          f"  (input {df['total_conversion_value'].sum():.10g})", file=err)
    if args.transitions:
        tm = res["transition_matrix"].copy()
        if args.order == 1:
            # For order 1 the package labels transition states by integer id
            # (order of first appearance in the input); map back to names.
            names = {}
            for p in df["path"]:
                for ch in str(p).split(">"):
                    ch = ch.strip(" ")
                    if ch and ch not in names:
                        names[ch] = str(len(names) + 1)
            inv = {v: k for k, v in names.items()}
            for c in ("channel_from", "channel_to"):
                tm[c] = tm[c].map(lambda x: inv.get(x, x))
        tm = tm.sort_values(["channel_from", "channel_to"])
        err.write(tm.to_csv(index=False, float_format="%.10g"))
    print(f"timing over {len(times)} run(s): min {min(times):.6f} s, "
          f"median {statistics.median(times):.6f} s", file=err)


def _version():
    try:
        from importlib.metadata import version
        return version("ChannelAttribution")
    except Exception:  # pragma: no cover
        return "unknown"


if __name__ == "__main__":
    main()
