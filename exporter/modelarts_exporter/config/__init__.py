"""What the exporter is told: settings, targets, the credentials users already have, endpoints."""
