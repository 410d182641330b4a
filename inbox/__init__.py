"""The webhook inbox: every correctly signed Paystack delivery, from intake to its owner.

    intake.py    what arrived is decided (`Intake`) and committed, before Paystack's answer
    routes.py    which owner each event type goes to, and what it is told: one table
    relayer.py   queued deliveries are signalled to their owners (`Relay`), from any process
    store.py     the deliveries table: the audit log, and the queue of those still to relay
    outcomes.py  the words for both

The API's webhook route and the operator CLI use it; it imports nothing of the API.
"""
