"""The shared core every app builds on: config, device & precision, runs, metrics, plots,
the torch training loop, serving, and the CLI helper. One module per concern."""
