"""The acme image's renewal job: certbot obtains and renews nginx's certificate over HTTP-01,
this package installs it where nginx reads it and reloads nginx (docs/operations.md,
"Certificates from ACME")."""
