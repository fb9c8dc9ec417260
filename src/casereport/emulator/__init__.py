"""The local Case Management emulator: a columnar case store behind an HTTP server.

``columns`` lays cases out in dictionary-encoded numpy columns; ``records`` builds those
columns from Case records, checking each; ``store`` answers aggregate, count and search
queries over them; ``synthetic`` makes the synthetic set; ``datafiles`` reads cases from files and
exports a set;
``app`` is the ASGI app that speaks the API; ``config`` is what the emulator is told (free
of numpy, so a plan can name its data source cheaply); ``server`` runs it. Each module
imports only modules listed before it.
"""
