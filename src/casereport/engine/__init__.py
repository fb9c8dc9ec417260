"""The engine: plan against state, then apply (fetch, checkpoint, render, write state).

``plan`` is the plain plan model and ``views`` prints it; ``apply`` drives the other
stages: it fetches through ``casereport.api`` (from Datadog or a started emulator,
``adhoc``) and renders through ``casereport.render``. ``adhoc`` is also ``casereport query``.
"""
