"""flink layer."""
