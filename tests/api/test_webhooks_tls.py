"""Webhook delivery over HTTPS, end to end: the sender verifies the receiver's certificate chain against the
system's trust store (here, OpenSSL's SSL_CERT_FILE naming a test CA) and its name against the URL's host,
then delivers the Standard Webhooks message, verified by the reference library in the Node receiver. A
certificate for another name, or from an authority nobody trusts, is a failed attempt that never reaches
the receiver's handler."""
import datetime
import ipaddress
import os
import subprocess
import tempfile

import pytest
import requests
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import SUPERADMIN, Api, Server, free_port, login, make_tenant, wait_for
from test_webhooks import ENDPOINTS, FAST, RECEIVER_DIR, deliveries, endpoint, ok, settled, verified


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def certificate(subject, key, issuer, issuer_key, *, ca=False, dns=()):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer)).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if dns:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def write(directory, filename, data):
    path = os.path.join(directory, filename)
    with open(path, "wb") as f:
        f.write(data)
    return path


def pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class TlsReceiver:
    """The Node receiver (tests/webhooks/receiver.mjs) over HTTPS with the given key and certificate. The test
    talks to its control paths without checking the certificate: it is what cdx is asked to judge."""

    def __init__(self, key_path, cert_path, ca_path):
        self.port = free_port()
        self.proc = subprocess.Popen(["node", os.path.join(RECEIVER_DIR, "receiver.mjs"), str(self.port), "--tls",
                                      key_path, cert_path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", line
        self.control = f"https://127.0.0.1:{self.port}"
        self.ca = ca_path

    def configure(self, path, secrets):
        r = requests.post(self.control + "/_config", json={"path": path, "mode": "ok", "secrets": secrets},
                          verify=False, timeout=5)
        assert r.status_code == 204

    def requests(self, path):
        return requests.get(self.control + "/_requests", params={"path": path}, verify=False, timeout=5).json()

    def stop(self):
        self.proc.kill()
        self.proc.wait()


pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


@pytest.fixture(scope="module")
def pki():
    d = tempfile.mkdtemp(prefix="cdx-tls-")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = certificate("cdx test CA", ca_key, "cdx test CA", ca_key, ca=True)
    out = {"dir": d, "ca": write(d, "ca.pem", ca.public_bytes(serialization.Encoding.PEM))}
    for label, dns, self_signed in (("good", ["localhost"], False), ("wrong-name", ["wrong.example"], False),
                                    ("untrusted", ["localhost"], True)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (certificate("localhost", key, "localhost", key, dns=dns) if self_signed
                else certificate(dns[0], key, "cdx test CA", ca_key, dns=dns))
        out[label] = (write(d, f"{label}.key", pem_key(key)),
                      write(d, f"{label}.pem", cert.public_bytes(serialization.Encoding.PEM)))
    return out


@pytest.fixture(scope="module")
def receivers(pki):
    started = {label: TlsReceiver(*pki[label], pki["ca"]) for label in ("good", "wrong-name", "untrusted")}
    yield started
    for r in started.values():
        r.stop()


@pytest.fixture(scope="module")
def tls_server(pki):
    # OpenSSL's default trust store, as the sender loads it (set_default_verify_paths), with the test CA in it.
    s = Server(env={**FAST, "SSL_CERT_FILE": pki["ca"]}).start()
    yield s
    s.cleanup()


@pytest.fixture
def api(tls_server):
    sa_token = ok(Api(tls_server.url).post("/api/v1/auth/superadmin/login",
                                           json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]}))["access_token"]
    t = make_tenant(Api(tls_server.url, {"Authorization": "Bearer " + sa_token}))
    return Api(tls_server.url, {"Authorization": "Bearer " + login(Api(tls_server.url), t)})


def test_a_delivery_over_https_is_verified_and_signed(api, receivers):
    r = receivers["good"]
    e = endpoint(api, f"https://localhost:{r.port}/hook", ["*"])
    r.configure("/hook", [e["secret"]])
    ok(api.post(f"{ENDPOINTS}/{e['id']}/test"), 202)
    got = wait_for(lambda: r.requests("/hook"), timeout=10)
    assert got, deliveries(api, e["id"])
    body = verified(got[0], e["secret"])
    assert body["type"] == "webhook.test"
    d = settled(api, e["id"])[0]
    assert d["status"] == "succeeded" and d["attempts"][0]["status_code"] == 200
    # The next one goes on the same TLS connection, kept alive (no second handshake).
    ok(api.post(f"{ENDPOINTS}/{e['id']}/test"), 202)
    assert settled(api, e["id"], n=2)[0]["status"] == "succeeded"
    got = r.requests("/hook")
    assert len(got) == 2 and got[0]["conn"] == got[1]["conn"]


@pytest.mark.parametrize("which,why", [("wrong-name", "a certificate for another name"),
                                       ("untrusted", "a certificate no trusted authority signed")])
def test_a_receiver_that_cannot_prove_its_name_gets_nothing(api, receivers, which, why):
    r = receivers[which]
    e = endpoint(api, f"https://localhost:{r.port}/hook-{which}", ["*"])
    r.configure(f"/hook-{which}", [e["secret"]])
    ok(api.post(f"{ENDPOINTS}/{e['id']}/test"), 202)
    d = wait_for(lambda: [x for x in deliveries(api, e["id"]) if x["attempts"]], timeout=10)
    assert d, why
    attempt = d[0]["attempts"][0]
    assert attempt["status_code"] is None and attempt["error"], (why, attempt)
    assert "certificate verify failed" in attempt["error"], attempt
    assert r.requests(f"/hook-{which}") == [], why  # the TLS handshake failed: no request was ever read
