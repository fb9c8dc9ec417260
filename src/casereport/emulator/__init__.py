"""The local Case Management emulator: a columnar case store behind an HTTP server.

``columns`` lays cases out in dictionary-encoded numpy columns; ``records`` builds those
columns from Case records, checking each; ``store`` answers aggregate, count and search
queries over them; ``evolution`` draws each synthetic case's life over simulated time
(arrival, work, priority changes, closing), for an emulator given a simulated clock;
``synthetic`` makes the synthetic set (a fixed snapshot, or the evolving set at a moment);
``datafiles`` reads cases from files and exports a set;
``app`` is the ASGI app that speaks the API; ``config`` is what the emulator is told (free
of numpy, so a plan can name its data source cheaply); ``server`` runs it. Each module
imports only modules listed before it.
"""
