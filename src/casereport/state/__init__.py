"""State: what the last apply fetched and rendered, and the means to change it safely.

``model`` is the state file (its data model, reading and writing), ``history`` the
bounded earlier results of each aggregation, stored by column, ``journal`` checkpoints
results during an apply, ``lock`` lets one run at a time write a state, and ``ops`` holds
the operator commands (``state list|show|rm``, ``show``, ``force-unlock``); ``page_cache``
is this machine's cache of the site's pages' hashes, which plans read them through.
"""
