"""The Paystack adapter: typed HTTP client, webhook signature check, event parsing."""
