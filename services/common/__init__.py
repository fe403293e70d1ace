"""What every COME2US service shares: settings from the config server, the refresh bus."""
