"""The inbox's words: what the intake decided about a delivery, and what the relay did
with a queued one. A delivery's stored `outcome` is one of the two (never `duplicate`)."""

from __future__ import annotations

from enum import StrEnum


class Intake(StrEnum):
    # Committed, to be relayed to its owner right after the answer.
    QUEUED = "queued"
    # A byte-identical body is stored already (Paystack's retry): counted on its row, and
    # the answer's outcome only; no row holds it.
    DUPLICATE = "duplicate"
    # A routed event whose owner is not one of ours.
    UNKNOWN_REFERENCE = "unknown_reference"
    # An event type payrecon does not act on (no route).
    IGNORED = "ignored"


class Relay(StrEnum):
    SIGNALLED = "signalled"
    # The owner's workflow has completed: the event is kept, and not acted on.
    WORKFLOW_CLOSED = "workflow_closed"
    # Not handed over; the delivery stays queued and is tried again.
    TEMPORAL_UNAVAILABLE = "temporal_unavailable"
    # A stored body that no longer parses (never expected: it parsed when it came).
    UNREADABLE = "unreadable"
