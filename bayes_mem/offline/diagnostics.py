"""The diagnostics gate (ArviZ 1.x): a fit is published only if it passes every check.

Rank-normalised R-hat <= 1.01, bulk and tail ESS >= 400, zero divergences, E-BFMI >= 0.3 in
every chain, no tree-depth saturation (nutpie names it ``maxdepth_reached``, PyMC's sampler
``reached_max_treedepth``: both are read), and a posterior predictive check supplied by the model.
The verdict carries every reason it failed and the numbers behind it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

THRESHOLDS = {"rhat": 1.01, "ess_bulk": 400.0, "ess_tail": 400.0, "ebfmi": 0.3, "sd_ratio": 0.9}
_DEPTH_FLAGS = ("maxdepth_reached", "reached_max_treedepth")


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reasons: tuple[str, ...]
    summary: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _extreme(ds: Any, how: str) -> tuple[float, str]:
    """Max or min over every variable and element of a Dataset of diagnostics, with its name."""
    best, where = (np.inf if how == "min" else -np.inf), ""
    for name, arr in ds.data_vars.items():
        values = np.asarray(arr.values, dtype=float)
        if values.size == 0 or np.all(np.isnan(values)):
            continue
        v = float(np.nanmin(values) if how == "min" else np.nanmax(values))
        if (how == "min" and v < best) or (how == "max" and v > best):
            best, where = v, str(name)
    return best, where


def ebfmi(energy: np.ndarray) -> np.ndarray:
    """E-BFMI per chain from the (chain, draw) Hamiltonian energy."""
    energy = np.asarray(energy, dtype=float)
    num = np.sum(np.diff(energy, axis=1) ** 2, axis=1) / energy.shape[1]
    return num / np.var(energy, axis=1)


def gate(
    tree: Any,
    var_names: list[str],
    ppc: dict[str, float] | None = None,
    sd_ratios: dict[str, float] | None = None,
) -> Verdict:
    """Check a fit (a DataTree with posterior and sample_stats) on ``var_names``; ``ppc`` maps a
    posterior predictive check's name to its p-value (fails outside [0.005, 0.995]);
    ``sd_ratios`` maps a parameter to its posterior sd over its prior sd (fails above 0.9: the
    data did not identify it, its posterior is essentially the prior)."""
    import arviz as az

    reasons: list[str] = []
    summary: dict[str, Any] = {}
    post = tree["posterior"].to_dataset()[var_names]
    rhat, rhat_at = _extreme(az.rhat(post), "max")
    bulk, bulk_at = _extreme(az.ess(post, method="bulk"), "min")
    tail, tail_at = _extreme(az.ess(post, method="tail"), "min")
    summary.update(max_rhat=rhat, min_ess_bulk=bulk, min_ess_tail=tail)
    if not rhat <= THRESHOLDS["rhat"]:
        reasons.append(f"R-hat {rhat:.4f} > {THRESHOLDS['rhat']} ({rhat_at})")
    if not bulk >= THRESHOLDS["ess_bulk"]:
        reasons.append(f"bulk ESS {bulk:.0f} < {THRESHOLDS['ess_bulk']:.0f} ({bulk_at})")
    if not tail >= THRESHOLDS["ess_tail"]:
        reasons.append(f"tail ESS {tail:.0f} < {THRESHOLDS['ess_tail']:.0f} ({tail_at})")
    stats = tree["sample_stats"].to_dataset()
    div = int(np.asarray(stats["diverging"]).sum()) if "diverging" in stats else 0
    summary["divergences"] = div
    if div:
        reasons.append(f"{div} divergent transitions")
    if "energy" in stats:
        bfmi = ebfmi(np.asarray(stats["energy"]))
        summary["min_ebfmi"] = float(bfmi.min())
        if bfmi.min() < THRESHOLDS["ebfmi"]:
            reasons.append(f"E-BFMI {bfmi.min():.3f} < {THRESHOLDS['ebfmi']} in a chain")
    else:
        reasons.append("no energy in sample_stats: E-BFMI cannot be checked")
    depth_flag = next((f for f in _DEPTH_FLAGS if f in stats), None)
    if depth_flag is None:
        reasons.append("no tree-depth statistic in sample_stats")
    else:
        saturated = int(np.asarray(stats[depth_flag]).sum())
        summary["tree_depth_saturated"] = saturated
        if saturated:
            reasons.append(f"{saturated} transitions hit the maximum tree depth")
    for name, p in (ppc or {}).items():
        summary[f"ppc_{name}"] = p
        if not 0.005 <= p <= 0.995:
            reasons.append(f"posterior predictive check {name!r}: p = {p:.4f}")
    for name, ratio in (sd_ratios or {}).items():
        summary[f"sd_ratio_{name}"] = ratio
        if not ratio <= THRESHOLDS["sd_ratio"]:
            reasons.append(
                f"the data do not identify {name}: posterior sd is {ratio:.2f} of the prior's"
            )
    return Verdict(not reasons, tuple(reasons), summary)
