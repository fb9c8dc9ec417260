"""casereport: Terraform-style declarative reports on Datadog Case Management."""

__version__ = "0.1.0"
