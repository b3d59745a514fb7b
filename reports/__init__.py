"""Acceptance reports: gates, recommendation, and HTML/Markdown/JSON/JUnit renderers."""
