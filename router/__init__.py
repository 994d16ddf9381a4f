"""Skills-based routing.

- ``router.policy``: the pure decision core (``RouterState`` and its events, commands and
  configuration; imports no I/O library). Import from there.
- ``router.service``: the live router that feeds the policy from RabbitMQ and the database.
- ``router.wire``: the messages on ``route.<ws>`` and ``agent.<id>``.
- ``router.simulation``: the what-if simulator that drives the same policy.
"""
