"""Ports of posteriordb's Stan models, one module per model (see ``elbo.posteriordb``)."""
