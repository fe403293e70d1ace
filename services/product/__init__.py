"""The product service: stores, categories, products, delivery policies, reviews and the cart.

Data lives where the design puts it (seed §5): the catalogue in PostgreSQL (schema
``product_service``), product and list pages in the cache Redis, carts in the session Redis's
transient keyspace, images in S3. See ``services/product/README.md``.
"""
