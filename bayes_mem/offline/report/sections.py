"""The page's sections: each gathers its statistics and figures, then renders its template.

A section's function returns markup; :func:`~bayes_mem.offline.report.build.build_report`
catches a section that fails so the rest of the page stands.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup

from bayes_mem.live.prior_set import PriorSet
from bayes_mem.offline.report import figures as fg
from bayes_mem.offline.report.config import (
    BAND,
    BREAKDOWN_RECENT,
    CORR_DAYS,
    LEVEL,
    RETURNS_HYPER,
    TOP_MOVES,
    WINRATE_HYPER,
)
from bayes_mem.offline.report.html import Figure, render, table
from bayes_mem.offline.report.load import VersionData
from bayes_mem.offline.report.stats import (
    cvar_by_symbol,
    cvar_changes,
    family_changes,
    fit_diagnostics,
    sampler_stats,
    signal_posteriors,
    signal_quality,
    symbol_paths,
    winrate_changes,
)

Posteriors = Callable[[], pd.DataFrame]  # this version's per-signal posteriors, computed once


def _summary(vd: VersionData, timings: dict[str, float], notes: list[str]) -> Markup:
    """Version, data window, code version, the gate's verdict and reasons, the components'
    sources, the timings (seconds per job step) and ``notes``."""
    ps, run = vd.prior_set, vd.run
    diag = ps.diagnostics
    nightly = diag.get("components") or {}
    kept = [c for c, info in nightly.items() if isinstance(info, dict)
            and info.get("status") == "carried"]  # fmt: skip
    window = run.get("returns_window") or {}
    outc = run.get("outcomes") or {}
    items = [
        ("version", f"v{ps.version:06d}"),
        ("created at", ps.created_at),
        ("code version", ps.code_version),
        ("config hash", ps.config_hash),
        ("returns through", ps.data_through or "–"),
        ("returns window (fitted)",
         f"{window['from']} to {window['through']}: {window['days']} days x "
         f"{len(window.get('symbols', []))} symbols" if window else "not recorded"),
        ("outcomes", f"{outc['trades']} settled trades of {outc['signals']} signals, settled "
         f"{outc['settled_from']} to {outc['settled_through']}" if outc else "not recorded"),
        ("families / symbols", f"{len(ps.families)} / {len(ps.symbols)}"),
        ("previously active", f"v{run['previous_active']:06d}"
         if run.get("previous_active") else "none"),
    ]  # fmt: skip
    all_t = {**run.get("timings", {}), **timings}
    t_rows = pd.DataFrame({"step": list(all_t), "seconds": [float(v) for v in all_t.values()]})
    summary = diag.get("summary") or {}
    s_rows = pd.DataFrame({"check": list(summary), "value": [summary[k] for k in summary]})
    s_rows["value"] = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in s_rows["value"]]
    return render(
        "summary.html",
        passed=bool(diag.get("passed")),
        kept=", ".join(kept),
        items=items,
        components=_components_table(ps),
        reasons=diag.get("reasons") or [],
        checks=table(s_rows, [("check", "check", ""), ("value", "value", "")]),
        timings=table(t_rows, [("step", "step", ""), ("seconds", "seconds", ".2f")])
        if len(t_rows)
        else None,
        notes=notes,
    )


def _components_table(ps: Any) -> Markup:
    """Per component (win rates, returns, regime): the version it came from, its data date and
    age at this set's creation, and the night's own verdict of it (each is gated and versioned
    on its own: a component whose fit failed is carried from an older version)."""
    created = dt.datetime.fromisoformat(ps.created_at).date()
    nightly = (ps.diagnostics.get("components") or {}) if isinstance(ps.diagnostics, dict) else {}
    rows = []
    for name, src in (ps.components or {}).items():
        night = nightly.get(name) or {}
        reasons = "; ".join(night.get("reasons") or [])
        rows.append({
            "component": name,
            "source": "none" if src is None else (
                f"v{src.version:06d}" + ("" if src.version == ps.version else " (carried)")),
            "data through": "–" if src is None or src.data_through is None
            else src.data_through[:10],
            "age (days)": "–" if src is None or src.age_days(created) is None
            else str(src.age_days(created)),
            "tonight": str(night.get("kind", "–")) + (f": {reasons}" if reasons else ""),
        })  # fmt: skip
    if not rows:
        return Markup("")
    cols = [(c, c, "") for c in ("component", "source", "data through", "age (days)", "tonight")]
    return render("components.html", table=table(pd.DataFrame(rows), cols))


def _changes(
    vd: VersionData, counts: pd.DataFrame | None, prev: VersionData | None, posts: Posteriors
) -> Markup:
    """Family mean win rates, the largest moves of per-signal win rates and of per-symbol CVaR
    since the previously active prior set ``prev``."""
    if prev is None:
        return render("changes.html", previous=None)
    new, old = vd.prior_set, prev.prior_set
    families = table(family_changes(new, old), [
        ("family", "family", ""), ("previous", "previous", ".4f"), ("new", "new", ".4f"),
        ("change", "change", "+pp"),
    ])  # fmt: skip
    signals = None
    if counts is not None:
        old_counts = prev.counts if prev.counts is not None else counts
        moves = winrate_changes(posts(), signal_posteriors(old_counts, old))
        signals = table(moves, [
            ("signal", "signal", ""), ("family", "family", ""), ("trades", "trades", "d"),
            ("previous", "previous", ".4f"), ("new", "new", ".4f"), ("change", "change", "+pp"),
        ])  # fmt: skip
    symbols = None
    if new.symbols and old.symbols:
        symbols = table(cvar_changes(new, old), [
            ("symbol", "symbol", ""), ("previous", "previous", "%%"), ("new", "new", "%%"),
            ("change", "change", "+pp"),
        ])  # fmt: skip
    return render(
        "changes.html", previous=old, families=families, signals=signals, symbols=symbols,
        no_previous_counts=prev.counts is None, top=TOP_MOVES, level=f"{LEVEL:.1%}",
    )  # fmt: skip


def _diagnostics(vd: VersionData) -> Markup:
    """Per fit: sampler statistics, the gated quantities' R-hat / ESS / MCSE (failing cells
    flagged) and rank plots of the hyperparameters."""
    from bayes_mem.offline import returns_model as rm
    from bayes_mem.offline.diagnostics import RANK_ALPHA, THRESHOLDS
    from bayes_mem.offline.winrate import GATED_VARS

    flags = {
        "r_hat": lambda v: not v <= THRESHOLDS["rhat"],
        "ess_bulk": lambda v: not v >= THRESHOLDS["ess_bulk"],
        "ess_tail": lambda v: not v >= THRESHOLDS["ess_tail"],
    }
    cols = [("quantity", "quantity", ""), ("r_hat", "R-hat", ".4f"),
            ("ess_bulk", "bulk ESS", ".0f"), ("ess_tail", "tail ESS", ".0f"),
            ("mcse_mean", "MCSE (mean)", ".3g")]  # fmt: skip
    fits = []
    for key, title, tree, gated, hyper in [
        ("winrate", "Win-rate fit", vd.winrate_tree, GATED_VARS, WINRATE_HYPER),
        ("returns", "Returns fit", vd.returns_tree, rm.GATED_VARS, RETURNS_HYPER),
    ]:
        if tree is None:
            fits.append({"key": key, "title": title, "stats": None})
            continue
        st = sampler_stats(tree)
        bfmi = ", ".join(f"{x:.3f}" for x in st["ebfmi"]) if st["ebfmi"] else "–"
        stats = [
            ("chains x draws", f"{st['chains']} x {st['draws']}"),
            ("divergences", st["divergences"]), ("E-BFMI per chain", bfmi),
            ("tree-depth saturated", st["tree_depth_saturated"]),
            ("target acceptance", tree.attrs.get("target_accept", "–")),
        ]  # fmt: skip
        diagnostics = table(fit_diagnostics(tree, gated), cols, flags=flags)
        figure = Figure(f"rank-{key}", fg._rank_plot(tree, hyper, gated), f"rank plots, {title}",
                        f"{title}: rank plots of the hyperparameters, one line per chain (ECDF "
                        "of its fractional ranks minus uniform's, thinned to about independent "
                        "draws), the grey band ArviZ's simultaneous 99% envelope; each title "
                        "carries the gate's own rank test (ArviZ's multi-chain test) and its "
                        "Holm adjustment over the gated quantities")  # fmt: skip
        fits.append({"key": key, "title": title, "stats": stats, "table": diagnostics,
                     "figure": figure})  # fmt: skip
    return render("diagnostics.html", t=THRESHOLDS, rank_alpha=RANK_ALPHA, fits=fits)


def _winrates(
    ps: PriorSet, counts: pd.DataFrame | None, posts: Posteriors, rng: np.random.Generator
) -> Markup:
    """Per family a forest plot of per-signal posterior intervals beside the raw win rates, and
    the posterior predictive check of the win counts."""
    if counts is None:
        return render("winrates.html", forests=None)
    post = posts()
    forests = []
    for i, (fam, fp) in enumerate(sorted(ps.families.items())):
        frame = post[post["family"] == fam]
        if frame.empty:
            continue
        forests.append(Figure(f"forest-{i}", fg._forest_plot(frame, fam, float(fp.mean.mean())),
                              f"win rates of family {fam}"))  # fmt: skip
    uri, p = fg._ppc_plot(counts, ps, rng)
    ppc = Figure(
        "ppc-wins",
        uri,
        "posterior predictive check of win counts",
        f"dispersion p-value {p:.3f}; the gate's p-values are in the run summary",
    )
    return render("winrates.html", forests=forests, ppc=ppc)


def _risk(vd: VersionData, store: Any, seed: int) -> Markup:
    """Posterior CVaR per symbol, and with a store the fitted window's volatility, VaR
    exceedances with coverage tests, PIT calibration and the correlation of normal scores."""
    from bayes_mem.live.correlation import concentration, correlation_breakdown, shrunk_correlation
    from bayes_mem.live.coverage import coverage_tests
    from bayes_mem.live.pit import to_normal

    ps = vd.prior_set
    if not ps.symbols:
        return render("risk.html", cvar=None)
    cv = cvar_by_symbol(ps)
    page: dict[str, Any] = {
        "level": f"{LEVEL:.1%}", "data_through": ps.data_through,
        "cvar_figure": Figure("cvar", fg._cvar_plot(cv), "CVaR per symbol"),
        "cvar": table(cv, [
            ("symbol", "symbol", ""), ("var", "VaR", "%%"), ("cvar", "CVaR", "%%"),
            ("cvar_low", f"CVaR {BAND:.0%} low", "%%"),
            ("cvar_high", f"CVaR {BAND:.0%} high", "%%"),
            ("volatility", "volatility (sd)", "%%"),
        ]),
    }  # fmt: skip
    if store is None:
        return render("risk.html", **page, missing="no store given: no volatility, exceedance, "
                      "PIT or correlation plots")  # fmt: skip
    paths = symbol_paths(ps, store.returns_panel(list(ps.symbols)), vd.run.get("returns_window"))
    if not paths:
        return render("risk.html", **page, missing="no stored returns for these symbols")
    page["volatility"] = Figure("volatility", fg._vol_plot(paths),
                                "conditional volatility over time")  # fmt: skip
    rows = []
    for s, p in paths.items():
        t = coverage_tests(p.pit < 1 - LEVEL, LEVEL)
        rows.append({"symbol": s, "days": t.n, "exceedances": t.exceedances,
                     "expected": t.expected, "p_pof": t.p_pof, "p_ind": t.p_ind,
                     "p_cc": t.p_cc})  # fmt: skip
    page["exceedances"] = Figure("var-exceedances", fg._var_plot(paths), "VaR exceedances")
    page["coverage"] = table(pd.DataFrame(rows), [
        ("symbol", "symbol", ""), ("days", "days", "d"), ("exceedances", "exceedances", "d"),
        ("expected", "expected", ".1f"), ("p_pof", "Kupiec p", ".3f"),
        ("p_ind", "Christoffersen independence p", ".3f"),
        ("p_cc", "conditional coverage p", ".3f"),
    ], flags={k: (lambda v: v < 0.05) for k in ("p_pof", "p_ind", "p_cc")})  # fmt: skip
    page["pit"] = Figure("pit", fg._pit_plot(paths), "PIT calibration")
    page["correlation"] = None
    names = list(paths)
    if len(names) >= 2:
        frame = pd.DataFrame({s: pd.Series(to_normal(p.pit), index=p.dates)
                              for s, p in paths.items()}).dropna()  # fmt: skip
        z = frame.to_numpy()
        corr, shrink = shrunk_correlation(z[-CORR_DAYS:])
        conc = concentration(corr)
        title = f"concentration {conc.score:.2f}, effective bets {conc.effective_bets:.1f}"
        text = (f"shrunk correlation of the normal scores over the last {min(CORR_DAYS, len(z))}"
                f" common days (shrinkage {shrink:.2f}); concentration score {conc.score:.3f}, "
                f"average correlation {conc.average_correlation:.3f}")  # fmt: skip
        if len(z) >= BREAKDOWN_RECENT + len(names) + 3:
            history = z[-BREAKDOWN_RECENT - CORR_DAYS : -BREAKDOWN_RECENT]
            b = correlation_breakdown(z[-BREAKDOWN_RECENT:], history, rng=seed)
            title += f", breakdown {b.score:.2f}"
            text += (
                f"; breakdown score {b.score:.3f} (p = {b.p_value:.3f}: the last "
                f"{BREAKDOWN_RECENT} days against the {len(history)} before)"
            )
        page["correlation"] = Figure("correlation", fg._corr_plot(corr, names, title),
                                     "correlation heatmap", text)  # fmt: skip
    return render("risk.html", **page, missing=None)


def _quality(vd: VersionData, counts: pd.DataFrame | None, store: Any) -> Markup:
    """The decision layer's signal-quality metrics, in a table sortable by any column."""
    if counts is None:
        return render("quality.html", missing="no per-signal counts (no store given)")
    outcomes = None
    if store is not None:
        outcomes = store.outcomes()
        through = (vd.run.get("outcomes") or {}).get("through_seq")
        if through is not None:
            outcomes = outcomes[outcomes["seq"] <= through]
    q = signal_quality(counts, vd.prior_set, outcomes)
    if q.empty:
        return render("quality.html", missing="no signals")
    prob = float(q["credible_prob"].iloc[0])
    return render("quality.html", missing=None, table=table(q, [
        ("signal", "signal", ""), ("family", "family", ""), ("trades", "trades", "d"),
        ("wins", "wins", "d"), ("posterior_mean", "posterior mean", ".4f"),
        ("credible_low", f"{prob:.0%} low", ".4f"), ("credible_high", f"{prob:.0%} high", ".4f"),
        ("break_even", "break-even", ".4f"), ("p_above_break_even", "P(> break-even)", ".3f"),
        ("mean_pnl", "mean PnL", ".2f"), ("total_pnl", "total PnL", ".2f"),
        ("sharpe", "Sharpe (per trade)", ".3f"), ("expected_edge", "expected edge", ".3f"),
    ], sortable=True, table_id="signal-quality"))  # fmt: skip
