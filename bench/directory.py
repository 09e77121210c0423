"""A real OpenLDAP `slapd` for the tests and the benchmark of LDAP sign-in: its own configuration, certificates and
data in a temporary folder, serving ldap:// (StartTLS too) and ldaps:// on free ports of 127.0.0.1.

The people (dc=example,dc=org; every password is "<uid>-password"):
- alice: displayName "Alice Liddell", groups engineering and readers
- bob: no displayName (cn "Bob Builder"), group readers
- иван (Cyrillic uid): displayName "Иван Петров", group engineering
- carol: locked by OpenLDAP's ppolicy (pwdAccountLockedTime), which slapd itself would let bind
- dora, eve: Active Directory style, with sAMAccountName "dora.ad" / "eve.ad" and
  userAccountControl 512 (normal) / 514 (disabled); dora in group engineering
- sam: twice, in ou=people and in ou=contractors,ou=people, so a search for him is ambiguous
The service account is cn=docassist,dc=example,dc=org; the groups are groupOfNames in ou=groups.

Tests and `docassist bench --only sign_in` start it; they change the directory through
`add_user`, `add_to_group`, … as the rootdn, while it runs. It needs Debian's `slapd` and the
`ldap` extra (python-ldap). The tests' fixture is `tests/directory.py`.
"""

from __future__ import annotations

import datetime
import ipaddress
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import ldap
import ldap.modlist
import ldif
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from docassist.pipelines.llm.llama_server import free_port

SUFFIX = "dc=example,dc=org"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
SCHEMA = Path("/etc/ldap/schema")
_PR_SET_PDEATHSIG = 1

# Active Directory's two attributes the sign-in reads, with matching rules (AD's own schema file in
# /etc/ldap/schema/msuser.schema has none, so its sAMAccountName cannot be searched), and an
# auxiliary class (OpenLDAP's experimental OID arc) to put them on an inetOrgPerson.
AD_SCHEMA = """\
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName'
    EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl'
    EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.4203.666.11.99.1 NAME 'docassistADUser' AUXILIARY
    MAY ( sAMAccountName $ userAccountControl ) )
"""


def _config(folder: Path, admin_password: str) -> str:
    """slapd.conf: the mdb database with ppolicy (for pwdAccountLockedTime), TLS, and ACLs that
    let anyone read everything but passwords, which only a bind may use."""
    schemas = [
        *(SCHEMA / f"{name}.schema" for name in ("core", "cosine", "inetorgperson", "nis")),
        folder / "ad.schema",
    ]
    return "\n".join(
        [
            *(f"include {path}" for path in schemas),
            "modulepath /usr/lib/ldap",
            "moduleload back_mdb",
            "moduleload ppolicy",
            f"pidfile {folder / 'slapd.pid'}",
            f"argsfile {folder / 'slapd.args'}",
            f"TLSCACertificateFile {folder / 'ca.pem'}",
            f"TLSCertificateFile {folder / 'server.pem'}",
            f"TLSCertificateKeyFile {folder / 'server.key'}",
            "database mdb",
            f'suffix "{SUFFIX}"',
            f'rootdn "cn=admin,{SUFFIX}"',
            f"rootpw {admin_password}",
            f"directory {folder / 'db'}",
            "maxsize 16777216",
            "overlay ppolicy",
            "access to attrs=userPassword by anonymous auth by * none",
            "access to * by * read",
            "",
        ]
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def write_ca(cert_path: Path, common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA (EC P-256: fast to make), its certificate written as PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # keyCertSign, cRLSign
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _write_server_cert(folder: Path, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey) -> None:
    """server.pem / server.key for 127.0.0.1 and localhost, signed by the CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (folder / "server.key").write_bytes(key_pem)


def _person(uid: str, name: str, *, display_name: str | None = None, **more: list[str]) -> dict[str, list[str]]:
    entry = {
        "objectClass": ["inetOrgPerson"],
        "uid": [uid],
        "cn": [name],
        "sn": [name.split()[-1]],
        "userPassword": [f"{uid}-password"],
        **more,
    }
    if display_name:
        entry["displayName"] = [display_name]
    return entry


def _entries(service_password: str) -> list[tuple[str, dict[str, list[str]]]]:
    """The directory's starting content, parents first."""
    ad = {"objectClass": ["inetOrgPerson", "docassistADUser"]}
    people = [
        (f"uid=alice,{PEOPLE}", _person("alice", "Alice Liddell", display_name="Alice Liddell")),
        (f"uid=bob,{PEOPLE}", _person("bob", "Bob Builder")),
        (f"uid=иван,{PEOPLE}", _person("иван", "Ivan Petrov", display_name="Иван Петров")),
        (f"uid=carol,{PEOPLE}", _person("carol", "Carol Locked", pwdAccountLockedTime=["000001010000Z"])),
        (
            f"uid=dora,{PEOPLE}",
            _person("dora", "Dora AD", **ad, sAMAccountName=["dora.ad"], userAccountControl=["512"]),
        ),
        (f"uid=eve,{PEOPLE}", _person("eve", "Eve AD", **ad, sAMAccountName=["eve.ad"], userAccountControl=["514"])),
        (f"uid=sam,{PEOPLE}", _person("sam", "Sam One")),
        (f"uid=sam,ou=contractors,{PEOPLE}", _person("sam", "Sam Two")),
    ]
    groups = {"engineering": ["alice", "иван", "dora"], "readers": ["alice", "bob"]}
    return [
        (SUFFIX, {"objectClass": ["dcObject", "organization"], "dc": ["example"], "o": ["Example"]}),
        (
            f"cn=docassist,{SUFFIX}",
            {"objectClass": ["organizationalRole", "simpleSecurityObject"], "userPassword": [service_password]},
        ),
        (PEOPLE, {"objectClass": ["organizationalUnit"], "ou": ["people"]}),
        (f"ou=contractors,{PEOPLE}", {"objectClass": ["organizationalUnit"], "ou": ["contractors"]}),
        (GROUPS, {"objectClass": ["organizationalUnit"], "ou": ["groups"]}),
        *people,
        *(
            (
                f"cn={group},{GROUPS}",
                {"objectClass": ["groupOfNames"], "member": [f"uid={m},{PEOPLE}" for m in members]},
            )
            for group, members in groups.items()
        ),
    ]


class Slapd:
    """slapd in `folder`, on ports chosen once: `stop()` and `start()` again keep them and the data."""

    bind_dn = f"cn=docassist,{SUFFIX}"
    bind_password = "service-password"
    admin_dn = f"cn=admin,{SUFFIX}"
    admin_password = "admin-password"
    user_base = PEOPLE
    group_base = GROUPS

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port, self.ldaps_port = free_port(), free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.ldaps_url = f"ldaps://127.0.0.1:{self.ldaps_port}"
        self.ca_file = str(folder / "ca.pem")
        self.other_ca_file = str(folder / "other-ca.pem")  # a CA that did not sign the server's certificate
        self._process: subprocess.Popen[bytes] | None = None
        self._prepare()

    def _prepare(self) -> None:
        """Configuration, certificates, and the data loaded with slapadd."""
        (self.folder / "db").mkdir()
        (self.folder / "ad.schema").write_text(AD_SCHEMA)
        ca, ca_key = write_ca(Path(self.ca_file), "docassist test CA")
        write_ca(Path(self.other_ca_file), "some other CA")
        _write_server_cert(self.folder, ca, ca_key)
        (self.folder / "slapd.conf").write_text(_config(self.folder, self.admin_password))
        with (self.folder / "data.ldif").open("w", encoding="utf-8") as out:
            writer = ldif.LDIFWriter(out)
            for dn, attrs in _entries(self.bind_password):
                writer.unparse(dn, {name: [v.encode() for v in values] for name, values in attrs.items()})
        subprocess.run(
            ["/usr/sbin/slapadd", "-f", str(self.folder / "slapd.conf"), "-l", str(self.folder / "data.ldif")],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        """Run slapd in the foreground (`-d 0`), as a child that dies with this process; return
        once both ports answer."""
        urls = f"{self.url}/ {self.ldaps_url}/"
        log = (self.folder / "slapd.log").open("ab")
        self._process = subprocess.Popen(
            ["/usr/sbin/slapd", "-f", str(self.folder / "slapd.conf"), "-h", urls, "-d", "0"],
            stdout=log,
            stderr=log,
            preexec_fn=_die_with_parent,
        )
        log.close()
        deadline = time.monotonic() + 10
        for port in (self.port, self.ldaps_port):
            while not _listening(port):
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"slapd did not start: {(self.folder / 'slapd.log').read_text()[-2000:]}")
                time.sleep(0.01)

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def env(self, *, ldaps: bool = False) -> dict[str, str]:
        """The LDAP_* variables that point docassist at this directory."""
        return {
            "LDAP_URL": self.ldaps_url if ldaps else self.url,
            "LDAP_BIND_DN": self.bind_dn,
            "LDAP_BIND_PASSWORD": self.bind_password,
            "LDAP_USER_BASE": self.user_base,
            "LDAP_GROUP_BASE": self.group_base,
            "LDAP_CA_FILE": self.ca_file,
        }

    @staticmethod
    def user_dn(uid: str) -> str:
        return f"uid={uid},{PEOPLE}"

    def add_user(self, uid: str, password: str, *, name: str | None = None, groups: tuple[str, ...] = ()) -> str:
        """A new person (displayName `name` when given) in `groups`; their DN."""
        entry = _person(uid, name or uid.title(), display_name=name)
        entry["userPassword"] = [password]
        dn = self.user_dn(uid)
        with self._admin() as conn:
            conn.add_s(dn, ldap.modlist.addModlist({k: [v.encode() for v in vs] for k, vs in entry.items()}))
        for group in groups:
            self.add_to_group(uid, group)
        return dn

    def add_to_group(self, uid: str, group: str) -> None:
        self._modify(f"cn={group},{GROUPS}", ldap.MOD_ADD, "member", self.user_dn(uid))

    def remove_from_group(self, uid: str, group: str) -> None:
        self._modify(f"cn={group},{GROUPS}", ldap.MOD_DELETE, "member", self.user_dn(uid))

    def lock_user(self, uid: str) -> None:
        """Lock the account as OpenLDAP's ppolicy does (for good: the special time 000001010000Z)."""
        self._modify(self.user_dn(uid), ldap.MOD_REPLACE, "pwdAccountLockedTime", "000001010000Z")

    def delete_user(self, uid: str) -> None:
        with self._admin() as conn:
            conn.delete_s(self.user_dn(uid))

    def _modify(self, dn: str, op: int, attr: str, value: str) -> None:
        with self._admin() as conn:
            conn.modify_s(dn, [(op, attr, [value.encode()])])

    @contextmanager
    def _admin(self) -> Iterator[ldap.ldapobject.LDAPObject]:
        """A connection bound as the rootdn."""
        conn = ldap.initialize(self.url)
        try:
            conn.simple_bind_s(self.admin_dn, self.admin_password)
            yield conn
        finally:
            conn.unbind_s()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the test process dies, so no slapd outlives it."""
    import ctypes

    ctypes.CDLL("libc.so.6").prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
