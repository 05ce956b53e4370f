"""Reporting: ``lra-report``, leaderboard and efficiency tables and plots from the stored run
records and benchmark rows. Reads files only: never imports torch, ``models`` or ``tasks``."""
