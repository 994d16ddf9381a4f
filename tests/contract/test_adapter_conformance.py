"""The conformance suite every channel adapter passes, run here for every registered adapter.

The checks ship with the package (``centralita.testing.conformance``) so that an adapter
developed out of tree runs the very same ones from its own repository; the plugin
``centralita.testing.plugin`` parametrises them — one test id per (adapter, case) — and
``--conformance-adapter NAME`` narrows the run.  Importing the checks here collects them under
this module's name.
"""

from centralita.testing.conformance import *  # noqa: F403
