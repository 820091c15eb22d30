"""What the exporter knows now: a listing aggregated into an immutable snapshot, and the store."""
