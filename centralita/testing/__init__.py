"""The test kit Centralita ships, for its own tests and for adapters developed out of tree.

* ``centralita.testing.conformance`` — the adapter conformance suite: every check a channel
  adapter must pass, run against each adapter registered in the ``centralita.channels``
  entry-point group with the kit its package ships (see ``core.conformance``).
* ``centralita.testing.plugin`` — the pytest plugin (entry point ``pytest11``, loaded wherever
  Centralita is installed) that parametrises the suite and adds ``--conformance-adapter``.

Nothing here is imported by the product.
"""
