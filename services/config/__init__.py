"""Config server: Spring Cloud Config compatible, serving a git repository, with a refresh bus."""
