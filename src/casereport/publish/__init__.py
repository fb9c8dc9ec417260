"""Publishing: the rendered site online as an S3 static website, with Pulumi."""
