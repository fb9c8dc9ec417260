"""Publishing: the rendered site online as an S3 static website, with Pulumi.

``files`` lists the site's files as they are uploaded and checks the site is fit to
publish; ``config`` reads and validates where it goes (the stack config); ``program`` is
the Pulumi program that declares the bucket and the objects; ``deploy`` is ``casereport
publish``, driving that program through Pulumi's Automation API. Imports point that way.
pulumi and pulumi_aws (the optional ``casereport[publish]`` extra) are imported only inside
the functions that use them, so importing this package stays cheap.
"""
