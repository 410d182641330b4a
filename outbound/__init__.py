"""What payrecon tells others: signed events to the merchants' endpoints, and emails to
their customers."""
