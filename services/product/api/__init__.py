"""HTTP routes of the product service: thin, each a call into `services.product.catalogue`."""
