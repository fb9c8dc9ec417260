"""Report definitions: ``reports/*.yaml`` loaded, checked and expanded into requests.

``yamlnodes`` turns YAML text into nodes that know their line and column, ``load`` reads
and validates files into the ``models``, ``expand`` resolves variables and ``for_each``
into aggregation requests with stable addresses, ``query`` is the Case Management search
language (shared with the emulator and the page wording), ``fmt`` rewrites files in one
style, ``schema`` is their JSON Schema and ``scaffold`` is ``casereport init``.
"""
