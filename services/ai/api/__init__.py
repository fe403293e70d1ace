"""HTTP routes of the AI service."""
