"""Rendering: state to Markdown, HTML and PDF pages, written atomically into the site."""
