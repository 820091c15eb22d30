"""``python -m modelarts_exporter`` is the ``modelarts-exporter`` command."""

from modelarts_exporter.cli import main

raise SystemExit(main())
