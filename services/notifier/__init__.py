"""The alarm notifier Lambda (seed §8): CloudWatch alarms and budgets → Discord."""
