"""Benchmarks (not tests): ``make bench-<app>`` runs ``python -m bench.<app>``. Results go to
``bench/results/<app>.json`` and ``.md``; the README quotes them with the command."""
