"""The conformance suite of test_conformance.py (Autobahn families 1-7, the limits, the opening
handshake's errors) again, over wss://: examples/echo with --tls-cert / --tls-key, every raw connection
wrapped in TLS (rawws.TLS). The framing is the same bytes inside TLS records, so every case must come
out the same."""
import sys
import tempfile
import unittest

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import rawws  # noqa: E402
import test_conformance  # noqa: E402  (the module, not its class: unittest would run that plain too)
import tls_certs  # noqa: E402

CERTS = tempfile.TemporaryDirectory(prefix="starling-conformance-tls-")
CERT, KEY = tls_certs.make(CERTS.name, "conformance")
rawws.TLS = tls_certs.client_context(CERT)


class ConformanceOverTLS(test_conformance.Conformance):
    server_args = ("--tls-cert", CERT, "--tls-key", KEY)


if __name__ == "__main__":
    unittest.main()
