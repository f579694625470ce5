"""Regression: Tansu 0.6.0 reports partition ends too low; Faust table recovery trusts them."""
