"""The certificate authority: doctors' document-signing certificates, CRL, OCSP, audit log."""
