"""The Datadog Case Management API: the only code that speaks HTTP to Datadog.

``client`` sends aggregate requests (settings, retries, error messages); ``ratelimit``
paces concurrent requests from Datadog's ``X-RateLimit-*`` headers.
"""
