"""The live path: what the trader imports. numpy and scipy only; never pymc, pytensor or arviz."""

from bayes_mem.live.changepoint import (
    BetaBernoulliBOCPD,
    ChangeAlarm,
    ChangepointStep,
    NormalGammaBOCPD,
    NormalGammaPrior,
    load_detector,
    regime_factor,
)
from bayes_mem.live.correlation import (
    Breakdown,
    BreakdownTest,
    Concentration,
    concentration,
    correlation_breakdown,
    jennrich_test,
    shrunk_correlation,
)
from bayes_mem.live.decider import (
    Decider,
    DuplicateTradeError,
    SignalMetrics,
    UnknownSignalError,
)
from bayes_mem.live.decision import Decision
from bayes_mem.live.engine import (
    EngineConfig,
    TradingEngine,
    UnknownSymbolError,
    UnknownTradeError,
)
from bayes_mem.live.gjr_garch import GarchDraws, fit_laplace
from bayes_mem.live.modules import (
    CVaRBudget,
    FixedBudget,
    KellyLimit,
    PortfolioESLimit,
    RegimeCut,
    ThompsonRule,
    ThresholdRule,
)
from bayes_mem.live.payoff import PayoffModel
from bayes_mem.live.portfolio import EulerES, PortfolioRisk, portfolio_risk
from bayes_mem.live.priors import DEFAULT_PRIOR, BetaPrior
from bayes_mem.live.regime import RegimeForgetting
from bayes_mem.live.return_model import ReturnModel, RiskForecast
from bayes_mem.live.risk_facade import CorrelationRiskAdjuster, DynamicCVaREngine
from bayes_mem.live.sizing import (
    DEFAULT_NOTIONAL_CAP,
    PositionLimit,
    combine_limits,
    cvar_position_limit,
    kelly_binary,
    kelly_continuous,
    kelly_notional,
)
from bayes_mem.live.skewt import SkewT
from bayes_mem.live.thompson_facade import ThompsonSamplingDecider

__all__ = [
    "DEFAULT_NOTIONAL_CAP",
    "DEFAULT_PRIOR",
    "BetaBernoulliBOCPD",
    "BetaPrior",
    "Breakdown",
    "BreakdownTest",
    "CVaRBudget",
    "ChangeAlarm",
    "ChangepointStep",
    "Concentration",
    "CorrelationRiskAdjuster",
    "Decider",
    "Decision",
    "DuplicateTradeError",
    "DynamicCVaREngine",
    "EngineConfig",
    "EulerES",
    "FixedBudget",
    "GarchDraws",
    "KellyLimit",
    "NormalGammaBOCPD",
    "NormalGammaPrior",
    "PayoffModel",
    "PortfolioESLimit",
    "PortfolioRisk",
    "PositionLimit",
    "RegimeCut",
    "RegimeForgetting",
    "ReturnModel",
    "RiskForecast",
    "SignalMetrics",
    "SkewT",
    "ThompsonRule",
    "ThompsonSamplingDecider",
    "ThresholdRule",
    "TradingEngine",
    "UnknownSignalError",
    "UnknownSymbolError",
    "UnknownTradeError",
    "combine_limits",
    "concentration",
    "correlation_breakdown",
    "cvar_position_limit",
    "fit_laplace",
    "jennrich_test",
    "kelly_binary",
    "kelly_continuous",
    "kelly_notional",
    "load_detector",
    "portfolio_risk",
    "regime_factor",
    "shrunk_correlation",
]
