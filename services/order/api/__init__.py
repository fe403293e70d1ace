"""The order service's HTTP routes: thin, they hand requests to the domain and shape answers."""
