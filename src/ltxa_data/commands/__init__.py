"""Commands that drive the build from above: the take-down (`remove`)."""
