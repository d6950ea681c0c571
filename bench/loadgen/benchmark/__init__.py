"""The benchmark: every server configuration, direct and behind nginx, measured side by side."""
