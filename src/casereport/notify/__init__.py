"""Delivery: reports sent to Slack, email and webhooks once per run, after state is written."""
