"""Rendering: state to Markdown, HTML and PDF pages, written atomically into the site.

    templates   the Jinja2 environment (workspace templates before the built-in ones)
    filters     numbers, changes, dates and Markdown escaping, for templates and context
    words       queries and group-by fields in plain words
    markdown    report descriptions, rendered safely
    charts      the inline SVG trend and the bar chart's layout
    context     what a template sees (documented in docs/templates.md)
    pages       a report's pages and the index, in memory
    workers     reports rendered and written, a large site by one process per core
    write       pages written atomically and durably, only those that changed
    pdf         the HTML page printed by headless Chromium

A report's pages are built in memory, then written atomically by the process that
rendered them, which hands back only their names and hashes. Output is deterministic:
the same state renders byte-identical files, however many processes render it.
"""
