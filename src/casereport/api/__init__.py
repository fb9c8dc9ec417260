"""The Datadog Case Management API: the only code that speaks HTTP to Datadog.

``settings`` says where and with which credentials (site, base URL, keys); ``messages``
holds what goes over the wire (the aggregate request, its parsed result, error bodies,
redaction); ``client`` sends the requests (connections, retries, an error per failure);
``ratelimit`` paces concurrent requests from Datadog's ``X-RateLimit-*`` headers.
Imports point that way: ``client`` uses the other three, which use none of each other.
"""
