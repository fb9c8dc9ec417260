"""The Datadog Case Management API: the only code that speaks HTTP to Datadog.

``settings`` says where and with which credentials (site, base URL, keys); ``messages``
holds what goes over the wire (the aggregate request, its parsed result, strict JSON
decoding, error bodies, redaction); ``client`` sends the requests (connections, timeouts,
retries, an error per failure); ``ratelimit`` paces concurrent requests from Datadog's
``X-RateLimit-*`` headers; ``body`` reads a response body within a size cap.
Imports point that way: ``client`` uses the other four, which use none of each other.
"""
