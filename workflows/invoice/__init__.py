"""The invoice state machine: one workflow per invoice (workflow.py, read top to bottom),
its payment phase (payment.py), the money after payment (after_payment.py), and what every
part shares (base.py)."""

from workflows.invoice.workflow import InvoiceWorkflow

__all__ = ["InvoiceWorkflow"]
