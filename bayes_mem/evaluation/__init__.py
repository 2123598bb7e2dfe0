"""Evidence: backtests of risk forecasts (and, later, of trading policies)."""
