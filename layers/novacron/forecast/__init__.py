"""Forecasts for capacity planning: seasonal models with prediction intervals and time until a threshold."""
