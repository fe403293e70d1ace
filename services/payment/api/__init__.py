"""The payment service's HTTP routes: reading payments (they are made by events, not by calls)."""
