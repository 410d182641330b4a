"""A local fake of Paystack's HTTP API: `python -m sandbox`, or `create_app()` in tests."""
