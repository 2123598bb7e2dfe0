"""The offline path (nightly job): PyMC models, ArviZ diagnostics, publishing. Imports pymc."""
