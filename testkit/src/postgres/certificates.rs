//! Throwaway X.509 certificates for TLS tests, made with the `openssl` command-line tool.
//!
//! ```text
//! CertificateAuthority::create(folder, "ca") ──▶ ca.crt, ca.key (self-signed, CA:TRUE)
//!        ├── issue_server(folder, "server") ──▶ server.crt, server.key (127.0.0.1, localhost)
//!        └── issue_client(folder, "alice", "alice") ──▶ alice.crt, alice.key (CN=alice)
//! ```
//!
//! Keys are ECDSA P-256, which the server (OpenSSL) and sqlx's rustls client both accept, and
//! certificates are valid for 2 days from their creation. Every function here runs `openssl`
//! as a blocking child process.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Days for which the certificates are valid.
const VALID_DAYS: &str = "2";

/// The `openssl req` arguments shared by every certificate: a new P-256 key without a
/// passphrase and a certificate valid for [`VALID_DAYS`].
const NEW_KEY_AND_CERT: [&str; 10] = [
    "req",
    "-x509",
    "-new",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-noenc",
    "-days",
    VALID_DAYS,
];

/// A self-signed certificate authority whose certificate and key are PEM files in a folder.
#[derive(Debug, Clone)]
pub struct CertificateAuthority {
    cert: PathBuf,
    key: PathBuf,
}

/// A certificate and its private key, as PEM files (the key in PKCS#8 form, mode 0600).
#[derive(Debug, Clone)]
pub struct CertifiedKey {
    /// The certificate file.
    pub cert: PathBuf,
    /// The private key file.
    pub key: PathBuf,
}

impl CertificateAuthority {
    /// Creates a new CA in `folder` as `<name>.crt` and `<name>.key`, with the subject
    /// `CN=aether test CA <name>`. Two CAs created this way never trust each other's
    /// certificates.
    ///
    /// # Panics
    ///
    /// Panics when `openssl` is missing or fails, with its output.
    pub fn create(folder: &Path, name: &str) -> Self {
        let cert = folder.join(format!("{name}.crt"));
        let key = folder.join(format!("{name}.key"));
        let subject = format!("/CN=aether test CA {name}");
        let mut args = NEW_KEY_AND_CERT.to_vec();
        args.extend([
            "-subj",
            &subject,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            path_arg(&key),
            "-out",
            path_arg(&cert),
        ]);
        run_openssl(&format!("creating CA {name}"), &args);
        Self { cert, key }
    }

    /// Returns the CA's certificate file, which clients pass as `sslrootcert` and servers as
    /// `ssl_ca_file`.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// Issues a server certificate for `127.0.0.1` and `localhost` (subject alternative names,
    /// so `sslmode=verify-full` accepts either host), written to `<name>.crt` and `<name>.key`
    /// in `folder`.
    ///
    /// # Panics
    ///
    /// Panics when `openssl` is missing or fails, with its output.
    pub fn issue_server(&self, folder: &Path, name: &str) -> CertifiedKey {
        self.issue(
            folder,
            name,
            "localhost",
            &[
                "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "extendedKeyUsage=serverAuth",
            ],
        )
    }

    /// Issues a client certificate whose common name is `user`, the database role that
    /// PostgreSQL's `cert` authentication logs in, written to `<name>.crt` and `<name>.key` in
    /// `folder`.
    ///
    /// # Panics
    ///
    /// Panics when `openssl` is missing or fails, with its output.
    pub fn issue_client(&self, folder: &Path, name: &str, user: &str) -> CertifiedKey {
        self.issue(folder, name, user, &["extendedKeyUsage=clientAuth"])
    }

    fn issue(
        &self,
        folder: &Path,
        name: &str,
        common_name: &str,
        extensions: &[&str],
    ) -> CertifiedKey {
        let cert = folder.join(format!("{name}.crt"));
        let key = folder.join(format!("{name}.key"));
        let subject = format!("/CN={common_name}");
        let mut args = NEW_KEY_AND_CERT.to_vec();
        args.extend([
            "-subj",
            &subject,
            "-CA",
            path_arg(&self.cert),
            "-CAkey",
            path_arg(&self.key),
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "keyUsage=critical,digitalSignature",
        ]);
        for extension in extensions {
            args.extend(["-addext", extension]);
        }
        args.extend(["-keyout", path_arg(&key), "-out", path_arg(&cert)]);
        run_openssl(&format!("issuing certificate {name}"), &args);
        CertifiedKey { cert, key }
    }
}

/// Converts a path for the command line. The folders come from `tempfile`, so they are UTF-8.
fn path_arg(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("path {} is not valid UTF-8", path.display()))
}

fn run_openssl(what: &str, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|err| {
            panic!(
                "{what} failed: cannot run openssl: {err}. Install it with \
                 `apt-get install openssl` (the postgresql-15 package brings it too)"
            )
        });
    assert!(
        output.status.success(),
        "{what} failed: openssl {} exited with {}: {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}
