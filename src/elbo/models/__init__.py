"""Model kinds, one folder each: ``images`` (VAEs and IWAEs on images). A kind registers itself in
``elbo.registry.KINDS`` and its data sets in ``elbo.registry.DATASETS`` (see ``elbo.kinds``)."""
