"""The dashboard's pages: one Bokeh document per page and browser session, fed by
:mod:`bayes_mem.dashboard.data` (no SQL here).

Each page builds its widgets around named ``ColumnDataSource`` objects (the names below are the
page's contract: the browser tests read them) and an ``update`` that refills every source from
the store. An open page polls :func:`~bayes_mem.dashboard.data.data_version` every refresh
interval (seconds, ``--refresh``) and calls ``update`` when a part it shows changed (``WATCH``):
a new day logged by the engine reaches the page without a reload.

Pages (path: sources)
    ``/risk``: ``risk_series`` (the chosen symbol's VaR, ES and its 90 % band by date, loss
    positive, log-return fraction), ``risk_returns`` (its returns, ``exceed`` marked),
    ``risk_backtest`` (each symbol's rolling Kupiec / Christoffersen / Z2 status),
    ``portfolio_series`` (portfolio ES and VaR by date, account currency),
    ``contributions`` (each position's ES contribution).
    ``/correlation``: ``corr_matrix`` (the current shrunk correlation), ``corr_series``.
    ``/signals``: ``signal_table`` (the latest quality snapshot, filtered by family),
    ``family_priors``, ``signal_series`` (the chosen signal's posterior over time).
    ``/decisions``: ``decision_table`` (newest first), ``config_table`` (live and shadow
    summed), ``side_by_side`` (each event as live and the other configuration decided it).
    ``/nightly``: ``nightly_table``; report links in a ``Div``.
    ``/regime``: ``regime_table`` (latest p_change per symbol, alarms), ``regime_series``,
    ``alarm_table``.

Every name that comes from data (symbols, signals, families, reasons) reaches the browser as
text: table cells through ``StringFormatter`` (a DOM text node), select options and axis labels
as text; the one HTML ``Div`` (report links) escapes each piece with :func:`html.escape`.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from bokeh.document import Document
from bokeh.layouts import column, row
from bokeh.models import (
    ColumnDataSource,
    CustomJSHover,
    DataTable,
    DateFormatter,
    Div,
    HoverTool,
    LinearColorMapper,
    NumberFormatter,
    Select,
    StringFormatter,
    TableColumn,
)
from bokeh.palettes import RdBu11
from bokeh.plotting import figure

from bayes_mem.dashboard import data

PAGES = {
    "risk": "Risk",
    "correlation": "Correlation",
    "signals": "Signals",
    "decisions": "Decisions",
    "nightly": "Nightly job",
    "regime": "Regime",
}

#: axis labels are drawn for at most this many symbols on the heatmap
HEATMAP_LABELS = 60


@dataclass(frozen=True)
class Context:
    """What every page reads: the read-only source and the refresh interval (seconds).

    Examples
    --------
    >>> import tempfile
    >>> from bayes_mem.store import Store
    >>> tmp = tempfile.TemporaryDirectory()
    >>> Store(data_dir=tmp.name).close()  # an empty store file
    >>> source = data.open_source(f"sqlite:///{tmp.name}/bayes_mem.sqlite", models=None)
    >>> Context(source, refresh_seconds=2.0).refresh_seconds
    2.0
    >>> source.close()
    >>> tmp.cleanup()
    """

    source: data.Source
    refresh_seconds: float = 5.0


Update = Callable[[], None]


def _nav(current: str) -> Div:
    links = " | ".join(
        f"<b>{title}</b>" if path == current else f'<a href="/{path}">{title}</a>'
        for path, title in PAGES.items()
    )  # constant text: no data in it
    return Div(text=f"<nav>bayes_mem dashboard: {links}</nav>", name="nav")


def _cds_data(frame: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in frame.columns:
        s = frame[col]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            s = s.dt.tz_localize(None)
        if pd.api.types.is_bool_dtype(s):
            out[col] = s.to_numpy(bool)
        elif pd.api.types.is_integer_dtype(s) and s.isna().any():
            out[col] = s.astype(float).to_numpy()
        elif pd.api.types.is_object_dtype(s):
            out[col] = ["" if v is None else str(v) for v in s]
        else:
            out[col] = s.to_numpy()
    return out


def _source(frame: pd.DataFrame, name: str) -> ColumnDataSource:
    return ColumnDataSource(_cds_data(frame), name=name)


def _set(source: ColumnDataSource, frame: pd.DataFrame) -> None:
    source.data = _cds_data(frame)


def _table(
    source: ColumnDataSource, columns: list[tuple[str, str, str]], name: str, height: int = 300
) -> DataTable:
    """``columns``: (field, title, kind) with kind text, int, num, pct, date, time or bool."""
    fmt = {
        "text": lambda: StringFormatter(),
        "int": lambda: NumberFormatter(format="0,0"),
        "num": lambda: NumberFormatter(format="0.0000"),
        "money": lambda: NumberFormatter(format="0,0.00"),
        "pct": lambda: NumberFormatter(format="0.00%"),
        "date": lambda: DateFormatter(format="%Y-%m-%d"),
        "time": lambda: DateFormatter(format="%Y-%m-%d %H:%M"),
        "bool": lambda: StringFormatter(),  # true / false as text (no icon font needed)
    }
    cols = [TableColumn(field=f, title=t, formatter=fmt[k]()) for f, t, k in columns]
    return DataTable(source=source, columns=cols, name=name, height=height,
                     sizing_mode="stretch_width", index_position=None,
                     css_classes=[f"bm-{name}"])  # fmt: skip


def _figure(title: str, y_label: str, **kw: Any) -> Any:
    p = figure(title=title, x_axis_type="datetime", height=300, sizing_mode="stretch_width",
               tools="pan,wheel_zoom,box_zoom,reset,save", **kw)  # fmt: skip
    p.yaxis.axis_label = y_label
    return p


def _empty_note(frame: pd.DataFrame, what: str) -> str:
    return f"no {what} in the store yet" if frame.empty else ""


# ---------------------------------------------------------------------------- risk
def risk_page(ctx: Context) -> tuple[Any, Update]:
    """The risk page: the chosen symbol's VaR and ES with the returns and their exceedances, the
    rolling backtest of every symbol, the portfolio's ES and VaR and each position's ES
    contribution; returns the layout and its ``update``.

    Examples
    --------
    >>> import tempfile
    >>> from bayes_mem.store import Store
    >>> from bayes_mem.dashboard.synthetic import fill_store
    >>> tmp = tempfile.TemporaryDirectory()
    >>> with Store(data_dir=tmp.name) as store:  # 5 synthetic days of 3 symbols and 4 signals
    ...     _ = fill_store(store, np.random.default_rng(0), n_symbols=3, n_signals=4, n_days=5)
    >>> source = data.open_source(f"sqlite:///{tmp.name}/bayes_mem.sqlite", models=tmp.name)
    >>> layout, update = risk_page(Context(source))
    >>> layout.select_one({"name": "risk_symbol"}).value  # the first symbol
    'SYM000'
    >>> len(layout.select_one({"name": "risk_series"}).data["date"])  # one forecast a day
    5
    >>> len(layout.select_one({"name": "risk_backtest"}).data["symbol"])
    3
    >>> source.close()
    >>> tmp.cleanup()
    """
    engine = ctx.source.engine
    symbols = data.risk_symbols(engine)
    pick = Select(title="symbol", options=symbols, value=symbols[0] if symbols else "",
                  name="risk_symbol")  # fmt: skip
    series = _source(pd.DataFrame(columns=["date", "var_log", "es_log", "es_low", "es_high"]),
                     "risk_series")  # fmt: skip
    rets = _source(pd.DataFrame(columns=["date", "log_return", "loss", "exceed"]), "risk_returns")
    hits = _source(pd.DataFrame(columns=["date", "loss"]), "risk_exceedances")
    backtest = _source(pd.DataFrame(columns=data.BACKTEST_COLUMNS), "risk_backtest")
    port = _source(pd.DataFrame(columns=["date", "portfolio_es", "portfolio_var"]),
                   "portfolio_series")  # fmt: skip
    contrib = _source(pd.DataFrame(columns=["symbol", "notional", "contribution", "share"]),
                      "contributions")  # fmt: skip
    note = Div(text="", name="risk_note")

    p = _figure("VaR / ES of the symbol (loss, daily log return) and realised losses", "loss")
    p.varea(x="date", y1="es_low", y2="es_high", source=series, fill_alpha=0.25,
            color="#d62728", legend_label="ES 90% band")  # fmt: skip
    p.line(x="date", y="es_log", source=series, color="#d62728", legend_label="ES")
    p.line(x="date", y="var_log", source=series, color="#1f77b4", legend_label="VaR")
    p.scatter(x="date", y="es_log", source=series, size=3, color="#d62728")  # a lone day shows
    p.scatter(x="date", y="var_log", source=series, size=3, color="#1f77b4")
    p.scatter(x="date", y="loss", source=rets, size=4, color="#555555", legend_label="loss")
    p.scatter(x="date", y="loss", source=hits, size=9, marker="x", line_width=2,
              color="#ff7f0e", legend_label="exceedance")  # fmt: skip
    p.legend.location = "top_left"
    p.add_tools(HoverTool(tooltips=[("date", "@date{%F}"), ("ES", "@es_log{0.0000}"),
                                    ("VaR", "@var_log{0.0000}")],
                          formatters={"@date": "datetime"}))  # fmt: skip

    pp = _figure("Portfolio ES and VaR (account currency)", "loss")
    pp.line(x="date", y="portfolio_es", source=port, color="#d62728", legend_label="ES")
    pp.line(x="date", y="portfolio_var", source=port, color="#1f77b4", legend_label="VaR")
    pp.scatter(x="date", y="portfolio_es", source=port, size=3, color="#d62728")
    pp.scatter(x="date", y="portfolio_var", source=port, size=3, color="#1f77b4")
    pp.legend.location = "top_left"

    cp = figure(title="Each position's contribution to the latest portfolio ES", height=300,
                x_range=[], sizing_mode="stretch_width", tools="save")  # fmt: skip
    cp.vbar(x="symbol", top="contribution", source=contrib, width=0.8)
    cp.xaxis.major_label_orientation = 0.8
    cp.yaxis.axis_label = "ES contribution (account currency)"

    bt = _table(backtest, [
        ("symbol", "symbol", "text"), ("status", "status", "text"), ("n", "days", "int"),
        ("exceedances", "exceedances", "int"), ("expected", "expected", "num"),
        ("p_kupiec", "Kupiec p", "num"), ("p_christoffersen", "Christoffersen p", "num"),
        ("p_cc", "cond. coverage p", "num"), ("z2", "Z2", "num"),
    ], "risk_backtest_table", 250)  # fmt: skip
    ct = _table(contrib, [
        ("symbol", "symbol", "text"), ("notional", "notional", "money"),
        ("contribution", "ES contribution", "money"), ("share", "share", "pct"),
    ], "contributions_table", 200)  # fmt: skip

    def update_symbol() -> None:
        sym = pick.value
        risk = data.risk_history(engine, sym) if sym else data.risk_history(engine, "")
        ret = data.symbol_returns(engine, sym) if sym else data.symbol_returns(engine, "")
        _set(series, risk[["date", "var_log", "es_log", "es_low", "es_high"]])
        aligned = data.align_forecasts(risk, ret)
        frame = aligned[["date", "log_return", "exceed"]].assign(loss=-aligned["log_return"])
        _set(rets, frame)
        _set(hits, frame.loc[frame["exceed"], ["date", "loss"]])

    def update() -> None:
        syms = data.risk_symbols(engine)
        if syms != pick.options:
            pick.options = syms
            if pick.value not in syms:
                pick.value = syms[0] if syms else ""
        update_symbol()
        _set(backtest, data.backtest_table(engine))
        ph = data.portfolio_history(engine)
        _set(port, ph[["date", "portfolio_es", "portfolio_var"]])
        c = data.es_contributions(engine).sort_values("contribution", ascending=False)
        cp.x_range.factors = c["symbol"].tolist()
        _set(contrib, c)
        note.text = html.escape(_empty_note(ph, "risk metrics"))

    pick.on_change("value", lambda _a, _o, _n: update_symbol())
    update()
    layout = column(note, pick, p, Div(text="<b>Rolling backtest (last 250 days; Kupiec and "
                                           "Christoffersen rejected at p &lt; 0.05, Z2 below "
                                           "-0.70)</b>"), bt, pp,
                    row(cp, ct, sizing_mode="stretch_width"),
                    sizing_mode="stretch_width")  # fmt: skip
    return layout, update


# ---------------------------------------------------------------------------- correlation
def correlation_page(ctx: Context) -> tuple[Any, Update]:
    """The correlation page: the current shrunk correlation as a heatmap and the logged correlation
    metrics by date; returns the layout and its ``update``.

    Examples
    --------
    >>> import tempfile
    >>> from bayes_mem.store import Store
    >>> from bayes_mem.dashboard.synthetic import fill_store
    >>> tmp = tempfile.TemporaryDirectory()
    >>> with Store(data_dir=tmp.name) as store:  # 5 synthetic days of 3 symbols and 4 signals
    ...     _ = fill_store(store, np.random.default_rng(0), n_symbols=3, n_signals=4, n_days=5)
    >>> source = data.open_source(f"sqlite:///{tmp.name}/bayes_mem.sqlite", models=tmp.name)
    >>> layout, update = correlation_page(Context(source))
    >>> len(layout.select_one({"name": "corr_series"}).data["date"])
    5
    >>> layout.select_one({"name": "corr_matrix"}).data["image"][0].shape  # 3 symbols
    (3, 3)
    >>> list(layout.select_one({"name": "corr_symbols"}).data["symbol"])
    ['SYM000', 'SYM001', 'SYM002']
    >>> source.close()
    >>> tmp.cleanup()
    """
    engine = ctx.source.engine
    matrix = ColumnDataSource({"image": [np.zeros((1, 1))], "dw": [1], "dh": [1]},
                              name="corr_matrix")  # fmt: skip
    names = ColumnDataSource({"symbol": []}, name="corr_symbols")
    series = _source(pd.DataFrame(columns=["date", "concentration_score", "effective_bets",
                                           "breakdown_score", "average_correlation"]),
                     "corr_series")  # fmt: skip
    mapper = LinearColorMapper(palette=list(reversed(RdBu11)), low=-1.0, high=1.0)
    heat = figure(title="Current shrunk correlation (normal scores, last 250 days)",
                  height=600, width=650, tools="pan,wheel_zoom,box_zoom,reset,save",
                  x_range=(0, 1), y_range=(0, 1), match_aspect=True)  # fmt: skip
    heat.image(image="image", x=0, y=0, dw="dw", dh="dh", source=matrix, color_mapper=mapper)
    name_of = CustomJSHover(
        args={"names": names},
        code=(
            "const s = names.data.symbol; const i = Math.floor(value);"
            " return (i >= 0 && i < s.length) ? String(s[i]) : '';"
        ),
    )  # a cell's symbols (tooltip values are shown as text)
    heat.add_tools(HoverTool(tooltips=[("row", "$y{custom}"), ("column", "$x{custom}"),
                                       ("correlation", "@image{0.000}")],
                             formatters={"$x": name_of, "$y": name_of}))  # fmt: skip
    conc = _figure("Concentration score (0-1) and breakdown score", "score")
    conc.line(x="date", y="concentration_score", source=series, color="#1f77b4",
              legend_label="concentration")  # fmt: skip
    conc.line(x="date", y="breakdown_score", source=series, color="#d62728",
              legend_label="breakdown")  # fmt: skip
    conc.legend.location = "top_left"
    eff = _figure("Effective bets", "bets")
    eff.line(x="date", y="effective_bets", source=series, color="#2ca02c")
    eff.scatter(x="date", y="effective_bets", source=series, size=3, color="#2ca02c")
    summary = Div(text="", name="corr_summary")

    def update() -> None:
        syms, corr = data.current_correlation(engine)
        n = len(corr)
        matrix.data = {"image": [corr if n else np.zeros((1, 1))], "dw": [max(n, 1)],
                       "dh": [max(n, 1)]}  # fmt: skip
        names.data = {"symbol": syms[:n]}
        heat.x_range.end = heat.y_range.end = max(n, 1)
        for axis in (heat.xaxis, heat.yaxis):
            if 0 < n <= HEATMAP_LABELS:
                axis.ticker = [i + 0.5 for i in range(n)]
                axis.major_label_overrides = {i + 0.5: s for i, s in enumerate(syms)}
                axis.major_label_text_font_size = "8pt"
            else:
                axis.ticker = []
        hist = data.correlation_history(engine)
        _set(series, hist[["date", "concentration_score", "effective_bets", "breakdown_score",
                           "average_correlation"]])  # fmt: skip
        if hist.empty:
            summary.text = "no correlation metrics in the store yet"
        else:
            last = hist.iloc[-1]
            summary.text = html.escape(
                f"{last['date']:%Y-%m-%d}: concentration {last['concentration_score']:.3f}, "
                f"effective bets {last['effective_bets']:.1f}, average correlation "
                f"{last['average_correlation']:.3f}, {n} symbols in the heatmap"
            )

    update()
    layout = column(summary, row(heat, column(conc, eff, sizing_mode="stretch_width"),
                                 sizing_mode="stretch_width"),
                    sizing_mode="stretch_width")  # fmt: skip
    return layout, update


# ---------------------------------------------------------------------------- signals
ALL = "(all families)"


def signals_page(ctx: Context) -> tuple[Any, Update]:
    """The signals page: every signal's latest quality snapshot (filtered by family), the active
    prior set's family priors and the chosen signal's posterior over time; returns the layout and
    its ``update``.

    Examples
    --------
    >>> import tempfile
    >>> from bayes_mem.store import Store
    >>> from bayes_mem.dashboard.synthetic import fill_store
    >>> tmp = tempfile.TemporaryDirectory()
    >>> with Store(data_dir=tmp.name) as store:  # 5 synthetic days of 3 symbols and 4 signals
    ...     _ = fill_store(store, np.random.default_rng(0), n_symbols=3, n_signals=4, n_days=5)
    >>> source = data.open_source(f"sqlite:///{tmp.name}/bayes_mem.sqlite", models=tmp.name)
    >>> layout, update = signals_page(Context(source))
    >>> sorted(layout.select_one({"name": "signal_table"}).data["signal"])
    ['sig_00000', 'sig_00001', 'sig_00002', 'sig_00003']
    >>> len(layout.select_one({"name": "family_priors"}).data["family"])  # no prior set
    0
    >>> source.close()
    >>> tmp.cleanup()
    """
    engine, models = ctx.source.engine, ctx.source.models
    state: dict[str, pd.DataFrame] = {"quality": data.latest_signal_quality(engine)}
    family = Select(
        title="family",
        options=[ALL],
        value=ALL,
        name="family_filter",
        css_classes=["bm-family_filter"],
    )
    pick = Select(title="signal", options=[], value="", name="signal_pick")
    table_src = _source(state["quality"].iloc[:0], "signal_table")
    priors_src = _source(data.family_priors(models), "family_priors")
    series = _source(
        pd.DataFrame(
            columns=["as_of", "posterior_mean", "credible_low", "credible_high", "trades"]
        ),
        "signal_series",
    )
    table = _table(table_src, [
        ("signal", "signal", "text"), ("family", "family", "text"), ("symbol", "symbol", "text"),
        ("trades", "trades", "int"), ("posterior_mean", "win rate", "num"),
        ("credible_low", "90% low", "num"), ("credible_high", "90% high", "num"),
        ("p_above_break_even", "P(> break-even)", "num"), ("total_pnl", "PnL", "money"),
        ("sharpe", "Sharpe", "num"),
    ], "signal_quality_table", 400)  # fmt: skip
    priors = _table(priors_src, [
        ("family", "family", "text"), ("mean", "mean win rate", "num"),
        ("mean_low", "5%", "num"), ("mean_high", "95%", "num"),
        ("kappa", "kappa (pseudo-trades)", "num"), ("prior_alpha", "Beta a", "num"),
        ("prior_beta", "Beta b", "num"), ("version", "prior set", "int"),
    ], "family_priors_table", 160)  # fmt: skip
    p = _figure("The signal's posterior win rate over time (mean, 90% interval)", "win rate")
    p.varea(x="as_of", y1="credible_low", y2="credible_high", source=series, fill_alpha=0.3)
    p.line(x="as_of", y="posterior_mean", source=series, line_width=2)
    p.scatter(x="as_of", y="posterior_mean", source=series, size=3)
    note = Div(text="", name="signals_note")

    def show_table() -> None:
        q = state["quality"]
        if family.value != ALL:
            q = q[q["family"] == family.value]
        _set(table_src, q.drop(columns=["as_of"]))
        names = q["signal"].tolist()
        pick.options = names
        if pick.value not in names:
            pick.value = names[0] if names else ""

    def show_signal() -> None:
        frame = data.signal_history(engine, pick.value) if pick.value else None
        if frame is None:
            frame = data.signal_history(engine, "")
        _set(series, frame[["as_of", "posterior_mean", "credible_low", "credible_high",
                            "trades"]])  # fmt: skip

    def update() -> None:
        state["quality"] = q = data.latest_signal_quality(engine)
        fams = [ALL, *sorted(set(q["family"]))]
        if fams != family.options:
            family.options = fams
        show_table()
        show_signal()
        _set(priors_src, data.family_priors(models))
        note.text = html.escape(
            _empty_note(q, "signal quality")
            or f"{len(q)} signals, snapshot of {q['as_of'].max():%Y-%m-%d %H:%M} UTC"
        )

    def clicked(_attr: str, _old: Any, rows: list[int]) -> None:  # a row clicked: its posterior
        if rows and rows[0] < len(table_src.data["signal"]):
            pick.value = table_src.data["signal"][rows[0]]

    family.on_change("value", lambda _a, _o, _n: show_table())
    pick.on_change("value", lambda _a, _o, _n: show_signal())
    table_src.selected.on_change("indices", clicked)
    update()
    layout = column(note, family, table,
                    Div(text="<b>Each family's pooled prior (the active prior set)</b>"),
                    priors, pick, p, sizing_mode="stretch_width")  # fmt: skip
    return layout, update


# ---------------------------------------------------------------------------- decisions
def decisions_page(ctx: Context) -> tuple[Any, Update]:
    """The decisions page: the decision log (newest first), the live and shadow configurations
    summed, and each event as both decided it; returns the layout and its ``update``.

    Examples
    --------
    >>> import tempfile
    >>> from bayes_mem.store import Store
    >>> from bayes_mem.dashboard.synthetic import fill_store
    >>> tmp = tempfile.TemporaryDirectory()
    >>> with Store(data_dir=tmp.name) as store:  # 5 synthetic days of 3 symbols and 4 signals
    ...     _ = fill_store(store, np.random.default_rng(0), n_symbols=3, n_signals=4, n_days=5)
    >>> source = data.open_source(f"sqlite:///{tmp.name}/bayes_mem.sqlite", models=tmp.name)
    >>> layout, update = decisions_page(Context(source))
    >>> len(layout.select_one({"name": "decision_table"}).data["id"])  # 4 a day x 2 configs x 5
    40
    >>> list(layout.select_one({"name": "config_table"}).data["config"])
    ['live', 'shadow']
    >>> source.close()
    >>> tmp.cleanup()
    """
    engine = ctx.source.engine
    log_src = _source(data.decision_log(engine, 0), "decision_table")
    cfg_src = _source(data.config_summary(engine).iloc[:0], "config_table")
    cfg = _table(cfg_src, [
        ("config", "configuration", "text"), ("decisions", "decisions", "int"),
        ("acted", "acted", "int"), ("act_rate", "act rate", "pct"),
        ("notional", "notional acted", "money"), ("mean_p_win", "mean p_win", "num"),
        ("last_decided_at", "last decision (UTC)", "time"),
    ], "config_summary_table", 120)  # fmt: skip
    log = _table(log_src, [
        ("decided_at", "decided at (UTC)", "time"), ("config", "config", "text"),
        ("signal", "signal", "text"), ("symbol", "symbol", "text"), ("side", "side", "text"),
        ("act", "act", "bool"), ("notional", "notional", "money"), ("p_win", "p_win", "num"),
        ("binding", "binding limit", "text"), ("prior_version", "prior set", "int"),
        ("why", "why", "text"),
    ], "decision_log_table", 500)  # fmt: skip
    pair_src = _source(pd.DataFrame(columns=data.SIDE_BY_SIDE_COLUMNS), "side_by_side")
    pairs = _table(pair_src, [
        ("decided_at", "decided at (UTC)", "time"), ("signal", "signal", "text"),
        ("symbol", "symbol", "text"), ("side", "side", "text"), ("live_act", "live acts", "bool"),
        ("live_notional", "live notional", "money"), ("live_binding", "live binding", "text"),
        ("shadow", "other config", "text"), ("shadow_act", "other acts", "bool"),
        ("shadow_notional", "other notional", "money"),
        ("shadow_binding", "other binding", "text"),
    ], "side_by_side_table", 300)  # fmt: skip
    note = Div(text="", name="decisions_note")

    def update() -> None:
        frame = data.decision_log(engine)
        _set(log_src, frame)
        _set(pair_src, data.side_by_side(frame))
        _set(cfg_src, data.config_summary(engine))
        note.text = html.escape(
            _empty_note(frame, "decisions") or f"the latest {len(frame)} decisions, newest first"
        )

    update()
    layout = column(Div(text="<b>Live and shadow configurations side by side</b>"), cfg,
                    Div(text="<b>The same events, as each configuration decided them</b>"),
                    pairs, Div(text="<b>Decision log (why each position got its size)</b>"),
                    note, log, sizing_mode="stretch_width")  # fmt: skip
    return layout, update


# ---------------------------------------------------------------------------- nightly
def nightly_page(ctx: Context) -> tuple[Any, Update]:
    """The nightly page: one row per prior-set version of the registry with its gate, components and
    report link; returns the layout and its ``update``.

    Examples
    --------
    >>> import tempfile
    >>> from bayes_mem.store import Store
    >>> from bayes_mem.dashboard.synthetic import fill_store
    >>> tmp = tempfile.TemporaryDirectory()
    >>> with Store(data_dir=tmp.name) as store:  # 5 synthetic days of 3 symbols and 4 signals
    ...     _ = fill_store(store, np.random.default_rng(0), n_symbols=3, n_signals=4, n_days=5)
    >>> source = data.open_source(f"sqlite:///{tmp.name}/bayes_mem.sqlite", models=tmp.name)
    >>> layout, update = nightly_page(Context(source))  # a registry without versions
    >>> len(layout.select_one({"name": "nightly_table"}).data["version"])
    0
    >>> source.close()
    >>> tmp.cleanup()
    """
    models = ctx.source.models
    runs = data.nightly_runs(models)
    src = _source(runs.drop(columns=["report"]).iloc[:0], "nightly_table")
    cols: list[tuple[str, str, str]] = [
        ("version", "version", "int"), ("created_at", "created", "text"),
        ("active", "active", "bool"), ("gate", "gate", "text"), ("stale", "stale", "text"),
    ]  # fmt: skip
    for c in runs.columns:
        if c.endswith("_version") and c != "version":
            comp = c[: -len("_version")]
            cols += [
                (c, f"{comp} v", "int"),
                (f"{comp}_age_days", f"{comp} age (d)", "int"),
                (f"{comp}_verdict", f"{comp} tonight", "text"),
            ]
    cols.append(("reasons", "gate reasons", "text"))
    table = _table(src, cols, "nightly_runs_table", 300)
    links = Div(text="", name="report_links")
    note = Div(text="", name="nightly_note")

    def update() -> None:
        # ages at the latest day in the store (the engine's reference: its last bar), else today
        day = data.data_version(ctx.source.engine).portfolio or dt.datetime.now(dt.UTC).date()
        frame = data.nightly_runs(models, today=day)
        _set(src, frame.drop(columns=["report"]))
        items = [
            f'<li><a href="/reports/{html.escape(r, quote=True)}">report of v{int(v):06d}</a></li>'
            for v, r in zip(frame["version"], frame["report"], strict=True)
            if r
        ]
        links.text = "<b>Reports</b><ul>" + "".join(items) + "</ul>" if items else ""
        if models is None:
            note.text = "no model registry given (--models)"
        elif frame.empty:
            note.text = html.escape(f"no prior sets under {models}")
        else:
            stale = frame.loc[frame["active"] & (frame["stale"] != ""), "stale"]
            note.text = html.escape(
                f"{len(frame)} versions (ages as of {day}); active: "
                + (", ".join(f"v{v}" for v in frame.loc[frame["active"], "version"]) or "none")
                + (f"; STALE components of the active set: {stale.iloc[0]}" if len(stale) else "")
            )

    update()
    return column(note, table, links, sizing_mode="stretch_width"), update


# ---------------------------------------------------------------------------- regime
def regime_page(ctx: Context) -> tuple[Any, Update]:
    """The regime page: each symbol's latest P(change) with its alarm, the chosen symbol's history
    and the latest alarms; returns the layout and its ``update``.

    Examples
    --------
    >>> import tempfile
    >>> from bayes_mem.store import Store
    >>> from bayes_mem.dashboard.synthetic import fill_store
    >>> tmp = tempfile.TemporaryDirectory()
    >>> with Store(data_dir=tmp.name) as store:  # 5 synthetic days of 3 symbols and 4 signals
    ...     _ = fill_store(store, np.random.default_rng(0), n_symbols=3, n_signals=4, n_days=5)
    >>> source = data.open_source(f"sqlite:///{tmp.name}/bayes_mem.sqlite", models=tmp.name)
    >>> layout, update = regime_page(Context(source))
    >>> len(layout.select_one({"name": "regime_table"}).data["symbol"])
    3
    >>> len(layout.select_one({"name": "regime_series"}).data["date"])
    5
    >>> source.close()
    >>> tmp.cleanup()
    """
    engine = ctx.source.engine
    latest_src = _source(pd.DataFrame(columns=["symbol", "date", "p_change", "alarm"]),
                         "regime_table")  # fmt: skip
    alarm_src = _source(pd.DataFrame(columns=["date", "symbol", "p_change"]), "alarm_table")
    series = _source(pd.DataFrame(columns=["date", "p_change"]), "regime_series")
    pick = Select(title="symbol", options=[], value="", name="regime_symbol")
    latest = _table(latest_src, [
        ("symbol", "symbol", "text"), ("date", "date", "date"),
        ("p_change", "P(change)", "num"), ("alarm", "alarm", "bool"),
    ], "regime_latest_table", 300)  # fmt: skip
    alarms = _table(alarm_src, [
        ("date", "date", "date"), ("symbol", "symbol", "text"), ("p_change", "P(change)", "num"),
    ], "regime_alarm_table", 250)  # fmt: skip
    p = _figure("P(change point) of the symbol", "probability", y_range=(0, 1))
    p.line(x="date", y="p_change", source=series, line_width=2)
    p.scatter(x="date", y="p_change", source=series, size=3)
    note = Div(text="", name="regime_note")

    def show_symbol() -> None:
        _set(series, data.regime_history(engine, pick.value))

    def update() -> None:
        frame = data.regime_latest(engine)
        _set(latest_src, frame)
        _set(alarm_src, data.regime_alarms(engine))
        syms = sorted(frame["symbol"].tolist())
        if syms != pick.options:
            pick.options = syms
        if pick.value not in syms:
            pick.value = frame["symbol"].iloc[0] if len(frame) else ""
        show_symbol()
        n_alarm = int(frame["alarm"].sum())
        note.text = html.escape(
            _empty_note(frame, "regime metrics")
            or f"{frame['date'].iloc[0]:%Y-%m-%d}: {n_alarm} of {len(frame)} symbols in alarm "
            f"(P(change) >= {data.ALARM_P_CHANGE})"
        )

    pick.on_change("value", lambda _a, _o, _n: show_symbol())
    update()
    layout = column(note, row(latest, column(pick, p, sizing_mode="stretch_width"),
                              sizing_mode="stretch_width"),
                    Div(text="<b>Alarms (latest first)</b>"), alarms,
                    sizing_mode="stretch_width")  # fmt: skip
    return layout, update


BUILDERS: dict[str, Callable[[Context], tuple[Any, Update]]] = {
    "risk": risk_page,
    "correlation": correlation_page,
    "signals": signals_page,
    "decisions": decisions_page,
    "nightly": nightly_page,
    "regime": regime_page,
}


#: the parts of :class:`~bayes_mem.dashboard.data.DataVersion` each page shows (a change in
#: another part does not rebuild it); "registry": the models folder's fingerprint
WATCH: dict[str, tuple[str, ...]] = {
    "risk": ("portfolio", "decision"),  # positions come from the decision log
    "correlation": ("correlation", "portfolio"),
    "signals": ("portfolio",),  # the engine logs signal quality with the day's portfolio
    "decisions": ("decision",),
    "nightly": ("registry",),
    "regime": ("regime",),
}


def _fingerprint(page: str, ctx: Context) -> tuple[Any, ...]:
    if WATCH[page] == ("registry",):
        return data.registry_version(ctx.source.models)
    version = data.data_version(ctx.source.engine)
    return tuple(getattr(version, part) for part in WATCH[page])


def make_document(page: str, ctx: Context, doc: Document) -> Update:
    """Fill ``doc`` with ``page`` and its refresh poll; returns the page's ``update``.

    Examples
    --------
    A Bokeh document of the regime page, with its poll every ``refresh_seconds``:

    >>> from bokeh.document import Document
    >>> import tempfile
    >>> from bayes_mem.store import Store
    >>> from bayes_mem.dashboard.synthetic import fill_store
    >>> tmp = tempfile.TemporaryDirectory()
    >>> with Store(data_dir=tmp.name) as store:  # 5 synthetic days of 3 symbols and 4 signals
    ...     _ = fill_store(store, np.random.default_rng(0), n_symbols=3, n_signals=4, n_days=5)
    >>> source = data.open_source(f"sqlite:///{tmp.name}/bayes_mem.sqlite", models=tmp.name)
    >>> doc = Document()
    >>> update = make_document("regime", Context(source, refresh_seconds=2.0), doc)
    >>> doc.title, doc.select_one({"name": "status"}).text[:8]
    ('bayes_mem: Regime', 'updated ')
    >>> [cb.period for cb in doc.session_callbacks]  # milliseconds
    [2000]
    >>> source.close()
    >>> tmp.cleanup()
    """
    layout, update = BUILDERS[page](ctx)
    status = Div(text="", name="status")
    last = {"version": _fingerprint(page, ctx)}

    def stamp() -> None:
        now = dt.datetime.now(dt.UTC)
        day = data.data_version(ctx.source.engine).portfolio
        status.text = html.escape(f"updated {now:%H:%M:%S} UTC; latest day in the store: {day}")

    def poll() -> None:
        version = _fingerprint(page, ctx)
        if version != last["version"]:
            last["version"] = version
            update()
            stamp()

    stamp()
    doc.title = f"bayes_mem: {PAGES[page]}"
    doc.add_root(column(_nav(page), status, layout, sizing_mode="stretch_width"))
    doc.add_periodic_callback(poll, int(ctx.refresh_seconds * 1000))
    return update
