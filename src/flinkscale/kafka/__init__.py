"""kafka layer."""
