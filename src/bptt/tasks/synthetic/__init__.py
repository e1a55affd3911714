"""Synthetic long- and short-dependency tasks."""
