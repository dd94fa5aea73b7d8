"""Certificates for the TLS tests, made when the tests run with the `openssl` command (nothing that
could expire is committed), and the client side of TLS: a context that trusts them, fingerprints."""
import hashlib
import pathlib
import shutil
import ssl
import subprocess

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


def make(directory, name):
    """A self-signed certificate for 127.0.0.1 and its key (EC P-256, PEM), as DIR/NAME.crt and
    DIR/NAME.key. Returns (certificate path, key path)."""
    directory = pathlib.Path(directory)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN=starling test {name}",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    return str(cert), str(key)


def client_context(*certificates):
    """A client context that trusts exactly `certificates` (and checks the name 127.0.0.1). A server
    that ends TCP without a TLS close_notify (Starling does, after the WebSocket close handshake) reads
    as a plain end of stream."""
    context = ssl.create_default_context()
    context.load_verify_locations(cadata="".join(pathlib.Path(c).read_text() for c in certificates))
    context.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
    return context


def fingerprint(certificate_file):
    """SHA-256 of a PEM certificate file's DER bytes."""
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pathlib.Path(certificate_file).read_text())).hexdigest()


def peer_fingerprint(ws):
    """SHA-256 of the certificate the server presented to a websockets connection."""
    return hashlib.sha256(ws.transport.get_extra_info("ssl_object").getpeercert(binary_form=True)).hexdigest()
