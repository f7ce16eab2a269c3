"""Measurements behind the HTTP edge figures of docs/security.md."""
